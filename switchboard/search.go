package switchboard

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// searchAnswer is the body of GET /search.
type searchAnswer struct {
	// Words are the words searched for, as the index holds them (lowercase,
	// each once): what a client highlights.
	Words []string           `json:"words"`
	List  []protocol.Message `json:"list"`
	More  bool               `json:"more"`
}

// serveSearch answers GET /search?q=words[&phone=P][&before=ID][&limit=N]
// (admin): the messages holding every word of q, newest first.
func (n *Node) serveSearch(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q, phone, before := v.Get("q"), v.Get("phone"), v.Get("before")
	words, err := store.ParseQuery(q)
	if err != nil {
		http.Error(w, "q: "+userText(err), http.StatusBadRequest)
		return
	}
	limit := 0
	if s := v.Get("limit"); s != "" {
		if limit, err = strconv.Atoi(s); err != nil || limit < 1 || limit > protocol.MaxSearchPage {
			http.Error(w, "limit must be a number from 1 to "+strconv.Itoa(protocol.MaxSearchPage), http.StatusBadRequest)
			return
		}
	}
	if phone != "" {
		if _, err := protocol.NormalizeAddress(phone); err != nil {
			http.Error(w, "phone: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	var list []protocol.Message
	var more bool
	if phone == "" {
		list, more, err = n.store.Search(q, before, limit)
	} else {
		list, more, err = n.store.SearchIn([]string{phone}, q, before, limit)
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		where := ""
		if phone != "" {
			where = " in " + phone
		}
		http.Error(w, "before: no message "+before+where, http.StatusBadRequest)
		return
	case err != nil:
		n.log.Error("search", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(searchAnswer{Words: words, List: list, More: more})
}

// userText is the part of a store.ErrInvalid error meant for the person who
// made the request, without the operation.
func userText(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, store.ErrInvalid.Error()+": "); i >= 0 {
		return s[i+len(store.ErrInvalid.Error())+2:]
	}
	return s
}

// handleSearch answers an agent's search frame from the conversations the
// agent may read: the ones it holds, or, when the frame names a phone, that
// conversation if the agent holds it or held it last (as for history).
func (n *Node) handleSearch(ctx context.Context, s *session, f protocol.Frame) {
	if _, err := store.ParseQuery(f.Query); err != nil {
		s.enqueue(protocol.ErrorFrame(protocol.CodeInvalid, "q: "+userText(err), f.Ref), time.Time{})
		return
	}
	var phones []string
	allowed := n.router.call(ctx, func() {
		if f.Phone == "" {
			phones = n.router.engine.Conversations(s.agent)
			return
		}
		if c := n.router.engine.Conversation(f.Phone); c.Agent == s.agent || c.LastAgent == s.agent {
			phones = []string{f.Phone}
		}
	})
	if !allowed {
		s.enqueue(protocol.ErrorFrame(protocol.CodeShuttingDown, "the switchboard is stopping; retry shortly", f.Ref), time.Time{})
		return
	}
	if f.Phone != "" && phones == nil {
		s.enqueue(protocol.ErrorFrame(protocol.CodeNotAssigned, "conversation "+f.Phone+" is not yours", f.Ref), time.Time{})
		return
	}
	list, more, err := n.store.SearchIn(phones, f.Query, f.Before, f.Limit)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.enqueue(protocol.ErrorFrame(protocol.CodeNotFound, "no message "+f.Before+" in your conversations", f.Ref), time.Time{})
	case err != nil:
		n.log.Error("search", "agent", s.agent, "err", err)
		s.enqueue(protocol.ErrorFrame(protocol.CodeInternal, "search unavailable; retry", f.Ref), time.Time{})
	default:
		s.enqueue(protocol.Frame{Type: protocol.TypeResults, Ref: f.Ref, Query: f.Query, Phone: f.Phone, List: list, More: more}, time.Time{})
	}
}
