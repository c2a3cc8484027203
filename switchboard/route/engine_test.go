package route

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func assigned(agent, phone string) Effect { return Effect{Kind: Assigned, Agent: agent, Phone: phone} }
func released(agent, phone, reason string) Effect {
	return Effect{Kind: Released, Agent: agent, Phone: phone, Reason: reason}
}

func requireEffects(t *testing.T, got []Effect, want ...Effect) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("effects:\n got  %+v\n want %+v", got, want)
	}
}

func TestLowestLoadThenLongestIdle(t *testing.T) {
	e := New(0)
	e.Connect("alice", at(0))
	e.Connect("bob", at(1))
	requireEffects(t, e.Available("alice", 2, at(2)))
	requireEffects(t, e.Available("bob", 2, at(3)))
	// Both idle; alice has been idle longer (online since 0).
	requireEffects(t, e.Arrive("+1001", 1, at(4)), assigned("alice", "+1001"))
	// bob has load 0 < alice 1.
	requireEffects(t, e.Arrive("+1002", 2, at(5)), assigned("bob", "+1002"))
	// Equal load 1; alice's last assignment (4) is older than bob's (5).
	requireEffects(t, e.Arrive("+1003", 3, at(6)), assigned("alice", "+1003"))
	requireEffects(t, e.Arrive("+1004", 4, at(7)), assigned("bob", "+1004"))
	// Everyone full: the next two wait in arrival order.
	requireEffects(t, e.Arrive("+1005", 5, at(8)))
	requireEffects(t, e.Arrive("+1006", 6, at(9)))
	if got := e.Waiting(); !reflect.DeepEqual(got, []string{"+1005", "+1006"}) {
		t.Fatalf("waiting = %v", got)
	}
	// A message in an assigned conversation stays with its agent.
	requireEffects(t, e.Arrive("+1001", 7, at(10)))
	if e.Owner("+1001") != "alice" {
		t.Fatalf("owner = %q", e.Owner("+1001"))
	}
	// bob releases one: the oldest waiting conversation goes to him.
	effs, ok := e.Release("bob", "+1002", at(11))
	if !ok {
		t.Fatal("release refused")
	}
	requireEffects(t, effs, released("bob", "+1002", ReasonReleased), assigned("bob", "+1005"))
	if got := e.Waiting(); !reflect.DeepEqual(got, []string{"+1006"}) {
		t.Fatalf("waiting = %v", got)
	}
	// Releasing a conversation that is not yours changes nothing.
	if _, ok := e.Release("alice", "+1005", at(12)); ok {
		t.Fatal("released another agent's conversation")
	}
}

func TestStickyToPreviousAgent(t *testing.T) {
	e := New(0)
	e.Connect("alice", at(0))
	e.Connect("bob", at(0))
	e.Available("alice", 3, at(0))
	e.Available("bob", 3, at(0))
	requireEffects(t, e.Arrive("+2001", 1, at(1)), assigned("alice", "+2001"))
	e.Release("alice", "+2001", at(2))
	// alice has load 0 and bob load 0 but bob idled longer; sticky wins.
	requireEffects(t, e.Arrive("+2001", 2, at(3)), assigned("alice", "+2001"))
	e.Release("alice", "+2001", at(4))
	// Previous agent away: goes elsewhere.
	e.Away("alice")
	requireEffects(t, e.Arrive("+2001", 3, at(5)), assigned("bob", "+2001"))
}

func TestStickyOnlyWhenFree(t *testing.T) {
	e := New(0)
	e.Connect("alice", at(0))
	e.Connect("bob", at(0))
	e.Available("alice", 1, at(0))
	e.Available("bob", 1, at(0))
	e.Arrive("+3001", 1, at(1)) // alice
	e.Release("alice", "+3001", at(2))
	e.Arrive("+3002", 2, at(3)) // alice again (sticky none; alice lastAssn 1 < bob 0? no: bob idle longer)
	if e.Owner("+3002") != "bob" {
		t.Fatalf("+3002 owner = %q, want bob (idle longest)", e.Owner("+3002"))
	}
	e.Arrive("+3003", 3, at(4)) // alice
	// +3001 returns; alice (its previous agent) is full, bob is full: waits.
	requireEffects(t, e.Arrive("+3001", 4, at(5)))
	// bob frees first: +3001 goes to bob, not kept for alice.
	effs, _ := e.Release("bob", "+3002", at(6))
	requireEffects(t, effs, released("bob", "+3002", ReasonReleased), assigned("bob", "+3001"))
}

func TestAwayAndCapacity(t *testing.T) {
	e := New(2)
	e.Connect("alice", at(0))
	requireEffects(t, e.Arrive("+4001", 1, at(1))) // not available yet: waits
	requireEffects(t, e.Available("alice", 0, at(2)), assigned("alice", "+4001"))
	if l := e.LoadOf("alice"); l.Capacity != 2 || l.Active != 1 {
		t.Fatalf("load = %+v (default capacity 2)", l)
	}
	e.Away("alice")
	requireEffects(t, e.Arrive("+4002", 2, at(3)))
	// Lowering capacity below load evicts nothing; raising it offers waiting ones.
	requireEffects(t, e.Available("alice", 1, at(4)))
	requireEffects(t, e.Available("alice", 2, at(5)), assigned("alice", "+4002"))
}

