package mirror

import (
	"fmt"
	"testing"
)

// idleFetcher is a fetcher, without its loop, over topics x partitions
// ready partitions, added in no particular order.
func idleFetcher(topics, partitions int) (*fetcher, []*part) {
	r := &Runner{cfg: Config{BufferBytes: 1 << 30, PartitionBufferBytes: 1 << 20}}
	f := &fetcher{r: r, parts: map[*part]struct{}{}, ids: map[[16]byte]string{}}
	var ps []*part
	for i := topics - 1; i >= 0; i-- {
		t := &topicRun{spec: Spec{Topic: fmt.Sprintf("t%03d", i), SourceTopic: fmt.Sprintf("t%03d", i)}, kick: &r.kick, buffered: &r.buffered}
		for j := partitions - 1; j >= 0; j-- {
			p := newPart(t, int32(j), new(PartitionCounters))
			p.ready, p.fetchOffset = true, int64(10*j)
			f.add(p)
			ps = append(ps, p)
		}
	}
	return f, ps
}

// TestFetcherIdleRoundsAreCheap: the fetcher's partitions come out sorted
// by topic and partition and rotated; an idle round (nothing moved, the
// session holds every partition) sorts nothing, plans nothing and
// allocates nothing; a change of the set sorts again; a response is
// matched to the round's partitions.
func TestFetcherIdleRoundsAreCheap(t *testing.T) {
	f, ps := idleFetcher(20, 10)
	pos, full := f.snapshot()
	if full || len(pos) != len(ps) {
		t.Fatalf("snapshot: %d partitions, full %v", len(pos), full)
	}
	for i := 1; i < len(f.ready); i++ {
		if comparePart(f.ready[i-1].p, f.ready[i].p) >= 0 {
			t.Fatalf("not in order at %d", i)
		}
	}
	if pos[0].p != f.ready[1].p {
		t.Fatal("the round is not rotated")
	}
	// The broker took a full request: the session holds everything.
	send, forget := f.sess.plan(pos)
	if len(send) != len(ps) || len(forget) != 0 {
		t.Fatalf("first plan: send %d, forget %d", len(send), len(forget))
	}
	f.sess.sent(7, send, forget)

	allocs := testing.AllocsPerRun(50, func() {
		pos, _ := f.snapshot()
		send, forget := f.sess.plan(pos)
		if len(send) != 0 || len(forget) != 0 {
			t.Fatalf("idle plan: send %d, forget %d", len(send), len(forget))
		}
	})
	if allocs != 0 {
		t.Fatalf("an idle round allocates %.0f times", allocs)
	}
	if f.dirty {
		t.Fatal("dirty without a change")
	}

	// One partition moved on: only it is sent.
	ps[5].fetchOffset++
	pos, _ = f.snapshot()
	if send, _ := f.sess.plan(pos); len(send) != 1 || send[0].p != ps[5] {
		t.Fatalf("after one moved: send %v", send)
	}
	// One left the fetcher: it is forgotten, and the order is rebuilt.
	f.remove(ps[7])
	if !f.dirty {
		t.Fatal("removing a partition left the order as it was")
	}
	pos, _ = f.snapshot()
	if _, forget := f.sess.plan(pos); len(forget) != 1 || forget[0].part != ps[7].id || forget[0].topic != ps[7].t.spec.SourceTopic {
		t.Fatalf("after one left: forget %v", forget)
	}
	if len(f.order) != len(ps)-1 {
		t.Fatalf("order holds %d partitions", len(f.order))
	}
	send, forget = f.sess.plan(pos)
	f.sess.sent(7, send, forget)
	if ps[7].sess != (sessMark{}) {
		t.Fatalf("a forgotten partition keeps its mark %+v", ps[7].sess)
	}
	pos, _ = f.snapshot()
	if send, forget := f.sess.plan(pos); len(send) != 0 || len(forget) != 0 {
		t.Fatalf("idle after the changes: send %d, forget %d", len(send), len(forget))
	}
	// A partition answered with an error is sent again.
	f.sess.drop(ps[3])
	pos, _ = f.snapshot()
	if send, _ := f.sess.plan(pos); len(send) != 1 || send[0].p != ps[3] {
		t.Fatalf("after a drop: send %v", send)
	}
	// A new session holds nothing: every mark is stale.
	f.sess.reset()
	pos, _ = f.snapshot()
	for _, fp := range pos {
		if fp.held || fp.same {
			t.Fatalf("%s/%d held by a session that was reset", fp.p.t.spec.Topic, fp.p.id)
		}
	}
	if send, _ := f.sess.plan(pos); len(send) != len(pos) {
		t.Fatalf("a new session sends %d of %d", len(send), len(pos))
	}
	// A response is matched by topic and partition.
	want := ps[12]
	if fp, ok := f.lookup(want.t.spec.SourceTopic, want.id); !ok || fp.p != want || fp.offset != want.fetchOffset {
		t.Fatalf("lookup: %+v, %v", fp, ok)
	}
	if _, ok := f.lookup(ps[7].t.spec.SourceTopic, ps[7].id); ok {
		t.Fatal("lookup found a partition that left")
	}
	if _, ok := f.lookup("nope", 0); ok {
		t.Fatal("lookup found an unknown topic")
	}
}
