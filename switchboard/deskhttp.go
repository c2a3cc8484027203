package switchboard

// This file holds the admin API of the helpdesk data (issue 18): canned
// replies and contacts. A PUT or DELETE is a log event (desk.go), answered
// once it is durable and applied on this node (cluster.appendApplied), so
// a GET on the same node that follows reads it.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/switchboard/switchboard/switchboard/internal/httpbody"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/switchboard/store"
)

// maxDeskBody bounds a PUT body: a canned text of protocol.MaxText bytes,
// JSON-escaped, fits.
const maxDeskBody = 64 << 10

func (n *Node) deskRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /canned", n.admin(n.handleCannedList))
	mux.HandleFunc("PUT /canned/{name}", n.admin(n.handleCannedPut))
	mux.HandleFunc("DELETE /canned/{name}", n.admin(n.handleCannedDelete))
	mux.HandleFunc("GET /contacts/{phone}", n.admin(n.handleContactGet))
	mux.HandleFunc("PUT /contacts/{phone}", n.admin(n.handleContactPut))
}

// decodeCannedBody parses a PUT /canned/{name} body: {"text":"..."}.
func decodeCannedBody(body []byte) (string, error) {
	var v struct {
		Text *string `json:"text"`
	}
	if err := strictJSON(body, &v); err != nil {
		return "", err
	}
	if v.Text == nil {
		return "", errors.New(`body must be {"text":"..."}`)
	}
	if err := protocol.ValidCannedText(*v.Text); err != nil {
		return "", err
	}
	return *v.Text, nil
}

// decodeContactBody parses a PUT /contacts/{phone} body:
// {"name":"...","notes":"..."} (both optional; an empty contact clears it).
func decodeContactBody(body []byte) (protocol.Contact, error) {
	var c protocol.Contact
	if err := strictJSON(body, &c); err != nil {
		return c, err
	}
	return protocol.CleanContact(c)
}

// strictJSON decodes one JSON object and refuses unknown fields (a typo
// such as "nmae" would otherwise clear the name) and trailing data.
func strictJSON(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("body is not the expected JSON object: %v", err)
	}
	if d.More() {
		return errors.New("body has data after the JSON object")
	}
	return nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func (n *Node) handleCannedList(w http.ResponseWriter, r *http.Request) {
	list, err := n.store.CannedReplies()
	if err != nil {
		n.log.Error("canned replies", "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, list)
}

func (n *Node) handleCannedPut(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := protocol.ValidCannedName(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, ok := httpbody.Read(w, r, maxDeskBody)
	if !ok {
		return
	}
	text, err := decodeCannedBody(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	list, err := n.store.CannedReplies()
	if err != nil {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	full := fmt.Sprintf("there are already %d canned replies, the most kept; delete one first", protocol.MaxCanned)
	if len(list) >= protocol.MaxCanned && !hasCanned(list, name) {
		http.Error(w, full, http.StatusBadRequest)
		return
	}
	// The check above answers at once; the limit itself is decided where
	// the change is applied, in log order (store.ErrFull), so that two
	// nodes cannot pass it together.
	err = n.cluster.putCanned(r.Context(), name, text, false)
	if errors.Is(err, store.ErrFull) {
		http.Error(w, full, http.StatusBadRequest)
		return
	}
	if err != nil {
		n.log.Error("accept canned reply", "name", name, "err", err)
		http.Error(w, "not stored; retry", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, protocol.CannedReply{Name: name, Text: text})
}

func hasCanned(list []protocol.CannedReply, name string) bool {
	for _, c := range list {
		if c.Name == name {
			return true
		}
	}
	return false
}

func (n *Node) handleCannedDelete(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := protocol.ValidCannedName(name); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	list, err := n.store.CannedReplies()
	if err != nil {
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
		return
	}
	if !hasCanned(list, name) {
		http.Error(w, "no canned reply "+name, http.StatusNotFound)
		return
	}
	if err := n.cluster.putCanned(r.Context(), name, "", true); err != nil {
		n.log.Error("accept canned reply delete", "name", name, "err", err)
		http.Error(w, "not deleted; retry", http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (n *Node) handleContactGet(w http.ResponseWriter, r *http.Request) {
	phone, err := protocol.NormalizeAddress(r.PathValue("phone"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	ct, ok, err := n.store.Contact(phone)
	switch {
	case err != nil:
		n.log.Error("contact", "phone", phone, "err", err)
		http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
	case !ok:
		http.Error(w, "no contact for "+phone, http.StatusNotFound)
	default:
		writeJSON(w, ct)
	}
}

func (n *Node) handleContactPut(w http.ResponseWriter, r *http.Request) {
	phone, err := protocol.NormalizeAddress(r.PathValue("phone"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	body, ok := httpbody.Read(w, r, maxDeskBody)
	if !ok {
		return
	}
	ct, err := decodeContactBody(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := n.cluster.putContact(r.Context(), phone, ct, false, "admin"); err != nil {
		n.log.Error("accept contact", "phone", phone, "err", err)
		http.Error(w, "not stored; retry", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, ct)
}
