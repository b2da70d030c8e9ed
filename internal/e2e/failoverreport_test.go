package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/testutil"
)

// commitOn commits a group's offset on partition 0 of topic.
func commitOn(t *testing.T, cl *kgo.Client, group, topic string, p int32, at int64) {
	t.Helper()
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: topic, Partition: p, At: at, LeaderEpoch: -1})
	resp, err := kadm.NewClient(cl).CommitOffsets(context.Background(), group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatalf("commit %s: %v", group, err)
	}
}

func committedAt(t *testing.T, cl *kgo.Client, group, topic string, p int32) int64 {
	t.Helper()
	got, err := kadm.NewClient(cl).FetchOffsets(context.Background(), group)
	if errors.Is(err, kerr.GroupIDNotFound) {
		return -1
	}
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	if o, ok := got.Lookup(topic, p); ok && o.Err == nil {
		return o.At
	}
	return -1
}

// TestFailoverReportIsExact builds a paused mirror with a known lag, known
// timestamps, a transaction open on it and synced groups (one lagging,
// one ahead of the mirror, one held by a consumer on the destination),
// checks every figure of the report and of a validate_only failover, and
// then fails over and checks the report came true.
func TestFailoverReportIsExact(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", 2, nil)
	e.createLink("l1", map[string]string{
		"consumer.offset.sync.enable":   "true",
		"consumer.offset.sync.ms":       "1000",
		"consumer.offset.group.filters": `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`,
	})
	ctx := context.Background()
	p := testutil.Client(t, e.src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("orders"))
	produce := func(part int32, n int, ts time.Time) {
		for i := 0; i < n; i++ {
			if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(fmt.Sprintf("r%d", i)), Timestamp: ts}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	produce(0, 10, time.Now())
	produce(1, 5, time.Now())
	e.createMirror("l1", "orders")
	e.waitStatus("l1", "orders", "ACTIVE")
	// A transaction open on partition 1, its two records copied.
	tx := testutil.Client(t, e.src.ListenAddrs(), kgo.TransactionalID("open-one"), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic("orders"))
	if err := tx.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := tx.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("open")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCaughtUp("orders", "orders")

	// Groups, synced while the mirror copies.
	commitOn(t, e.srcCl, "g-lag", "orders", 0, 4)
	commitOn(t, e.srcCl, "g-ahead", "orders", 0, 10)
	commitOn(t, e.srcCl, "g-busy", "orders", 0, 3)
	testutil.WaitFor(t, 30*time.Second, "offsets synced", func() error {
		for g, want := range map[string]int64{"g-lag": 4, "g-ahead": 10, "g-busy": 3} {
			if got := committedAt(t, e.dstCl, g, "orders", 0); got != want {
				return fmt.Errorf("%s at %d on the destination, want %d", g, got, want)
			}
		}
		return nil
	})
	// A consumer of g-busy on the destination: the sync leaves the group
	// to it from now on.
	busy := testutil.Client(t, e.dst.ListenAddrs(), kgo.ConsumerGroup("g-busy"), kgo.ConsumeTopics("orders"), kgo.DisableAutoCommit())
	go func() {
		for {
			if fs := busy.PollFetches(ctx); fs.IsClientClosed() {
				return
			}
		}
	}()
	testutil.WaitFor(t, 30*time.Second, "g-busy has a member on the destination", func() error {
		d, err := kadm.NewClient(e.dstCl).DescribeGroups(ctx, "g-busy")
		if err != nil || len(d["g-busy"].Members) == 0 {
			return fmt.Errorf("no member yet: %v", err)
		}
		return nil
	})

	e.alter("l1", "pause", names("orders"), "")
	e.waitStatus("l1", "orders", "PAUSED")
	// Written while paused, with a known timestamp: 3 records not copied.
	oldest := time.Now().Add(-20 * time.Second).Truncate(time.Millisecond)
	produce(0, 3, oldest)
	commitOn(t, e.srcCl, "g-ahead", "orders", 0, 12)
	commitOn(t, e.srcCl, "g-busy", "orders", 0, 8)

	var rep api.FailoverReport
	before := time.Now()
	e.strait(http.MethodGet, "/links/l1/failover-report", nil, http.StatusOK, &rep)
	elapsed := time.Since(oldest).Seconds()
	if len(rep.Topics) != 1 || len(rep.Topics[0].Partitions) != 2 {
		t.Fatalf("report %+v", rep)
	}
	p0, p1 := rep.Topics[0].Partitions[0], rep.Topics[0].Partitions[1]
	if p0.SourceEndOffset != 13 || p0.MirrorEndOffset != 10 || p0.RecordsNotCopied != 3 ||
		p0.OldestNotCopiedTimestampMs == nil || *p0.OldestNotCopiedTimestampMs != oldest.UnixMilli() || len(p0.OpenTransactions) != 0 {
		t.Fatalf("partition 0: %+v", p0)
	}
	if p0.DataLossSeconds < time.Duration(before.Sub(oldest)).Seconds()-0.01 || p0.DataLossSeconds > elapsed+0.01 {
		t.Fatalf("partition 0 loses %.3f s; its oldest record not copied is %.3f s old", p0.DataLossSeconds, elapsed)
	}
	if p1.SourceEndOffset != 7 || p1.MirrorEndOffset != 7 || p1.RecordsNotCopied != 0 || p1.OldestNotCopiedTimestampMs != nil ||
		len(p1.OpenTransactions) != 1 || p1.OpenTransactions[0].StartOffset != 5 || p1.OpenTransactions[0].RecordsOnMirror != 2 {
		t.Fatalf("partition 1: %+v", p1)
	}
	if rep.LaggingPartitions != 1 || rep.LaggingTopics != 1 || rep.OpenTransactions != 1 || rep.MaxDataLossSeconds != p0.DataLossSeconds {
		t.Fatalf("totals %+v", rep)
	}
	groups := map[string]api.FailoverGroup{}
	for _, g := range rep.Topics[0].Groups {
		groups[g.GroupID] = g
	}
	want := map[string]api.FailoverGroupPartition{
		// Behind the mirror: resumes where it was, and never sees the 3
		// records not copied.
		"g-lag": {SourceOffset: 4, DestinationOffset: 4, OffsetAfterFailover: 4, Reprocessed: 0, Missed: 3},
		// Ahead of the mirror: the last sync stops it at the mirror's
		// end; of the records not copied it had not read 1.
		"g-ahead": {SourceOffset: 12, DestinationOffset: 10, OffsetAfterFailover: 10, Reprocessed: 0, Missed: 1},
		// Held by its consumer on the destination: not synced again, it
		// reads 5 records again and misses the 3 not copied.
		"g-busy": {SourceOffset: 8, DestinationOffset: 3, OffsetAfterFailover: 3, Reprocessed: 5, Missed: 3},
	}
	for g, w := range want {
		got, ok := groups[g]
		if !ok || len(got.Partitions) != 1 {
			t.Fatalf("group %s: %+v", g, got)
		}
		if gp := got.Partitions[0]; gp != w || got.Reprocessed != w.Reprocessed || got.Missed != w.Missed {
			t.Fatalf("group %s: %+v, want %+v", g, got, w)
		}
	}
	for _, s := range []string{"failover now loses at most ", "s of data on 1 partition of 1 topic", "aborts 1 transaction", "consumers of 3 groups would see 5 records again and miss 7"} {
		if !strings.Contains(rep.Verdict, s) {
			t.Fatalf("verdict %q lacks %q", rep.Verdict, s)
		}
	}
	t.Logf("verdict: %s", rep.Verdict)

	// validate_only=true: the same figures in Confluent's answer, which
	// still validates against the spec (e.alter checks it), and nothing
	// changes.
	var raw struct {
		Data []struct {
			MirrorTopicName      string             `json:"mirror_topic_name"`
			StraitFailoverReport *api.FailoverTopic `json:"strait_failover_report"`
		} `json:"data"`
	}
	e.api.JSON(http.MethodPost, "/links/l1/mirrors:failover?validate_only=true", names("orders"), http.StatusOK, &raw)
	if len(raw.Data) != 1 || raw.Data[0].StraitFailoverReport == nil {
		t.Fatalf("validate_only failover: %+v", raw)
	}
	if fr := raw.Data[0].StraitFailoverReport; fr.Partitions[0].RecordsNotCopied != 3 || len(fr.Partitions[1].OpenTransactions) != 1 || len(fr.Groups) != 3 {
		t.Fatalf("validate_only report %+v", fr)
	}
	if v := e.describe("l1", "orders"); v.MirrorStatus != "PAUSED" {
		t.Fatalf("a validate_only failover changed the mirror: %s", v.MirrorStatus)
	}

	// The failover does what the report said.
	e.alter("l1", "failover", names("orders"), "")
	e.waitStatus("l1", "orders", "STOPPED")
	for g, w := range want {
		if got := committedAt(t, e.dstCl, g, "orders", 0); got != w.OffsetAfterFailover {
			t.Fatalf("after the failover %s is at %d, the report said %d", g, got, w.OffsetAfterFailover)
		}
	}
	markers := testutil.Markers(t, e.dstCl, "orders", 1)
	if commit, ok := markers[7]; !ok || commit {
		t.Fatalf("the open transaction was not aborted at offset 7: markers %v", markers)
	}
}
