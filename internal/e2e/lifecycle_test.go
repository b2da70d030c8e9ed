package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

func names(ts ...string) map[string]any { return map[string]any{"mirror_topic_names": ts} }

func resultErr(t *testing.T, r alterResults, i int) (int, string) {
	t.Helper()
	if i >= len(r.Data) {
		t.Fatalf("no result %d in %+v", i, r)
	}
	if r.Data[i].ErrorCode == nil {
		return 0, ""
	}
	return *r.Data[i].ErrorCode, *r.Data[i].ErrorMessage
}

// produceToMirror writes to the destination topic (once it is writable) and
// returns the offsets the records landed on, by partition.
func produceToMirror(t *testing.T, cl *kgo.Client, topic string, partitions int32) map[int32]int64 {
	t.Helper()
	got := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		r := &kgo.Record{Topic: topic, Partition: p, Value: []byte("written after the stop")}
		pr := testutil.Client(t, nil, kgo.SeedBrokers(cl.OptValue(kgo.SeedBrokers).([]string)...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		res := pr.ProduceSync(context.Background(), r)
		if err := res.FirstErr(); err != nil {
			t.Fatalf("produce to %s[%d]: %v", topic, p, err)
		}
		got[p] = res[0].Record.Offset
	}
	return got
}

// TestPromoteWaitsForLag pauses a mirror, lets the source move on, and
// promotes: the promote copies the rest, then stops; the topic is writable
// at the next offsets.
func TestPromoteWaitsForLag(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "p", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "p", 200)
	e.createLink("l1", nil)
	e.createMirror("l1", "p")
	e.waitCaughtUp("p", "p")
	e.alter("l1", "pause", names("p"), "")
	produceMixed(t, e.src.ListenAddrs(), "p", 300)
	testutil.WaitFor(t, 10*time.Second, "lag visible", func() error {
		if lag := e.describe("l1", "p").totalLag(); lag != 1500 {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})

	r := e.alter("l1", "promote", names("p"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("promote: %d %s", code, msg)
	}
	v := e.describe("l1", "p")
	if v.MirrorStatus != "STOPPED" || v.totalLag() != 0 {
		t.Fatalf("after promote: %s, lag %d", v.MirrorStatus, v.totalLag())
	}
	e.assertIdentical("p", "p")
	_, ends := testutil.Offsets(t, e.dstCl, "p")
	got := produceToMirror(t, e.dstCl, "p", 2)
	for p, off := range got {
		if off != ends[p] {
			t.Fatalf("partition %d: write after promote landed at %d, want %d", p, off, ends[p])
		}
	}
	// Every operation on a stopped mirror is refused, with Confluent's text.
	for _, op := range []string{"promote", "failover", "pause", "resume"} {
		r := e.alter("l1", op, names("p"), "")
		code, msg := resultErr(t, r, 0)
		if code != 400 || msg != "Topic 'p' has already stopped its mirror from 'l1'" {
			t.Fatalf("%s on a stopped mirror: %d %q", op, code, msg)
		}
	}
}

// TestPromoteRefusedWhenSourceDown: with the source gone, promote answers
// with an error for the topic and the mirror stays as it was.
func TestPromoteRefusedWhenSourceDown(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "p", 1, nil)
	produceMixed(t, e.src.ListenAddrs(), "p", 20)
	e.createLink("l1", map[string]string{"request.timeout.ms": "2000"})
	e.createMirror("l1", "p")
	e.waitCaughtUp("p", "p")
	e.src.Close()
	r := e.alter("l1", "promote", names("p"), "")
	code, msg := resultErr(t, r, 0)
	if code != 400 || !strings.Contains(msg, "source cluster is not reachable") {
		t.Fatalf("promote with the source down: %d %q", code, msg)
	}
	if v := e.describe("l1", "p"); v.MirrorStatus != "ACTIVE" {
		t.Fatalf("mirror is %s after a refused promote", v.MirrorStatus)
	}
}

// TestPromoteTimesOut: a mirror that cannot catch up (here the destination
// refuses its writes with a retriable error) makes the promote give up
// within its bound, and the mirror goes back to its previous status.
func TestPromoteTimesOut(t *testing.T) {
	e := newEnvWith(t, &env{promoteTimeout: 2 * time.Second})
	testutil.CreateTopic(t, e.srcCl, "busy", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "busy")
	e.waitStatus("l1", "busy", "ACTIVE")
	e.alter("l1", "pause", names("busy"), "")
	produceMixed(t, e.src.ListenAddrs(), "busy", 20)
	td, err := kadm.NewClient(e.dstCl).ListTopics(context.Background(), "busy")
	if err != nil {
		t.Fatal(err)
	}
	busyID := td["busy"].ID
	var block atomic.Bool
	block.Store(true) // the state topic still takes writes
	refuseProduce(e.dst, &block, func(topic string, id [16]byte) bool { return topic == "busy" || id == busyID })
	start := time.Now()
	r := e.alter("l1", "promote", names("busy"), "")
	code, msg := resultErr(t, r, 0)
	if code != 400 || !strings.Contains(msg, "did not catch up") {
		t.Fatalf("promote of a mirror that cannot catch up: %d %q", code, msg)
	}
	if took := time.Since(start); took > 15*time.Second {
		t.Fatalf("promote took %v, its bound is 2s", took)
	}
	if v := e.describe("l1", "busy"); v.MirrorStatus != "PAUSED" {
		t.Fatalf("mirror is %s after a failed promote, want PAUSED as before", v.MirrorStatus)
	}
}

// TestFailoverReportsLagLeftBehind fails over a lagging mirror: it stops at
// once, the response and describe report what was left behind, and the
// topic takes writes at the next offsets.
func TestFailoverReportsLagLeftBehind(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "f", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "f", 100)
	e.createLink("l1", nil)
	e.createMirror("l1", "f")
	e.waitCaughtUp("f", "f")
	e.alter("l1", "pause", names("f"), "")
	_, mirrorEnds := testutil.Offsets(t, e.dstCl, "f")
	produceMixed(t, e.src.ListenAddrs(), "f", 40)

	r := e.alter("l1", "failover", names("f"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	_, srcEnds := testutil.Offsets(t, e.srcCl, "f")
	var left int64
	for _, l := range r.Data[0].MirrorLags {
		want := srcEnds[int32(l.Partition)] - mirrorEnds[int32(l.Partition)]
		if l.Lag != want || l.LastSourceFetchOffset != srcEnds[int32(l.Partition)] {
			t.Fatalf("partition %d: lag %d (source %d), want %d (source %d)", l.Partition, l.Lag, l.LastSourceFetchOffset, want, srcEnds[int32(l.Partition)])
		}
		left += l.Lag
	}
	if left != 200 {
		t.Fatalf("failover reports %d records left behind, want 200", left)
	}
	v := e.describe("l1", "f")
	if v.MirrorStatus != "STOPPED" || v.totalLag() != 200 {
		t.Fatalf("after failover: %s, lag %d", v.MirrorStatus, v.totalLag())
	}
	got := produceToMirror(t, e.dstCl, "f", 2)
	for p, off := range got {
		if off != mirrorEnds[p] {
			t.Fatalf("partition %d: write after failover at %d, want %d", p, off, mirrorEnds[p])
		}
	}
}

// TestFailoverOfFailedAndUnavailable: failover works from FAILED and from
// SOURCE_UNAVAILABLE, where promote is refused.
func TestFailoverOfFailedAndUnavailable(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "plain", 1, nil)
	e.createLink("l1", map[string]string{"availability.check.ms": "200", "availability.check.consecutive.failure.threshold": "2", "request.timeout.ms": "1000"})
	e.failMirror("l1", "table")
	e.createMirror("l1", "plain")
	r := e.alter("l1", "promote", names("table"), "")
	if code, _ := resultErr(t, r, 0); code != 400 {
		t.Fatalf("promote of a failed mirror was not refused")
	}
	r = e.alter("l1", "failover", names("table"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("failover of a failed mirror: %d %s", code, msg)
	}
	e.waitStatus("l1", "table", "STOPPED")

	e.waitStatus("l1", "plain", "ACTIVE")
	e.src.Close()
	e.waitStatus("l1", "plain", "SOURCE_UNAVAILABLE")
	r = e.alter("l1", "promote", names("plain"), "")
	if code, msg := resultErr(t, r, 0); code != 400 || !strings.Contains(msg, "unavailable") {
		t.Fatalf("promote while the source is unavailable: %d %q", code, msg)
	}
	r = e.alter("l1", "failover", names("plain"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("failover while the source is unavailable: %d %s", code, msg)
	}
	e.waitStatus("l1", "plain", "STOPPED")
}

// TestValidateOnlyLifecycle: validate_only runs the checks of promote and
// failover and changes nothing.
func TestValidateOnlyLifecycle(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "v", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "v")
	e.waitStatus("l1", "v", "ACTIVE")
	for _, op := range []string{"promote", "failover", "pause"} {
		r := e.alter("l1", op, names("v", "nope"), "?validate_only=true")
		if code, msg := resultErr(t, r, 0); code != 0 {
			t.Fatalf("%s validate_only: %d %s", op, code, msg)
		}
		if code, _ := resultErr(t, r, 1); code != 404 {
			t.Fatalf("%s validate_only on a missing topic: %d", op, code)
		}
		if v := e.describe("l1", "v"); v.MirrorStatus != "ACTIVE" {
			t.Fatalf("%s validate_only changed the status to %s", op, v.MirrorStatus)
		}
	}
}

// TestDeleteMirrorTopic deletes a mirror topic the way the Terraform
// provider does, then polls the mirror until 404.
func TestDeleteMirrorTopic(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "d", 1, nil)
	produceMixed(t, e.src.ListenAddrs(), "d", 10)
	e.createLink("l1", nil)
	e.createMirror("l1", "d")
	e.waitCaughtUp("d", "d")
	e.api.JSON("DELETE", "/topics/d", nil, http.StatusNoContent, nil)
	e.api.JSON("GET", "/links/l1/mirrors/d", nil, http.StatusNotFound, nil)
	td, err := kadm.NewClient(e.dstCl).ListTopics(context.Background(), "d")
	if err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 10*time.Second, "topic gone", func() error {
		td, err = kadm.NewClient(e.dstCl).ListTopics(context.Background(), "d")
		if err != nil {
			return err
		}
		if d, ok := td["d"]; ok && d.Err == nil {
			return fmt.Errorf("topic d still exists")
		}
		return nil
	})
	e.api.JSON("DELETE", "/topics/d", nil, http.StatusNotFound, nil)
	// The mirror can be created again now.
	e.createMirror("l1", "d")
	e.waitCaughtUp("d", "d")
	e.assertIdentical("d", "d")
}

