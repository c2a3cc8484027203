package fakeapi

// This file holds the Messages list endpoint (GET …/Messages.json) that the
// node's lookup of unknown send outcomes reads.

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// listMessages serves the Messages list: accepted messages, filtered by To
// and From, newest first (equal creation times: the later added first).
// Page N without PageToken starts at message N*PageSize; PageToken
// "PA"+sid starts after that message and "PB"+sid ends before it, as in
// the next_page_uri and previous_page_uri it answers, so that paging is
// stable while messages are added.
func (s *Server) listMessages(w http.ResponseWriter, r *http.Request) {
	if !s.checkAccount(w, r) {
		return
	}
	q := r.URL.Query()
	to, from, token := q.Get("To"), q.Get("From"), q.Get("PageToken")
	pageSize, page := 50, 0
	if v := q.Get("PageSize"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxPageSize {
			writeError(w, http.StatusBadRequest, 20001, fmt.Sprintf("PageSize must be between 1 and %d", maxPageSize))
			return
		}
		pageSize = n
	}
	if v := q.Get("Page"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, 20001, "Page must be a non-negative integer")
			return
		}
		page = n
	}
	var list []SentMessage
	s.mu.Lock()
	if s.failListN > 0 {
		s.failListN--
		status := s.failListStatus
		s.mu.Unlock()
		writeError(w, status, 20000+status, http.StatusText(status))
		return
	}
	for _, m := range s.sent {
		if m.HTTPStatus == http.StatusCreated && (to == "" || m.To == to) && (from == "" || m.From == from) {
			list = append(list, m)
		}
	}
	s.mu.Unlock()
	slices.Reverse(list)
	slices.SortStableFunc(list, func(a, b SentMessage) int { return b.Created.Compare(a.Created) })

	start := len(list)
	if page <= len(list)/pageSize { // and page*pageSize cannot overflow
		start = page * pageSize
	}
	end := min(start+pageSize, len(list))
	if token != "" {
		dir, sid := token[:min(2, len(token))], token[min(2, len(token)):]
		i := slices.IndexFunc(list, func(m SentMessage) bool { return m.Sid == sid })
		switch {
		case i < 0 || (dir != "PA" && dir != "PB"):
			writeError(w, http.StatusBadRequest, 20001, "Invalid PageToken")
			return
		case dir == "PA":
			start, end = i+1, min(i+1+pageSize, len(list))
		default:
			start, end = max(0, i-pageSize), i
		}
	}
	items := make([]map[string]any, 0, end-start)
	for _, m := range list[start:end] {
		items = append(items, messageJSON(m))
	}

	base := "/2010-04-01/Accounts/" + s.accountSID + "/Messages.json"
	pageURI := func(page int, token string) string {
		v := url.Values{}
		if to != "" {
			v.Set("To", to)
		}
		if from != "" {
			v.Set("From", from)
		}
		v.Set("PageSize", strconv.Itoa(pageSize))
		v.Set("Page", strconv.Itoa(page))
		if token != "" {
			v.Set("PageToken", token)
		}
		return base + "?" + v.Encode()
	}
	var next, prev any
	if end < len(list) && end > start {
		next = pageURI(page+1, "PA"+list[end-1].Sid)
	}
	if page > 0 && start > 0 && end > start {
		prev = pageURI(page-1, "PB"+list[start].Sid)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"messages": items, "page": page, "page_size": pageSize,
		"start": start, "end": start + max(len(items)-1, 0),
		"uri": pageURI(page, token), "first_page_uri": pageURI(0, ""),
		"next_page_uri": next, "previous_page_uri": prev,
	})
}

// judge checks a CreateMessage request the way Twilio does; status 0 means
// accepted.
func (s *Server) judge(r *http.Request, m SentMessage) (status, code int, msg string) {
	switch {
	case !m.BasicAuthOK:
		return http.StatusUnauthorized, 20003, "Authenticate"
	case m.AccountSID != s.accountSID:
		return http.StatusNotFound, 20404, "The requested resource " + r.URL.Path + " was not found"
	case m.To == "":
		return http.StatusBadRequest, 21604, "A 'To' phone number is required."
	case !validPhone(m.To):
		return http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", m.To)
	case m.From == "":
		return http.StatusBadRequest, 21603, "A 'From' phone number is required."
	case protocol.Channel(m.To) != protocol.Channel(m.From):
		return http.StatusBadRequest, 21910, fmt.Sprintf("Invalid From and To pair. From and To should be of the same channel: %s, %s", m.From, m.To)
	case s.isUnsubscribed(m.To):
		return http.StatusBadRequest, 21610, "Attempt to send to unsubscribed recipient"
	case m.Body == "":
		return http.StatusBadRequest, 21602, "Message body is required."
	case utf8.RuneCountInString(m.Body) > 1600:
		return http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit."
	}
	return 0, 0, ""
}
