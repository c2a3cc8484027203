package switchboard

import "time"

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

// nodeMetrics is the metric catalog of a node (README: "Metrics").
type nodeMetrics struct {
	smsIn, smsDuplicate, smsBad          counter
	outSent, outFailed, outRetried       counter
	statusCallbacks                      counter
	wsConnections, wsRejected, badFrames counter
	slowAgents, assigned                 counter
	http4xx, http5xx                     counter
	navEvents                            counter
	agentsOnline, agentsAvailable        gauge
	agentsBusy, convWaiting              gauge
	convAssigned                         gauge
	routeLatency, storeLatency           timing
	busLatency, webhookLatency           timing
}

func nopMetrics() *nodeMetrics {
	var n nopMetric
	return &nodeMetrics{
		smsIn: n, smsDuplicate: n, smsBad: n, outSent: n, outFailed: n, outRetried: n,
		statusCallbacks: n, wsConnections: n, wsRejected: n, badFrames: n, slowAgents: n,
		assigned: n, http4xx: n, http5xx: n, navEvents: n,
		agentsOnline: n, agentsAvailable: n, agentsBusy: n, convWaiting: n, convAssigned: n,
		routeLatency: n, storeLatency: n, busLatency: n, webhookLatency: n,
	}
}
