package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-dev/strait/internal/testutil"
)

// Tests of what the sync tasks report and of the consumer offsets they
// carry: task states of a failed link, category_counts, offsets capped at
// the mirror's end, the commit's leader epoch and metadata, and the last
// sync of a promote.

// allOffsetGroups selects every consumer group for the offset sync.
const allOffsetGroups = `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`

// offsetSyncEnv starts an env with a source topic "orders" of partitions
// holding records records, mirrored over link "l1" whose consumer offset
// sync runs every syncMs for the groups filters selects, and waits until
// the mirror has caught up.
func offsetSyncEnv(t *testing.T, partitions int32, records int, syncMs, filters string) *env {
	t.Helper()
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", partitions, nil)
	produceWith(t, e.srcCl, "orders", records)
	e.createLink("l1", map[string]string{
		"consumer.offset.sync.enable":   "true",
		"consumer.offset.sync.ms":       syncMs,
		"consumer.offset.group.filters": filters,
	})
	e.createMirror("l1", "orders")
	e.waitCaughtUp("orders", "orders")
	return e
}

// categoryCounts returns a link's category_counts by category, from
// GET /links/{l} with and without include_tasks; the two must agree.
func (e *env) categoryCounts(linkName string) map[string]int {
	e.t.Helper()
	var out map[string]int
	for _, q := range []string{"", "?include_tasks=true"} {
		var v struct {
			CategoryCounts []struct {
				StateCategory string `json:"state_category"`
				Count         int    `json:"count"`
			} `json:"category_counts"`
		}
		e.api.JSON(http.MethodGet, "/links/"+linkName+q, nil, http.StatusOK, &v)
		got := map[string]int{}
		for _, c := range v.CategoryCounts {
			got[c.StateCategory] += c.Count
		}
		if out != nil && fmt.Sprint(out) != fmt.Sprint(got) {
			e.t.Fatalf("category_counts %v without tasks, %v with them", out, got)
		}
		out = got
	}
	return out
}

// wantCounts checks a link's category_counts: the categories in want have
// those counts, every other one is zero.
func (e *env) wantCounts(linkName string, want map[string]int) {
	e.t.Helper()
	got := e.categoryCounts(linkName)
	for _, c := range []string{"ACTIVE", "PAUSED", "PENDING", "IN_ERROR", "NOT_APPLICABLE"} {
		if got[c] != want[c] {
			e.t.Fatalf("category_counts %v, want %v", got, want)
		}
	}
}

// groupAt returns the committed offsets of group on topic, by partition,
// on the cluster adm talks to.
func groupAt(t *testing.T, adm *kadm.Client, group, topic string) map[int32]kadm.OffsetResponse {
	t.Helper()
	got, err := adm.FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return map[int32]kadm.OffsetResponse{} // nothing committed yet
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	out := map[int32]kadm.OffsetResponse{}
	got.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic && o.At >= 0 {
			out[o.Partition] = o
		}
	})
	return out
}

