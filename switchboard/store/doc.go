// Package store is the durable conversation store of a switchboard node,
// on LevelDB (goleveldb).
//
// Each conversation, keyed by the customer's phone number, is an append-only
// sequence of message records, one key per message; history is never
// rewritten. Inbound messages are indexed by the provider's MessageSid and
// agent replies by their client ref, so retries are stored once. Every write
// is durable (the LevelDB journal is synced) before it is acknowledged, so
// after a crash everything acknowledged is there.
//
// # Key layout
//
// Phone numbers are E.164 and agent names hold no '/', so the '/' after them
// always ends the component. <n8> is a uint64, 8 bytes big-endian, so keys
// sort in numeric order.
//
//	g/version               "1"        schema version, checked by Open
//	g/seq                   <n8>       last store-global sequence number (WaitSeq, outbox order)
//	m/<phone>/<seq8>        record     one message (JSON); seq counts from 1 per conversation
//	s/<id>                  status     delivery status and provider id of a reply (JSON);
//	                                   absent = queued. Merged into the message on read.
//	                                   Written with the reply, it repeats the reply's phone,
//	                                   outbox sequence and agent, so a status from the log
//	                                   reads this key alone (older replies: their record)
//	id/<id>                 <seq8><oseq8><phone>  where message id lives (oseq 0 for inbound)
//	sid/<MessageSid>        <id>       inbound dedupe index
//	ref/<agent>/<ref>       <id>       reply dedupe index
//	pid/<providerID>        <id>       provider id index (MessageByProviderID)
//	o/<oseq8>/<id>          ""         outbox: replies not yet handed to the provider, in order
//	c/<phone>               state      routing state of the conversation (JSON)
//	x/<phone>               "stop"     the customer opted out (consent.go)
//	L/<offset8>             <len2><key><body>  local log entry (log.go; the node alone)
//	g/lognext               <n8>       next local log offset (never reused)
//	fw/<word>/<^ms8><phone>/<^seq8> "" search index (search.go)
//	g/search                "3"        every stored message is in the search index, without
//	                                   stop words (versions 1 and 2 also had fc/<phone>/<word>/…
//	                                   keys or stop words' lists: deleted after open)
//
// <phone> is the conversation's address: an E.164 number, or
// "whatsapp:" and one for a WhatsApp conversation.
//
// A message is written once, with its indexes, in one batch; a status change
// writes s/<id> (and pid/, and deletes the o/ entry) and never touches the
// message record.
//
// # Writes: one writer, group commit
//
// One writer goroutine owns every write. Callers send a request and wait for
// the answer (or for their context to end). The writer takes every request
// waiting, up to Options.MaxBatch, applies them in order to one LevelDB
// batch — dedupe sees both the database and earlier requests of the same
// batch, per-conversation seqs come from an in-memory cache loaded lazily
// from the last key of the conversation — writes the batch with Sync: true,
// and only then answers all of them. So concurrent writers share one fsync.
// Requests that do not need their own fsync (WithoutSync) are written first,
// without one, and answered at once: they do not wait for the others'.
// If the write fails, every request of the batch gets the error; nothing of
// it is in the in-memory state except that the seqs it allocated are
// skipped, never reused (the failed batch may still be in LevelDB's
// journal and be replayed at the next open; it must not overwrite later
// messages). Retrying is safe: appends are deduplicated.
//
// A caller whose context ends after its request was handed over gets the
// context's error, but the write may still be committed; a request whose
// context has ended before the writer reaches it is not written.
//
// # Reads
//
// Reads do not go through the writer: they read a LevelDB snapshot (or one
// Get) directly, see only committed writes, and release every snapshot and
// iterator before returning.
//
// # Concurrency
//
// All methods of Store are safe for concurrent use. Close stops the writer
// (a batch being written is finished; requests still queued fail with
// ErrClosed), then closes the database; it is idempotent.
package store
