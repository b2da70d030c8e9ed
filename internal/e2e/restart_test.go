package e2e

import (
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestTransientStatesSurviveRestart restarts Strait while a mirror is in
// each status TestStatesSurviveRestart does not cover, and checks what the
// first describe after the restart reports and that the mirror then does
// what that status means. The statuses of a request still being answered
// (PENDING_STOPPED, PENDING_SYNCHRONIZE) can only be left behind by a crash,
// so those restarts kill `strait serve` with SIGKILL; the others are held
// in the background and survive a clean stop of an in-process daemon.
func TestTransientStatesSurviveRestart(t *testing.T) {
	for _, tc := range []struct {
		status string
		run    func(t *testing.T)
	}{
		{"LINK_PAUSED", restartLinkPaused},
		{"PENDING_STOPPED", restartPendingStopped},
		{"PENDING_SYNCHRONIZE", restartPendingSynchronize},
		{"PENDING_SETUP_FOR_RESTORE", restartPendingSetupForRestore},
		{"PENDING_RESTORE", restartPendingRestore},
	} {
		t.Run(tc.status, tc.run)
	}
}

// restartLinkPaused: a paused link stays paused across a restart, and its
// mirror copies nothing until the link is resumed.
func restartLinkPaused(t *testing.T) {
	e := newEnv(t)
	activeMirror(t, e, "lpr", 1, nil)
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	e.waitStatus("l1", "lpr", "LINK_PAUSED")
	_, ends := testutil.Offsets(t, e.dstCl, "lpr")

	e.stopDaemon()
	produceMixed(t, e.src.ListenAddrs(), "lpr", 10) // 50 records while Strait is down
	e.startDaemon()
	if v := e.describe("l1", "lpr"); v.MirrorStatus != "LINK_PAUSED" {
		t.Fatalf("mirror of a paused link is %s after a restart", v.MirrorStatus)
	}
	if l := getLinkState(t, e.api, "l1"); l.LinkState != "PAUSED" {
		t.Fatalf("paused link after a restart: %+v", l)
	}
	// The lag shows the new records are seen, and they were not copied.
	waitLag(t, e, "lpr", 50)
	if _, now := testutil.Offsets(t, e.dstCl, "lpr"); now[0] != ends[0] {
		t.Fatalf("mirror of a paused link moved from %d to %d after a restart", ends[0], now[0])
	}
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "false"}, http.StatusNoContent, nil)
	e.waitStatus("l1", "lpr", "ACTIVE")
	e.waitCaughtUp("lpr", "lpr")
	e.assertIdentical("lpr", "lpr")
}

// serveEnv is an env whose daemon is `strait serve` in a subprocess, so
// that it can be killed in the middle of a request.
func serveEnv(t *testing.T) (*env, func()) {
	t.Helper()
	bin := straitBinary(t)
	e := &env{t: t}
	e.src = testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	e.dst = testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	e.srcCl = testutil.Client(t, e.src.ListenAddrs())
	e.dstCl = testutil.Client(t, e.dst.ListenAddrs())
	addr := testutil.FreeAddr(t)
	proc := startServe(t, bin, e.dst.ListenAddrs()[0], addr)
	e.api = testutil.NewAPI(t, "http://"+addr, "/kafka/v3", "destination-cluster")
	// crash kills the daemon with SIGKILL and starts another on the same
	// address and destination.
	crash := func() {
		t.Helper()
		proc.kill()
		proc = startServe(t, bin, e.dst.ListenAddrs()[0], addr)
	}
	return e, crash
}

// stillWaiting fails the test if the alter request already answered: the
// crash must land while the operation is under way.
func stillWaiting(t *testing.T, ch <-chan alterCall) {
	t.Helper()
	select {
	case c := <-ch:
		t.Fatalf("the operation answered before the crash: %d %s %v", c.status, c.body, c.err)
	default:
	}
}

