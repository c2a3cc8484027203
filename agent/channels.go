package agent

import (
	"strings"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Channels, media and consent in the client (issue 19): a WhatsApp
// conversation is marked, an MMS or WhatsApp message shows one line per
// media item (its type and Twilio's URL, a terminal hyperlink where the
// terminal takes OSC 8), and a customer who opted out is marked so.

// HyperlinkTerminal reports whether the terminal named by TERM is likely to
// take OSC 8 hyperlinks (terminals that do not should ignore them, but the
// Linux console and dumb terminals print them).
func HyperlinkTerminal(getenv func(string) string) bool {
	switch getenv("TERM") {
	case "", "dumb", "linux":
		return false
	}
	return true
}

// channelMark is the mark shown after a conversation's number: the channel
// when it is not SMS.
func (m *Model) channelMark(c *conversation) string {
	if protocol.Channel(c.phone) == protocol.ChannelWhatsApp {
		return m.st.fresh.Render("WhatsApp")
	}
	return ""
}

// shownAddr is a conversation's number without its channel prefix (the
// mark says the channel).
func shownAddr(addr string) string { return clean(protocol.PhoneOf(addr), false) }

// mediaLines draws one line (or more, wrapped) per media item of e.
//
//	📎 image/jpeg https://api.twilio.com/2010-04-01/.../Media/ME0
func (m *Model) mediaLines(e *entry, w int) []string {
	var lines []string
	for _, md := range e.Message.Media {
		ct := clean(md.ContentType, false)
		u := clean(md.URL, false)
		text := ansi.Hardwrap(m.st.g.media+" "+ct+" "+u, max(w-2, 1), false)
		for _, l := range strings.Split(text, "\n") {
			if m.cfg.Hyperlinks && u == md.URL {
				// The whole line links to the item, however it wrapped.
				l = ansi.SetHyperlink(u) + l + ansi.ResetHyperlink()
			}
			lines = append(lines, "  "+l)
		}
	}
	return lines
}

// optedOut reports whether the customer opted out: the newest opt-out
// keyword decides, unless the node refused a reply for the opt-out since
// (Twilio's 21610, or opted_out), which stands until a later START.
func (c *conversation) optedOut() bool {
	for i := len(c.msgs) - 1; i >= 0; i-- {
		msg := c.msgs[i].Message
		if msg.Direction != protocol.In || msg.OptOut == "" || msg.OptOut == protocol.OptOutHelp {
			continue
		}
		if !c.refusedAt.IsZero() && time.UnixMilli(msg.Received).Before(c.refusedAt) {
			break
		}
		return msg.OptOut == protocol.OptOutStop
	}
	return !c.refusedAt.IsZero()
}

// optOutRefusal reports whether a refusal (an error frame's code, a failed
// status's text) says the customer opted out.
func optOutRefusal(code, text string) bool {
	return code == protocol.CodeOptedOut || strings.HasPrefix(text, "provider error 21610") || strings.HasPrefix(text, protocol.CodeOptedOut)
}

// optOutMark is the timeline header's note for an opted-out customer.
func (m *Model) optOutMark(c *conversation) string {
	if !c.optedOut() {
		return ""
	}
	return m.st.failed.Render("opted out (STOP): replies are refused")
}
