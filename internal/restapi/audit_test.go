package restapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/store"
	"github.com/strait-dev/strait/internal/testutil"
)

// syncBuffer is a log destination safe for the handlers' goroutines.
type syncBuffer struct{ testutil.SyncBuffer }

// lines returns the JSON log lines with the given message.
func (s *syncBuffer) lines(t *testing.T, msg string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if m["msg"] == msg {
			out = append(out, m)
		}
	}
	return out
}

// newTestAPI serves the API over a link manager on a kfake destination,
// logging JSON to logs, and returns it and the source cluster.
func newTestAPI(t *testing.T, logs *syncBuffer) (*testutil.API, *kfake.Cluster) {
	t.Helper()
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	return serveOn(t, dst, logs, false), src
}

// serveOn serves the API over a new link manager on the destination dst,
// a follower of the active instance when follower is set.
func serveOn(t *testing.T, dst *kfake.Cluster, logs *syncBuffer, follower bool) *testutil.API {
	t.Helper()
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := []kgo.Opt{kgo.SeedBrokers(dst.ListenAddrs()...)}
	st, err := store.Open(ctx, base, "", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	destCl := testutil.Client(t, dst.ListenAddrs())
	md, err := kadm.NewClient(destCl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m, err := link.New(ctx, link.Config{Store: st, Dest: destCl, ClusterID: md.Cluster, Log: log, MetadataInterval: 200 * time.Millisecond, Follower: follower})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	srv := httptest.NewServer(New(m, log, Options{}))
	t.Cleanup(srv.Close)
	return testutil.NewAPI(t, srv.URL, "/kafka/v3", md.Cluster)
}

// TestAuditEachTopic: a mirror alter that one topic of three refuses is
// audited as partial, and each topic with its own result: the refused one
// with its error code and message, not as a success.
func TestAuditEachTopic(t *testing.T) {
	logs := &syncBuffer{}
	api, src := newTestAPI(t, logs)
	srcCl := testutil.Client(t, src.ListenAddrs())
	api.JSON(http.MethodPost, "/links?link_name=l1", map[string]any{"configs": []map[string]string{{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]}}}, http.StatusNoContent, nil)
	for _, topic := range []string{"a", "b", "c"} {
		testutil.CreateTopic(t, srcCl, topic, 1, nil)
		api.JSON(http.MethodPost, "/links/l1/mirrors", map[string]any{"source_topic_name": topic}, http.StatusNoContent, nil)
	}
	api.JSON(http.MethodPost, "/links/l1/mirrors:failover", map[string]any{"mirror_topic_names": []string{"c"}}, http.StatusOK, nil)
	api.JSON(http.MethodPost, "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{"a", "b", "c"}}, http.StatusOK, nil)

	var pause map[string]any
	for _, l := range logs.lines(t, "audit") {
		if strings.HasSuffix(l["operation"].(string), "mirrors:pause") {
			pause = l
		}
	}
	if pause == nil {
		t.Fatal("no audit line for the pause")
	}
	if pause["result"] != "partial" || pause["topics"] != 3.0 || pause["topics_refused"] != 1.0 || pause["link"] != "l1" || pause["principal"] != "User:ANONYMOUS" {
		t.Errorf("audit line of the pause: %v", pause)
	}
	got := map[string]map[string]any{}
	for _, l := range logs.lines(t, "audit topic") {
		if strings.HasSuffix(l["operation"].(string), "mirrors:pause") {
			got[l["topic"].(string)] = l
		}
	}
	for _, topic := range []string{"a", "b"} {
		if l := got[topic]; l == nil || l["result"] != "success" || l["link"] != "l1" || l["error_code"] != nil {
			t.Errorf("audit of %s: %v, want success", topic, l)
		}
	}
	c := got["c"]
	if c == nil || c["result"] != "refused" || c["error_code"] != 400.0 || !strings.Contains(c["error"].(string), "already stopped") {
		t.Errorf("audit of c: %v, want refused with error_code 400 and why", c)
	}
	// The failover before is one topic that took it.
	var failover []map[string]any
	for _, l := range logs.lines(t, "audit topic") {
		if strings.HasSuffix(l["operation"].(string), "mirrors:failover") {
			failover = append(failover, l)
		}
	}
	if len(failover) != 1 || failover[0]["topic"] != "c" || failover[0]["result"] != "success" {
		t.Errorf("audit of the failover: %v", failover)
	}
	// And the state changes, one line each, with the operation as reason.
	var stopped bool
	for _, l := range logs.lines(t, "mirror state changed") {
		if l["topic"] == "c" && l["to"] == "STOPPED" && l["reason"] == "mirrors:failover" {
			stopped = true
		}
		if l["topic"] == "c" && l["to"] == "PAUSED" {
			t.Errorf("refused topic logged as paused: %v", l)
		}
	}
	if !stopped {
		t.Errorf("no state change line for the failover of c: %v", logs.lines(t, "mirror state changed"))
	}
}

// TestAuditForwardedTopics: an instance that is not the active one
// forwards a mirror alter; its own audit lines name each topic's result
// as the active instance answered it.
func TestAuditForwardedTopics(t *testing.T) {
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	active := serveOn(t, dst, &syncBuffer{}, false)
	logs := &syncBuffer{}
	follower := serveOn(t, dst, logs, true)
	srcCl := testutil.Client(t, src.ListenAddrs())
	active.JSON(http.MethodPost, "/links?link_name=l1", map[string]any{"configs": []map[string]string{{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]}}}, http.StatusNoContent, nil)
	testutil.CreateTopic(t, srcCl, "a", 1, nil)
	active.JSON(http.MethodPost, "/links/l1/mirrors", map[string]any{"source_topic_name": "a"}, http.StatusNoContent, nil)
	follower.JSON(http.MethodPost, "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{"a", "nope"}}, http.StatusOK, nil)

	var request map[string]any
	for _, l := range logs.lines(t, "audit") {
		if strings.HasSuffix(l["operation"].(string), "mirrors:pause") {
			request = l
		}
	}
	if request == nil || request["result"] != "partial" || request["topics_refused"] != 1.0 {
		t.Errorf("audit line of the forwarded pause: %v", request)
	}
	got := map[string]any{}
	for _, l := range logs.lines(t, "audit topic") {
		got[l["topic"].(string)] = l["result"]
	}
	if got["a"] != "success" || got["nope"] != "refused" {
		t.Errorf("topics of the forwarded pause: %v", got)
	}
}
