package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/switchboard/switchboard/switchboard/protocol"
)

// Key prefixes. The layout is described in doc.go. Phone numbers are E.164
// ("+" and digits) and agent names hold no '/', so a '/' after them ends the
// component and prefix scans never run into a neighbour's keys.
const (
	pMsg     = "m/"        // m/<phone>/<seq8>       → record (JSON)
	pStatus  = "s/"        // s/<id>                 → statusRec (JSON)
	pSid     = "sid/"      // sid/<MessageSid>       → id
	pRef     = "ref/"      // ref/<agent>/<ref>      → id
	pID      = "id/"       // id/<id>                → seq8 oseq8 phone
	pPID     = "pid/"      // pid/<providerID>       → id
	pOutbox  = "o/"        // o/<oseq8>/<id>         → empty
	pConv    = "c/"        // c/<phone>              → convRec (JSON)
	pJournal = "j/"        // j/<id>                 → journalRec (JSON): cluster events not yet seen in the log
	keyCheck = "k/cluster" //                   → cluster checkpoint (opaque to the store)
	keyGSeq  = "g/seq"
	keyVer   = "g/version"
	schemaV1 = "1"
)

func be8(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func convPrefix(phone string) []byte { return []byte(pMsg + phone + "/") }

func msgKey(phone string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(convPrefix(phone), seq)
}

func statusKey(id string) []byte      { return []byte(pStatus + id) }
func sidKey(sid string) []byte        { return []byte(pSid + sid) }
func refKey(agent, ref string) []byte { return []byte(pRef + agent + "/" + ref) }
func idKey(id string) []byte          { return []byte(pID + id) }
func pidKey(pid string) []byte        { return []byte(pPID + pid) }
func convKey(phone string) []byte     { return []byte(pConv + phone) }
func outboxKey(oseq uint64, id string) []byte {
	k := binary.BigEndian.AppendUint64([]byte(pOutbox), oseq)
	return append(append(k, '/'), id...)
}

// seqOfMsgKey reads the sequence number at the end of an m/ key.
func seqOfMsgKey(k []byte) (uint64, error) {
	if len(k) < len(pMsg)+8 {
		return 0, fmt.Errorf("store: short message key %q", k)
	}
	return binary.BigEndian.Uint64(k[len(k)-8:]), nil
}

// idOfOutboxKey reads the message id at the end of an o/ key.
func idOfOutboxKey(k []byte) (string, error) {
	if len(k) < len(pOutbox)+9 {
		return "", fmt.Errorf("store: short outbox key %q", k)
	}
	return string(k[len(pOutbox)+9:]), nil
}

// loc is where a message lives: its conversation, its position in it, and,
// for replies, its place in the outbox order (0 for inbound messages).
type loc struct {
	phone string
	seq   uint64
	oseq  uint64
}

func (l loc) encode() []byte {
	b := binary.BigEndian.AppendUint64(nil, l.seq)
	b = binary.BigEndian.AppendUint64(b, l.oseq)
	return append(b, l.phone...)
}

func decodeLoc(b []byte) (loc, error) {
	if len(b) < 17 {
		return loc{}, fmt.Errorf("store: corrupt id index value (%d bytes)", len(b))
	}
	return loc{
		seq:   binary.BigEndian.Uint64(b),
		oseq:  binary.BigEndian.Uint64(b[8:]),
		phone: string(b[16:]),
	}, nil
}

// record is the stored form of one message. The phone number is in the key;
// the status of a reply is in its own s/ key (a reply's record never changes).
type record struct {
	ID          string             `json:"id"`
	Dir         protocol.Direction `json:"d"`
	Text        string             `json:"t"`
	Received    int64              `json:"r"`
	Agent       string             `json:"a,omitempty"`
	FromCountry string             `json:"fc,omitempty"`
	To          string             `json:"to,omitempty"`
	Sid         string             `json:"sid,omitempty"`
	Ref         string             `json:"ref,omitempty"`
	// Pos is the cluster log position (offset+1) of the event that first
	// stored the message; 0 outside cluster mode.
	Pos int64 `json:"o,omitempty"`
	// Origin is the node that accepted a reply (cluster mode): it sends it.
	Origin string `json:"n,omitempty"`
	// Media and OptOut of an inbound message (protocol.Message).
	Media  []protocol.Media `json:"mm,omitempty"`
	OptOut string           `json:"oo,omitempty"`
}

// recordHead is the part of a record that routing a status needs; decoding
// into it skips the text and the other fields.
type recordHead struct {
	ID    string             `json:"id"`
	Dir   protocol.Direction `json:"d"`
	Agent string             `json:"a,omitempty"`
}

func (r *record) message(phone string) protocol.Message {
	m := protocol.Message{
		ID:          r.ID,
		Phone:       phone,
		Direction:   r.Dir,
		Text:        r.Text,
		Received:    r.Received,
		Agent:       r.Agent,
		FromCountry: r.FromCountry,
		Status:      protocol.StatusReceived,
		Media:       r.Media,
		OptOut:      r.OptOut,
	}
	if r.Dir == protocol.Out {
		m.Status = protocol.StatusQueued
	}
	return m
}

// statusRec is the delivery state of one reply.
type statusRec struct {
	Status     protocol.Status `json:"st"`
	ProviderID string          `json:"pid,omitempty"`
	// Phone, OSeq (its outbox sequence) and Agent repeat the reply's, in
	// the key written with the reply, so that a status applied from the
	// log reads this key alone. Replies stored before these fields existed
	// have none (and keep none): their statuses read the record.
	Phone string `json:"ph,omitempty"`
	OSeq  uint64 `json:"os,omitempty"`
	Agent string `json:"a,omitempty"`
}

// convRec is the stored form of ConvState (the phone is in the key).
type convRec struct {
	Agent     string `json:"a,omitempty"`
	LastAgent string `json:"la,omitempty"`
	Waiting   bool   `json:"w,omitempty"`
	WaitSeq   uint64 `json:"ws,omitempty"`
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only plain structs of strings and numbers are marshalled here.
		panic(fmt.Sprintf("store: marshal %T: %v", v, err))
	}
	return b
}
