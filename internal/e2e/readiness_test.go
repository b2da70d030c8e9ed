package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/testutil"
)

func (e *env) readiness(group, query string) map[string]api.GroupReadiness {
	e.t.Helper()
	var list api.GroupReadinessList
	e.strait(http.MethodGet, "/groups/"+group+"/readiness"+query, nil, http.StatusOK, &list)
	out := map[string]api.GroupReadiness{}
	for _, g := range list.Data {
		out[g.GroupID] = g
	}
	return out
}

// TestGroupReadiness: a group is ready when its topics are mirrored, caught
// up (or within max_lag) and its offsets synced; otherwise it says why.
func TestGroupReadiness(t *testing.T) {
	e := newEnv(t)
	for _, topic := range []string{"a", "b"} {
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
		p := testutil.Client(t, e.src.ListenAddrs(), kgo.DefaultProduceTopic(topic))
		for i := 0; i < 10; i++ {
			if err := p.ProduceSync(context.Background(), &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	e.createLink("l1", map[string]string{
		"consumer.offset.sync.enable":   "true",
		"consumer.offset.sync.ms":       "1000",
		"consumer.offset.group.filters": `{"groupFilters":[{"name":"g-","patternType":"PREFIXED","filterType":"INCLUDE"}]}`,
	})
	e.createMirror("l1", "a")
	e.waitCaughtUp("a", "a")
	commitOn(t, e.srcCl, "g-ready", "a", 0, 10)
	commitOn(t, e.srcCl, "g-both", "a", 0, 10)
	commitOn(t, e.srcCl, "g-both", "b", 0, 4)
	commitOn(t, e.srcCl, "other", "a", 0, 6)
	testutil.WaitFor(t, 30*time.Second, "offsets synced", func() error {
		if got := committedAt(t, e.dstCl, "g-ready", "a", 0); got != 10 {
			return fmt.Errorf("g-ready at %d", got)
		}
		return nil
	})
	all := e.readiness("-", "")
	if g := all["g-ready"]; !g.Ready || len(g.Reasons) != 0 || g.LinkName != "l1" || len(g.Topics) != 1 || g.Topics[0].Partitions[0].DestinationOffset != 10 {
		t.Fatalf("g-ready: %+v", g)
	}
	if g := all["g-both"]; g.Ready || !strings.Contains(strings.Join(g.Reasons, "; "), "topic 'b' is not mirrored") {
		t.Fatalf("g-both: %+v", g)
	}
	if g := all["other"]; g.Ready || !strings.Contains(strings.Join(g.Reasons, "; "), "filters do not include group 'other'") {
		t.Fatalf("other: %+v", g)
	}

	// Records the mirror has not copied: not ready, unless within max_lag.
	e.alter("l1", "pause", names("a"), "")
	e.waitStatus("l1", "a", "PAUSED")
	p := testutil.Client(t, e.src.ListenAddrs(), kgo.DefaultProduceTopic("a"))
	for i := 0; i < 3; i++ {
		if err := p.ProduceSync(context.Background(), &kgo.Record{Value: []byte("late")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if g := e.readiness("g-ready", "?link_name=l1")["g-ready"]; g.Ready || !strings.Contains(strings.Join(g.Reasons, "; "), "3 records behind") {
		t.Fatalf("g-ready with a lag of 3: %+v", g)
	}
	if g := e.readiness("g-ready", "?max_lag=3")["g-ready"]; !g.Ready {
		t.Fatalf("g-ready within max_lag: %+v", g)
	}
	var body struct {
		ErrorCode int `json:"error_code"`
	}
	e.strait(http.MethodGet, "/groups/g-ready/readiness?max_lag=x", nil, http.StatusBadRequest, &body)
	e.strait(http.MethodGet, "/groups/g-ready/readiness?link_name=nope", nil, http.StatusNotFound, &body)
}
