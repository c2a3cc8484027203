package sshdesk

import (
	"bytes"
	"context"
	"errors"
	"time"
)

// deskSession is one running SSH session, as the watcher sees it.
type deskSession struct {
	agent       string
	fingerprint string
	end         context.CancelCauseFunc
}

// Why a session was ended from outside.
var (
	errKeyRemoved = errors.New("sshdesk: the key was removed from the keys file")
	errReplaced   = errors.New("sshdesk: the agent signed in again over ssh; the newer session wins")
)

// watchKeys re-reads the keys file every KeysPoll until Close. A changed
// file that parses replaces the keys in force and ends the sessions whose
// key no longer signs in as their agent; one that does not parse is
// logged and changes nothing, so a typo never locks everyone out.
func (d *Server) watchKeys() {
	t := time.NewTicker(d.opts.KeysPoll)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
			d.reloadKeys()
		}
	}
}

// reloadKeys checks the keys file once (the watcher's tick).
func (d *Server) reloadKeys() {
	data, err := readKeys(d.opts.KeysFile)
	if err != nil {
		if d.keysData != nil {
			d.log.Error("ssh keys file unreadable; the keys read before stay in force", "err", err)
			d.keysData = nil // log once until it is readable again
		}
		return
	}
	if d.keysData != nil && bytes.Equal(data, d.keysData) {
		return
	}
	keys, err := ParseKeys(data)
	d.keysData = data
	if err != nil {
		d.log.Error("ssh keys file not applied; the keys read before stay in force until it is fixed", "file", d.opts.KeysFile, "err", err)
		return
	}
	if old := d.keys.Swap(keys); old != nil && keysEqual(old, keys) {
		return
	}
	ended := d.endRemoved(keys)
	d.log.Info("ssh keys reloaded", "file", d.opts.KeysFile, "keys", keys.Len(), "sessions_ended", ended)
}

func keysEqual(a, b *Keys) bool {
	if a.Len() != b.Len() {
		return false
	}
	for fp, k := range a.byFP {
		if o, ok := b.byFP[fp]; !ok || o.Agent != k.Agent || o.Capacity != k.Capacity {
			return false
		}
	}
	return true
}

// endRemoved ends the sessions that keys no longer lets in.
func (d *Server) endRemoved(keys *Keys) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for s := range d.sessions {
		if !keys.signsInAs(s.fingerprint, s.agent) {
			d.log.Info("ssh session ended: key removed", "agent", s.agent, "key", s.fingerprint)
			s.end(errKeyRemoved)
			n++
		}
	}
	return n
}

// register adds a session for the watcher; false when the server is
// closing or the key was removed since it signed in (the check and the
// watcher's sweep hold the same lock, so no session slips between them).
func (d *Server) register(s *deskSession) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.keys.Load().signsInAs(s.fingerprint, s.agent) {
		return false
	}
	// The node keeps one connection per agent: a newer one closes the
	// older, whose client would reconnect and close the newer in turn.
	// So the older SSH session of the same agent ends here, as the node
	// would have it (newer wins), instead of the two taking turns.
	for old := range d.sessions {
		if old.agent == s.agent {
			d.log.Info("ssh session replaced by a newer one of the same agent", "agent", s.agent, "key", old.fingerprint)
			old.end(errReplaced)
		}
	}
	d.sessions[s] = struct{}{}
	d.wg.Add(1)
	return true
}

func (d *Server) unregister(s *deskSession) {
	d.mu.Lock()
	delete(d.sessions, s)
	d.mu.Unlock()
	d.wg.Done()
}

// sessionCount is the number of running sessions.
func (d *Server) sessionCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.sessions)
}