// TestSourceTopicChanges: a source topic deleted, re-created, or re-created
// with fewer partitions fails its mirror with the matching error.
func TestSourceTopicChanges(t *testing.T) {
	cases := []struct {
		name      string
		recreate  int32 // 0: do not re-create
		wantError string
	}{
		{"deleted", 0, "SOURCE_TOPIC_MAY_BE_DELETED"},
		{"re-created", 2, "SOURCE_TOPIC_ID_CHANGED"},
		{"fewer partitions", 1, "SOURCE_PARTITIONS_DECREASED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			testutil.CreateTopic(t, e.srcCl, "s", 2, nil)
			produceMixed(t, e.src.ListenAddrs(), "s", 10)
			e.createLink("l1", nil)
			e.createMirror("l1", "s")
			e.waitCaughtUp("s", "s")
			adm := kadm.NewClient(e.srcCl)
			if _, err := adm.DeleteTopics(context.Background(), "s"); err != nil {
				t.Fatal(err)
			}
			if tc.recreate > 0 {
				testutil.WaitFor(t, 10*time.Second, "re-create", func() error {
					resp, err := adm.CreateTopic(context.Background(), tc.recreate, -1, nil, "s")
					if err == nil {
						err = resp.Err
					}
					return err
				})
			}
			v := e.waitStatus("l1", "s", "FAILED")
			if v.MirrorTopicError != tc.wantError || len(v.TransitionErrors) == 0 || v.TransitionErrors[0].ErrorCode != tc.wantError {
				t.Fatalf("mirror_topic_error %s, transition errors %+v; want %s", v.MirrorTopicError, v.TransitionErrors, tc.wantError)
			}
		})
	}
}

