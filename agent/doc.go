// Package agent is the switchboard's terminal client for agents, built with
// Bubble Tea v2. It shows the agent's conversations with live relative times and
// sentiment marks (computed by package transform), a timeline per
// conversation that loads older history on demand, a composer for replies
// with visible delivery status and retry, and a stats pane: what the
// selected conversation's customer viewed in the shop (kept per phone from
// the node's stats frames, named by the titles of the node's GET /products
// catalog, read on every connect) and the shop's top products.
//
// The UI is split into components (conversation list, timeline, composer,
// stats pane, status bar) rendered by one root Model; keys live in keymap.go
// and styles in styles.go. Bindings match key presses only: a press that
// types text goes to the composer as text, whatever word it spells (see
// typed in composer.go). All I/O happens in tea.Cmds: connection events
// from package wsclient arrive through a command that re-arms itself, and
// frames go out through commands that report refusals as messages; the
// catalog is read by a command that ends with its request, at the latest
// when the program does.
//
// Concurrency: a Model belongs to the Bubble Tea program that runs it and is
// not safe for concurrent use; View only reads it (apart from the drawing
// caches of cache.go). Run owns the program, the connection and the log
// file, and stops all of them before it returns.
package agent
