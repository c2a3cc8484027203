// Package agenttest is a fake switchboard node for tests of the agent client:
// an httptest server on 127.0.0.1 that upgrades /agent to a WebSocket and
// speaks the agent protocol of DESIGN.md well enough to drive the client. It
// answers available with assigned frames for its conversations, acks
// responses (storing a repeated ref once), serves history and lets the test
// push any frame or cut connections. It also serves the product catalog at
// GET /products, as the node does.
//
// All methods are safe for concurrent use.
package agenttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Server is a fake node. Create it with New.
type Server struct {
	Token string // the accepted bearer token

	srv *httptest.Server
	up  websocket.Upgrader

	mu       sync.Mutex
	conns    []*websocket.Conn
	convs    map[string][]protocol.Message // phone → history, oldest first
	order    []string
	refs     map[string]string // ref → stored id
	received []protocol.Frame
	nextID   int
	// AutoAck makes responses answered with ack, an update and a sent status.
	autoAck bool
	// Recent is how many messages assigned carries; older ones need history.
	recent  int
	connect int

	products    []Product // GET /products
	productsErr int       // status answered instead of the catalog; 0: none
	productReqs int

	contacts map[string]protocol.Contact // phone → contact on assigned frames (SetContact)
}

// Product is a catalog entry as GET /products serves it (DESIGN.md).
type Product struct {
	ID       string  `json:"id"`
	Title    string  `json:"title"`
	Category string  `json:"category"`
	Price    float64 `json:"price"`
}

// New starts a fake node; it is closed with t.Cleanup.
func New(t testing.TB) *Server {
	s := &Server{Token: "test-token", convs: map[string][]protocol.Message{}, refs: map[string]string{}, autoAck: true, recent: 20}
	s.srv = httptest.NewServer(http.HandlerFunc(s.handle))
	t.Cleanup(s.Close)
	return s
}

// URL is the ws:// URL of /agent.
func (s *Server) URL() string { return "ws" + strings.TrimPrefix(s.srv.URL, "http") + "/agent" }

// HTTPURL is the http:// base URL of the server (no trailing slash).
func (s *Server) HTTPURL() string { return s.srv.URL }

// SetProducts sets the catalog served at GET /products (initially empty).
func (s *Server) SetProducts(ps ...Product) {
	s.mu.Lock()
	s.products = slices.Clone(ps)
	s.mu.Unlock()
}

// FailProducts makes GET /products answer status instead of the catalog;
// 0 serves the catalog again.
func (s *Server) FailProducts(status int) { s.mu.Lock(); s.productsErr = status; s.mu.Unlock() }

// ProductRequests counts GET /products requests.
func (s *Server) ProductRequests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.productReqs }

// Close stops the server and its connections.
func (s *Server) Close() {
	s.DropConnections()
	s.srv.Close()
}

// SetAutoAck turns automatic ack/update/status answers to responses on or off.
func (s *Server) SetAutoAck(on bool) { s.mu.Lock(); s.autoAck = on; s.mu.Unlock() }

// SetRecent sets how many messages an assigned frame carries.
func (s *Server) SetRecent(n int) { s.mu.Lock(); s.recent = n; s.mu.Unlock() }

// Connections counts accepted upgrades.
func (s *Server) Connections() int { s.mu.Lock(); defer s.mu.Unlock(); return s.connect }

// AddConversation stores history for phone; it is assigned on the next
// available (and pushed now to connected agents).
func (s *Server) AddConversation(phone string, msgs ...protocol.Message) {
	s.mu.Lock()
	if _, ok := s.convs[phone]; !ok {
		s.order = append(s.order, phone)
	}
	for _, m := range msgs {
		s.convs[phone] = append(s.convs[phone], s.fill(phone, m))
	}
	f := protocol.Frame{Type: protocol.TypeAssigned, Phone: phone, List: s.recentLocked(phone)}
	s.mu.Unlock()
	s.Broadcast(f)
}

// Inbound stores a customer message and pushes it as an update.
func (s *Server) Inbound(phone, text string, at time.Time) protocol.Message {
	s.mu.Lock()
	m := s.fill(phone, protocol.Message{Direction: protocol.In, Text: text, Received: at.UnixMilli()})
	s.convs[phone] = append(s.convs[phone], m)
	s.mu.Unlock()
	s.Broadcast(protocol.Frame{Type: protocol.TypeUpdate, Phone: phone, List: []protocol.Message{m}})
	return m
}

func (s *Server) fill(phone string, m protocol.Message) protocol.Message {
	if m.ID == "" {
		s.nextID++
		m.ID = fmt.Sprintf("m%06d", s.nextID)
	}
	m.Phone = phone
	if m.Direction == "" {
		m.Direction = protocol.In
	}
	if m.Status == "" {
		m.Status = protocol.StatusReceived
		if m.Direction == protocol.Out {
			m.Status = protocol.StatusQueued
		}
	}
	return m
}

func (s *Server) recentLocked(phone string) []protocol.Message {
	list := s.convs[phone]
	return slices.Clone(list[max(len(list)-s.recent, 0):])
}

// Received returns the frames agents sent, in order.
func (s *Server) Received() []protocol.Frame {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.received)
}

// Broadcast sends f to every connected agent.
func (s *Server) Broadcast(f protocol.Frame) {
	s.mu.Lock()
	conns := slices.Clone(s.conns)
	s.mu.Unlock()
	for _, c := range conns {
		s.write(c, f)
	}
}

// DropConnections closes every agent connection abruptly.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

var writeMu sync.Mutex // one writer at a time per process is plenty for tests

