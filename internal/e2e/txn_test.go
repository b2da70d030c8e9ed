package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// txnProducer is a transactional franz-go producer on the source.
func txnProducer(t *testing.T, addrs []string, id string) *kgo.Client {
	t.Helper()
	return testutil.Client(t, addrs, kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"), kgo.ProducerLinger(0),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
}

// inTxn runs one transaction of n records on partition p and commits or
// aborts it.
func inTxn(t *testing.T, cl *kgo.Client, p int32, n int, tag string, commit bool) {
	t.Helper()
	ctx := context.Background()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		r := &kgo.Record{Partition: p, Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatal(err)
	}
}

// assertTxnViews compares the source and the mirror as read_uncommitted
// and as read_committed readers see them, and their end offsets.
func assertTxnViews(t *testing.T, e *env, topic string) {
	t.Helper()
	_, se := testutil.Offsets(t, e.srcCl, topic)
	_, de := testutil.Offsets(t, e.dstCl, topic)
	for p := range se {
		if se[p] != de[p] {
			t.Fatalf("partition %d: source ends at %d, mirror at %d", p, se[p], de[p])
		}
	}
	for _, iso := range []kgo.IsolationLevel{kgo.ReadUncommitted(), kgo.ReadCommitted()} {
		s := testutil.ReadUntilIdle(t, e.src.ListenAddrs(), topic, time.Second, kgo.FetchIsolationLevel(iso))
		d := testutil.ReadUntilIdle(t, e.dst.ListenAddrs(), topic, time.Second, kgo.FetchIsolationLevel(iso))
		if diff := testutil.DiffRecords(s, d); diff != "" {
			t.Fatalf("%v view differs: %s", iso, diff)
		}
		t.Logf("%v view: %d records identical", iso, testutil.Count(s))
	}
}

// TestTransactionalSource mirrors committed, aborted and interleaved
// transactions from several producers, mixed with plain records, and
// checks both isolation views, offset by offset.
func TestTransactionalSource(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "tx", 2, nil)
	a := txnProducer(t, e.src.ListenAddrs(), "app-a")
	b := txnProducer(t, e.src.ListenAddrs(), "app-b")
	plain := testutil.Client(t, e.src.ListenAddrs(), kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	e.createLink("l1", nil)

	inTxn(t, a, 0, 5, "a1", true)
	inTxn(t, b, 0, 3, "b1", false)
	produceWith(t, plain, "tx", 0) // nothing; keeps the helper honest
	if err := plain.ProduceSync(context.Background(), &kgo.Record{Partition: 0, Value: []byte("plain")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// Interleaved on one partition: a and b both open, b commits first.
	ctx := context.Background()
	for _, cl := range []*kgo.Client{a, b} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 4; i++ {
		for j, cl := range []*kgo.Client{a, b} {
			r := &kgo.Record{Partition: int32(i % 2), Value: []byte(fmt.Sprintf("interleaved-%d-%d", j, i))}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := a.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	e.createMirror("l1", "tx")
	e.waitCaughtUp("tx", "tx")
	assertTxnViews(t, e, "tx")

	// A transaction open while the mirror copies its data, committed later.
	if err := a.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := a.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte(fmt.Sprintf("late-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCaughtUp("tx", "tx")
	if err := a.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	inTxn(t, b, 1, 2, "b2", true)
	e.waitCaughtUp("tx", "tx")
	assertTxnViews(t, e, "tx")
	if v := e.describe("l1", "tx"); v.MirrorStatus != "ACTIVE" {
		t.Fatalf("mirror %s %+v", v.MirrorStatus, v.TransitionErrors)
	}
}

// TestTransactionSurvivesRestart stops the daemon while a source
// transaction is open and its data copied; after the restart the mirror
// carries on with the same destination transaction instead of aborting it.
func TestTransactionSurvivesRestart(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "tx", 1, nil)
	a := txnProducer(t, e.src.ListenAddrs(), "app-a")
	e.createLink("l1", nil)
	e.createMirror("l1", "tx")
	e.waitStatus("l1", "tx", "ACTIVE")
	ctx := context.Background()
	if err := a.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := a.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("open-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	e.waitCaughtUp("tx", "tx")
	e.stopDaemon()
	e.startDaemon()
	for i := 0; i < 3; i++ {
		if err := a.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("after-restart-%d", i))}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp("tx", "tx")
	assertTxnViews(t, e, "tx")
}

// TestFailoverAbortsOpenTransaction: a source transaction still open at
// failover is aborted on the stopped mirror, so read_committed consumers of
// the promoted topic are not held back and never see its records.
func TestFailoverAbortsOpenTransaction(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "tx", 1, nil)
	a := txnProducer(t, e.src.ListenAddrs(), "app-a")
	e.createLink("l1", nil)
	e.createMirror("l1", "tx")
	inTxn(t, a, 0, 2, "done", true)
	ctx := context.Background()
	if err := a.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := a.ProduceSync(ctx, &kgo.Record{Value: []byte("never-committed")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	e.waitCaughtUp("tx", "tx")
	e.api.JSON("POST", "/links/l1/mirrors:failover", names("tx"), http.StatusOK, nil)
	e.waitStatus("l1", "tx", "STOPPED")
	// Writes after the failover, read_committed: the committed records and
	// the new one, not the open transaction's.
	produceToMirror(t, e.dstCl, "tx", 1)
	got := testutil.ReadUntilIdle(t, e.dst.ListenAddrs(), "tx", time.Second, kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	var values []string
	for _, r := range got[0] {
		values = append(values, string(r.Value))
	}
	want := []string{"done-0", "done-1", "written after the stop"}
	if fmt.Sprint(values) != fmt.Sprint(want) {
		t.Fatalf("read_committed on the stopped mirror: %q, want %q", values, want)
	}
}