func TestGracePeriod(t *testing.T) {
	e := New(0)
	ep := e.Connect("alice", at(0))
	e.Connect("bob", at(0))
	e.Available("alice", 1, at(0))
	e.Arrive("+5001", 1, at(1)) // alice (bob not available)
	if !e.Disconnect("alice", ep) {
		t.Fatal("alice should be offline with conversations")
	}
	// Reconnect within grace: she keeps it; the old epoch's expiry is ignored.
	ep2 := e.Connect("alice", at(5))
	requireEffects(t, e.Expire("alice", ep, at(31)))
	if e.Owner("+5001") != "alice" {
		t.Fatal("lost conversation across reconnect")
	}
	if got := e.Conversations("alice"); !reflect.DeepEqual(got, []string{"+5001"}) {
		t.Fatalf("conversations = %v", got)
	}
	// Disconnect again and let the grace period run out: requeued, offered to bob.
	e.Disconnect("alice", ep2)
	e.Available("bob", 1, at(40))
	requireEffects(t, e.Expire("alice", ep2, at(70)),
		released("alice", "+5001", ReasonTimeout), assigned("bob", "+5001"))
	// A stale disconnect of a superseded connection does nothing.
	ep3 := e.Connect("carol", at(71))
	e.Connect("carol", at(72))
	if e.Disconnect("carol", ep3) {
		t.Fatal("stale disconnect took effect")
	}
}

func TestRequeueKeepsArrivalOrder(t *testing.T) {
	e := New(0)
	ep := e.Connect("alice", at(0))
	e.Available("alice", 2, at(0))
	e.Arrive("+6001", 10, at(1))
	e.Arrive("+6002", 20, at(2))
	e.Connect("bob", at(3))
	e.Available("bob", 1, at(3))
	e.Arrive("+6003", 30, at(4)) // bob
	e.Arrive("+6004", 25, at(5)) // waits (seq 25)
	e.Disconnect("alice", ep)
	e.Expire("alice", ep, at(40))
	if got, want := e.Waiting(), []string{"+6001", "+6002", "+6004"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("waiting = %v, want %v", got, want)
	}
}

func TestRestore(t *testing.T) {
	e := New(0)
	epochs := e.Restore([]Conversation{
		{Phone: "+7001", Agent: "alice", LastAgent: "alice"},
		{Phone: "+7002", Waiting: true, WaitSeq: 9},
		{Phone: "+7003", Waiting: true, WaitSeq: 3},
		{Phone: "+7004", LastAgent: "bob"},
	}, at(0))
	if !reflect.DeepEqual(epochs, map[string]uint64{"alice": 0}) {
		t.Fatalf("epochs = %v", epochs)
	}
	if got := e.Waiting(); !reflect.DeepEqual(got, []string{"+7003", "+7002"}) {
		t.Fatalf("waiting = %v", got)
	}
	e.Connect("alice", at(1))
	requireEffects(t, e.Available("alice", 2, at(1)), assigned("alice", "+7003"))
	requireEffects(t, e.Expire("alice", 0, at(30))) // reconnected: nothing
}

func TestAdopt(t *testing.T) {
	e := New(0)
	e.Connect("bob", at(0))
	e.Available("bob", 1, at(0))
	e.Arrive("+8001", 1, at(1)) // this log gave it to bob
	// What other nodes had before the log was replaced.
	requireEffects(t, e.Adopt(Conversation{Phone: "+8001", Agent: "carol"}, 2, at(2))) // known: kept
	requireEffects(t, e.Adopt(Conversation{Phone: "+8002", Agent: "alice", LastAgent: "alice"}, 3, at(2)),
		assigned("alice", "+8002")) // alice is new here: offline, holding it
	if l := e.LoadOf("alice"); l.Online || l.Active != 1 {
		t.Fatalf("alice = %+v, want offline with one conversation", l)
	}
	if got := e.Offline(); !reflect.DeepEqual(got, map[string]uint64{"alice": 0}) {
		t.Fatalf("offline = %v: alice needs a grace timer at epoch 0", got)
	}
	requireEffects(t, e.Adopt(Conversation{Phone: "+8003", Agent: "bob"}, 4, at(3))) // bob is full: it waits
	requireEffects(t, e.Adopt(Conversation{Phone: "+8004", Waiting: true, WaitSeq: 99}, 5, at(3)))
	requireEffects(t, e.Adopt(Conversation{Phone: "+8005", LastAgent: "bob"}, 6, at(3))) // nothing to hold
	if got, want := e.Waiting(), []string{"+8003", "+8004"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("waiting = %v, want %v (in adoption order, not the old WaitSeq)", got, want)
	}
	// bob frees a place: +8003 goes back to him first.
	effs, _ := e.Release("bob", "+8001", at(4))
	requireEffects(t, effs, released("bob", "+8001", ReasonReleased), assigned("bob", "+8003"))
	// alice comes back within her grace period and keeps hers.
	e.Connect("alice", at(5))
	requireEffects(t, e.Expire("alice", 0, at(30)))
	if e.Owner("+8002") != "alice" {
		t.Fatalf("+8002 owner = %q", e.Owner("+8002"))
	}
	checkInvariants(t, e)
}