// TestFailedLinkTasks: a link whose source client cannot be built lists
// its five tasks as LINK_FAILED (not no tasks at all); once its settings
// are fixed they leave that state.
func TestFailedLinkTasks(t *testing.T) {
	e := newEnv(t)
	e.api.JSON(http.MethodPost, "/links?link_name=broken&validate_link=false", map[string]any{
		"source_cluster_id": "source-cluster",
		"configs": []any{
			map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]},
			map[string]any{"name": "security.protocol", "value": "SSL"},
			map[string]any{"name": "ssl.truststore.type", "value": "PEM"},
			map[string]any{"name": "ssl.truststore.certificates", "value": badPEM},
			// Every task enabled: a disabled one is NOT_CONFIGURED
			// whatever the link's state.
			map[string]any{"name": "consumer.offset.sync.enable", "value": "true"},
			map[string]any{"name": "acl.sync.enable", "value": "true"},
			map[string]any{"name": "auto.create.mirror.topics.enable", "value": "true"},
		},
	}, http.StatusNoContent, nil)
	if l := getLinkState(t, e.api, "broken"); l.LinkState != "FAILED" {
		t.Fatalf("link with an unusable trust store: %+v", l)
	}
	var lt linkTasks
	e.api.JSON(http.MethodGet, "/links/broken?include_tasks=true", nil, http.StatusOK, &lt)
	want := []string{"AclSync", "AutoCreateMirror", "ConsumerOffsetSync", "MirrorTopicCopy", "TopicConfigsSync"}
	if len(lt.Tasks) != len(want) {
		t.Fatalf("tasks of a failed link: %+v, want %v", lt.Tasks, want)
	}
	for i, task := range lt.Tasks {
		if task.TaskName != want[i] || task.State != "LINK_FAILED" || len(task.Errors) != 0 {
			t.Errorf("task %d: %+v, want %s LINK_FAILED without errors", i, task, want[i])
		}
	}

	e.api.JSON(http.MethodPut, "/links/broken/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "security.protocol", "operation": "DELETE"},
		map[string]any{"name": "ssl.truststore.type", "operation": "DELETE"},
		map[string]any{"name": "ssl.truststore.certificates", "operation": "DELETE"},
	}}, http.StatusNoContent, nil)
	testutil.WaitFor(t, 15*time.Second, "tasks of the fixed link", func() error {
		if state, errs := e.task("broken", "TopicConfigsSync"); state != "ACTIVE" {
			return fmt.Errorf("TopicConfigsSync %s %v", state, errs)
		}
		return nil
	})
}

// TestOffsetSyncCapsAtMirrorEnd: a source group committed past what a
// paused mirror holds is synced at the mirror's end, never beyond it, so a
// consumer moving over skips nothing; once the mirror resumes it follows
// the source. category_counts follow the mirror's partitions through
// ACTIVE and PAUSED.
func TestOffsetSyncCapsAtMirrorEnd(t *testing.T) {
	const partitions = 3
	e := offsetSyncEnv(t, partitions, 100, "1000", allOffsetGroups)
	e.waitStatus("l1", "orders", "ACTIVE")
	e.wantCounts("l1", map[string]int{"ACTIVE": partitions})

	if code, msg := resultErr(t, e.alter("l1", "pause", names("orders"), ""), 0); code != 0 {
		t.Fatalf("pause: %d %s", code, msg)
	}
	e.waitStatus("l1", "orders", "PAUSED")
	e.wantCounts("l1", map[string]int{"PAUSED": partitions})
	_, held := testutil.Offsets(t, e.dstCl, "orders")
	produceWith(t, e.srcCl, "orders", 100)
	committed := consumeCommit(t, e.src.ListenAddrs(), "billing", "orders", 200)
	for p, at := range committed {
		if at <= held[p] {
			t.Fatalf("partition %d: source group at %d, mirror at %d: the test proves nothing", p, at, held[p])
		}
	}

	dstAdm := kadm.NewClient(e.dstCl)
	testutil.WaitFor(t, 15*time.Second, "group synced", func() error {
		if got := groupAt(t, dstAdm, "billing", "orders"); len(got) != partitions {
			return fmt.Errorf("destination billing %v", got)
		}
		return nil
	})
	for p, o := range groupAt(t, dstAdm, "billing", "orders") {
		if o.At != held[p] {
			t.Errorf("partition %d: destination group at %d, mirror holds %d (source group at %d)", p, o.At, held[p], committed[p])
		}
	}
	if _, now := testutil.Offsets(t, e.dstCl, "orders"); fmt.Sprint(now) != fmt.Sprint(held) {
		t.Fatalf("paused mirror moved from %v to %v", held, now)
	}

	if code, msg := resultErr(t, e.alter("l1", "resume", names("orders"), ""), 0); code != 0 {
		t.Fatalf("resume: %d %s", code, msg)
	}
	testutil.WaitFor(t, 30*time.Second, "group follows the source", func() error {
		got := groupAt(t, dstAdm, "billing", "orders")
		for p, at := range committed {
			if got[p].At != at {
				return fmt.Errorf("partition %d: destination at %d, source at %d", p, got[p].At, at)
			}
		}
		return nil
	})
	e.wantCounts("l1", map[string]int{"ACTIVE": partitions})
}

