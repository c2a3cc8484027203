package agent

import "fmt"

// maxSMSChars is the longest body Twilio accepts (1,600 characters); the
// composer refuses a longer reply before sending it instead of failing
// after.
const maxSMSChars = 1600

// smsLength is how a reply travels as SMS: its length in the units of its
// encoding and the segments (messages) it is split into.
type smsLength struct {
	chars    int  // GSM-7 septets, or UTF-16 code units under UCS-2
	segments int  // 0 for an empty text
	ucs2     bool // a character outside GSM-7 makes the whole text UCS-2
}

// gsmBasic is the GSM 03.38 default alphabet (one septet each), without
// the escape character; gsmExtension costs two septets (escape + char).
const (
	gsmBasic     = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
	gsmExtension = "\f^{}\\[~]|€"
)

var gsmCost = func() map[rune]int {
	m := make(map[rune]int, 140)
	for _, r := range gsmBasic {
		m[r] = 1
	}
	for _, r := range gsmExtension {
		m[r] = 2
	}
	return m
}()

// smsCount measures text as an SMS: GSM-7 when every character is in the
// GSM alphabet (160 septets in one segment, 153 per segment of a longer
// message), else UCS-2 (70 code units, 67 per segment).
func smsCount(text string) smsLength {
	var n smsLength
	for _, r := range text {
		c, ok := gsmCost[r]
		if !ok {
			n.ucs2 = true
			break
		}
		n.chars += c
	}
	single, multi := 160, 153
	if n.ucs2 {
		n.chars = 0
		for _, r := range text {
			n.chars++
			if r > 0xFFFF {
				n.chars++ // a surrogate pair
			}
		}
		single, multi = 70, 67
	}
	switch {
	case n.chars == 0:
	case n.chars <= single:
		n.segments = 1
	default:
		n.segments = (n.chars + multi - 1) / multi
	}
	return n
}

// label is what the composer shows, "42 chars · 1 SMS" (sep between),
// with "unicode" when the text goes as UCS-2.
func (n smsLength) label(sep string) string {
	enc := ""
	if n.ucs2 {
		enc = " (unicode)"
	}
	return fmt.Sprintf("%d chars%s%d SMS%s", n.chars, sep, n.segments, enc)
}
