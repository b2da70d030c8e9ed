package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// startDaemonOn runs a second daemon with c as its destination and returns
// a client for its API.
func startDaemonOn(t *testing.T, c *kfake.Cluster) *testutil.API {
	t.Helper()
	d := daemontest.Start(t, daemontest.Config(c), logger(), daemon.Options{MetadataInterval: 200 * time.Millisecond})
	return testutil.NewAPI(t, "http://"+d.Addr(), "/kafka/v3", d.Manager().ClusterID())
}

// bidiPair starts a second Strait on e's source cluster A (e's own daemon
// runs on B, the destination) and links the two both ways with the
// bidirectional link "dr". It returns A's API.
func (e *env) bidiPair() *testutil.API {
	e.t.Helper()
	apiA := startDaemonOn(e.t, e.src)
	bidirectional(e.t, e.api, e.src, "source-cluster")
	bidirectional(e.t, apiA, e.dst, "destination-cluster")
	return apiA
}

// bidirectional creates the link "dr" on both sides: on the API of
// cluster local, towards remote.
func bidirectional(t *testing.T, api *testutil.API, remote *kfake.Cluster, remoteID string) {
	t.Helper()
	api.JSON("POST", "/links?link_name=dr", map[string]any{
		"remote_cluster_id": remoteID,
		"configs": []any{
			map[string]any{"name": "bootstrap.servers", "value": remote.ListenAddrs()[0]},
			map[string]any{"name": "link.mode", "value": "BIDIRECTIONAL"},
		},
	}, http.StatusNoContent, nil)
}

func waitMirrorStatus(t *testing.T, api *testutil.API, topic, status string) mirrorView {
	t.Helper()
	var v mirrorView
	testutil.WaitFor(t, 30*time.Second, topic+" "+status, func() error {
		st, body := api.Do("GET", "/links/dr/mirrors/"+topic+"?include_state_transition_errors=true", nil)
		if st != http.StatusOK {
			return fmt.Errorf("GET mirror: %d %s", st, body)
		}
		if err := jsonUnmarshal(body, &v); err != nil {
			return err
		}
		if v.MirrorStatus != status {
			return fmt.Errorf("status %s %+v", v.MirrorStatus, v.TransitionErrors)
		}
		return nil
	})
	return v
}

func waitEndsEqual(t *testing.T, a, b *kgo.Client, topic string) {
	t.Helper()
	testutil.WaitFor(t, 60*time.Second, topic+" identical ends", func() error {
		_, ae := testutil.Offsets(t, a, topic)
		_, be := testutil.Offsets(t, b, topic)
		for p, e := range ae {
			if be[p] != e {
				return fmt.Errorf("partition %d: %d vs %d", p, e, be[p])
			}
		}
		return nil
	})
}