func (s *Server) write(c *websocket.Conn, f protocol.Frame) {
	writeMu.Lock()
	defer writeMu.Unlock()
	_ = c.SetWriteDeadline(time.Now().Add(2 * time.Second))
	_ = c.WriteJSON(f)
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/products" && r.Method == http.MethodGet {
		s.serveProducts(w)
		return
	}
	if r.URL.Path != "/agent" {
		http.NotFound(w, r)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	c, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, c)
	s.connect++
	s.mu.Unlock()
	s.write(c, protocol.Frame{Type: protocol.TypeAlert, Text: "How can I help you?"})
	defer func() {
		s.mu.Lock()
		s.conns = slices.DeleteFunc(s.conns, func(x *websocket.Conn) bool { return x == c })
		s.mu.Unlock()
		c.Close()
	}()
	for {
		_, data, err := c.ReadMessage()
		if err != nil {
			return
		}
		f, err := protocol.DecodeRequest(data)
		if err != nil {
			var pe *protocol.Error
			if e, ok := err.(*protocol.Error); ok {
				pe = e
			} else {
				pe = &protocol.Error{Code: protocol.CodeBadFrame, Text: err.Error()}
			}
			s.write(c, pe.Frame())
			continue
		}
		s.mu.Lock()
		s.received = append(s.received, f)
		s.mu.Unlock()
		s.answer(c, f)
	}
}

func (s *Server) serveProducts(w http.ResponseWriter) {
	s.mu.Lock()
	s.productReqs++
	status, ps := s.productsErr, s.products
	if ps == nil {
		ps = []Product{}
	}
	body, err := json.Marshal(ps)
	s.mu.Unlock()
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (s *Server) answer(c *websocket.Conn, f protocol.Frame) {
	switch f.Type {
	case protocol.TypeAvailable:
		s.mu.Lock()
		var out []protocol.Frame
		for _, p := range s.order {
			f := protocol.Frame{Type: protocol.TypeAssigned, Phone: p, List: s.recentLocked(p)}
			if ct, ok := s.contacts[p]; ok {
				f.Contact = &ct
			}
			out = append(out, f)
		}
		s.mu.Unlock()
		for _, o := range out {
			s.write(c, o)
		}
	case protocol.TypeResponse:
		s.mu.Lock()
		if !s.autoAck {
			s.mu.Unlock()
			return
		}
		id, dup := s.refs[f.Ref]
		var m protocol.Message
		if !dup {
			m = s.fill(f.Phone, protocol.Message{Direction: protocol.Out, Text: f.Message, Received: time.Now().UnixMilli(), Agent: "alice"})
			id = m.ID
			s.refs[f.Ref] = id
			s.convs[f.Phone] = append(s.convs[f.Phone], m)
		}
		s.mu.Unlock()
		s.write(c, protocol.Frame{Type: protocol.TypeAck, Ref: f.Ref, ID: id})
		if !dup {
			s.write(c, protocol.Frame{Type: protocol.TypeUpdate, Phone: f.Phone, List: []protocol.Message{m}})
			s.write(c, protocol.Frame{Type: protocol.TypeStatus, Phone: f.Phone, ID: id, Status: protocol.StatusSent})
		}
	case protocol.TypeNote, protocol.TypeContact:
		s.answerDesk(c, f)
	case protocol.TypeHistory:
		s.mu.Lock()
		list := s.convs[f.Phone]
		end := slices.IndexFunc(list, func(m protocol.Message) bool { return m.ID == f.Before })
		if end < 0 {
			end = 0
		}
		start := max(end-f.Limit, 0)
		page := slices.Clone(list[start:end])
		s.mu.Unlock()
		s.write(c, protocol.Frame{Type: protocol.TypeHistory, Phone: f.Phone, List: page, More: start > 0})
	case protocol.TypeRelease:
		s.mu.Lock()
		delete(s.convs, f.Phone)
		s.order = slices.DeleteFunc(s.order, func(p string) bool { return p == f.Phone })
		s.mu.Unlock()
		s.write(c, protocol.Frame{Type: protocol.TypeReleased, Phone: f.Phone, Reason: "released by agent"})
	}
}

// SetContact gives phone's customer a contact, sent on assigned frames.
func (s *Server) SetContact(phone string, ct protocol.Contact) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.contacts == nil {
		s.contacts = map[string]protocol.Contact{}
	}
	s.contacts[phone] = ct
}

// answerDesk answers notes as the node does on its own (an update with the
// stored note, then the ack; a ref stored once) and contact frames with an
// update carrying the contact.
func (s *Server) answerDesk(c *websocket.Conn, f protocol.Frame) {
	if f.Type == protocol.TypeContact {
		s.SetContact(f.Phone, protocol.Contact{Name: f.Name})
		s.write(c, protocol.Frame{Type: protocol.TypeUpdate, Phone: f.Phone, Contact: &protocol.Contact{Name: f.Name}})
		return
	}
	s.mu.Lock()
	id, dup := s.refs[f.Ref]
	var m protocol.Message
	if !dup {
		m = s.fill(f.Phone, protocol.Message{Direction: protocol.Note, Text: f.Text, Received: time.Now().UnixMilli(), Agent: "alice", Status: protocol.StatusReceived})
		id = m.ID
		s.refs[f.Ref] = id
		s.convs[f.Phone] = append(s.convs[f.Phone], m)
	}
	s.mu.Unlock()
	if !dup {
		s.write(c, protocol.Frame{Type: protocol.TypeUpdate, Phone: f.Phone, List: []protocol.Message{m}})
	}
	s.write(c, protocol.Frame{Type: protocol.TypeAck, Ref: f.Ref, ID: id})
}
