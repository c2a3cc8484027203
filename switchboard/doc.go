// Package switchboard is the switchboard node: the HTTP API and Twilio
// webhooks, agent WebSocket sessions, routing and outbound SMS, on one
// ordered event log.
//
// # One path
//
// Every event that changes a conversation or routing — an inbound SMS, a
// reply, an internal note, a contact, a canned reply, a delivery status, an agent's presence, a release, a grace
// expiry, a node's start or death — is appended to the log (package
// eventlog) and takes effect only when the node applies it, in log order.
// A node alone runs on the local log, kept in its LevelDB store; nodes
// that share a RabbitMQ broker run on its stream log. The log is chosen
// once, in New; nothing else knows which one it is, except that with the
// stream log a node also journals what it accepts (journal.go) and
// watches the other nodes' heartbeats (heartbeats.go), two things the
// local log does not need.
//
//	webhook / agent frame          accept.go          the log          apply.go
//	POST /sms/twilio ─┐                          ┌──────────────┐
//	POST …/status ────┼─► cluster.inbound/reply ─►│ Local: store │─► apply (decode, queue)
//	agent frames ─────┘   /status/presence/       │ Stream: AMQP │        │
//	grace timers ──────►  release (acceptor:      └──────────────┘        ▼
//	heartbeats ────────►  direct or journal)                        applier: a run of entries
//	                         │                                        │ 1. store.ApplyLog (no fsync)
//	                         ▼                                        │ 2. router.call: engine decides,
//	                      200 / ack                                   │    sessions get frames
//	                                                                  │ 3. dispatcher sends replies
//	                                                                  └ checkpoint (fsync, offset)
//
// Every node applies the whole log and makes the same routing decisions
// (route.Engine is deterministic and fed only by log events and the
// times they carry). The node that hosts an agent's session delivers its
// frames; the node that accepted a reply sends it (dispatcher.go), unless
// the log says that node is dead (membership.go).
//
// # Files
//
//	node.go          Node: construction (the one choice of log), Start, Shutdown, Ready
//	cluster.go       the log machinery's state, start, readiness
//	accept.go        accepting: webhook, reply, status, presence, release → log
//	journal.go       acceptors: direct (local log), journal and republisher (stream log)
//	apply.go         applying: log → store → router, in log order
//	checkpoint.go    checkpoints: routing state saved with the offset it reflects; restore
//	logidentity.go   log identity: the first entry; a replaced log adopted or failed on
//	snapshot.go      snapshots of the applied state: published, and loaded by a node the log has passed
//	membership.go    node start, death and "alive" as the log tells them; reply adoption
//	heartbeats.go    heartbeats and silent nodes (stream log only)
//	router.go        the router goroutine: engine, sessions, grace timers
//	session.go       one agent WebSocket: write queue, reader, pinger
//	agentframes.go   what an agent's frames do
//	flow.go          transfers, a supervisor's assign, the answer timeout; supervisor sessions, GET /queue
//	dispatcher.go    outbound SMS: queue, workers, retries, hand-over after a death
//	earlystatus.go   status callbacks that arrive before their send is recorded
//	http.go          HTTP routes and handlers
//	nav.go           navigation analytics wiring (package nav)
//	desk.go          notes, contacts, canned replies: accepted → log → applied
//	hole.go          entries removed from the log before they were applied
//	deskhttp.go      their admin API (/canned, /contacts)
//	events.go        event bodies and routing keys (DESIGN.md)
//	twilioregister.go, metrics.go, options.go
//
// # Goroutines
//
//   - net/http: one per request; webhook handlers accept (append) and
//     answer once the event is durable.
//   - per agent session: a reader (readLoop), which hands each frame to
//     a goroutine of its own (handleFrame) and waits for it, so that an
//     idle session's reader keeps a small stack; while frames are queued,
//     a writer (writeOut); one pinger for all.
//   - the router (router.run): the only goroutine that touches the engine,
//     the sessions map, grace timers and lost releases; others hand it
//     work with do or call.
//   - the log subscription (eventlog Local.follow, or the amqpbus
//     consumer) → cluster.apply, which only decodes and queues. Local
//     hands over the entries appended in this process from memory (an
//     accepted message with what its write stored: it is not stored, nor
//     decoded, again) and reads the others from the store.
//   - the applier (cluster.applier): stores, routes and checkpoints.
//   - the store writer (group commit), the dispatcher and its send
//     workers, the acceptor's run (the republisher, stream log only),
//     heartbeats (stream log only), watchLog, navigation and metrics;
//     after a hole in the stream log, awaitSnapshot (hole.go).
//   - grace timers (time.AfterFunc) append route.expire.
//   - answer timers (time.AfterFunc, flow.go, every node, once caught up)
//     append route.timeout; the first applied decides, the rest change
//     nothing.
//
// # Lock order
//
// Every mutex is a leaf: none is held while another is taken, while
// calling the router (do, call), or while writing to the store or the
// log (goFunc holds Node.wgMu only around wg.Add; cluster.waitMu guards
// the admin changes waiting to be applied). The router goroutine takes
// only leaf locks (a session's write queue, cluster.pendingLock,
// cluster.adoptMu). The applier waits for the
// router (router.call); the router never waits for the applier. The
// store writer waits for nothing.
//
// # Guarantees
//
// A webhook is answered 200 only once its event is durable (local log:
// fsynced, with its message stored in the same write; stream log: in the fsynced journal, published with confirms
// and republished until the log has it), so Twilio's retry covers
// everything else (a 503). Applying is idempotent: messages are keyed by
// id, sid and ref in the store, route and presence events by their ids;
// a restarted node resumes after its checkpoint's offset. Arrival order
// is the log offset.
package switchboard
