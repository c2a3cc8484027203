package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/syndtr/goleveldb/leveldb"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// PutConvState records the routing state of a conversation as the router
// decided it. The router is the only writer of assignments; AppendInbound
// marks a conversation waiting in the same write as its message so that a
// crash between the two cannot lose an offer.
//
// The stored state is replaced by c, except that WaitSeq 0 keeps the stored
// WaitSeq. A WaitSeq above the store's global sequence moves that sequence
// up, so WaitSeqs given later by AppendInbound stay larger.
func (s *Store) PutConvState(ctx context.Context, c ConvState) error {
	if _, err := protocol.NormalizeAddress(c.Phone); err != nil {
		return fmt.Errorf("store: put conversation state %s: %w", c.Phone, invalid("%v", err))
	}
	for _, a := range []string{c.Agent, c.LastAgent} {
		if a != "" {
			if err := protocol.ValidAgentName(a); err != nil {
				return fmt.Errorf("store: put conversation state %s: %w", c.Phone, invalid("%v", err))
			}
		}
	}
	res := s.do(ctx, func(t *txn) result {
		if c.WaitSeq > t.gseq {
			t.gseq = c.WaitSeq
		}
		return t.updateConv(c.Phone, func(r *convRec) {
			r.Agent, r.LastAgent, r.Waiting = c.Agent, c.LastAgent, c.Waiting
			if c.WaitSeq != 0 {
				r.WaitSeq = c.WaitSeq
			}
		})
	})
	if res.err != nil {
		return fmt.Errorf("store: put conversation state %s: %w", c.Phone, res.err)
	}
	return nil
}

// IsPending reports whether reply id is still in the outbox: stored and not
// yet handed to the provider. ErrNotFound for an unknown id.
func (s *Store) IsPending(id string) (bool, error) {
	var pending bool
	err := s.snapshot(func(snap *leveldb.Snapshot) error {
		l, err := locate(snapGetter(snap), id)
		if err != nil {
			return err
		}
		if l.oseq == 0 {
			return nil
		}
		_, err = snap.Get(outboxKey(l.oseq, id), nil)
		if errors.Is(err, leveldb.ErrNotFound) {
			return nil
		}
		pending = err == nil
		return err
	})
	if err != nil {
		return false, fmt.Errorf("store: is pending %s: %w", id, err)
	}
	return pending, nil
}