// TestInvariantsUnderRandomEvents drives the engine with random events and
// checks after each step: no agent above the capacity it accepted work at,
// one agent per conversation, waiting conversations have no agent, and no
// free agent coexists with a waiting conversation.
func TestInvariantsUnderRandomEvents(t *testing.T) {
	for seed := uint64(0); seed < 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(seed, 1))
			e := New(0)
			agents := []string{"a", "b", "c", "d"}
			epochs := map[string]uint64{}
			caps := map[string]int{}
			var seq uint64
			for step := 0; step < 2000; step++ {
				now := at(step)
				var effs []Effect
				ag := agents[r.IntN(len(agents))]
				phone := fmt.Sprintf("+1555%04d", r.IntN(40))
				adopted := ""
				switch r.IntN(9) {
				case 0:
					epochs[ag] = e.Connect(ag, now)
				case 1:
					caps[ag] = 1 + r.IntN(4)
					effs = e.Available(ag, caps[ag], now)
				case 2:
					e.Away(ag)
				case 3:
					e.Disconnect(ag, epochs[ag])
				case 4:
					effs = e.Expire(ag, epochs[ag], now)
				case 5:
					if ps := e.Conversations(ag); len(ps) > 0 {
						effs, _ = e.Release(ag, ps[r.IntN(len(ps))], now)
					}
				case 7:
					// A conversation another node held before the log was replaced.
					seq++
					c := Conversation{Phone: phone, Waiting: r.IntN(2) == 0}
					if !c.Waiting {
						c.Agent, adopted = ag, phone
					}
					effs = e.Adopt(c, seq, now)
				default:
					seq++
					effs = e.Arrive(phone, seq, now)
				}
				for _, ef := range effs {
					if ef.Phone == adopted && ef.Agent == ag {
						// Given back to its holder, online or not, never beyond
						// the capacity of an online one.
						if l := e.LoadOf(ag); l.Online && l.Active > l.Capacity {
							t.Fatalf("step %d: adopted %s beyond capacity: %+v", step, ef.Phone, l)
						}
						continue
					}
					// Capacity holds for every assignment made.
					if l := e.LoadOf(ef.Agent); ef.Kind == Assigned && (l.Active > l.Capacity || !l.Available) {
						t.Fatalf("step %d: assigned %s to %+v", step, ef.Phone, l)
					}
				}
				checkInvariants(t, e)
			}
		})
	}
}

func checkInvariants(t *testing.T, e *Engine) {
	t.Helper()
	owners := map[string]string{}
	for name, a := range e.agents {
		for p := range a.convs {
			if prev, dup := owners[p]; dup {
				t.Fatalf("%s held by %s and %s", p, prev, name)
			}
			owners[p] = name
			if e.convs[p].agent != name {
				t.Fatalf("%s: agent map says %s, conversation says %q", p, name, e.convs[p].agent)
			}
		}
	}
	for p, c := range e.convs {
		if c.agent != "" && owners[p] != c.agent {
			t.Fatalf("%s: conversation says %s, agent does not hold it", p, c.agent)
		}
		if c.waiting && c.agent != "" {
			t.Fatalf("%s waiting but held by %s", p, c.agent)
		}
	}
	for _, c := range e.waiting {
		// Only a conversation put back in the line by the one free agent
		// waits while an agent is free (flow.go).
		if a := e.freeExcept(c.avoid); a != nil {
			t.Fatalf("%s waiting (avoiding %q) while %s is free", c.phone, c.avoid, a.name)
		}
	}
	for i, a := range e.freeAgents {
		if !a.free() || a.heapIdx != i {
			t.Fatalf("free heap holds %s (free=%v idx=%d/%d)", a.name, a.free(), a.heapIdx, i)
		}
	}
	for _, a := range e.agents {
		if a.free() && a.heapIdx < 0 {
			t.Fatalf("%s is free but not in the heap", a.name)
		}
	}
}

// EachLoad visits exactly the loads Loads lists, in any order.
func TestEachLoadMatchesLoads(t *testing.T) {
	e := New(0)
	for i, name := range []string{"carol", "alice", "bob"} {
		e.Connect(name, at(i))
		e.Available(name, 2, at(i))
	}
	e.Arrive("+1001", 1, at(5))
	e.Away("bob")
	got := map[string]Load{}
	e.EachLoad(func(l Load) { got[l.Agent] = l })
	want := e.Loads()
	if len(got) != len(want) {
		t.Fatalf("EachLoad visited %d agents, Loads lists %d", len(got), len(want))
	}
	for _, l := range want {
		if got[l.Agent] != l {
			t.Errorf("EachLoad %+v, Loads %+v", got[l.Agent], l)
		}
	}
}
