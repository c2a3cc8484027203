package loadgen

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Mood is how a simulated customer feels; it picks the texts.
type Mood string

// Moods, from happy to furious, so the agent client's sentiment marks vary.
const (
	Happy    Mood = "happy"
	Curious  Mood = "curious"
	Neutral  Mood = "neutral"
	Worried  Mood = "worried"
	Annoyed  Mood = "annoyed"
	Furious  Mood = "furious"
	Grateful Mood = "grateful"
)

var moods = []Mood{Happy, Curious, Neutral, Worried, Annoyed, Furious, Grateful}

// texts are what customers of a small electronics shop say. The sample
// catalog has players, cameras, phones and accessories.
var texts = map[Mood][]string{
	Happy: {
		"Hi! The camcorder arrived today and it is amazing, thank you so much!",
		"Love the new headphones, best purchase this year :)",
		"Great service last time, I'd like to order another charger please.",
		"Wonderful, the package came a day early. You guys rock!",
	},
	Curious: {
		"Hello, does the Full HD camcorder come with a memory card?",
		"Is the blue speaker back in stock? I saw it on your site yesterday.",
		"What's the difference between the two Blu-ray players?",
		"Can I pick up my order in the store instead of shipping?",
		"Do you ship to Canada? How long does it take?",
	},
	Neutral: {
		"Hi, I placed order 10442 this morning. Just checking it went through.",
		"Please send me the invoice for my last order.",
		"I need to change the delivery address to 12 Elm Street.",
		"What are your opening hours on Saturday?",
	},
	Worried: {
		"My order was supposed to arrive yesterday and the tracking hasn't moved. Is something wrong?",
		"I was charged twice for the same order, can you check?",
		"The camera makes a strange clicking noise, is that normal?",
		"I haven't received a confirmation email, did my payment fail?",
	},
	Annoyed: {
		"This is the third time I'm asking about my refund. Still nothing.",
		"The charger you sent doesn't fit my phone. Not great.",
		"Waited 40 minutes on the phone line, so now I'm texting. Please answer.",
		"The box was damaged and the screen is scratched. Disappointed.",
	},
	Furious: {
		"This is unacceptable! My TV arrived broken and nobody answers!!",
		"Worst service ever. I want my money back NOW.",
		"You cancelled my order without telling me. Terrible. I'm furious.",
		"Stop sending me the wrong item! This is a joke.",
	},
	Grateful: {
		"Thanks for sorting out the refund so quickly, really appreciate it.",
		"Thank you for your help yesterday, everything works now.",
		"Perfect, got it. Have a nice day!",
		"Many thanks, the replacement arrived and it's perfect.",
	},
}

// agentReplies are what simulated agents answer.
var agentReplies = []string{
	"Thanks for reaching out! Let me check that for you.",
	"I'm sorry about that. I've opened a ticket and will get back to you shortly.",
	"Good news: it's in stock and ships today.",
	"I've refunded the duplicate charge; you'll see it in 3-5 days.",
	"Could you send me your order number, please?",
	"Happy to help! Anything else I can do?",
}

// Demo customers: first names so a person watching can follow them. Each
// keeps its number (demoPhone) from run to run, so a second demo continues
// the same conversations instead of adding new ones.
var demoNames = []string{"Maya", "Tom", "Priya", "Lucas", "Amara", "Kenji", "Sofia", "Omar"}

// demoPhone is the number of demo customer i: +1 415 555 0101 and up, in
// the range set aside for fiction (555-0100 to 555-0199), so a demo never
// texts a real person's number and the numbers are valid E.164 +1 numbers.
func demoPhone(i int) string { return fmt.Sprintf("+1415555%04d", 101+i) }

// demoUser is demo customer i's shop user id, stable like the phone.
func demoUser(i int) string { return "u-demo-" + strings.ToLower(demoNames[i]) }

// products of the sample catalog ("0" to "21"), with a few favourites that
// show up in the rolling top-N.
const catalogSize = 22

var favourites = []string{"3", "7", "12"}

// pickText returns a text for mood.
func pickText(r *rand.Rand, m Mood) string {
	list := texts[m]
	return list[r.IntN(len(list))]
}

// pickMood leans towards the middle, with a few strong feelings.
func pickMood(r *rand.Rand) Mood { return moods[r.IntN(len(moods))] }

// pickProduct returns a product id, favourites more often.
func pickProduct(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return favourites[r.IntN(len(favourites))]
	}
	return strconv.Itoa(r.IntN(catalogSize))
}

// customerPhone is the E.164 phone of customer i in run runID: +1555, the
// run id, then five digits. Distinct runs against one node do not share
// conversations.
func customerPhone(runID string, i int) string {
	return fmt.Sprintf("+1555%s%05d", runID, i)
}

// messageSid is the Twilio MessageSid of inbound message seq: "SM" and 32
// hex digits, unique per run.
func messageSid(runID string, seq int64) string {
	id, _ := strconv.ParseUint(runID, 10, 64)
	return fmt.Sprintf("SM%08x%024x", id, seq)
}

// Markers identify messages in texts that come back to us: inbound texts in
// agents' frames ("#m<run>.<seq>") and replies at the fake SMS API
// ("#r<run>.<seq>").
const (
	inMarker    = "#m"
	replyMarker = "#r"
)

func marker(kind, runID string, seq int64) string {
	return kind + runID + "." + strconv.FormatInt(seq, 10)
}

// findMarker returns the sequence number of the first well-formed marker of
// kind for runID in text. Texts come from the node and other people, so
// anything unexpected is simply not a marker.
func findMarker(text, kind, runID string) (int64, bool) {
	prefix := kind + runID + "."
	for {
		i := strings.Index(text, prefix)
		if i < 0 {
			return 0, false
		}
		rest := text[i+len(prefix):]
		j := 0
		for j < len(rest) && j < 18 && rest[j] >= '0' && rest[j] <= '9' {
			j++
		}
		if j > 0 && (j == len(rest) || rest[j] < '0' || rest[j] > '9') {
			n, err := strconv.ParseInt(rest[:j], 10, 64)
			if err == nil {
				return n, true
			}
		}
		text = rest
	}
}
