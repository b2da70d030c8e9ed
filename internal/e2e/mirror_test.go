package e2e

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestMirrorPauseResume is the core flow over HTTP: a link and a mirror
// created through the API, more than 10,000 records in every codec copied
// with identical offsets, then pause (the destination stops, the lag is
// reported) and resume (identical again).
func TestMirrorPauseResume(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", 3, nil)
	produced := produceMixed(t, e.src.ListenAddrs(), "orders", 2100)
	e.createLink("l1", nil)
	e.createMirror("l1", "orders")

	e.waitStatus("l1", "orders", "ACTIVE")
	e.waitCaughtUp("orders", "orders")
	if n := e.assertIdentical("orders", "orders"); n != produced || n < 10000 {
		t.Fatalf("copied %d records, produced %d", n, produced)
	}

	pause := e.alter("l1", "pause", map[string]any{"mirror_topic_names": []string{"orders"}}, "")
	if len(pause.Data) != 1 || pause.Data[0].ErrorCode != nil || len(pause.Data[0].MirrorLags) != 3 {
		t.Fatalf("pause result: %+v", pause)
	}
	e.waitStatus("l1", "orders", "PAUSED")
	_, before := testutil.Offsets(t, e.dstCl, "orders")
	produceMixed(t, e.src.ListenAddrs(), "orders", 100) // 500 more
	testutil.WaitFor(t, 10*time.Second, "lag of 500 reported", func() error {
		if lag := e.describe("l1", "orders").totalLag(); lag != 500 {
			return fmt.Errorf("describe reports lag %d", lag)
		}
		return nil
	})
	again := e.alter("l1", "pause", map[string]any{"mirror_topic_names": []string{"orders"}}, "")
	var lag int64
	for _, l := range again.Data[0].MirrorLags {
		lag += l.Lag
	}
	if again.Data[0].ErrorCode != nil || lag != 500 {
		t.Fatalf("second pause: error %v, lag %d, want 500", again.Data[0].ErrorMessage, lag)
	}
	_, after := testutil.Offsets(t, e.dstCl, "orders")
	for p := range before {
		if before[p] != after[p] {
			t.Fatalf("paused mirror moved: partition %d from %d to %d", p, before[p], after[p])
		}
	}

	resume := e.alter("l1", "resume", map[string]any{"mirror_topic_names": []string{"orders"}}, "")
	if resume.Data[0].ErrorCode != nil {
		t.Fatalf("resume: %s", *resume.Data[0].ErrorMessage)
	}
	e.waitStatus("l1", "orders", "ACTIVE")
	e.waitCaughtUp("orders", "orders")
	if n := e.assertIdentical("orders", "orders"); n != produced+500 {
		t.Fatalf("copied %d records, want %d", n, produced+500)
	}
	testutil.WaitFor(t, 10*time.Second, "lag back to 0", func() error {
		if lag := e.describe("l1", "orders").totalLag(); lag != 0 {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})
}

// TestMirrorAlignsLogStart mirrors a source whose log starts above 0, in
// the middle of a batch: the mirror has the same log start and records.
func TestMirrorAlignsLogStart(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "aligned", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "aligned", 400)
	e.deleteSourceRecords("aligned", func(end int64) int64 { return end/2 + 1 })
	e.createLink("l1", nil)
	e.createMirror("l1", "aligned")
	e.waitCaughtUp("aligned", "aligned")
	testutil.WaitFor(t, 30*time.Second, "mirror log start aligned", func() error {
		srcStarts, _ := testutil.Offsets(t, e.srcCl, "aligned")
		dstStarts, _ := testutil.Offsets(t, e.dstCl, "aligned")
		for p, s := range srcStarts {
			if s == 0 {
				return fmt.Errorf("source partition %d still starts at 0", p)
			}
			if dstStarts[p] != s {
				return fmt.Errorf("partition %d: mirror starts at %d, source at %d", p, dstStarts[p], s)
			}
		}
		return nil
	})
	e.assertIdentical("aligned", "aligned")
	if v := e.describe("l1", "aligned"); v.MirrorStatus != "ACTIVE" {
		t.Fatalf("status %s", v.MirrorStatus)
	}
}

// TestMirrorStartLatest starts a mirror at the source's end.
func TestMirrorStartLatest(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "late", 1, nil)
	produceMixed(t, e.src.ListenAddrs(), "late", 20)
	e.createLink("l1", map[string]string{"mirror.start.offset.spec": "latest"})
	e.createMirror("l1", "late")
	e.waitStatus("l1", "late", "ACTIVE")
	produceMixed(t, e.src.ListenAddrs(), "late", 10)
	e.waitCaughtUp("late", "late")
	starts, ends := testutil.Offsets(t, e.dstCl, "late")
	if starts[0] != 100 || ends[0] != 150 {
		t.Fatalf("mirror spans %d-%d, want 100-150", starts[0], ends[0])
	}
	rs := testutil.ReadAll(t, e.dst.ListenAddrs(), "late")
	src := testutil.ReadAll(t, e.src.ListenAddrs(), "late")
	if diff := testutil.DiffRecords(map[int32][]*kgo.Record{0: src[0][100:]}, rs); diff != "" {
		t.Fatal(diff)
	}
}

// TestFailedMirrorRefusesResume: a FAILED mirror takes no pause or resume,
// only failover or deletion.
func TestFailedMirrorRefusesResume(t *testing.T) {
	e := newEnv(t)
	e.createLink("l1", nil)
	e.failMirror("l1", "table")
	for _, op := range []string{"resume", "pause", "promote"} {
		r := e.alter("l1", op, map[string]any{"mirror_topic_names": []string{"table"}}, "")
		if r.Data[0].ErrorCode == nil || *r.Data[0].ErrorCode != http.StatusBadRequest {
			t.Fatalf("%s of a failed mirror: %+v", op, r.Data[0])
		}
	}
}