// TestForeignWriteFailsMirror: a record written to a mirror topic by
// someone else is detected, and the mirror fails rather than copying
// around it: when the next source batch lands elsewhere than its source
// offset, while the mirror is idle (its end moved without Strait), and
// when Strait starts and finds a tail that is not the source's.
func TestForeignWriteFailsMirror(t *testing.T) {
	cases := []struct {
		name string
		// after runs once the foreign record is on the mirror.
		after func(e *env)
	}{
		{"next batch", func(e *env) { produceMixed(e.t, e.src.ListenAddrs(), "fw", 10) }},
		{"idle", func(e *env) {}},
		{"while stopped", nil},
		{"while stopped, source moved on", func(e *env) { produceMixed(e.t, e.src.ListenAddrs(), "fw", 10) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			testutil.CreateTopic(t, e.srcCl, "fw", 1, nil)
			produceMixed(t, e.src.ListenAddrs(), "fw", 10)
			e.createLink("l1", nil)
			e.createMirror("l1", "fw")
			e.waitCaughtUp("fw", "fw")
			e.waitStatus("l1", "fw", "ACTIVE")
			if tc.after == nil || strings.HasPrefix(tc.name, "while stopped") {
				e.stopDaemon()
				produceToMirror(t, e.dstCl, "fw", 1)
				if tc.after != nil {
					tc.after(e)
				}
				e.startDaemon()
			} else {
				produceToMirror(t, e.dstCl, "fw", 1)
				tc.after(e)
			}
			v := e.waitStatus("l1", "fw", "FAILED")
			// A mirror longer than its source could also be a source that
			// lost records, and says so.
			if (v.MirrorTopicError != "ILLEGAL_STATE" && v.MirrorTopicError != "UNEXPECTED_TRUNCATION") || len(v.TransitionErrors) == 0 || !strings.Contains(v.TransitionErrors[0].ErrorMessage, "other than Strait wrote") {
				t.Fatalf("foreign write reported as %s %+v", v.MirrorTopicError, v.TransitionErrors)
			}
		})
	}
}

