package transform

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// smsCorpus is a mix of SMS-length texts (11 to 160 bytes) of every mark.
var smsCorpus = []string{
	"Hi, I ordered the camcorder last week and it still hasn't arrived. Can you check the tracking number please? Thanks!",
	"where is my order",
	"This is ridiculous. Third time I write, nobody answers. I want a refund NOW or I'm calling my bank!!!",
	"Thank you so much, the player works great :)",
	"Is the 4K camera in stock? I'd like to pick it up today after work if possible.",
	"ok",
	"The box was damaged and the lens is scratched. Very disappointed with this purchase.",
	"Can I change the delivery address to 12 Main St? I moved last month and forgot to update it, sorry.",
	"Perfect, see you tomorrow",
	"no that's not what I asked. I asked about the warranty for the headphones, not the speakers.",
}

// BenchmarkSentiment is govader through the Analyzer (the 480-byte cap and
// the mark) on SMS-length texts. Issue 3's target: ≥ 100,000 msgs/s per
// core (-cpu 1).
func BenchmarkSentiment(b *testing.B) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	bytes := 0
	for _, s := range smsCorpus {
		bytes += len(s)
	}
	b.SetBytes(int64(bytes / len(smsCorpus)))
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		a.Score(smsCorpus[i%len(smsCorpus)])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// emojiCorpus is SMS-length texts with emoji, whose descriptions are
// spliced into the text before scoring.
var emojiCorpus = []string{
	"got it 👍 thx",
	"😡😡😡 where is my parcel??? ordered 2 weeks ago",
	"love it❤️ thank u so much 😍",
	"Can you ship to 🇫🇷? My sister lives there 🙂",
	"not happy 😞 the screen is cracked 💔",
}

func BenchmarkSentimentEmoji(b *testing.B) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	b.ReportAllocs()
	start := time.Now()
	for i := 0; b.Loop(); i++ {
		a.Score(emojiCorpus[i%len(emojiCorpus)])
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkAnnotationsHistoryPage annotates the largest history page the
// node serves (protocol.MaxHistory messages) the way the client does when a
// conversation is assigned or scrolled back: the one moment when scoring
// many messages at once could show as a pause.
func BenchmarkAnnotationsHistoryPage(b *testing.B) {
	a, _ := NewAnalyzer(AnalyzerOptions{})
	page := make([]protocol.Message, protocol.MaxHistory)
	for i := range page {
		page[i] = protocol.Message{ID: fmt.Sprint(i), Direction: protocol.In, Text: smsCorpus[i%len(smsCorpus)], Received: 1767323045000 + int64(1000*i)}
	}
	b.ReportAllocs()
	for b.Loop() {
		Annotations(a, page)
	}
}
