package e2e

import (
	"context"
	"fmt"
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
	e.assertIdentical("tx", "tx")

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
	e.assertIdentical("tx", "tx")
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
	e.assertIdentical("tx", "tx")
}

// TestStopAbortsOpenTransaction: a source transaction still open when the
// mirror stops (failover, or promote: the transaction's records are copied,
// so the mirror has no lag and the promote completes) is aborted on the
// stopped mirror, as docs/design.md says. read_committed consumers of the
// promoted topic never see its records and are not held back by it;
// read_uncommitted ones see them, as on the source.
func TestStopAbortsOpenTransaction(t *testing.T) {
	for _, op := range []string{"failover", "promote"} {
		t.Run(op, func(t *testing.T) {
			// A promote that waited for the transaction to end would
			// give up after this; a failed promote reports it.
			e := newEnvWith(t, &env{promoteTimeout: 20 * time.Second})
			testutil.CreateTopic(t, e.srcCl, "tx", 1, nil)
			a := txnProducer(t, e.src.ListenAddrs(), "app-a")
			e.createLink("l1", nil)
			e.createMirror("l1", "tx")
			inTxn(t, a, 0, 2, "done", true) // offsets 0, 1, commit marker 2
			ctx := context.Background()
			if err := a.BeginTransaction(); err != nil {
				t.Fatal(err)
			}
			if err := a.ProduceSync(ctx, &kgo.Record{Value: []byte("never-committed")}).FirstErr(); err != nil {
				t.Fatal(err) // offset 3, left open
			}
			e.waitCaughtUp("tx", "tx")
			// A read_committed consumer of the mirror, started while the
			// transaction is open: it reads the committed records and
			// then waits at the last stable offset.
			waiting := testutil.Client(t, e.dst.ListenAddrs(), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"tx": {0: kgo.NewOffset().AtStart()}}))
			got := readValues(t, waiting, 2)

			r := e.alter("l1", op, names("tx"), "")
			if code, msg := resultErr(t, r, 0); code != 0 {
				t.Fatalf("%s: %d %s", op, code, msg)
			}
			e.waitStatus("l1", "tx", "STOPPED")

			// read_uncommitted: the mirror has what the source has, the
			// open transaction's record at its offset included, and then
			// the abort marker (offset 4) the source does not have yet.
			src := readView(t, e.src.ListenAddrs(), "tx", false)
			dst := readView(t, e.dst.ListenAddrs(), "tx", false)
			if diff := testutil.DiffRecords(src.records, dst.records); diff != "" {
				t.Fatalf("read_uncommitted: mirror differs from source: %s", diff)
			}
			if n := len(dst.records[0]); n != 3 || dst.ends[0] != 5 {
				t.Fatalf("read_uncommitted: mirror has %d records and ends at %d, want 3 and 5 (the abort marker at 4)", n, dst.ends[0])
			}
			// read_committed: the mirror's last stable offset is its high
			// watermark (nothing holds readers back), and what readers
			// see is what they see on the source, whose last stable
			// offset still waits at the open transaction.
			srcC := readView(t, e.src.ListenAddrs(), "tx", true)
			dstC := readView(t, e.dst.ListenAddrs(), "tx", true)
			if dstC.ends[0] != dst.ends[0] || srcC.ends[0] != 3 {
				t.Fatalf("last stable offsets: mirror %d (high watermark %d), source %d (want 3)", dstC.ends[0], dst.ends[0], srcC.ends[0])
			}
			if diff := testutil.DiffRecords(srcC.records, dstC.records); diff != "" {
				t.Fatalf("read_committed: mirror differs from source: %s", diff)
			}
			// A write after the stop reaches the consumer that waited: it
			// reads past the aborted record and the marker.
			if off := produceToMirror(t, e.dstCl, "tx", 1)[0]; off != 5 {
				t.Fatalf("write after the stop at offset %d, want 5", off)
			}
			got = append(got, readValues(t, waiting, 1)...)
			want := []string{"done-0", "done-1", "written after the stop"}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("read_committed consumer read %q, want %q", got, want)
			}
		})
	}
}

// readValues polls cl until it has n record values, or fails after a
// deadline: a consumer held back by an open transaction fails here.
func readValues(t *testing.T, cl *kgo.Client, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []string
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %q, waiting for %d records", out, n)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}
