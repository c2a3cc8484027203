package agent

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"charm.land/bubbles/v2/textarea"
	tea "charm.land/bubbletea/v2"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/transform"
)

// Conn is what the model needs from the connection. *wsclient.Client
// implements it; tests use a recorder.
type Conn interface {
	Send(protocol.Frame) error
	SetPresence(away bool) error
	Reconnect() // dial now instead of after the backoff; never blocks
}

// Config is what a Model is built from. Zero values take the documented
// defaults.
type Config struct {
	Conn   Conn                  // required
	Events <-chan wsclient.Event // connection events; nil: none (tests send EventMsg)
	Done   <-chan struct{}       // closed when the program ends; stops the event pump

	Away        bool                // start away
	AltScreen   bool                // draw on the alternate screen
	ASCII       bool                // ASCII glyphs and sentiment marks instead of emoji
	Hyperlinks  bool                // media URLs as OSC 8 terminal hyperlinks (see HyperlinkTerminal)
	Now         func() time.Time    // zero: time.Now
	NewRef      func() string       // reply references; zero: 16 random hex digits
	RelTime     *transform.RelTime  // zero: "%s ago" in the local zone
	Analyzer    *transform.Analyzer // zero: the default VADER analyzer
	Bell        io.Writer           // where the terminal bell is written; zero: no bell
	Logger      *slog.Logger        // zero: slog.Default()
	HistoryPage int                 // messages per history request; zero: 50
	Tick        time.Duration       // relative-time refresh; zero: 1s

	// CatalogURL is the node's GET /products (see CatalogURL), fetched on
	// every connect so that the stats pane shows product titles; empty: no
	// fetch, the pane shows titles from the top list, else product ids.
	CatalogURL     string
	HTTPClient     *http.Client  // catalog requests; zero: http.DefaultClient (CatalogTimeout bounds each request)
	CatalogTimeout time.Duration // per catalog request; zero: 10s
}

// Messages the model handles besides keys and window sizes.
type (
	// EventMsg carries one connection event into the program.
	EventMsg wsclient.Event
	// tickMsg refreshes relative times.
	tickMsg time.Time
	// sendResultMsg reports a frame that could not be queued.
	sendResultMsg struct {
		frame protocol.Frame
		err   error
	}
	bellDoneMsg struct{}
)

// noticeTTL is how long a notice stays in the status bar when nothing
// else happens; the agent's next action clears it sooner.
const noticeTTL = 15 * time.Second

// queueState is the node's last word on the waiting line (a queue frame).
type queueState struct {
	known   bool
	waiting int
	longest time.Duration // the oldest one's wait when the frame came
	at      time.Time     // when it came
}

// connState is what the status bar says about the connection.
type connState struct {
	kind    wsclient.EventKind
	err     error
	retryIn time.Duration
	since   time.Time
}

// Model is the root Bubble Tea model of the agent client.
type Model struct {
	cfg    Config
	log    *slog.Logger
	keys   keyMap
	st     styles
	input  textarea.Model
	width  int
	height int
	now    time.Time

	conn     connState
	expired  bool // the node said the token expired (token_expired): banner until connected again
	away     bool
	convs    []*conversation
	sel      int
	alert    string
	notice   string    // last error or notice, shown in the status bar
	noticeAt time.Time // when notice was set
	queue    queueState

	// Frame caches (see cache.go): what the textarea and the help line
	// drew last, and for what.
	inputView cachedView
	hintView  cachedView
	nav       navStats
	showHelp  bool
	flow      transferPrompt // a transfer being typed (transfer.go)
	mates     []string       // colleagues free to take a transfer, from the node (transfer.go)
	desk      deskState      // notes, canned replies (desk.go)
	search    searchState    // ctrl+f (search.go)
}

