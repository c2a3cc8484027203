package switchboard

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/switchboard/switchboard/switchboard/route"
	"github.com/switchboard/switchboard/switchboard/store"
)

func testSnapshot(t testing.TB) (snapshotMeta, []store.KV, []byte) {
	cp := checkpoint{Offset: 41, Agents: []route.AgentSnapshot{{Name: "alice", Capacity: 3, Online: true, Epoch: 2}}, Current: map[string]string{"alice": "s1"}, Recent: []string{"r1"}, Dead: map[string]string{}}
	blob, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	meta := snapshotMeta{Offset: 41, Node: "n1", At: 1700000000000, Gseq: 99, Checkpoint: blob}
	kvs := []store.KV{
		{Key: []byte("c/+15550001"), Value: []byte(`{"agent":"alice"}`)},
		{Key: []byte("m/+15550001/\x00\x00\x00\x00\x00\x00\x00\x01"), Value: []byte(`{"id":"a"}`)},
		{Key: []byte("ct/+15550001"), Value: []byte{}},
	}
	body, err := encodeSnapshot(meta, kvs)
	if err != nil {
		t.Fatal(err)
	}
	return meta, kvs, body
}

func TestSnapshotRoundTrip(t *testing.T) {
	meta, kvs, body := testSnapshot(t)
	got, cp, gotKVs, err := decodeSnapshot(body)
	if err != nil {
		t.Fatal(err)
	}
	meta.Keys = len(kvs)
	if !reflect.DeepEqual(got, meta) {
		t.Fatalf("meta = %+v, want %+v", got, meta)
	}
	if !reflect.DeepEqual(gotKVs, kvs) {
		t.Fatalf("kvs = %q, want %q", gotKVs, kvs)
	}
	if cp.Offset != 41 || len(cp.Agents) != 1 || cp.Agents[0].Name != "alice" || cp.Current["alice"] != "s1" {
		t.Fatalf("checkpoint = %+v", cp)
	}
}

func gz(raw []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write(raw)
	w.Close()
	return b.Bytes()
}

func TestSnapshotRefusesBadInput(t *testing.T) {
	_, _, body := testSnapshot(t)
	var raw bytes.Buffer
	r, _ := gzip.NewReader(bytes.NewReader(body))
	raw.ReadFrom(r)
	good := raw.Bytes()
	forbidden, _ := encodeSnapshot(snapshotMeta{Offset: 1, Checkpoint: json.RawMessage(`{"offset":1}`)}, []store.KV{{Key: []byte("k/cluster"), Value: []byte("x")}})
	wrongOffset, _ := encodeSnapshot(snapshotMeta{Offset: 1, Checkpoint: json.RawMessage(`{"offset":2}`)}, nil)
	corrupt := bytes.Clone(body)
	corrupt[len(corrupt)-6] ^= 0xff // inside gzip's CRC-32
	cases := map[string]struct {
		in   []byte
		want string
	}{
		"empty":          {nil, "not gzip"},
		"not gzip":       {[]byte("hello"), "not gzip"},
		"bad magic":      {gz([]byte("SBSNAP9\n")), "bad magic"},
		"truncated":      {gz(good[:len(good)-3]), "truncated"},
		"trailing":       {gz(append(bytes.Clone(good), 0)), "after the last entry"},
		"crc":            {corrupt, "decompress"},
		"forbidden key":  {forbidden, "not part of the applied state"},
		"offset differs": {wrongOffset, "is not the snapshot's"},
		"bad header":     {gz(append([]byte(snapshotMagic), 3, '{', '{', '{')), "header"},
	}
	for name, tc := range cases {
		_, _, _, err := decodeSnapshot(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "snapshot: ") {
			t.Errorf("%s: err = %v, want one with %q", name, err, tc.want)
		}
	}
}

// FuzzDecodeSnapshot: a snapshot is read from the broker, where any
// client may publish: no input panics, and what decodes encodes back to
// the same entries.
func FuzzDecodeSnapshot(f *testing.F) {
	_, _, body := testSnapshot(f)
	f.Add(body)
	f.Add(gz([]byte(snapshotMagic)))
	f.Fuzz(func(t *testing.T, b []byte) {
		meta, _, kvs, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		again, err := encodeSnapshot(meta, kvs)
		if err != nil {
			t.Fatal(err)
		}
		meta2, _, kvs2, err := decodeSnapshot(again)
		if err != nil || meta2.Offset != meta.Offset || len(kvs2) != len(kvs) {
			t.Fatalf("re-encoded snapshot: %v, %d keys (want %d)", err, len(kvs2), len(kvs))
		}
	})
}
