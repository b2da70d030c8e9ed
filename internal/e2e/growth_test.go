package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestPartitionGrowth adds partitions to the source: the mirror gets them
// within a probe interval and copies them from their start.
func TestPartitionGrowth(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "grow", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "grow", 50)
	e.createLink("l1", nil)
	e.createMirror("l1", "grow")
	e.waitCaughtUp("grow", "grow")
	if _, err := kadm.NewClient(e.srcCl).UpdatePartitions(context.Background(), 5, "grow"); err != nil {
		t.Fatal(err)
	}
	p := testutil.Client(t, e.src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for part := int32(2); part < 5; part++ {
		for i := 0; i < 10; i++ {
			if err := p.ProduceSync(context.Background(), &kgo.Record{Topic: "grow", Partition: part, Value: []byte(fmt.Sprintf("new-%d-%d", part, i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	testutil.WaitFor(t, 30*time.Second, "mirror has 5 partitions", func() error {
		if v := e.describe("l1", "grow"); v.NumPartitions != 5 || len(v.MirrorLags) != 5 {
			return fmt.Errorf("num_partitions %d, %d lags", v.NumPartitions, len(v.MirrorLags))
		}
		return nil
	})
	e.waitCaughtUp("grow", "grow")
	if n := e.assertIdentical("grow", "grow"); n != 280 {
		t.Fatalf("%d records, want 280", n)
	}
}

// TestRetentionOvertakesMirror: the source deletes records the paused
// mirror has not copied yet; on resume the mirror aligns past them, says
// how many it lost, and copies the rest at identical offsets.
func TestRetentionOvertakesMirror(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "ret", 1, nil)
	produceMixed(t, e.src.ListenAddrs(), "ret", 20) // 100 records
	e.createLink("l1", nil)
	e.createMirror("l1", "ret")
	e.waitCaughtUp("ret", "ret")
	e.api.JSON("POST", "/links/l1/mirrors:pause", names("ret"), http.StatusOK, nil)
	produceMixed(t, e.src.ListenAddrs(), "ret", 20) // 100 more, offsets 100-199
	e.deleteSourceRecords("ret", func(int64) int64 { return 150 })
	e.api.JSON("POST", "/links/l1/mirrors:resume", names("ret"), http.StatusOK, nil)
	e.waitCaughtUp("ret", "ret")
	var v mirrorView
	testutil.WaitFor(t, 10*time.Second, "mirror aligned and reported", func() error {
		v = e.describe("l1", "ret")
		for _, te := range v.TransitionErrors {
			if te.ErrorCode == "SOURCE_RECORDS_EXPIRED" && strings.Contains(te.ErrorMessage, "offsets 100 to 149") {
				return nil
			}
		}
		return fmt.Errorf("transition errors %+v", v.TransitionErrors)
	})
	if v.MirrorStatus != "ACTIVE" {
		t.Fatalf("status %s", v.MirrorStatus)
	}
	resp, err := http.Get(e.api.Root + "/metrics") // not part of the REST spec
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `strait_mirror_skipped_offsets_total{link="l1",topic="ret"} 50`) {
		t.Fatalf("metrics do not count the 50 lost offsets")
	}
	e.assertIdentical("ret", "ret") // log starts equal too: 150
}
