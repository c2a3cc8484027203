// Package amqpbus is the RabbitMQ implementation of bus.Bus, on amqp091-go.
//
// # Topology
//
// One durable topic exchange (Options.Exchange, "switchboard" by default)
// carries the routing keys of DESIGN.md. A fanout dead-letter exchange
// "<exchange>.dlx" feeds the durable queue "<exchange>.dead". A named
// subscription gets the durable queue QueuePrefix+Queue with
// x-dead-letter-exchange set to the DLX, plus a retry queue "<queue>.retry"
// whose messages expire after RetryDelay and are dead-lettered back into the
// main queue by name. A private subscription gets the same pair as exclusive
// queues (deleted with the subscription or the connection). A stream
// subscription declares a durable x-queue-type=stream queue.
//
// # The dangerous parts and how each is handled
//
//   - Notify* channels must always be drained: the library's reader goroutine
//     blocks on them (amqp091-go 1.16 gives up after 5s and drops the
//     notification, which would lose a confirm). NotifyPublish and
//     NotifyReturn get buffers as large as the confirm window, and one
//     goroutine (the publish loop) drains both for as long as the channel
//     lives; NotifyClose gets a 1-buffer and a dedicated reader.
//   - A channel that returned an error is dead. Any publish error closes the
//     publishing channel; the publish loop opens a new one (on the same
//     connection when it is still up, after ReconnectMin) and republishes
//     everything unconfirmed, in the original order. A publishing channel
//     closed with 404 NOT_FOUND means an exchange of ours was deleted (by
//     hand): a new channel would fail the same way, so the bus closes the
//     connection, and the reconnect declares the exchanges and every
//     subscription's queue and bindings again. A consumer whose
//     delivery channel closes (channel error, consumer cancelled by the
//     broker, connection lost) closes its channel and sets itself up again.
//   - Confirms are asynchronous with a bounded window, never one wait per
//     message on the wire: a semaphore of ConfirmWindow slots bounds the
//     publishes in flight, each is registered under its delivery tag before
//     it is sent (sends are serialized so GetNextPublishSeqNo is exact), and
//     the publish loop resolves waiters as confirms arrive. Many concurrent
//     Publish calls are therefore pipelined on one channel.
//   - Writes come in runs: one send loop writes whatever is queued; while
//     confirms are outstanding it waits out Options.Linger (4ms) after a
//     write before the next. A publish when nothing awaits a confirm goes
//     out at once (sequential publishers are not slowed down); under load
//     publishes leave in runs, which a stream stores as one chunk and reads
//     once per consumer. Per
//     chunk, not per message, is where a RabbitMQ stream spends its CPU:
//     at 2,000 msg/s into a stream with two consumers, runs of 8 cost the
//     broker 30 % of what single writes cost (bench/streamcost.go,
//     BENCHMARKS.md).
//   - mandatory=true: an unroutable message comes back as basic.return
//     before its basic.ack. The publish loop drains queued returns before it
//     resolves each confirm, so such a Publish fails with bus.ErrUnroutable.
//     Returns are matched to publishes by MessageId (unique per Bus).
//   - Connection loss: the supervisor reconnects forever with capped
//     exponential backoff and jitter (ReconnectMin..ReconnectMax),
//     redeclares the topology, and every subscription redeclares its queue
//     and consumer. Publishers keep waiting (bounded by their ctx) while
//     their unconfirmed messages are republished on the new channel, so a
//     confirmed Publish is never lost and an unconfirmed one is retried
//     (consumers may see duplicates: at-least-once). amqp091-go's own
//     experimental Config.Recovery is left off because it does not
//     republish unconfirmed messages.
//   - Poison messages: a failing handler's message is republished (confirmed)
//     to the retry queue with an x-switchboard-attempts header and only then
//     acked, so it is neither lost nor redelivered in a hot loop; after
//     MaxAttempts failures, or a bus.Permanent error, it is republished to
//     the DLX with x-switchboard-error/-queue/-key headers and acked. If that
//     republish fails the message is rejected (requeue=false) and the
//     queue's x-dead-letter-exchange still moves it to the DLX. Broker-side
//     redeliveries after a crash (Delivery.Redelivered) are not counted.
//   - Heartbeats (Options.Heartbeat) detect dead TCP connections. A Publish
//     blocked in a socket write under broker flow control cannot be
//     interrupted by its ctx (a library limitation); other publishers wait
//     for the send lock honoring their ctx.
//
// Streams: consumption starts at the x-stream-offset argument (an offset,
// "next"); every delivery carries its offset in the x-stream-offset header,
// and after a reconnect the consumer resumes at the last handled offset + 1.
// Stream entries cannot be requeued, so a failing stream handler is retried
// in place (RetryDelay apart) and then dead-lettered. Stream acks only
// return credit, so they are sent as one multiple ack per 64 deliveries.
// Offsets do not tell a stream from one deleted and declared again (it
// starts over at 0), and a consumer that resumes at offset n of such a
// stream waits for entry n; Head (bus.StreamHead) reads a stream's first
// entry, which does tell them apart.
//
// Heroku: use URLFromEnv (SWITCHBOARD_AMQP_URL, else CLOUDAMQP_URL); amqps
// URLs use TLS with the URL's host as server name.
//
// Concurrency: all methods of Bus and of its subscriptions are safe for
// concurrent use. Each subscription calls its handler from one goroutine.
package amqpbus
