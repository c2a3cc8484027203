package agent

import (
	"github.com/charmbracelet/lipgloss"

	"github.com/switchboard/switchboard/transform"
)

// styles holds every lipgloss style and glyph of the UI, so the look lives in
// one place. Colours are adaptive; under an ASCII colour profile (tests, dumb
// terminals) lipgloss drops them and the layout stays the same.
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
	in, out, cursor, sep, vbar, hbar, online, offline, ellipsis, up string
	mark                                                            func(transform.Mark) string
}

var unicodeGlyphs = glyphs{
	in: "◀", out: "▶", cursor: "▸", sep: " · ", vbar: "│", hbar: "─", online: "●", offline: "○", ellipsis: "…", up: "↑",
	mark: transform.Mark.Emoji,
}

var asciiGlyphs = glyphs{
	in: "<", out: ">", cursor: ">", sep: " - ", vbar: "|", hbar: "-", online: "*", offline: "o", ellipsis: "~", up: "^",
	mark: transform.Mark.ASCII,
}

func newStyles(ascii bool) styles {
	s := styles{
		bar:        lipgloss.NewStyle().Bold(true),
		barError:   lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#B00020", Dark: "#FF6B6B"}),
		title:      lipgloss.NewStyle().Bold(true),
		dim:        lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#767676", Dark: "#8A8A8A"}),
		selected:   lipgloss.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#005FAF", Dark: "#87AFFF"}),
		fresh:      lipgloss.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#AF5F00", Dark: "#FFD75F"}),
		unread:     lipgloss.NewStyle().Bold(true),
		in:         lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#005F87", Dark: "#5FD7FF"}),
		out:        lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#5F8700", Dark: "#AFD75F"}),
		failed:     lipgloss.NewStyle().Bold(true).Foreground(lipgloss.AdaptiveColor{Light: "#B00020", Dark: "#FF6B6B"}),
		ok:         lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#5F8700", Dark: "#AFD75F"}),
		sep:        lipgloss.NewStyle().Foreground(lipgloss.AdaptiveColor{Light: "#BCBCBC", Dark: "#444444"}),
		composerOn: lipgloss.NewStyle().Bold(true),
		g:          unicodeGlyphs,
	}
	if ascii {
		s.g = asciiGlyphs
	}
	return s
}
