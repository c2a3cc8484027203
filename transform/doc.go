// Package transform is a small streaming library for the agent client: stages
// that each take a stream of messages and yield a stream, composed into a
// pipeline. It replaces the original design's through2 chain
// (array → time → sentiment → accumulate) with Go 1.23 iterators.
//
// # Why iterators and not channels
//
// A stream is an iter.Seq. Stages are plain functions from one iter.Seq to
// another (Stage), so a pipeline runs on the caller's goroutine:
//
//   - Backpressure is built in: a stage produces the next item only when the
//     consumer asks for it (the yield call returns), so nothing is buffered and
//     a slow consumer slows the producer down instead of growing a queue.
//   - Nothing leaks: no stage starts a goroutine, so an abandoned or cancelled
//     pipeline leaves nothing behind. Breaking out of a range loop stops every
//     stage upstream.
//   - Cancellation is explicit: WithContext stops a stream between items when
//     its context is done, and FromChan adapts a channel fed by another
//     goroutine (for example a network reader) and stops on ctx.Done() too.
//   - It is cheap: an item passes through a stage with a function call, not a
//     channel send and a goroutine switch, which matters when a 10,000-message
//     history is annotated in one go.
//
// # Stages
//
// RelativeTime turns protocol messages into Annotated items that carry the
// message's time. It does not bake a phrase into the item: the phrase
// ("45 seconds ago") is rendered on demand by a RelTime formatter with an
// injectable clock, so a view can refresh every second without running the
// other stages again. Sentiment scores each item once with VADER (govader,
// on at most the first 480 bytes of the text) and keeps the raw compound
// score and a Mark. Accumulate collects a stream into a slice; FromSlice goes
// the other way.
//
// # Concurrency
//
// Stages, streams and Annotated values are not safe for concurrent use unless
// said otherwise: a stream is consumed by one goroutine. An Analyzer and a
// RelTime are immutable after construction and safe for concurrent use.
package transform
