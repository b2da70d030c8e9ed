package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// TestInstancesShareTheWork starts two strait serve processes and a
// standby on one destination: the two copy the partitions of a mirror
// between them (each partition by one of them; before, a second instance
// copied every partition again and duplicated records within a second),
// the standby copies none, every instance answers every call the same way,
// a pause sent to one instance stops the partitions another copies within
// a second, and when one is killed the other takes its partitions over:
// the mirror stays identical.
func TestInstancesShareTheWork(t *testing.T) {
	bin := straitBinary(t)
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	srcCl := testutil.Client(t, src.ListenAddrs())
	dstCl := testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, "shared", 8, nil)
	produceMixed(t, src.ListenAddrs(), "shared", 100)

	extra := []string{"--group-session-timeout", "2s"}
	addrA, addrB, addrS := testutil.FreeAddr(t), testutil.FreeAddr(t), testutil.FreeAddr(t)
	a := startServe(t, bin, dst.ListenAddrs()[0], addrA, extra...)
	apiA := testutil.NewAPI(t, "http://"+addrA, "/kafka/v3", "destination-cluster")
	apiA.JSON("POST", "/links?link_name=l1", map[string]any{"source_cluster_id": "source-cluster", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]},
	}}, http.StatusNoContent, nil)
	b := startServe(t, bin, dst.ListenAddrs()[0], addrB, extra...)
	startServe(t, bin, dst.ListenAddrs()[0], addrS, append([]string{"--standby"}, extra...)...)
	apiB := testutil.NewAPI(t, "http://"+addrB, "/kafka/v3", "destination-cluster")
	apiS := testutil.NewAPI(t, "http://"+addrS, "/kafka/v3", "destination-cluster")
	// A change sent to an instance that is not the active one is made.
	apiB.JSON("POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "shared"}, http.StatusNoContent, nil)

	var owners map[int32]string
	testutil.WaitFor(t, 60*time.Second, "the partitions shared by two instances, the mirror caught up", func() error {
		var m mirrorView
		apiS.JSON("GET", "/links/l1/mirrors/shared", nil, http.StatusOK, &m)
		owners = map[int32]string{}
		by := map[string]int{}
		for _, l := range m.MirrorLags {
			owners[l.Partition] = l.StraitInstance
			by[l.StraitInstance]++
		}
		if len(by) != 2 || by[""] > 0 {
			return fmt.Errorf("copied by %v", by)
		}
		if m.MirrorStatus != "ACTIVE" || m.totalLag() != 0 {
			return fmt.Errorf("%s with lag %d", m.MirrorStatus, m.totalLag())
		}
		return nil
	})
	pidOf := func(p *serveProc) string { return fmt.Sprintf("/%d", p.cmd.Process.Pid) }
	var ofA, ofB []int32
	for p, o := range owners {
		switch {
		case strings.HasSuffix(o, pidOf(a)):
			ofA = append(ofA, p)
		case strings.HasSuffix(o, pidOf(b)):
			ofB = append(ofB, p)
		default:
			t.Fatalf("partition %d copied by %s, neither a (%d) nor b (%d)", p, o, a.cmd.Process.Pid, b.cmd.Process.Pid)
		}
	}
	if len(ofA) == 0 || len(ofB) == 0 {
		t.Fatalf("a copies %v, b copies %v", ofA, ofB)
	}

	// Every instance answers the same.
	testutil.WaitFor(t, 10*time.Second, "the same answers from every instance", func() error {
		var views []string
		for _, api := range []*testutil.API{apiA, apiB, apiS} {
			var m mirrorView
			api.JSON("GET", "/links/l1/mirrors/shared", nil, http.StatusOK, &m)
			m.StateTimeMs = 0
			b, _ := json.Marshal(m)
			views = append(views, string(b))
		}
		if views[0] != views[1] || views[1] != views[2] {
			return fmt.Errorf("answers differ:\n%s", strings.Join(views, "\n"))
		}
		return nil
	})

	// A pause sent to the standby stops a's partitions within a second.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := testutil.Client(t, src.ListenAddrs(), kgo.DefaultProduceTopic("shared"), kgo.ProducerLinger(time.Millisecond))
		for i := 0; ctx.Err() == nil; i++ {
			_ = p.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 13)), Value: []byte(fmt.Sprintf("live-%d", i))}).FirstErr()
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(time.Second)
	apiS.JSON("POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{"shared"}}, http.StatusOK, nil)
	time.Sleep(time.Second)
	_, paused := testutil.Offsets(t, dstCl, "shared")
	time.Sleep(2 * time.Second)
	_, later := testutil.Offsets(t, dstCl, "shared")
	for _, p := range ofA {
		if later[p] != paused[p] {
			t.Fatalf("partition %d, copied by a, moved from %d to %d more than a second after the pause sent to the standby", p, paused[p], later[p])
		}
	}
	apiA.JSON("POST", "/links/l1/mirrors:resume", map[string]any{"mirror_topic_names": []string{"shared"}}, http.StatusOK, nil)

	// a dies: b takes its partitions over.
	time.Sleep(time.Second)
	a.kill()
	testutil.WaitFor(t, 30*time.Second, "b copies every partition", func() error {
		var m mirrorView
		apiB.JSON("GET", "/links/l1/mirrors/shared", nil, http.StatusOK, &m)
		for _, l := range m.MirrorLags {
			if !strings.HasSuffix(l.StraitInstance, pidOf(b)) {
				return fmt.Errorf("partition %d copied by %q", l.Partition, l.StraitInstance)
			}
		}
		return nil
	})
	time.Sleep(time.Second)
	stop()
	wg.Wait()
	testutil.WaitSameEnds(t, 60*time.Second, srcCl, dstCl, "shared")
	n := assertSameViews(t, src.ListenAddrs(), "shared", dst.ListenAddrs(), "shared")
	var m mirrorView
	apiB.JSON("GET", "/links/l1/mirrors/shared", nil, http.StatusOK, &m)
	if m.MirrorStatus != "ACTIVE" || m.MirrorTopicError != "NO_ERROR" {
		t.Fatalf("after the takeover the mirror is %s (%s)", m.MirrorStatus, m.MirrorTopicError)
	}
	t.Logf("%d records identical; a copied %v, b %v, then b all", n, ofA, ofB)
}

