package e2e

import (
	"context"
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

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
)

// TestSecondInstanceWaitsAsStandby starts a second strait serve on the
// destination of a first one. It must not copy: it answers the API with
// 503 naming the active instance, the mirror stays identical (before, both
// copied every partition and duplicated records within a second), and when
// the active instance is killed the standby takes over and the copy goes
// on, identical.
func TestSecondInstanceWaitsAsStandby(t *testing.T) {
	bin := straitBinary(t)
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"), kfake.GroupMinSessionTimeout(500*time.Millisecond))
	srcCl := testutil.Client(t, src.ListenAddrs())
	dstCl := testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, "two", 3, nil)
	produceMixed(t, src.ListenAddrs(), "two", 200)

	extra := []string{"--group-session-timeout", "2s"}
	addrA, addrB := freeAddr(t), freeAddr(t)
	a := startServe(t, bin, dst.ListenAddrs()[0], addrA, extra...)
	api := testutil.NewAPI(t, "http://"+addrA, "/kafka/v3", "destination-cluster")
	api.JSON("POST", "/links?link_name=l1", map[string]any{"source_cluster_id": "source-cluster", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]},
	}}, http.StatusNoContent, nil)
	api.JSON("POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "two"}, http.StatusNoContent, nil)

	b := spawnServe(t, bin, dst.ListenAddrs()[0], addrB, extra...)
	testutil.WaitFor(t, 30*time.Second, "the second instance a standby", func() error {
		err := b.ready()
		if err == nil {
			return fmt.Errorf("the second instance is ready: two active instances")
		}
		if !strings.Contains(err.Error(), "standby") {
			return err
		}
		return nil
	})
	resp, err := http.Get("http://" + addrB + "/kafka/v3/clusters/destination-cluster/links")
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	if err := jsonDecode(resp, &body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusServiceUnavailable || body.ErrorCode != 503 || !strings.Contains(body.Message, "http://"+addrA) {
		t.Fatalf("the standby answers %d %+v, want 503 naming the active instance at %s", resp.StatusCode, body, addrA)
	}

	// Both run while the source keeps being written.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p := testutil.Client(t, src.ListenAddrs(), kgo.DefaultProduceTopic("two"), kgo.ProducerLinger(time.Millisecond))
		for i := 0; ctx.Err() == nil; i++ {
			_ = p.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("live-%d", i))}).FirstErr()
			time.Sleep(2 * time.Millisecond)
		}
	}()
	time.Sleep(3 * time.Second)
	a.kill()
	b.waitReady(t, 30*time.Second)
	time.Sleep(2 * time.Second)
	stop()
	wg.Wait()
	testutil.WaitSameEnds(t, 60*time.Second, srcCl, dstCl, "two")
	n := assertSameViews(t, src.ListenAddrs(), "two", dst.ListenAddrs(), "two")
	var m mirrorView
	testutil.NewAPI(t, "http://"+addrB, "/kafka/v3", "destination-cluster").JSON("GET", "/links/l1/mirrors/two", nil, http.StatusOK, &m)
	if m.MirrorStatus != "ACTIVE" || m.MirrorTopicError != "NO_ERROR" {
		t.Fatalf("after the takeover the mirror is %s (%s)", m.MirrorStatus, m.MirrorTopicError)
	}
	t.Logf("%d records identical; the standby took over", n)
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
	cfg := config.Defaults()
	cfg.DestinationBootstrap = dst.ListenAddrs()[0]
	cfg.HTTP = "127.0.0.1:0"
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
			cfg := config.Defaults()
			cfg.DestinationBootstrap = dst.ListenAddrs()[0]
			cfg.HTTP = "127.0.0.1:0"
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
