package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestTransitionTable checks every operation from every mirror status
// Strait stores (and on topics that are not mirrors), with the per-topic
// result the contract's table gives, asserted with validate_only, which
// runs every check and changes nothing.
func TestTransitionTable(t *testing.T) {
	e := fourStatesEnv(t)
	testutil.CreateTopic(t, e.dstCl, "plain", 1, nil)
	statuses := map[string]string{"active": "ACTIVE", "paused": "PAUSED", "failed": "FAILED", "stopped": "STOPPED"}
	for topic, st := range statuses {
		e.waitStatus("l1", topic, st)
	}

	const ok = ""
	stopped := "Topic 'stopped' has already stopped its mirror from 'l1'"
	cases := []struct {
		op    string
		topic string
		code  int
		msg   string // exact when it starts with "Topic '", else a substring
	}{
		{"pause", "active", 0, ok},
		{"pause", "paused", 0, ok},
		{"pause", "failed", 400, "its mirror has failed"},
		{"pause", "stopped", 400, stopped},
		{"pause", "plain", 400, "Topic 'plain' is not mirrored"},
		{"pause", "ghost", 404, "Topic 'ghost' not found"},
		{"resume", "active", 0, ok},
		{"resume", "paused", 0, ok},
		{"resume", "failed", 400, "its mirror has failed"},
		{"resume", "stopped", 400, stopped},
		{"resume", "plain", 400, "Topic 'plain' is not mirrored"},
		{"promote", "active", 0, ok},
		{"promote", "paused", 0, ok},
		{"promote", "failed", 400, "cannot be promoted in state FAILED; use failover"},
		{"promote", "stopped", 400, stopped},
		{"promote", "plain", 400, "Topic 'plain' is not mirrored"},
		{"failover", "active", 0, ok},
		{"failover", "paused", 0, ok},
		{"failover", "failed", 0, ok},
		{"failover", "stopped", 400, stopped},
		{"failover", "plain", 400, "Topic 'plain' is not mirrored"},
		{"failover", "ghost", 404, "Topic 'ghost' not found"},
		{"reverse-and-start-mirror", "active", 400, "is not bidirectional"},
		{"reverse-and-pause-mirror", "paused", 400, "is not bidirectional"},
		{"reverse-and-start-mirror", "stopped", 400, stopped},
		{"truncate-and-restore", "plain", 400, "is not bidirectional"},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.topic, func(t *testing.T) {
			var r alterResults
			e.api.With(t).JSON(http.MethodPost, "/links/l1/mirrors:"+tc.op+"?validate_only=true", names(tc.topic), http.StatusOK, &r)
			code, msg := resultErr(t, r, 0)
			exact := strings.HasPrefix(tc.msg, "Topic '")
			if code != tc.code || (exact && msg != tc.msg) || (!exact && !strings.Contains(msg, tc.msg)) {
				t.Fatalf("code %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	for topic, st := range statuses {
		if v := e.describe("l1", topic); v.MirrorStatus != st {
			t.Fatalf("validate_only changed %s from %s to %s", topic, st, v.MirrorStatus)
		}
	}

	// A paused link refuses promote, which needs the copy to run.
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	r := e.alter("l1", "promote", names("active"), "")
	if code, msg := resultErr(t, r, 0); code != 400 || !strings.Contains(msg, "while cluster link 'l1' is paused") {
		t.Fatalf("promote on a paused link: %d %q", code, msg)
	}
	if v := e.describe("l1", "active"); v.MirrorStatus != "LINK_PAUSED" {
		t.Fatalf("refused promote changed the status to %s", v.MirrorStatus)
	}
}

// TestTransitionTableBidirectional checks the refusals of the operations
// that need a bidirectional link (the reverses and truncate-and-restore):
// each with its per-topic error_code and error_message, with and without
// validate_only (a refusal must not depend on it), and every mirror and
// topic left exactly as it was. A is e.src, B is e.dst; each has a Strait.
func TestTransitionTableBidirectional(t *testing.T) {
	e := newEnv(t)
	a := e.src
	apiB, apiA := e.api, e.bidiPair()
	// A bidirectional link with a prefix, which no reverse can use.
	bidiLink(t, apiB, "drp", a, "source-cluster", map[string]string{"cluster.link.prefix": "p."})
	// C has no Strait, and is closed half-way to be unreachable; the short
	// request timeout keeps each refusal then to about a second.
	c := testutil.NewCluster(t, kfake.ClusterID("third-cluster"))
	bidiLink(t, apiB, "far", c, "third-cluster", map[string]string{"request.timeout.ms": "1000"})

	for _, tc := range []struct {
		cl     *kgo.Client
		topics []string
	}{
		{e.srcCl, []string{"orders", "pre", "fo"}},
		{e.dstCl, []string{"base"}},
		{testutil.Client(t, c.ListenAddrs()), []string{"far"}},
	} {
		for _, topic := range tc.topics {
			testutil.CreateTopic(t, tc.cl, topic, 1, nil)
			produceWith(t, tc.cl, topic, 5)
		}
	}
	// orders: A -> B. chain: B's base -> A's chain -> B's chain, so the
	// remote side of B's chain is itself a mirror. p.pre: A's pre on the
	// prefixed link. far: C -> B. fo: A -> B, failed over: A's fo is the
	// old primary that truncate-and-restore applies to.
	mirrorOn(t, apiB, "dr", "orders", "")
	mirrorOn(t, apiA, "dr", "base", "chain")
	waitOn(t, apiA, "dr", "chain", "ACTIVE")
	mirrorOn(t, apiB, "dr", "chain", "")
	mirrorOn(t, apiB, "drp", "pre", "")
	mirrorOn(t, apiB, "far", "far", "")
	mirrorOn(t, apiB, "dr", "fo", "")
	for _, m := range []struct{ link, topic string }{{"dr", "orders"}, {"dr", "chain"}, {"drp", "p.pre"}, {"far", "far"}, {"dr", "fo"}} {
		waitOn(t, apiB, m.link, m.topic, "ACTIVE")
	}
	waitEndsEqual(t, e.srcCl, e.dstCl, "fo")
	apiB.JSON(http.MethodPost, "/links/dr/mirrors:failover", names("fo"), http.StatusOK, nil)
	waitOn(t, apiB, "dr", "fo", "STOPPED")
	produceWith(t, e.srcCl, "fo", 3) // A's writes after the failover point

	// A consumer group reads A's fo, commits and stays in the group.
	group := testutil.Client(t, a.ListenAddrs(), kgo.ConsumeTopics("fo"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	testutil.WaitFor(t, 30*time.Second, "billing reads fo", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if group.PollFetches(ctx).NumRecords() == 0 {
			return fmt.Errorf("no records yet")
		}
		return group.CommitUncommittedOffsets(context.Background())
	})

	// What must not change, on both sides.
	statusB := map[string]string{"dr/orders": "ACTIVE", "dr/chain": "ACTIVE", "drp/p.pre": "ACTIVE", "far/far": "ACTIVE", "dr/fo": "STOPPED"}
	statusA := map[string]string{"dr/chain": "ACTIVE"}
	idA, idB := map[string][16]byte{}, map[string][16]byte{}
	for _, topic := range []string{"orders", "pre", "fo", "chain"} {
		idA[topic] = topicID(t, e.srcCl, topic)
	}
	for _, topic := range []string{"orders", "p.pre", "fo", "chain", "far"} {
		idB[topic] = topicID(t, e.dstCl, topic)
	}
	_, foEnds := testutil.Offsets(t, e.srcCl, "fo")
	unchanged := func(t *testing.T) {
		t.Helper()
		for _, side := range []struct {
			api    *testutil.API
			status map[string]string
		}{{apiB, statusB}, {apiA, statusA}} {
			for lt, want := range side.status {
				link, topic, _ := strings.Cut(lt, "/")
				var v mirrorView
				side.api.With(t).JSON(http.MethodGet, "/links/"+link+"/mirrors/"+topic, nil, http.StatusOK, &v)
				if v.MirrorStatus != want {
					t.Fatalf("%s is %s after refusals, was %s", lt, v.MirrorStatus, want)
				}
			}
		}
		for _, topic := range []string{"orders", "fo"} { // still plain topics on A
			apiA.With(t).JSON(http.MethodGet, "/links/dr/mirrors/"+topic, nil, http.StatusNotFound, nil)
		}
		// A topic that truncate-and-restore touched would be re-created.
		for topic, id := range idA {
			if got := topicID(t, e.srcCl, topic); got != id {
				t.Fatalf("A's %s was re-created", topic)
			}
		}
		for topic, id := range idB {
			if got := topicID(t, e.dstCl, topic); got != id {
				t.Fatalf("B's %s was re-created", topic)
			}
		}
		if _, ends := testutil.Offsets(t, e.srcCl, "fo"); ends[0] != foEnds[0] {
			t.Fatalf("A's fo ends at %d, was %d", ends[0], foEnds[0])
		}
	}

	type refusal struct {
		side     string // whose Strait is asked: A or B
		link, op string
		topic    string
		msg      string // exact, or a prefix when it ends with ": "
	}
	apis := map[string]*testutil.API{"A": apiA, "B": apiB}
	reverses := func(side, link, topic, msg string) []refusal {
		return []refusal{{side, link, "reverse-and-start-mirror", topic, msg}, {side, link, "reverse-and-pause-mirror", topic, msg}}
	}
	var reachable []refusal
	reachable = append(reachable, reverses("B", "drp", "p.pre", "Topic 'p.pre' cannot be reversed: cluster link 'drp' has a cluster.link.prefix")...)
	reachable = append(reachable, reverses("B", "dr", "chain", "Topic 'chain' cannot be reversed: the remote topic 'chain' is itself a mirror (ACTIVE) of link 'dr'")...)
	reachable = append(reachable, reverses("B", "far", "far", "Topic 'far' cannot be reversed: the remote cluster is not managed by Strait (no state topic '__strait_state' there)")...)
	reachable = append(reachable,
		refusal{"B", "drp", "truncate-and-restore", "p.pre", "Topic 'p.pre' cannot be restored: cluster link 'drp' has a cluster.link.prefix"},
		// A's orders is the source of an ACTIVE mirror, not a stopped one.
		refusal{"A", "dr", "truncate-and-restore", "orders", "Topic 'orders' cannot be restored: the remote topic 'orders' is not a stopped mirror of it on link 'dr'; truncate-and-restore applies to the old primary after a failover"},
		// B's fo is the new primary: restoring must happen on the old one.
		refusal{"B", "dr", "truncate-and-restore", "fo", "Topic 'fo' cannot be restored: the remote topic 'fo' is not a stopped mirror of it on link 'dr'; truncate-and-restore applies to the old primary after a failover"},
		refusal{"A", "dr", "truncate-and-restore", "chain", "Topic 'chain' is already a mirror (ACTIVE) of link 'dr'"},
		refusal{"A", "dr", "truncate-and-restore", "fo", "Topic 'fo' cannot be restored while consumer groups are active on it (billing); stop their consumers first"},
	)
	unreachable := reverses("B", "far", "far", "Topic 'far' cannot be reversed: cannot read the remote cluster's Strait state: ")
	unreachable = append(unreachable, refusal{"B", "far", "truncate-and-restore", "far", "Topic 'far' cannot be restored: cannot read the remote cluster's Strait state: "})

	for _, phase := range []struct {
		name     string
		before   func()
		cases    []refusal
		validate []bool
	}{
		{"remote up", func() {}, reachable, []bool{true, false}},
		// Each of these waits for the request timeout: only the request
		// that could change something is sent.
		{"remote down", c.Close, unreachable, []bool{false}},
	} {
		phase.before()
		for _, tc := range phase.cases {
			for _, validate := range phase.validate {
				t.Run(fmt.Sprintf("%s/%s/%s/%s/%s/validate_only=%v", phase.name, tc.side, tc.link, tc.op, tc.topic, validate), func(t *testing.T) {
					var r alterResults
					apis[tc.side].With(t).JSON(http.MethodPost, fmt.Sprintf("/links/%s/mirrors:%s?validate_only=%v", tc.link, tc.op, validate), names(tc.topic), http.StatusOK, &r)
					if len(r.Data) != 1 || r.Data[0].MirrorTopicName != tc.topic {
						t.Fatalf("results %+v, want one for %s", r, tc.topic)
					}
					code, msg := resultErr(t, r, 0)
					prefix, isPrefix := strings.CutSuffix(tc.msg, ": ")
					if code != 400 || (isPrefix && !strings.HasPrefix(msg, prefix+": ")) || (!isPrefix && msg != tc.msg) {
						t.Fatalf("code %d %q, want 400 %q", code, msg, tc.msg)
					}
					unchanged(t)
				})
			}
		}
	}

	// The consumers leave: the same restore is accepted (validate_only),
	// so it was the group that refused it.
	group.Close()
	testutil.WaitFor(t, 30*time.Second, "restore accepted once billing left", func() error {
		var r alterResults
		apiA.JSON(http.MethodPost, "/links/dr/mirrors:truncate-and-restore?validate_only=true", names("fo"), http.StatusOK, &r)
		if code, msg := resultErr(t, r, 0); code != 0 {
			return fmt.Errorf("%d %s", code, msg)
		}
		return nil
	})
	unchanged(t)
}

// bidiLink creates a BIDIRECTIONAL link named name, on the Strait api
// serves, towards remote, with extra configs.
func bidiLink(t *testing.T, api *testutil.API, name string, remote *kfake.Cluster, remoteID string, extra map[string]string) {
	t.Helper()
	cs := []any{
		map[string]any{"name": "bootstrap.servers", "value": remote.ListenAddrs()[0]},
		map[string]any{"name": "link.mode", "value": "BIDIRECTIONAL"},
	}
	for k, v := range extra {
		cs = append(cs, map[string]any{"name": k, "value": v})
	}
	api.JSON(http.MethodPost, "/links?link_name="+name, map[string]any{"remote_cluster_id": remoteID, "configs": cs}, http.StatusNoContent, nil)
}

// mirrorOn creates a mirror of source on link, named name ("" for the
// link's default name).
func mirrorOn(t *testing.T, api *testutil.API, link, source, name string) {
	t.Helper()
	body := map[string]any{"source_topic_name": source}
	if name != "" {
		body["mirror_topic_name"] = name
	}
	api.JSON(http.MethodPost, "/links/"+link+"/mirrors", body, http.StatusNoContent, nil)
}

// waitOn waits until the mirror topic of link is in status.
func waitOn(t *testing.T, api *testutil.API, link, topic, status string) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, link+"/"+topic+" "+status, func() error {
		var v mirrorView
		api.JSON(http.MethodGet, "/links/"+link+"/mirrors/"+topic, nil, http.StatusOK, &v)
		if v.MirrorStatus != status {
			return fmt.Errorf("status %s", v.MirrorStatus)
		}
		return nil
	})
}
