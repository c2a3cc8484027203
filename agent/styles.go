package agent

import (
	"image/color"

	"charm.land/lipgloss/v2"

	"github.com/switchboard/switchboard/transform"
)

// styles holds every lipgloss style and glyph of the UI, so the look lives in
// one place. Colours come in a light and a dark variant, chosen from the
// terminal's background colour when it answers (tea.BackgroundColorMsg;
// dark until then). The program downsamples them to what the terminal
// can show; with no colours at all the layout stays the same.
type styles struct {
	bar        lipgloss.Style
	barError   lipgloss.Style
	title      lipgloss.Style
	dim        lipgloss.Style
	selected   lipgloss.Style
	fresh      lipgloss.Style // a conversation that just arrived
	unread     lipgloss.Style
	in         lipgloss.Style
	out        lipgloss.Style
	failed     lipgloss.Style
	ok         lipgloss.Style
	sep        lipgloss.Style
	composerOn lipgloss.Style

	g glyphs
}

// glyphs are the non-letter symbols of the UI, with an ASCII set for
// terminals that cannot show UTF-8.
type glyphs struct {
	in, out, cursor, sep, vbar, hbar, online, offline, ellipsis, up, media string
	mark                                                                   func(transform.Mark) string
}

var unicodeGlyphs = glyphs{
	in: "◀", out: "▶", cursor: "▸", sep: " · ", vbar: "│", hbar: "─", online: "●", offline: "○", ellipsis: "…", up: "↑", media: "📎",
	mark: transform.Mark.Emoji,
}

var asciiGlyphs = glyphs{
	in: "<", out: ">", cursor: ">", sep: " - ", vbar: "|", hbar: "-", online: "*", offline: "o", ellipsis: "~", up: "^", media: "[media]",
	mark: transform.Mark.ASCII,
}

func newStyles(ascii, dark bool) styles {
	c := func(light, darkHex string) color.Color {
		return lipgloss.LightDark(dark)(lipgloss.Color(light), lipgloss.Color(darkHex))
	}
	s := styles{
		bar:        lipgloss.NewStyle().Bold(true),
		barError:   lipgloss.NewStyle().Foreground(c("#B00020", "#FF6B6B")),
		title:      lipgloss.NewStyle().Bold(true),
		dim:        lipgloss.NewStyle().Foreground(c("#767676", "#8A8A8A")),
		selected:   lipgloss.NewStyle().Bold(true).Foreground(c("#005FAF", "#87AFFF")),
		fresh:      lipgloss.NewStyle().Bold(true).Foreground(c("#AF5F00", "#FFD75F")),
		unread:     lipgloss.NewStyle().Bold(true),
		in:         lipgloss.NewStyle().Foreground(c("#005F87", "#5FD7FF")),
		out:        lipgloss.NewStyle().Foreground(c("#5F8700", "#AFD75F")),
		failed:     lipgloss.NewStyle().Bold(true).Foreground(c("#B00020", "#FF6B6B")),
		ok:         lipgloss.NewStyle().Foreground(c("#5F8700", "#AFD75F")),
		sep:        lipgloss.NewStyle().Foreground(c("#BCBCBC", "#444444")),
		composerOn: lipgloss.NewStyle().Bold(true),
		g:          unicodeGlyphs,
	}
	if ascii {
		s.g = asciiGlyphs
	}
	return s
}
