package agent

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"charm.land/bubbles/v2/key"
	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/switchboard/protocol"
	"github.com/switchboard/switchboard/transform"
)

// This file holds the helpdesk side of the client (issue 18): internal
// notes, canned replies (typed as /name + Tab, or picked from a list) and
// contact names.

// deskState is the model's helpdesk state.
type deskState struct {
	canned   []protocol.CannedReply // the node's last canned frame
	noteMode bool                   // the composer writes an internal note
	picking  bool                   // the canned reply list is open
	pick     int                    // the highlighted canned reply
}

// setCanned takes the node's canned frame; an open list stays on a
// reply that still exists, and closes when none is left.
func (m *Model) setCanned(list []protocol.CannedReply) {
	m.desk.canned = list
	m.desk.pick = min(m.desk.pick, max(len(list)-1, 0))
	if len(list) == 0 {
		m.desk.picking = false
	}
}

// label names a conversation: the contact's name, else the phone number.
func (c *conversation) label() string {
	if c.contact.Name != "" {
		return clean(c.contact.Name, false)
	}
	return shownAddr(c.phone)
}

// setContact records a contact an assigned or update frame carries.
func (c *conversation) setContact(ct *protocol.Contact) {
	if ct != nil {
		c.contact = *ct
	}
}

// placeholderRE finds {word} placeholders in a canned reply.
var placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)

// fill replaces the placeholders of a canned text from c's contact:
// {name} (the whole name), {first_name} (its first word), {last_name} (the
// rest) and {phone}. A placeholder that is unknown, or whose value is not
// known (no contact name yet), stays as written and is reported in
// missing, so the agent edits it before sending.
func fill(text string, c *conversation) (out string, missing []string) {
	name := strings.TrimSpace(c.contact.Name)
	first, last, _ := strings.Cut(name, " ")
	values := map[string]string{
		"{name}": name, "{first_name}": first, "{last_name}": strings.TrimSpace(last), "{phone}": c.phone,
	}
	out = placeholderRE.ReplaceAllStringFunc(text, func(p string) string {
		if v := values[p]; v != "" {
			return v
		}
		if !slices.Contains(missing, p) {
			missing = append(missing, p)
		}
		return p
	})
	return out, missing
}

// cannedToken returns the /word the composer's text ends with ("" when it
// does not end with one), and the text before it.
func (m *Model) cannedToken() (word, before string) {
	v := m.input.Value()
	i := strings.LastIndexAny(v, " \n\t")
	tok := v[i+1:]
	if len(tok) < 2 || tok[0] != '/' || protocol.ValidCannedName(tok[1:]) != nil {
		return "", ""
	}
	return tok[1:], v[:i+1]
}

// expandCanned replaces the composer's trailing /word with the canned
// reply of that name, or of the one name it begins.
func (m *Model) expandCanned(word, before string) {
	var match []protocol.CannedReply
	for _, r := range m.desk.canned {
		if r.Name == word {
			match = []protocol.CannedReply{r}
			break
		}
		if strings.HasPrefix(r.Name, word) {
			match = append(match, r)
		}
	}
	switch len(match) {
	case 0:
		m.setNotice(fmt.Sprintf("no canned reply /%s (%s lists them)", word, m.keys.Canned.Help().Key))
	case 1:
		m.insertCanned(match[0], before)
	default:
		names := make([]string, len(match))
		for i, r := range match {
			names[i] = "/" + r.Name
		}
		m.setNotice("which one? " + strings.Join(names, " "))
	}
}

// insertCanned puts a canned reply's filled text after before in the
// composer.
func (m *Model) insertCanned(r protocol.CannedReply, before string) {
	c := m.selected()
	text := r.Text
	if c != nil {
		var missing []string
		if text, missing = fill(r.Text, c); len(missing) > 0 {
			m.setNotice("not filled in: " + strings.Join(missing, " ") + " (edit before sending)")
		}
	}
	m.input.SetValue(before + text)
}

