package agent

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/agent/wsclient"
	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Supervisor is the model of `agent -supervisor` (issue 18): a live screen
// of the waiting line with ages and of every agent with state and load,
// from the node's supervisor frames, each agent with the conversations it
// holds. The supervisor picks any of these conversations (up/down), reads
// it (enter, read-only: the history), and assigns a waiting one to an agent
// (ctrl+a, the agent's name, enter). The session is opened with the admin
// token and sends no presence: a supervisor is not an agent.
type Supervisor struct {
	cfg    Config
	log    *slog.Logger
	keys   supervisorKeys
	st     styles
	width  int
	height int
	now    time.Time

	conn   connState
	view   protocol.QueueView
	viewAt time.Time // when view came: ages grow from there
	sel    int       // selected row of rows(): waiting first, then held
	notice string

	reading string             // phone whose conversation is shown
	msgs    []protocol.Message // its messages, oldest first
	typing  bool               // the assign prompt is open
	to      string             // the agent's name typed so far
	help    bool
}

type supervisorKeys struct {
	Up, Down, Read, Assign, Close, Help, Quit key.Binding
}

func defaultSupervisorKeys() supervisorKeys {
	return supervisorKeys{
		Up:     key.NewBinding(key.WithKeys("up", "shift+tab"), key.WithHelp("up", "previous conversation")),
		Down:   key.NewBinding(key.WithKeys("down", "tab"), key.WithHelp("down", "next conversation (waiting, then held)")),
		Read:   key.NewBinding(key.WithKeys("enter"), key.WithHelp("enter", "read it (in the prompt: assign)")),
		Assign: key.NewBinding(key.WithKeys("ctrl+a"), key.WithHelp("ctrl+a", "assign it to an agent")),
		Close:  key.NewBinding(key.WithKeys("esc"), key.WithHelp("esc", "close the prompt or the conversation")),
		Help:   key.NewBinding(key.WithKeys("f1"), key.WithHelp("f1", "help")),
		Quit:   key.NewBinding(key.WithKeys("ctrl+c"), key.WithHelp("ctrl+c", "quit")),
	}
}

// NewSupervisor returns the supervisor's model; cfg as for NewModel (Conn
// is required; Now, Logger and Tick take their defaults).
func NewSupervisor(cfg Config) (*Supervisor, error) {
	if cfg.Conn == nil {
		return nil, fmt.Errorf("agent: supervisor: Conn is required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	return &Supervisor{cfg: cfg, log: cfg.Logger.With("component", "supervisor"), keys: defaultSupervisorKeys(),
		st: newStyles(cfg.ASCII, true), width: 80, height: 24, now: cfg.Now(), conn: connState{kind: wsclient.Connecting}}, nil
}

// Init starts the clock and the event pump.
func (m *Supervisor) Init() tea.Cmd {
	return tea.Batch(m.cfg.tick(), m.cfg.waitEvent(), tea.RequestBackgroundColor)
}

// Update handles one message.
func (m *Supervisor) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case tickMsg:
		m.now = time.Time(msg)
		return m, m.cfg.tick()
	case tea.BackgroundColorMsg:
		m.st = newStyles(m.cfg.ASCII, msg.IsDark())
	case sendResultMsg:
		m.notice = failText(msg.err)
	case EventMsg:
		m.event(wsclient.Event(msg))
		return m, m.cfg.waitEvent()
	case tea.KeyPressMsg:
		return m, m.key(msg)
	}
	return m, nil
}

func (m *Supervisor) event(ev wsclient.Event) {
	switch ev.Kind {
	case wsclient.Connected, wsclient.Connecting:
		m.conn = connState{kind: ev.Kind, since: m.cfg.Now()}
	case wsclient.Disconnected, wsclient.Refused, wsclient.Replaced:
		m.conn = connState{kind: ev.Kind, err: ev.Err, retryIn: ev.RetryIn, since: m.cfg.Now()}
	case wsclient.Received:
		f := ev.Frame
		switch f.Type {
		case protocol.TypeSupervisor:
			if f.View != nil {
				m.view, m.viewAt = *f.View, m.cfg.Now()
				m.sel = min(m.sel, max(len(m.rows())-1, 0))
			}
		case protocol.TypeHistory:
			if f.Phone == m.reading {
				m.msgs = f.List
			}
		case protocol.TypeError:
			m.notice = "error: " + f.Code + ": " + f.Text
		}
	}
}

// rows are the conversations the supervisor can pick, in screen order:
// the waiting line, then each agent's.
func (m *Supervisor) rows() []string {
	var rows []string
	for _, q := range m.view.Waiting {
		rows = append(rows, q.Phone)
	}
	for _, a := range m.view.Agents {
		rows = append(rows, a.Conversations...)
	}
	return rows
}

// picked is the selected conversation, waiting or held ("" for none).
func (m *Supervisor) picked() string {
	if rows := m.rows(); m.sel >= 0 && m.sel < len(rows) {
		return rows[m.sel]
	}
	return ""
}

// selected is the selected conversation if it waits: only those are
// assigned.
func (m *Supervisor) selected() string {
	if m.sel < 0 || m.sel >= len(m.view.Waiting) {
		return ""
	}
	return m.view.Waiting[m.sel].Phone
}