// NewModel validates cfg and returns a model.
func NewModel(cfg Config) (*Model, error) {
	if cfg.Conn == nil {
		return nil, errors.New("agent: model: Conn is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewRef == nil {
		cfg.NewRef = randomRef
	}
	if cfg.RelTime == nil {
		rt, err := transform.NewRelTime(transform.RelTimeOptions{})
		if err != nil {
			return nil, fmt.Errorf("agent: model: %w", err)
		}
		cfg.RelTime = rt
	}
	if cfg.Analyzer == nil {
		a, err := transform.NewAnalyzer(transform.AnalyzerOptions{})
		if err != nil {
			return nil, fmt.Errorf("agent: model: %w", err)
		}
		cfg.Analyzer = a
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.HistoryPage <= 0 {
		cfg.HistoryPage = 50
	}
	if cfg.HistoryPage > protocol.MaxHistory {
		return nil, fmt.Errorf("agent: model: history page %d above %d", cfg.HistoryPage, protocol.MaxHistory)
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = http.DefaultClient
	}
	if cfg.CatalogTimeout <= 0 {
		cfg.CatalogTimeout = 10 * time.Second
	}
	m := &Model{
		cfg:   cfg,
		log:   cfg.Logger.With("component", "agent"),
		keys:  defaultKeyMap(),
		st:    newStyles(cfg.ASCII, true),
		input: newComposer(),
		now:   cfg.Now(),
		away:  cfg.Away,
		conn:  connState{kind: wsclient.Connecting},
		nav:   newNavStats(),
		width: 80, height: 24,
	}
	m.layout()
	return m, nil
}

func randomRef() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Init starts the clock and the event pump, and asks the terminal for its
// background colour (the answer picks light or dark styles).
func (m *Model) Init() tea.Cmd {
	return tea.Batch(m.cfg.tick(), m.cfg.waitEvent(), tea.RequestBackgroundColor)
}

// The commands both programs (Model and Supervisor) run on their Config.

func (cfg *Config) tick() tea.Cmd {
	return tea.Tick(cfg.Tick, func(t time.Time) tea.Msg { return tickMsg(t) })
}

// waitEvent is the re-arming command that feeds connection events into the
// program one at a time; the client's reader blocks meanwhile, which is the
// backpressure.
func (cfg *Config) waitEvent() tea.Cmd {
	if cfg.Events == nil {
		return nil
	}
	ch, done := cfg.Events, cfg.Done
	return func() tea.Msg {
		select {
		case ev := <-ch:
			return EventMsg(ev)
		case <-done:
			return nil
		}
	}
}

// send queues a frame in a command; a refusal comes back as sendResultMsg.
func (cfg *Config) send(f protocol.Frame) tea.Cmd {
	conn := cfg.Conn
	return func() tea.Msg {
		if err := conn.Send(f); err != nil {
			return sendResultMsg{frame: f, err: err}
		}
		return nil
	}
}

func (m *Model) bell() tea.Cmd {
	w := m.cfg.Bell
	if w == nil {
		return nil
	}
	return func() tea.Msg {
		_, _ = io.WriteString(w, "\a")
		return bellDoneMsg{}
	}
}

func (m *Model) selected() *conversation {
	if m.sel < 0 || m.sel >= len(m.convs) {
		return nil
	}
	return m.convs[m.sel]
}

func (m *Model) find(phone string) (int, *conversation) {
	for i, c := range m.convs {
		if c.phone == phone {
			return i, c
		}
	}
	return -1, nil
}

// Update handles one message.
func (m *Model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tickMsg:
		m.now = time.Time(msg)
		if m.notice != "" && m.now.Sub(m.noticeAt) >= noticeTTL {
			m.notice = ""
		}
		return m, m.cfg.tick()
	case EventMsg:
		cmd := m.handleEvent(wsclient.Event(msg))
		return m, tea.Batch(cmd, m.cfg.waitEvent())
	case sendResultMsg:
		m.sendFailed(msg.frame, msg.err)
		return m, nil
	case catalogMsg:
		m.catalogLoaded(msg)
		return m, nil
	case tea.BackgroundColorMsg:
		m.st = newStyles(m.cfg.ASCII, msg.IsDark())
		m.hintView = cachedView{}
		return m, nil
	case tea.KeyPressMsg:
		return m, m.handleKey(msg)
	case tea.PasteMsg:
		if m.searchPaste(msg.Content) { // search.go
			return m, nil
		}
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

func (m *Model) handleEvent(ev wsclient.Event) tea.Cmd {
	now := m.cfg.Now()
	switch ev.Kind {
	case wsclient.Connecting:
		if m.conn.kind != wsclient.Disconnected {
			m.conn = connState{kind: wsclient.Connecting, since: now}
		}
	case wsclient.Connected:
		m.conn = connState{kind: wsclient.Connected, since: now}
		m.notice, m.expired = "", false
		return m.fetchCatalog() // on every (re)connect: the node may have a newer catalog
	case wsclient.Disconnected:
		m.conn = connState{kind: wsclient.Disconnected, err: ev.Err, retryIn: ev.RetryIn, since: now}
		m.queue = queueState{} // the node tells it again on connect
		m.failPending("not confirmed before the connection dropped")
	case wsclient.Refused:
		m.conn = connState{kind: wsclient.Refused, err: ev.Err, since: now}
		m.queue = queueState{}
		m.failPending("not sent: the node refused the token")
	case wsclient.Replaced:
		m.conn = connState{kind: wsclient.Replaced, err: ev.Err, since: now}
		m.queue = queueState{}
		m.failPending("not confirmed: you signed in elsewhere")
	case wsclient.Received:
		return m.handleFrame(ev.Frame)
	}
	return nil
}

// failPending marks every reply still waiting for its ack as failed: the
// connection that carried it is gone, so the ack will never come. Retrying
// resends the same ref, which the node stores at most once.
func (m *Model) failPending(why string) {
	for _, c := range m.convs {
		for _, e := range c.msgs {
			if e.pending {
				e.pending, e.failed = false, why
			}
		}
	}
}

func (m *Model) handleFrame(f protocol.Frame) tea.Cmd {
	switch f.Type {
	case protocol.TypeAlert:
		m.alert = f.Text
	case protocol.TypeAssigned:
		return m.assigned(f)
	case protocol.TypeUpdate:
		_, c := m.find(f.Phone)
		if c == nil {
			// An update for a conversation we did not know about: treat it
			// as an assignment rather than lose the messages.
			return m.assigned(f)
		}
		c.setContact(f.Contact)
		n := c.merge(m.cfg.Analyzer, f.List)
		if c != m.selected() {
			c.unread += n
		}
	case protocol.TypeCanned:
		m.setCanned(f.Canned)
	case protocol.TypeStatus:
		if _, c := m.find(f.Phone); c != nil {
			if e, ok := c.ids[f.ID]; ok && e.Message.Status.Advances(f.Status) {
				e.Message.Status = f.Status
				if f.Status == protocol.StatusFailed {
					e.reason = f.Text
					if optOutRefusal("", f.Text) {
						c.refusedAt = m.cfg.Now()
					}
				}
			}
		}
	case protocol.TypeReleased:
		if i, c := m.find(f.Phone); c != nil {
			m.convs = slices.Delete(m.convs, i, i+1)
			switch {
			case i < m.sel:
				m.sel-- // keep the conversation on screen selected
			case i == m.sel && len(m.convs) > 0:
				// The next one comes on screen: it is read now.
				m.selectConv(min(m.sel, len(m.convs)-1))
			}
			if m.sel >= len(m.convs) {
				m.sel = max(len(m.convs)-1, 0)
			}
			if m.flow.phone == f.Phone {
				m.endTransfer()
			}
			m.setNotice(releasedWhy(f.Phone, f.Reason))
		}
	case protocol.TypeHistory:
		if _, c := m.find(f.Phone); c != nil {
			c.merge(m.cfg.Analyzer, f.List)
			c.more, c.loading = f.More, false
		}
	case protocol.TypeStats:
		return m.handleStats(f)
	case protocol.TypeResults:
		m.searchAnswered(f)
	case protocol.TypeColleagues:
		m.mates = cleanNames(f.Agents)
	case protocol.TypeQueue:
		m.queue = queueState{known: true, waiting: max(f.Waiting, 0), longest: time.Duration(max(f.LongestWaitMs, 0)) * time.Millisecond, at: m.cfg.Now()}
	case protocol.TypeAck:
		for _, c := range m.convs {
			if c.ack(f.Ref, f.ID) {
				break
			}
		}
	case protocol.TypeError:
		if m.searchRefused(f) {
			return nil // shown in the search pane
		}
		if f.Ref != "" {
			for _, c := range m.convs {
				if e := c.byRef(f.Ref); e != nil && e.Message.ID == "" {
					e.pending, e.failed = false, f.Text
					if e.failed == "" {
						e.failed = f.Code
					}
					if optOutRefusal(f.Code, "") {
						c.refusedAt = m.cfg.Now()
					}
					break
				}
			}
		} else if f.Code == protocol.CodeNotFound || f.Code == protocol.CodeInvalid {
			// A refused history request must not leave "loading" forever.
			for _, c := range m.convs {
				c.loading = false
			}
		}
		if f.Code == protocol.CodeTokenExpired {
			m.expired = true // the node closes the session next: banner
		}
		m.setNotice("error: " + f.Code + ": " + f.Text)
		m.log.Warn("node refused a request", "code", f.Code, "text", f.Text, "ref", f.Ref)
	}
	return nil
}

func (m *Model) assigned(f protocol.Frame) tea.Cmd {
	if _, err := protocol.NormalizeAddress(f.Phone); err != nil {
		m.log.Warn("assigned frame with a bad phone", "err", err)
		return nil
	}
	_, c := m.find(f.Phone)
	if c != nil { // a resync after reconnect: merge, nothing twice
		c.setContact(f.Contact)
		n := c.merge(m.cfg.Analyzer, f.List)
		if c != m.selected() {
			c.unread += n
		}
		return nil
	}
	c = newConversation(f.Phone)
	c.setContact(f.Contact)
	c.merge(m.cfg.Analyzer, f.List)
	if f.Transfer != nil {
		c.transfer = transferredNote(f.Transfer)
		m.setNotice(f.Phone + " " + c.transfer)
	}
	for i := len(c.msgs) - 1; i >= 0 && c.msgs[i].Message.Direction == protocol.In; i-- {
		c.unread++
	}
	c.fresh = true
	m.convs = append(m.convs, c)
	if len(m.convs) == 1 {
		m.sel = 0
	}
	if c == m.selected() {
		c.unread, c.fresh = 0, false // on screen already: announced by the bell
	}
	return m.bell()
}

func (m *Model) sendFailed(f protocol.Frame, err error) {
	if m.searchNotSent(f, err) {
		return
	}
	if f.Type == protocol.TypeResponse || f.Type == protocol.TypeNote {
		for _, c := range m.convs {
			if e := c.byRef(f.Ref); e != nil && e.pending {
				e.pending, e.failed = false, failText(err)
			}
		}
		return
	}
	if f.Type == protocol.TypeHistory {
		if _, c := m.find(f.Phone); c != nil {
			c.loading = false
		}
	}
	m.setNotice(failText(err))
}

// setNotice shows text in the status bar until the agent's next action,
// or noticeTTL.
func (m *Model) setNotice(text string) {
	m.notice, m.noticeAt = text, m.cfg.Now()
}

func failText(err error) string {
	switch {
	case errors.Is(err, wsclient.ErrNotConnected):
		return "not connected"
	case errors.Is(err, wsclient.ErrQueueFull):
		return "connection too slow, try again"
	}
	return err.Error()
}