// deskKey handles the helpdesk keys and the open canned list; ok is false
// when k is none of them.
func (m *Model) deskKey(k tea.KeyPressMsg) (cmd tea.Cmd, ok bool) {
	if m.desk.picking {
		switch k.String() {
		case "up":
			m.desk.pick = max(m.desk.pick-1, 0)
			return nil, true
		case "down":
			m.desk.pick = min(m.desk.pick+1, max(len(m.desk.canned)-1, 0))
			return nil, true
		case "enter":
			m.desk.picking = false
			if m.desk.pick < len(m.desk.canned) {
				m.insertCanned(m.desk.canned[m.desk.pick], m.input.Value())
			}
			return nil, true
		case "esc":
			m.desk.picking = false
			return nil, true
		}
		m.desk.picking = false // any other key closes the list and does what it does
	}
	switch {
	case key.Matches(k, m.keys.Next):
		if word, before := m.cannedToken(); word != "" {
			m.expandCanned(word, before)
			return nil, true
		}
	case key.Matches(k, m.keys.Canned):
		if len(m.desk.canned) == 0 {
			m.setNotice("no canned replies yet (an admin adds them: PUT /canned/{name})")
			return nil, true
		}
		m.desk.picking, m.desk.pick = true, 0
		return nil, true
	case key.Matches(k, m.keys.Note):
		m.desk.noteMode = !m.desk.noteMode
		m.input.Placeholder = "Type a reply"
		if m.desk.noteMode {
			m.input.Placeholder = "Type an internal note"
		}
		return nil, true
	case key.Matches(k, m.keys.Name):
		return m.nameCustomer(), true
	}
	return nil, false
}

// nameCustomer sends the composer's text as the selected customer's name.
func (m *Model) nameCustomer() tea.Cmd {
	c := m.selected()
	name := strings.TrimSpace(m.input.Value())
	if c == nil || name == "" {
		m.setNotice("type the customer's name, then " + m.keys.Name.Help().Key)
		return nil
	}
	ct, err := protocol.CleanContact(protocol.Contact{Name: name})
	if err != nil {
		m.setNotice(err.Error())
		return nil
	}
	m.input.Reset()
	return m.cfg.send(protocol.Frame{Type: protocol.TypeContact, Phone: c.phone, Name: ct.Name})
}

// sendNote stores the composer's text as an internal note of c, shown at
// once as sending, like a reply.
func (m *Model) sendNote(c *conversation, text string) tea.Cmd {
	if len(text) > protocol.MaxText {
		m.setNotice(fmt.Sprintf("note too long: %d bytes, at most %d", len(text), protocol.MaxText))
		return nil
	}
	ref := m.cfg.NewRef()
	msg := protocol.Message{Phone: c.phone, Direction: protocol.Note, Text: text, Received: m.cfg.Now().UnixMilli(), Status: protocol.StatusReceived}
	c.msgs = append(c.msgs, &entry{Annotated: transform.Annotate(msg), ref: ref, pending: true})
	c.offset, c.newBelow = 0, 0
	m.input.Reset()
	return m.cfg.send(noteFrame(c.phone, text, ref))
}

func noteFrame(phone, text, ref string) protocol.Frame {
	return protocol.Frame{Type: protocol.TypeNote, Phone: phone, Text: text, Ref: ref}
}

// renderNote draws an internal note, set apart from the SMS:
//
//	✎ note by you · just now
//	  ┆ VIP customer, be nice
func (m *Model) renderNote(e *entry, w int) []string {
	g := m.st.g
	state := ""
	switch {
	case e.failed != "":
		state = g.sep + m.st.failed.Render("failed: "+clean(e.failed, false)+" (ctrl+r retries)")
	case e.pending:
		state = g.sep + m.st.dim.Render("saving"+g.ellipsis)
	}
	head := m.st.note.Render(g.note+" note by "+author(e)) + state + g.sep + m.st.dim.Render(m.cfg.RelTime.Phrase(e.Time, m.now))
	lines := []string{head}
	for _, l := range strings.Split(ansi.Wrap(clean(e.Message.Text, true), max(w-4, 1), ""), "\n") {
		lines = append(lines, "  "+m.st.note.Render(g.noteBar+" "+l))
	}
	return lines
}

// cannedPane is the canned reply list, in place of the timeline.
func (m *Model) cannedPane(w, h int) []string {
	lines := []string{m.st.title.Render("Canned replies"), m.st.dim.Render("↑/↓ choose, enter inserts, esc closes; or type /name and tab")}
	first := max(0, m.desk.pick-(h-3)+1)
	for i := first; i < len(m.desk.canned) && len(lines) < h; i++ {
		r := m.desk.canned[i]
		row := "/" + r.Name + "  " + m.st.dim.Render(strings.ReplaceAll(clean(r.Text, false), "\n", " "))
		cursor := "  "
		if i == m.desk.pick {
			cursor = m.st.g.cursor + " "
		}
		lines = append(lines, ansiTrunc(cursor+row, w, m.st.g.ellipsis))
	}
	return lines
}