// restartPendingStopped: a crash during a promote leaves PENDING_STOPPED
// stored; the restarted Strait puts the mirror back to its status before
// the promote (PAUSED here: it copies nothing), and the promote can be
// run again.
func restartPendingStopped(t *testing.T) {
	e, crash := serveEnv(t)
	activeMirror(t, e, "pst", 1, nil)
	e.alter("l1", "pause", names("pst"), "")
	e.waitStatus("l1", "pst", "PAUSED")
	produceMixed(t, e.src.ListenAddrs(), "pst", 10)
	waitLag(t, e, "pst", 50)
	_, ends := testutil.Offsets(t, e.dstCl, "pst")

	// The destination refuses the mirror's writes: the promote cannot
	// finish and stays PENDING_STOPPED until the crash.
	id := topicID(t, e.dstCl, "pst")
	var block atomic.Bool
	block.Store(true)
	refused := refuseProduce(e.dst, &block, func(topic string, tid [16]byte) bool { return topic == "pst" || tid == id })
	done := alterAsync(e.api, "l1", "promote", "pst")
	e.waitStatus("l1", "pst", "PENDING_STOPPED")
	waitRefused(t, refused, 2)
	stillWaiting(t, done)
	crash()
	block.Store(false)

	if v := e.describe("l1", "pst"); v.MirrorStatus != "PAUSED" {
		t.Fatalf("mirror left PENDING_STOPPED by a crash is %s after the restart, want PAUSED as before the promote", v.MirrorStatus)
	}
	waitLag(t, e, "pst", 50)
	if _, now := testutil.Offsets(t, e.dstCl, "pst"); now[0] != ends[0] {
		t.Fatalf("paused mirror moved from %d to %d after the restart", ends[0], now[0])
	}
	if code, msg := resultErr(t, e.alter("l1", "promote", names("pst"), ""), 0); code != 0 {
		t.Fatalf("promote after the restart: %d %s", code, msg)
	}
	e.waitStatus("l1", "pst", "STOPPED")
	e.assertIdentical("pst", "pst")
}

// restartPendingSynchronize: a crash of B's Strait during a reverse
// leaves PENDING_SYNCHRONIZE stored; the restarted Strait finds that A
// does not mirror the topic back (the reverse never completed) and puts
// the mirror back to its previous status, and the reverse can be run
// again.
func restartPendingSynchronize(t *testing.T) {
	e, crash := serveEnv(t) // A = e.src, B = e.dst, e.api is B's Strait
	apiA := startDaemonOn(t, e.src)
	bidirectional(t, e.api, e.src, "source-cluster")
	bidirectional(t, apiA, e.dst, "destination-cluster")
	testutil.CreateTopic(t, e.srcCl, "psy", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "psy", 20)
	mirrorOn(t, e.api, "dr", "psy", "")
	waitMirrorStatus(t, e.api, "psy", "ACTIVE")
	waitEndsEqual(t, e.srcCl, e.dstCl, "psy")
	e.api.JSON(http.MethodPost, "/links/dr/mirrors:pause", names("psy"), http.StatusOK, nil)
	waitMirrorStatus(t, e.api, "psy", "PAUSED")
	produceMixed(t, e.src.ListenAddrs(), "psy", 10) // what the reverse must copy first
	_, ends := testutil.Offsets(t, e.dstCl, "psy")

	id := topicID(t, e.dstCl, "psy")
	var block atomic.Bool
	block.Store(true)
	refused := refuseProduce(e.dst, &block, func(topic string, tid [16]byte) bool { return topic == "psy" || tid == id })
	done := alterAsync(e.api, "dr", "reverse-and-start-mirror", "psy")
	waitMirrorStatus(t, e.api, "psy", "PENDING_SYNCHRONIZE")
	waitRefused(t, refused, 2)
	stillWaiting(t, done)
	crash()
	block.Store(false)

	// Settled while the restarted Strait started, before it answered.
	if v := describeOn(t, e.api, "psy"); v.MirrorStatus != "PAUSED" {
		t.Fatalf("mirror left PENDING_SYNCHRONIZE by a crash is %s after the restart, want PAUSED as before the reverse", v.MirrorStatus)
	}
	apiA.JSON(http.MethodGet, "/links/dr/mirrors/psy", nil, http.StatusNotFound, nil) // A's psy is no mirror
	if _, now := testutil.Offsets(t, e.dstCl, "psy"); now[0] != ends[0] || now[1] != ends[1] {
		t.Fatalf("B's psy moved from %v to %v", ends, now)
	}
	var rev alterResults
	e.api.JSON(http.MethodPost, "/links/dr/mirrors:reverse-and-start-mirror", names("psy"), http.StatusOK, &rev)
	if code, msg := resultErr(t, rev, 0); code != 0 {
		t.Fatalf("reverse after the restart: %d %s", code, msg)
	}
	e.api.JSON(http.MethodGet, "/links/dr/mirrors/psy", nil, http.StatusNotFound, nil)
	waitMirrorStatus(t, apiA, "psy", "ACTIVE")
}