// TestOffsetSyncCarriesEpochAndMetadata: the destination group's commit
// has the source commit's leader epoch and metadata string, not only its
// offset.
func TestOffsetSyncCarriesEpochAndMetadata(t *testing.T) {
	e := offsetSyncEnv(t, 1, 50, "1000", allOffsetGroups)

	cases := []struct {
		at       int64
		epoch    int32
		metadata string
	}{
		// Kafka stores the epoch a commit gives without checking it, so
		// any value other than the default (-1) and zero shows it carried.
		{at: 17, epoch: 7, metadata: "consumer-a/generation-3"},
		{at: 42, epoch: 9, metadata: ""},
		{at: 43, epoch: -1, metadata: "no epoch"},
	}
	srcAdm, dstAdm := kadm.NewClient(e.srcCl), kadm.NewClient(e.dstCl)
	for _, tc := range cases {
		t.Run(fmt.Sprintf("at=%d,epoch=%d,metadata=%q", tc.at, tc.epoch, tc.metadata), func(t *testing.T) {
			offs := kadm.Offsets{}
			offs.Add(kadm.Offset{Topic: "orders", Partition: 0, At: tc.at, LeaderEpoch: tc.epoch, Metadata: tc.metadata})
			resp, err := srcAdm.CommitOffsets(context.Background(), "billing", offs)
			if err == nil {
				err = resp.Error()
			}
			if err != nil {
				t.Fatalf("commit on the source: %v", err)
			}
			testutil.WaitFor(t, 15*time.Second, "commit synced", func() error {
				o, ok := groupAt(t, dstAdm, "billing", "orders")[0]
				if !ok || o.At != tc.at || o.LeaderEpoch != tc.epoch || o.Metadata != tc.metadata {
					return fmt.Errorf("destination commit %+v, want at %d epoch %d metadata %q", o, tc.at, tc.epoch, tc.metadata)
				}
				return nil
			})
		})
	}
}

// TestPromoteSyncsOffsetsAfterCatchUp: promote's last offset sync runs
// once the mirror has caught up, so a group committed on the source past
// what the lagging mirror held is on the destination at its commit once
// the mirror is STOPPED (a stopped mirror is never synced again).
func TestPromoteSyncsOffsetsAfterCatchUp(t *testing.T) {
	e := offsetSyncEnv(t, 1, 40, "86400000", allOffsetGroups) // one round at start, then a day
	if code, msg := resultErr(t, e.alter("l1", "pause", names("orders"), ""), 0); code != 0 {
		t.Fatalf("pause: %d %s", code, msg)
	}
	e.waitStatus("l1", "orders", "PAUSED")
	produceWith(t, e.srcCl, "orders", 60)
	committed := consumeCommit(t, e.src.ListenAddrs(), "late", "orders", 100)
	if v := e.describe("l1", "orders"); v.totalLag() == 0 {
		t.Fatalf("paused mirror reports no lag: %+v", v)
	}

	r := e.alter("l1", "promote", names("orders"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("promote: %d %s", code, msg)
	}
	if v := e.describe("l1", "orders"); v.MirrorStatus != "STOPPED" {
		t.Fatalf("after promote the mirror is %s", v.MirrorStatus)
	}
	e.wantCounts("l1", map[string]int{"NOT_APPLICABLE": 1})
	got := groupAt(t, kadm.NewClient(e.dstCl), "late", "orders")
	if o, ok := got[0]; !ok || o.At != committed[0] {
		t.Fatalf("after promote the group is at %+v, committed %d on the source", o, committed[0])
	}
}