// TestStartupRetriesTransientErrors starts a daemon while the destination
// answers the state topic's metadata LEADER_NOT_AVAILABLE, drops the first
// request of several kinds, and answers the group's first requests
// COORDINATOR_NOT_AVAILABLE: the daemon waits and starts. Before, one such
// answer made it exit with "no Strait state topic on the cluster".
func TestStartupRetriesTransientErrors(t *testing.T) {
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	dst.Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.Metadata}, Topic: "__strait_state", Err: kerr.LeaderNotAvailable, Count: 3},
		kfake.Fault{Keys: []kmsg.Key{kmsg.JoinGroup, kmsg.FindCoordinator}, Err: kerr.CoordinatorNotAvailable, Count: 2},
	)
	for _, key := range []kmsg.Key{kmsg.CreateTopics, kmsg.ListOffsets, kmsg.Fetch} {
		dst.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			return nil, fmt.Errorf("dropped"), true // closes the connection
		})
	}
	cfg := daemontest.Config(dst)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, logger(), daemon.Options{})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	defer func() { stop(); <-done }()
	api := testutil.NewAPI(t, "http://"+d.Addr(), "/kafka/v3", "destination-cluster")
	var links struct {
		Data []any `json:"data"`
	}
	api.JSON("GET", "/links", nil, http.StatusOK, &links)
}

// TestStartupRefusesWhatCannotHeal: a state topic written by a newer
// Strait, or for another cluster, stops the start with the cause.
func TestStartupRefusesWhatCannotHeal(t *testing.T) {
	cases := []struct{ record, want string }{
		{`{"version":99,"cluster_id":"destination-cluster"}`, "newer Strait"},
		{`{"version":1,"cluster_id":"another-cluster"}`, "belongs to cluster another-cluster"},
	}
	for _, tc := range cases {
		t.Run(tc.want, func(t *testing.T) {
			dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
			cl := testutil.Client(t, dst.ListenAddrs())
			testutil.CreateTopic(t, cl, "__strait_state", 1, nil)
			if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "__strait_state", Key: []byte("meta/format"), Value: []byte(tc.record)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			cfg := daemontest.Config(dst)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			d, err := daemon.New(ctx, cfg, logger(), daemon.Options{})
			if err == nil {
				go func() { _ = d.Run(ctx) }()
				t.Fatal("the daemon started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start error %q does not say %q", err, tc.want)
			}
		})
	}
}

func jsonDecode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return jsonUnmarshal(b, v)
}