// restartableOldPrimary is failedOverPair with A's Strait restartable: A's
// topic was mirrored to B, took 20 records B never got, and B failed over
// and took 50 of its own. It returns B's env (A = e.src) and A's.
func restartableOldPrimary(t *testing.T, topic string) (e, ea *env) {
	t.Helper()
	e = newEnv(t)
	ea = &env{t: t, dst: e.src}
	ea.startDaemon()
	bidirectional(t, e.api, e.src, "source-cluster")
	bidirectional(t, ea.api, e.dst, "destination-cluster")
	testutil.CreateTopic(t, e.srcCl, topic, 2, nil)
	produceMixed(t, e.src.ListenAddrs(), topic, 20)
	mirrorOn(t, e.api, "dr", topic, "")
	waitMirrorStatus(t, e.api, topic, "ACTIVE")
	waitEndsEqual(t, e.srcCl, e.dstCl, topic)
	e.api.JSON(http.MethodPost, "/links/dr/mirrors:pause", names(topic), http.StatusOK, nil)
	waitMirrorStatus(t, e.api, topic, "PAUSED")
	produceMixed(t, e.src.ListenAddrs(), topic, 4)
	var fo alterResults
	e.api.JSON(http.MethodPost, "/links/dr/mirrors:failover", names(topic), http.StatusOK, &fo)
	if code, msg := resultErr(t, fo, 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	waitMirrorStatus(t, e.api, topic, "STOPPED")
	produceMixed(t, e.dst.ListenAddrs(), topic, 10)
	return e, ea
}

// restore sends truncate-and-restore to A's Strait and checks it was
// accepted with the 20 records B never got.
func restore(t *testing.T, apiA *testutil.API, topic string) {
	t.Helper()
	var tr struct {
		Data []struct {
			ErrorCode         *int   `json:"error_code"`
			MessagesTruncated *int64 `json:"messages_truncated"`
		} `json:"data"`
	}
	apiA.JSON(http.MethodPost, "/links/dr/mirrors:truncate-and-restore", names(topic), http.StatusOK, &tr)
	if len(tr.Data) != 1 || tr.Data[0].ErrorCode != nil || tr.Data[0].MessagesTruncated == nil || *tr.Data[0].MessagesTruncated != 20 {
		t.Fatalf("truncate-and-restore: %+v", tr)
	}
}

// refuseDeletes makes c refuse DeleteTopics with REQUEST_TIMED_OUT while
// on is set, and returns the count refused.
func refuseDeletes(c *kfake.Cluster, on *atomic.Bool) *atomic.Int32 {
	var n atomic.Int32
	c.ControlKey(int16(kmsg.DeleteTopics), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if !on.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		n.Add(1)
		req := kreq.(*kmsg.DeleteTopicsRequest)
		resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
		for _, name := range req.TopicNames {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.ErrorCode = kmsg.StringPtr(name), kerr.RequestTimedOut.Code
			resp.Topics = append(resp.Topics, rt)
		}
		for _, dt := range req.Topics {
			rt := kmsg.NewDeleteTopicsResponseTopic()
			rt.Topic, rt.TopicID, rt.ErrorCode = dt.Topic, dt.TopicID, kerr.RequestTimedOut.Code
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return &n
}

// restartPendingSetupForRestore: a restore whose topic cannot be replaced
// yet is still PENDING_SETUP_FOR_RESTORE after a restart of A's Strait,
// which carries on trying, and finishes once it can.
func restartPendingSetupForRestore(t *testing.T) {
	e, ea := restartableOldPrimary(t, "rsu")
	_, aEnds := testutil.Offsets(t, e.srcCl, "rsu")
	aID := topicID(t, e.srcCl, "rsu")
	var refuse atomic.Bool
	refuse.Store(true)
	deletes := refuseDeletes(e.src, &refuse)
	restore(t, ea.api, "rsu")
	waitMirrorStatus(t, ea.api, "rsu", "PENDING_SETUP_FOR_RESTORE")

	ea.stopDaemon()
	before := deletes.Load()
	ea.startDaemon()
	if v := describeOn(t, ea.api, "rsu"); v.MirrorStatus != "PENDING_SETUP_FOR_RESTORE" {
		t.Fatalf("restore is %s after a restart, want PENDING_SETUP_FOR_RESTORE", v.MirrorStatus)
	}
	// The restarted Strait tries again to replace the topic.
	testutil.WaitFor(t, 30*time.Second, "the replacement retried after the restart", func() error {
		if n := deletes.Load(); n <= before {
			return fmt.Errorf("%d deletes refused, %d before the restart", n, before)
		}
		return nil
	})
	if _, now := testutil.Offsets(t, e.srcCl, "rsu"); now[0] != aEnds[0] || now[1] != aEnds[1] || topicID(t, e.srcCl, "rsu") != aID {
		t.Fatalf("A's topic changed before it could be replaced: %v, was %v", now, aEnds)
	}
	refuse.Store(false)
	restoredIdentical(t, e, ea.api, "rsu")
}

// restartPendingRestore: a restore whose copy cannot land is still
// PENDING_RESTORE after a restart of A's Strait, which resumes the copy
// (and is refused again), and becomes ACTIVE once the copy completes.
func restartPendingRestore(t *testing.T) {
	e, ea := restartableOldPrimary(t, "rre")
	stateID := topicID(t, e.srcCl, "__strait_state")
	var block atomic.Bool
	block.Store(true)
	refused := refuseProduce(e.src, &block, func(topic string, id [16]byte) bool { return topic != "__strait_state" && id != stateID })
	restore(t, ea.api, "rre")
	waitMirrorStatus(t, ea.api, "rre", "PENDING_RESTORE")
	waitRefused(t, refused, 2)

	ea.stopDaemon()
	before := refused.Load()
	ea.startDaemon()
	if v := describeOn(t, ea.api, "rre"); v.MirrorStatus != "PENDING_RESTORE" {
		t.Fatalf("restore is %s after a restart, want PENDING_RESTORE", v.MirrorStatus)
	}
	waitRefused(t, refused, before+2) // the copy resumed
	if v := describeOn(t, ea.api, "rre"); v.MirrorStatus != "PENDING_RESTORE" {
		t.Fatalf("restore whose copy is refused is %s", v.MirrorStatus)
	}
	if _, now := testutil.Offsets(t, e.srcCl, "rre"); now[0] != 0 || now[1] != 0 {
		t.Fatalf("refused writes landed on the re-created topic: %v", now)
	}
	block.Store(false)
	restoredIdentical(t, e, ea.api, "rre")
}
