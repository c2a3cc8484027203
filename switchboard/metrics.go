package switchboard

import (
	"runtime"
	"runtime/metrics"
	"time"

	"github.com/switchboard/switchboard/udpstats"
)

// The node's metrics go through these small interfaces so the hot paths do
// not care whether metrics are emitted (udpstats) or discarded.
type counter interface {
	Inc()
	Add(int64)
}

type gauge interface{ Set(int64) }

type timing interface{ Observe(time.Duration) }

type nopMetric struct{}

func (nopMetric) Inc()                  {}
func (nopMetric) Add(int64)             {}
func (nopMetric) Set(int64)             {}
func (nopMetric) Observe(time.Duration) {}

// nodeMetrics is the metric catalog of a node; the README lists it. Names
// are sent with the "switchboard." prefix and a node tag.
type nodeMetrics struct {
	smsIn           counter // sms.in: inbound SMS stored
	smsDuplicate    counter // sms.duplicate: webhook retries and duplicates, not stored again
	smsBad          counter // sms.bad: webhooks refused (400, 403, 413)
	outSent         counter // sms.out.sent: replies the provider accepted
	outFailed       counter // sms.out.failed: replies that failed for good
	outRetried      counter // sms.out.retried: provider attempts retried
	statusCallbacks counter // sms.status: delivery status callbacks
	wsConnections   counter // ws.connections: agent WebSockets opened
	wsRejected      counter // ws.rejected: upgrades refused (token, origin)
	badFrames       counter // ws.bad_frames: agent frames refused
	slowAgents      counter // ws.slow: agents disconnected for a full write queue
	assigned        counter // route.assignments: conversations given to agents
	http4xx         counter // http.4xx
	http5xx         counter // http.5xx
	navEvents       counter // nav.events: navigation events accepted
	transfers       counter // route.transfers: transfers applied (issue 18)
	answerTimeouts  counter // route.answer_timeouts: conversations moved by the answer timeout

	agentsOnline    gauge // agents.online: agents with a live session here
	agentsAvailable gauge // agents.available: available agents with free capacity
	agentsBusy      gauge // agents.busy: online agents at capacity or away with work
	convWaiting     gauge // conv.waiting: conversations waiting for an agent
	convAssigned    gauge // conv.assigned: conversations held by agents

	routeLatency   timing // route.latency: webhook received → frame written to the agent
	storeLatency   timing // store.append: durable append of an inbound SMS
	busLatency     timing // bus.confirm: publish → confirm (RabbitMQ) / accepted (in-process)
	webhookLatency timing // webhook.latency: webhook received → answered
}

func nopMetrics() *nodeMetrics {
	var n nopMetric
	return &nodeMetrics{
		smsIn: n, smsDuplicate: n, smsBad: n, outSent: n, outFailed: n, outRetried: n,
		statusCallbacks: n, wsConnections: n, wsRejected: n, badFrames: n, slowAgents: n,
		assigned: n, http4xx: n, http5xx: n, navEvents: n, transfers: n, answerTimeouts: n,
		agentsOnline: n, agentsAvailable: n, agentsBusy: n, convWaiting: n, convAssigned: n,
		routeLatency: n, storeLatency: n, busLatency: n, webhookLatency: n,
	}
}

// emittedMetrics registers the catalog with e.
func emittedMetrics(e *udpstats.Emitter) *nodeMetrics {
	e.GaugeFunc("runtime.goroutines", func() int64 { return int64(runtime.NumGoroutine()) })
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	e.GaugeFunc("runtime.heap_inuse", func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	})
	return &nodeMetrics{
		smsIn:           e.Counter("sms.in"),
		smsDuplicate:    e.Counter("sms.duplicate"),
		smsBad:          e.Counter("sms.bad"),
		outSent:         e.Counter("sms.out.sent"),
		outFailed:       e.Counter("sms.out.failed"),
		outRetried:      e.Counter("sms.out.retried"),
		statusCallbacks: e.Counter("sms.status"),
		wsConnections:   e.Counter("ws.connections"),
		wsRejected:      e.Counter("ws.rejected"),
		badFrames:       e.Counter("ws.bad_frames"),
		slowAgents:      e.Counter("ws.slow"),
		assigned:        e.Counter("route.assignments"),
		http4xx:         e.Counter("http.4xx"),
		http5xx:         e.Counter("http.5xx"),
		navEvents:       e.Counter("nav.events"),
		transfers:       e.Counter("route.transfers"),
		answerTimeouts:  e.Counter("route.answer_timeouts"),
		agentsOnline:    e.Gauge("agents.online"),
		agentsAvailable: e.Gauge("agents.available"),
		agentsBusy:      e.Gauge("agents.busy"),
		convWaiting:     e.Gauge("conv.waiting"),
		convAssigned:    e.Gauge("conv.assigned"),
		routeLatency:    e.Timing("route.latency"),
		storeLatency:    e.Timing("store.append"),
		busLatency:      e.Timing("bus.confirm"),
		webhookLatency:  e.Timing("webhook.latency"),
	}
}
