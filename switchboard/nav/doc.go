// Package nav is the navigation analytics of a switchboard node: the
// product catalog, "customers who viewed this product also viewed these
// categories" counters, a rolling top-N of viewed products, and the stats
// frames that show agents what their customer has been looking at.
//
// # Counters
//
// Each shop user has the set of distinct products they viewed, each with
// its category. When user U views product P1 (category C1) for the first
// time, then for every product P2 (category C2) already in U's set,
// count[P1][C2] += 1 and count[P2][C1] += 1; then P1 joins the set. A repeat
// view changes nothing. Events of other types are accepted and not counted;
// views of products missing from the catalog are counted as unknown and
// skipped. A history holds at most MaxProductsPerUser products (the oldest
// is forgotten; viewing it again then counts as a first view) and a user
// idle for UserTTL is forgotten.
//
// # Storage
//
// Counters, histories (with the user's linked phone) and the catalog live
// in the node's LevelDB (store/nav.go: p/, v/, u/). Events are applied in
// memory and the changed entries are written every FlushInterval (100 ms)
// as one unsynced batch: these are analytics, not acknowledged messages, so
// a crash can lose the last ~100 ms of counting (the OS usually keeps even
// that), while a clean shutdown flushes everything. Catalog writes are
// synced. The sliding window is not stored: after a restart the top-N
// starts empty.
//
// # Several nodes
//
// POST /nav does not count anything itself: the ingesting node stamps each
// event with an id, its node id and its clock ("at"), and publishes it on
// nav.view.<product>. Every node consumes every nav.view.* event and
// applies it (HandleView), so all nodes end with the same counters. With
// the in-process bus that is a private queue and the event comes back at
// once. With RabbitMQ (the node's wiring, switchboard/nav.go) it is a
// stream that each node reads at its own pace: the last applied offset is
// stored in the same batch as the counters, so a node that was down resumes
// right after what it has, and a new node replays the history. The
// co-view counters are idempotent per (user, product) — a repeated view
// changes nothing — so a replayed or redelivered event never double-counts
// them; event ids additionally dedupe redeliveries for the window (the last
// 65536 ids are remembered). A shop may publish on nav.view.<product>
// directly; such events have no id.
//
// The top-N is computed differently, because a sliding window of every
// event on every node would count each view N times when merged: each node
// windows only the events it owns (those it ingested; shop-published events
// belong to the live node with the smallest id), publishes its partial
// ranking on stats.top when it changes (at most once per Resolution) and
// every 5 ticks as a heartbeat, and merges the latest partial of every node
// heard from in the last 15 ticks into the global top-N; a stopping node
// publishes a "leaving" partial so the others drop it at once. The merge is
// exact while each node's window has at most PartialSize distinct products.
// The owner of an event also publishes the product's counters on
// stats.product.<id>, coalesced to one message per product per tick.
// Catalog changes travel on nav.catalog.<id>.
//
// # Concurrency
//
// All exported methods of Service are safe for concurrent use; one mutex
// guards the in-memory state (bus handlers, HTTP handlers and the ticker
// take it briefly; nothing blocks on I/O while holding it). Run owns the
// ticker, flush and sweep timers and stops when its context ends, after a
// final flush. New starts no goroutine; Ingest starts at most
// PublishConcurrency short-lived ones and waits for them.
package nav
