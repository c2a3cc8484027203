// Package loadgen is the engine of sbload: it drives one or more
// switchboard nodes from the outside, over the public contract only
// (DESIGN.md), and accounts for every message end to end.
//
// A Runner owns four kinds of traffic:
//
//   - customers texting: signed, Twilio-shaped webhooks posted at an
//     open-loop rate. Each webhook has an intended send time fixed by the
//     schedule (start + i/rate); latency is measured from that time, so a
//     slow node cannot hide its slowness by slowing the generator down
//     (no coordinated omission). A share of webhooks is delivered twice
//     (Twilio retries), some come in bursts from one number, and every text
//     carries a unique marker so that its delivery can be recognised;
//   - simulated agents over WebSocket: each declares a capacity, replies to
//     new messages after a think time and sometimes releases the
//     conversation;
//   - shop users posting navigation events, some linked to a customer's
//     phone;
//   - a fake Twilio Messages API (fakeapi) that the nodes send replies
//     to, which records every send and posts status callbacks.
//
// At the end a Report holds latency percentiles, throughput, errors by kind
// and the accounting: every acknowledged inbound message seen by exactly
// one agent, every acknowledged reply sent exactly once. Report.Failures
// lists what was lost or sent twice; sbload exits non-zero when it is not
// empty.
//
// Baselines (raw loopback HTTP, raw amqp091-go publish-with-confirms →
// consume, raw goleveldb synced appends) run the same way, so every figure
// in BENCHMARKS.md sits beside one measured on the same machine in the same
// run.
//
// Concurrency: a Runner is used once: New, then Run from one goroutine.
// Run starts and owns every goroutine (generator workers, agents, the fake
// API, the progress ticker) and returns only after all of them stopped.
// Progress may be read from any goroutine while Run works.
package loadgen
