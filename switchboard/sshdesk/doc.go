// Package sshdesk serves the agent client over SSH: an agent with nothing
// installed but an SSH client runs `ssh -p 2222 alice@switchboard.example`
// and gets the same terminal desk as cmd/agent, signed in by their key.
// It is built with charm.land/wish/v2 (v2.0.5) and charm.land/ssh, on
// Bubble Tea v2.
//
// # Design: a session is an agent connection like any other
//
// Each SSH session runs the agent model of package agent, connected
// through package agent/wsclient to the node's own /agent WebSocket
// endpoint on loopback, with a token the node signs with its secret for
// the key's agent name and capacity. The SSH session is therefore, for the
// node, exactly a WebSocket agent: capacity, the grace period on
// disconnect, sticky routing, presence across nodes, acks, history and
// stats all come from the one implementation the WebSocket path already
// has and its tests already cover, instead of a second one written for
// SSH (the project's one-path rule). The price is one loopback WebSocket
// per session, measured in BENCHMARKS.md beside a plain WebSocket agent.
// The token never leaves the process; it expires after Options.TokenTTL
// and a session never lives longer, so its connection loop can always
// reconnect.
//
// # Sign-in
//
// Only public keys sign in. The keys file (-ssh-keys) is an OpenSSH
// authorized_keys file whose comment names the agent and may give a
// capacity ("ssh-ed25519 AAAA… alice capacity=4"); the SSH user name must
// be that agent's name. Passwords, keyboard-interactive, certificates and
// unlisted keys are refused. The file is polled (Options.KeysPoll) and a
// changed file that parses replaces the keys in force and ends the
// sessions whose key no longer signs in as their agent; a file with a bad
// line is logged and not applied. The host key is created once in the
// data directory (HostKeyFile) and kept.
//
// # Safety
//
// Per source address, new connections are rate limited and failed
// sign-ins counted; an address over its failure budget is cut before the
// SSH handshake until the budget refills. A connection must finish its
// handshake and sign-in within Options.LoginTimeout. Sessions get the
// desk and nothing else: exec and subsystem requests (scp, sftp) are
// refused, no channel but "session" exists (no port forwarding either
// way, no agent or X11 forwarding), and a session without a PTY gets one
// line on stderr and exit status 1. Keepalive requests detect a vanished
// client, so its agent's grace period starts instead of a ghost staying
// present.
//
// Nothing is written to the session outside the program: the program owns
// the terminal, and logs go to the node's slog logger (component=ssh)
// with the agent name and key fingerprint, never a token.
//
// # Concurrency
//
// A Server's methods are safe for concurrent use. Every session runs on
// the SSH server's goroutine for it plus three of its own (the program's
// connection loop, the resize/keepalive follower, one keepalive request
// at a time, which returns when the connection closes); Close ends every
// session, closes every connection and waits for all of them.
package sshdesk