// TestFailoverDrill is the disaster-recovery drill on two clusters with a
// bidirectional link: clients produce to A and consume from it with a
// committed group; B mirrors A; A's last writes do not reach B; B fails
// over, producers and the consumer group move to B and carry on at the
// next offsets; then truncate-and-restore turns A back into a mirror of B,
// removing exactly the writes B never got, and reports how many.
func TestFailoverDrill(t *testing.T) {
	e := newEnv(t) // A = e.src (primary), B = e.dst (disaster recovery), e.api = B's Strait
	a, b := e.src, e.dst
	aCl, bCl := e.srcCl, e.dstCl
	apiB, apiA := e.api, e.bidiPair()

	testutil.CreateTopic(t, aCl, "orders", 3, nil)
	produceMixed(t, a.ListenAddrs(), "orders", 600) // 3,000 orders on A
	apiB.JSON("POST", "/links/dr/mirrors", map[string]any{"source_topic_name": "orders"}, http.StatusNoContent, nil)
	waitMirrorStatus(t, apiB, "orders", "ACTIVE")
	waitEndsEqual(t, aCl, bCl, "orders")

	// A consumer group reads part of A and commits.
	group := testutil.Client(t, a.ListenAddrs(), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	read := 0
	for read < 1000 {
		fs := group.PollRecords(context.Background(), 1000-read)
		read += fs.NumRecords()
	}
	if err := group.CommitUncommittedOffsets(context.Background()); err != nil {
		t.Fatal(err)
	}
	group.Close()
	committed, err := kadm.NewClient(aCl).FetchOffsets(context.Background(), "billing")
	if err != nil {
		t.Fatal(err)
	}

	// The disaster: A's last 200 writes never reach B.
	apiB.JSON("POST", "/links/dr/mirrors:pause", names("orders"), http.StatusOK, nil)
	_, failoverPoint := testutil.Offsets(t, bCl, "orders")
	produceMixed(t, a.ListenAddrs(), "orders", 40)
	_, aEndsBefore := testutil.Offsets(t, aCl, "orders")

	var fo alterResults
	apiB.JSON("POST", "/links/dr/mirrors:failover", names("orders"), http.StatusOK, &fo)
	if code, msg := resultErr(t, fo, 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	waitMirrorStatus(t, apiB, "orders", "STOPPED")

	// Producers move to B and write on at the next offsets.
	moved := produceToMirror(t, bCl, "orders", 3)
	for p, off := range moved {
		if off != failoverPoint[p] {
			t.Fatalf("partition %d: first write on B at %d, want %d", p, off, failoverPoint[p])
		}
	}
	produceMixed(t, b.ListenAddrs(), "orders", 100)

	// The group moves to B at the same offsets (identical offsets need no
	// translation) and reads exactly the next records.
	toB := kadm.Offsets{}
	committed.Each(func(o kadm.OffsetResponse) { toB.AddOffset(o.Topic, o.Partition, o.At, o.LeaderEpoch) })
	if _, err := kadm.NewClient(bCl).CommitOffsets(context.Background(), "billing", toB); err != nil {
		t.Fatal(err)
	}
	srcRecs := testutil.ReadAll(t, a.ListenAddrs(), "orders")
	resumed := testutil.Client(t, b.ListenAddrs(), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"))
	firsts := map[int32]*kgo.Record{}
	testutil.WaitFor(t, 30*time.Second, "group resumes on B", func() error {
		fs := resumed.PollRecords(context.Background(), 500)
		fs.EachRecord(func(r *kgo.Record) {
			if firsts[r.Partition] == nil {
				firsts[r.Partition] = r
			}
		})
		if len(firsts) < 3 {
			return fmt.Errorf("records from %d partitions", len(firsts))
		}
		return nil
	})
	for p, r := range firsts {
		at, _ := committed.Lookup("orders", p)
		if r.Offset != at.At {
			t.Fatalf("partition %d: group resumed at %d, committed %d", p, r.Offset, at.At)
		}
		// Below the failover point B holds A's records, so the group reads
		// on exactly where it stopped on A.
		if at.At < failoverPoint[p] && string(r.Value) != string(srcRecs[p][at.At].Value) {
			t.Fatalf("partition %d: group resumed with %q, A has %q at %d", p, r.Value, srcRecs[p][at.At].Value, at.At)
		}
	}

	// A is back: truncate-and-restore makes it a mirror of B again.
	var tr struct {
		Data []struct {
			ErrorMessage      *string `json:"error_message"`
			MessagesTruncated *int64  `json:"messages_truncated"`
			Partitions        []struct {
				PartitionID       int32 `json:"partition_id"`
				OffsetTruncatedTo int64 `json:"offset_truncated_to"`
				MessagesTruncated int64 `json:"messages_truncated"`
			} `json:"partition_level_truncation_data"`
		} `json:"data"`
	}
	apiA.JSON("POST", "/links/dr/mirrors:truncate-and-restore?include_partition_level_truncation_data=true", names("orders"), http.StatusOK, &tr)
	if len(tr.Data) != 1 || tr.Data[0].ErrorMessage != nil || tr.Data[0].MessagesTruncated == nil {
		t.Fatalf("truncate-and-restore: %+v", tr)
	}
	var removed int64
	for _, pt := range tr.Data[0].Partitions {
		want := aEndsBefore[pt.PartitionID] - failoverPoint[pt.PartitionID]
		if pt.OffsetTruncatedTo != failoverPoint[pt.PartitionID] || pt.MessagesTruncated != want {
			t.Fatalf("partition %d: truncated to %d (%d records), want %d (%d)", pt.PartitionID, pt.OffsetTruncatedTo, pt.MessagesTruncated, failoverPoint[pt.PartitionID], want)
		}
		removed += pt.MessagesTruncated
	}
	if *tr.Data[0].MessagesTruncated != 200 || removed != 200 || len(tr.Data[0].Partitions) != 3 {
		t.Fatalf("truncate-and-restore reports %d (%d by partition), want 200", *tr.Data[0].MessagesTruncated, removed)
	}
	waitMirrorStatus(t, apiA, "orders", "ACTIVE")
	waitEndsEqual(t, bCl, aCl, "orders")
	bRecs := testutil.ReadAll(t, b.ListenAddrs(), "orders")
	aRecs := testutil.ReadAll(t, a.ListenAddrs(), "orders")
	if diff := testutil.DiffRecords(bRecs, aRecs); diff != "" {
		t.Fatalf("restored A differs from B: %s", diff)
	}
	// What was really removed: A's records past the failover point.
	var gone int64
	for p, end := range aEndsBefore {
		gone += end - failoverPoint[p]
		if len(aRecs[p]) > 0 && string(aRecs[p][failoverPoint[p]].Value) == string(srcRecs[p][failoverPoint[p]].Value) {
			t.Fatalf("partition %d: A still has its own record at the failover point", p)
		}
	}
	if gone != *tr.Data[0].MessagesTruncated {
		t.Fatalf("A lost %d records, the API reported %d", gone, *tr.Data[0].MessagesTruncated)
	}
}

// TestReverse swaps a mirror's direction on a bidirectional link and back.
func TestReverse(t *testing.T) {
	e := newEnv(t)
	a, b := e.src, e.dst
	apiB, apiA := e.api, e.bidiPair()
	var la, lb struct {
		ClusterLinkID   string  `json:"cluster_link_id"`
		RemoteClusterID *string `json:"remote_cluster_id"`
	}
	apiA.JSON("GET", "/links/dr", nil, http.StatusOK, &la)
	apiB.JSON("GET", "/links/dr", nil, http.StatusOK, &lb)
	if la.ClusterLinkID != lb.ClusterLinkID || lb.RemoteClusterID == nil || *lb.RemoteClusterID != "source-cluster" {
		t.Fatalf("the two sides of the link: %+v %+v", la, lb)
	}

	testutil.CreateTopic(t, e.srcCl, "orders", 2, nil)
	produceMixed(t, a.ListenAddrs(), "orders", 100)
	apiB.JSON("POST", "/links/dr/mirrors", map[string]any{"source_topic_name": "orders"}, http.StatusNoContent, nil)
	waitMirrorStatus(t, apiB, "orders", "ACTIVE")

	// A refused reverse on a link that is not bidirectional, for contrast.
	e.createLink("plain", nil)
	testutil.CreateTopic(t, e.srcCl, "other", 1, nil)
	e.createMirror("plain", "other")
	r := e.alter("plain", "reverse-and-start-mirror", names("other"), "")
	if code, _ := resultErr(t, r, 0); code != 400 {
		t.Fatalf("reverse on a destination link was not refused")
	}

	var rev alterResults
	apiB.JSON("POST", "/links/dr/mirrors:reverse-and-start-mirror", names("orders"), http.StatusOK, &rev)
	if code, msg := resultErr(t, rev, 0); code != 0 {
		t.Fatalf("reverse: %d %s", code, msg)
	}
	apiB.JSON("GET", "/links/dr/mirrors/orders", nil, http.StatusNotFound, nil) // B's orders is a plain topic now
	waitMirrorStatus(t, apiA, "orders", "ACTIVE")                               // and A's mirrors it
	produceMixed(t, b.ListenAddrs(), "orders", 20)
	waitEndsEqual(t, e.dstCl, e.srcCl, "orders")
	assertSameViews(t, b.ListenAddrs(), "orders", a.ListenAddrs(), "orders") // after the reverse

	// And back, leaving B's side paused.
	apiA.JSON("POST", "/links/dr/mirrors:reverse-and-pause-mirror", names("orders"), http.StatusOK, &rev)
	if code, msg := resultErr(t, rev, 0); code != 0 {
		t.Fatalf("reverse back: %d %s", code, msg)
	}
	waitMirrorStatus(t, apiB, "orders", "PAUSED")
	apiA.JSON("GET", "/links/dr/mirrors/orders", nil, http.StatusNotFound, nil)
}