func (m *Supervisor) key(k tea.KeyPressMsg) tea.Cmd {
	if m.typing {
		if text, ok := typed(k); ok {
			m.to += text
			return nil
		}
	}
	switch {
	case key.Matches(k, m.keys.Quit):
		return tea.Quit
	case key.Matches(k, m.keys.Help):
		m.help = !m.help
	case key.Matches(k, m.keys.Close):
		switch {
		case m.help:
			m.help = false
		case m.typing:
			m.typing, m.to = false, ""
		default:
			m.reading, m.msgs = "", nil
		}
	case m.typing && k.Code == tea.KeyBackspace:
		if r := []rune(m.to); len(r) > 0 {
			m.to = string(r[:len(r)-1])
		}
	case m.typing && key.Matches(k, m.keys.Read):
		phone, to := m.selected(), strings.TrimSpace(m.to)
		m.typing, m.to = false, ""
		if phone == "" {
			m.notice = "nothing waits: nothing to assign"
			return nil
		}
		if err := protocol.ValidAgentName(to); err != nil {
			m.notice = "not an agent name: " + err.Error()
			return nil
		}
		m.notice = "assigning " + phone + " to " + to + m.st.g.ellipsis
		return m.cfg.send(protocol.Frame{Type: protocol.TypeAssign, Phone: phone, To: to, Ref: "assign"})
	case key.Matches(k, m.keys.Up):
		m.sel = max(m.sel-1, 0)
	case key.Matches(k, m.keys.Down):
		m.sel = min(m.sel+1, max(len(m.rows())-1, 0))
	case key.Matches(k, m.keys.Assign):
		if m.selected() == "" {
			m.notice = "pick a waiting conversation to assign"
			return nil
		}
		m.typing, m.to, m.notice = true, "", ""
	case key.Matches(k, m.keys.Read):
		phone := m.picked()
		if phone == "" {
			return nil
		}
		m.reading, m.msgs = phone, nil
		return m.cfg.send(protocol.Frame{Type: protocol.TypeHistory, Phone: phone, Limit: 50})
	}
	return nil
}

// View draws the screen.
func (m *Supervisor) View() tea.View {
	v := tea.NewView(m.render())
	v.AltScreen = m.cfg.AltScreen
	return v
}

func (m *Supervisor) render() string {
	g, w := m.st.g, max(m.width, 20)
	var lines []string
	add := func(s string) { lines = append(lines, ansi.Truncate(s, w, g.ellipsis)) }
	conn := m.st.dim.Render(g.offline + " connecting" + g.ellipsis)
	switch m.conn.kind {
	case wsclient.Connected:
		conn = m.st.ok.Render(g.online + " connected")
	case wsclient.Disconnected:
		conn = m.st.barError.Render(g.offline + " disconnected, retrying")
	case wsclient.Refused:
		conn = m.st.barError.Render(g.offline + " token refused: -supervisor needs the admin token")
	case wsclient.Replaced:
		conn = m.st.barError.Render(g.offline + " signed in elsewhere (restart to take over)")
	}
	head := m.st.bar.Render("switchboard supervisor") + g.sep + conn + g.sep + fmt.Sprintf("%d waiting", len(m.view.Waiting)) + g.sep + plural(len(m.view.Agents), "agent")
	if m.notice != "" {
		head += g.sep + m.st.barError.Render(clean(m.notice, false))
	}
	add(head)
	if m.help {
		for _, b := range []key.Binding{m.keys.Up, m.keys.Down, m.keys.Read, m.keys.Assign, m.keys.Close, m.keys.Help, m.keys.Quit} {
			add(fmt.Sprintf("  %-10s %s", b.Help().Key, b.Help().Desc))
		}
		return strings.Join(lines, "\n")
	}
	add(m.st.title.Render("Waiting line"))
	if len(m.view.Waiting) == 0 {
		add(m.st.dim.Render("  nobody waits"))
	}
	since := m.now.Sub(m.viewAt)
	if m.viewAt.IsZero() || since < 0 {
		since = 0
	}
	for i, q := range m.view.Waiting {
		cur := "  "
		if i == m.sel {
			cur = g.cursor + " "
		}
		row := fmt.Sprintf("%s%2d. %-16s waiting %s", cur, q.Position, q.Phone, shortDuration(time.Duration(q.WaitingMs)*time.Millisecond+since))
		if i == m.sel {
			row = m.st.selected.Render(row)
		}
		add(row)
	}
	add("")
	add(m.st.title.Render("Agents"))
	if len(m.view.Agents) == 0 {
		add(m.st.dim.Render("  no agent connected"))
	}
	row := len(m.view.Waiting)
	for _, a := range m.view.Agents {
		add(fmt.Sprintf("  %-16s %-9s %d/%d  on %s", a.Name, a.State, a.Load, a.Capacity, a.Node))
		for _, phone := range a.Conversations {
			line := "      " + clean(phone, false)
			if row == m.sel {
				line = m.st.selected.Render(g.cursor + "     " + clean(phone, false))
			}
			add(line)
			row++
		}
	}
	if m.reading != "" {
		add("")
		add(m.st.title.Render("Conversation " + m.reading + " (read-only)"))
		for _, msg := range m.msgs {
			who := "customer"
			switch msg.Direction {
			case protocol.Out:
				who = "agent " + msg.Agent
			case protocol.Note:
				who = "note by " + msg.Agent
			}
			add("  " + who + ": " + clean(msg.Text, false))
		}
	}
	add("")
	if m.typing {
		add(m.st.composerOn.Render("Assign "+m.selected()+" to: ") + m.to + m.st.dim.Render("  (enter assigns, esc cancels)"))
	} else {
		add(m.st.dim.Render("up/down pick - enter read - ctrl+a assign - f1 help - ctrl+c quit"))
	}
	return strings.Join(lines, "\n")
}
