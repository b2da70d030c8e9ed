package e2e

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/testutil"
)

// TestSwitchover refuses while producers write to the source, leaving the
// mirrors and the groups as they were, and once they stop switches the
// topics and the group over: verified, offsets committed, promoted.
func TestSwitchover(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", 2, nil)
	testutil.CreateTopic(t, e.srcCl, "payments", 1, nil)
	e.createLink("l1", nil) // no offset sync: the switchover moves the group itself
	produceCodecs(t, e.src.ListenAddrs(), "orders", 50)
	produceCodecs(t, e.src.ListenAddrs(), "payments", 20)
	for _, topic := range []string{"orders", "payments"} {
		e.createMirror("l1", topic)
	}
	for _, topic := range []string{"orders", "payments"} {
		e.waitCaughtUp(topic, topic)
		e.waitStatus("l1", topic, "ACTIVE")
	}
	commitOn(t, e.srcCl, "billing", "orders", 0, 7)
	commitOn(t, e.srcCl, "billing", "orders", 1, 11)
	commitOn(t, e.srcCl, "billing", "payments", 0, 3)

	// A producer that keeps writing.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p, err := kgo.NewClient(kgo.SeedBrokers(e.src.ListenAddrs()...), kgo.DefaultProduceTopic("orders"))
		if err != nil {
			t.Error(err)
			return
		}
		defer p.Close()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if err := p.ProduceSync(context.Background(), &kgo.Record{Value: []byte(fmt.Sprintf("live %d", i))}).FirstErr(); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	body := map[string]any{"mirror_topic_name_pattern": "orders|payments", "group_ids": []string{"billing"}, "quiet_ms": 1000, "timeout_ms": 3000}
	var refusal struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}
	e.strait(http.MethodPost, "/links/l1:switchover", body, http.StatusConflict, &refusal)
	if refusal.ErrorCode != 40901 || !strings.Contains(refusal.Message, "producers are still writing to the source: 'orders' partition") {
		t.Fatalf("refusal %+v", refusal)
	}
	for _, topic := range []string{"orders", "payments"} {
		if v := e.describe("l1", topic); v.MirrorStatus != "ACTIVE" {
			t.Fatalf("a refused switchover left %s %s", topic, v.MirrorStatus)
		}
	}
	if got := committedAt(t, e.dstCl, "billing", "orders", 0); got != -1 {
		t.Fatalf("a refused switchover committed billing at %d", got)
	}

	close(stop)
	wg.Wait()
	body["timeout_ms"] = 30000
	var rep api.SwitchoverReport
	e.strait(http.MethodPost, "/links/l1:switchover", body, http.StatusOK, &rep)
	t.Logf("%s", rep.Summary)
	_, ordersEnds := testutil.Offsets(t, e.srcCl, "orders")
	_, paymentsEnds := testutil.Offsets(t, e.srcCl, "payments")
	srcEnds := map[string]map[int32]int64{"orders": ordersEnds, "payments": paymentsEnds}
	if len(rep.Topics) != 2 || rep.QuietWaitMs < 1000 {
		t.Fatalf("report %+v", rep)
	}
	for _, st := range rep.Topics {
		if st.MirrorStatus != "STOPPED" || st.Verified.Offsets == 0 {
			t.Fatalf("topic %+v", st)
		}
		for _, p := range st.Partitions {
			if want := srcEnds[st.MirrorTopicName][p.Partition]; p.EndOffset != want || p.VerifiedOffset != want {
				t.Fatalf("%s[%d]: end %d verified %d, the source ends at %d", st.MirrorTopicName, p.Partition, p.EndOffset, p.VerifiedOffset, want)
			}
		}
		if v := e.describe("l1", st.MirrorTopicName); v.MirrorStatus != "STOPPED" {
			t.Fatalf("%s is %s after the switchover", st.MirrorTopicName, v.MirrorStatus)
		}
	}
	if len(rep.Groups) != 1 || rep.Groups[0].GroupID != "billing" || len(rep.Groups[0].Offsets) != 3 {
		t.Fatalf("groups %+v", rep.Groups)
	}
	for _, o := range rep.Groups[0].Offsets {
		if got := committedAt(t, e.dstCl, "billing", o.MirrorTopicName, o.Partition); got != o.Offset {
			t.Fatalf("billing on %s[%d] at %d on the destination, the report says %d", o.MirrorTopicName, o.Partition, got, o.Offset)
		}
	}
	if got := committedAt(t, e.dstCl, "billing", "orders", 1); got != 11 {
		t.Fatalf("billing on orders[1] at %d, 11 on the source", got)
	}
	// Nothing left: a second switchover has no ACTIVE mirror to move.
	e.strait(http.MethodPost, "/links/l1:switchover", body, http.StatusConflict, &refusal)
	if !strings.Contains(refusal.Message, "is STOPPED, not ACTIVE") {
		t.Fatalf("second switchover: %+v", refusal)
	}
}
