package transform

import (
	"context"
	"iter"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Stage turns one stream into another. A stage must not start goroutines and
// must stop producing as soon as yield returns false.
type Stage[In, Out any] func(iter.Seq[In]) iter.Seq[Out]

// Then composes two stages: the output of s feeds next.
func Then[A, B, C any](s Stage[A, B], next Stage[B, C]) Stage[A, C] {
	return func(in iter.Seq[A]) iter.Seq[C] { return next(s(in)) }
}

// Pipeline composes stages of one type in order. With no stages it returns
// the stream unchanged.
func Pipeline[T any](stages ...Stage[T, T]) Stage[T, T] {
	return func(in iter.Seq[T]) iter.Seq[T] {
		for _, s := range stages {
			in = s(in)
		}
		return in
	}
}

// Map is a stage that applies f to every item.
func Map[In, Out any](f func(In) Out) Stage[In, Out] {
	return func(in iter.Seq[In]) iter.Seq[Out] {
		return func(yield func(Out) bool) {
			for v := range in {
				if !yield(f(v)) {
					return
				}
			}
		}
	}
}

// WithContext is a stage that ends the stream when ctx is done. It checks
// before every item, so a cancelled pipeline stops within one item.
func WithContext[T any](ctx context.Context) Stage[T, T] {
	return func(in iter.Seq[T]) iter.Seq[T] {
		return func(yield func(T) bool) {
			if ctx.Err() != nil {
				return
			}
			for v := range in {
				if ctx.Err() != nil || !yield(v) {
					return
				}
			}
		}
	}
}

// FromSlice streams the items of s in order.
func FromSlice[T any](s []T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for _, v := range s {
			if !yield(v) {
				return
			}
		}
	}
}

// FromChan streams what arrives on ch until ch is closed or ctx is done.
// It starts no goroutine: the consumer's pull is the receive, so the
// producer on the other side of ch gets backpressure from the channel.
func FromChan[T any](ctx context.Context, ch <-chan T) iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			select {
			case <-ctx.Done():
				return
			case v, ok := <-ch:
				if !ok || !yield(v) {
					return
				}
			}
		}
	}
}

// Accumulate collects a stream into a slice, appending to dst (which may be
// nil) and returning the extended slice.
func Accumulate[T any](dst []T, in iter.Seq[T]) []T {
	for v := range in {
		dst = append(dst, v)
	}
	return dst
}

// Annotations is the standard pipeline of the agent client: messages →
// RelativeTime → Sentiment → accumulated slice.
func Annotations(a *Analyzer, msgs []protocol.Message) []Annotated {
	return Accumulate(make([]Annotated, 0, len(msgs)), Then(RelativeTime(), Sentiment(a))(FromSlice(msgs)))
}