// TestSourceOutageAndRecovery stops the source cluster: the link turns
// UNAVAILABLE and the mirror SOURCE_UNAVAILABLE within the configured time
// (with the default request.timeout.ms: a probe fails within
// availability.check.ms, at least 1 s); the source comes back on the same
// port and data dir and the mirror returns to ACTIVE by itself with an
// identical copy. state_time_ms moves with each change, and with a link
// pause.
func TestSourceOutageAndRecovery(t *testing.T) {
	dir := t.TempDir()
	e := newEnv(t, kfake.DataDir(dir))
	testutil.CreateTopic(t, e.srcCl, "o", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "o", 100)
	e.createLink("l1", map[string]string{"availability.check.ms": "250", "availability.check.consecutive.failure.threshold": "2"})
	e.createMirror("l1", "o")
	e.waitCaughtUp("o", "o")
	addr := e.src.ListenAddrs()[0]
	port := addr[strings.LastIndex(addr, ":")+1:]
	active := e.describe("l1", "o")
	moved := func(what string, before, after mirrorView) {
		t.Helper()
		if after.StateTimeMs <= before.StateTimeMs {
			t.Fatalf("%s: state_time_ms %d, was %d (%s)", what, after.StateTimeMs, before.StateTimeMs, before.MirrorStatus)
		}
	}

	e.src.Close()
	start := time.Now()
	e.waitStatus("l1", "o", "SOURCE_UNAVAILABLE")
	took := time.Since(start)
	t.Logf("SOURCE_UNAVAILABLE after %v", took)
	// 0.5 s of failures, a probe interval, a 1 s probe: well under 10 s,
	// where a probe that waited for the 30 s request timeout took 15 s.
	if took > 10*time.Second {
		t.Fatalf("SOURCE_UNAVAILABLE after %v with availability.check.ms 250 x 2", took)
	}
	unavailable := e.describe("l1", "o")
	moved("SOURCE_UNAVAILABLE", active, unavailable)
	var link struct {
		LinkState        string  `json:"link_state"`
		LinkError        string  `json:"link_error"`
		LinkErrorMessage *string `json:"link_error_message"`
	}
	e.api.JSON("GET", "/links/l1", nil, http.StatusOK, &link)
	if link.LinkState != "UNAVAILABLE" || link.LinkError == "NO_ERROR" || link.LinkErrorMessage == nil {
		t.Fatalf("link during the outage: %+v", link)
	}

	var p int
	fmt.Sscan(port, &p)
	src, err := kfake.NewCluster(kfake.ClusterID("source-cluster"), kfake.DataDir(dir), kfake.Ports(p))
	if err != nil {
		t.Fatalf("restart source: %v", err)
	}
	t.Cleanup(src.Close)
	e.src = src
	e.srcCl = testutil.Client(t, src.ListenAddrs())
	produceMixed(t, src.ListenAddrs(), "o", 50) // written after the outage
	e.waitStatus("l1", "o", "ACTIVE")
	e.waitCaughtUp("o", "o")
	if n := e.assertIdentical("o", "o"); n != 750 {
		t.Fatalf("%d records after the outage, want 750", n)
	}
	e.api.JSON("GET", "/links/l1", nil, http.StatusOK, &link)
	if link.LinkState != "ACTIVE" || link.LinkError != "NO_ERROR" {
		t.Fatalf("link after the outage: %+v", link)
	}
	back := e.describe("l1", "o")
	moved("ACTIVE again", unavailable, back)

	e.api.JSON("PUT", "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	e.waitStatus("l1", "o", "LINK_PAUSED")
	paused := e.describe("l1", "o")
	moved("LINK_PAUSED", back, paused)
	e.api.JSON("PUT", "/links/l1/configs/cluster.link.paused", map[string]any{"value": "false"}, http.StatusNoContent, nil)
	e.waitStatus("l1", "o", "ACTIVE")
	moved("ACTIVE after the link pause", paused, e.describe("l1", "o"))
}

// fourStatesEnv starts an env whose link "l1" has a mirror in each stored
// state: "active", "paused", "stopped" (failed over) and "failed".
func fourStatesEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	for _, topic := range []string{"active", "paused", "stopped"} {
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
	}
	e.createLink("l1", nil)
	e.failMirror("l1", "failed")
	for _, topic := range []string{"active", "paused", "stopped"} {
		e.createMirror("l1", topic)
	}
	e.waitStatus("l1", "active", "ACTIVE")
	e.alter("l1", "pause", names("paused"), "")
	e.alter("l1", "failover", names("stopped"), "")
	return e
}

// TestStatesSurviveRestart restarts the daemon and checks every stored
// state and its details came back.
func TestStatesSurviveRestart(t *testing.T) {
	e := fourStatesEnv(t)
	before := map[string]mirrorView{}
	for _, topic := range []string{"active", "paused", "stopped", "failed"} {
		before[topic] = e.describe("l1", topic)
	}
	e.stopDaemon()
	e.startDaemon()
	for topic, b := range before {
		a := e.describe("l1", topic)
		if a.MirrorStatus != b.MirrorStatus || a.StateTimeMs != b.StateTimeMs || a.MirrorTopicError != b.MirrorTopicError || len(a.TransitionErrors) != len(b.TransitionErrors) {
			t.Fatalf("%s: before restart %+v, after %+v", topic, b, a)
		}
	}
}
