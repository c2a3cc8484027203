package store

import "errors"

// Sentinel errors. Callers test them with errors.Is; the store wraps them with
// the operation ("store: message 01J...: store: not found"). What a client
// sees (HTTP status, WebSocket error code) is chosen at the edge.
var (
	// ErrNotFound: no message has this id or provider id.
	ErrNotFound = errors.New("store: not found")

	// ErrClosed: the store was closed (or is closing) before the request was
	// written. A request that fails with ErrClosed was not stored.
	ErrClosed = errors.New("store: closed")

	// ErrInvalid: an argument is missing or out of range (bad phone number,
	// empty Sid, unknown status, text too long, ...). Nothing was written.
	ErrInvalid = errors.New("store: invalid argument")

	// ErrConflict: an explicit message id is already used by a different
	// message. Nothing was written.
	ErrConflict = errors.New("store: id already in use")

	// ErrRefConflict: an agent's reply reuses a ref (Reply.Ref) it already
	// used for a different phone or text. Nothing was written. Refs are
	// remembered for as long as the store keeps the reply: for ever.
	ErrRefConflict = errors.New("store: ref already used for another reply")

	// ErrFull: a bounded collection holds its most already (the canned
	// replies, protocol.MaxCanned). Nothing was written.
	ErrFull = errors.New("store: limit reached")
)
