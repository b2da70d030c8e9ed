package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// onReadStuck, when set, is called before a read that timed out fails
// the test, to say more about the partitions where it stopped.
var onReadStuck func(addrs []string, topic string, at, ends map[int32]int64)

// isolationViews are the two ways a consumer can read a topic. A mirror
// must look like its source in both: a read_uncommitted reader sees every
// record up to the high watermark, a read_committed one stops at the last
// stable offset and skips aborted transactions, so a mirror that copied
// the records but misplaced or lost a marker differs only in the second.
var isolationViews = []struct {
	name      string
	committed bool
	level     kgo.IsolationLevel
}{
	{"read_uncommitted", false, kgo.ReadUncommitted()},
	{"read_committed", true, kgo.ReadCommitted()},
}

// topicView is what one reader of a topic sees: its records by partition
// and the offsets it reads between.
type topicView struct {
	records      map[int32][]*kgo.Record
	starts, ends map[int32]int64 // ends: high watermarks or last stable offsets
}

// readView reads every record of topic from its log start to the end a
// reader at the given isolation level sees: the high watermark, or for
// read_committed the last stable offset. It fetches control records too, so
// that a partition whose last offset is a transaction marker is known to be
// read to its end at once, rather than after an idle wait; they are left
// out of the result, as consumers never see them.
//
// A read_committed read cannot finish if the record before the last stable
// offset belongs to a transaction aborted after it (only possible while
// another transaction is open); it then fails at its deadline.
func readView(t *testing.T, addrs []string, topic string, committed bool, opts ...kgo.Opt) topicView {
	t.Helper()
	adm := kadm.NewClient(testutil.Client(t, addrs, opts...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listEnds, level, name := adm.ListEndOffsets, kgo.ReadUncommitted(), "read_uncommitted"
	if committed {
		listEnds, level, name = adm.ListCommittedOffsets, kgo.ReadCommitted(), "read_committed"
	}
	v := topicView{records: map[int32][]*kgo.Record{}, starts: map[int32]int64{}, ends: map[int32]int64{}}
	for _, list := range []struct {
		fn  func(context.Context, ...string) (kadm.ListedOffsets, error)
		out map[int32]int64
	}{{adm.ListStartOffsets, v.starts}, {listEnds, v.ends}} {
		listed, err := list.fn(ctx, topic)
		if err == nil {
			err = listed.Error()
		}
		if err != nil {
			t.Fatalf("list offsets of %s: %v", topic, err)
		}
		listed.Each(func(o kadm.ListedOffset) { list.out[o.Partition] = o.Offset })
	}
	offs := map[int32]kgo.Offset{}
	for p, end := range v.ends {
		v.records[p] = nil
		if end > v.starts[p] {
			offs[p] = kgo.NewOffset().At(v.starts[p])
		}
	}
	if len(offs) == 0 {
		return v
	}
	logs := &lastLines{}
	consumer := func(from map[int32]kgo.Offset) *kgo.Client {
		return testutil.Client(t, addrs, append([]kgo.Opt{
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}),
			kgo.FetchIsolationLevel(level),
			kgo.KeepControlRecords(),
			kgo.DisableFetchSessions(),
			kgo.WithLogger(kgo.BasicLogger(logs, kgo.LogLevelDebug, nil)),
		}, opts...)...)
	}
	cl := consumer(offs)
	rctx, rcancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer rcancel()
	at := map[int32]int64{} // the next offset to read, by partition
	moved := time.Now()
	for len(offs) > 0 {
		pctx, pcancel := context.WithTimeout(rctx, 5*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if rctx.Err() != nil {
			if onReadStuck != nil {
				onReadStuck(addrs, topic, at, v.ends)
			}
			t.Logf("the reader's last log lines:\n%s", logs)
			t.Fatalf("reading %s (%s) on %v: timed out at %v, reading up to %v", topic, name, addrs, at, v.ends)
		}
		if time.Since(moved) > 15*time.Second {
			// kfake was seen, after many leader moves, to leave a kgo
			// consumer waiting on a partition for good (the chaos suite,
			// seed 1796241621795556528); a new consumer reads on. What the
			// stuck one logged is kept for whoever looks into it.
			t.Logf("reader of %s on %v made no progress for 15 s at %v; starting a new one. Its last log lines:\n%s", topic, addrs, at, logs)
			cl.Close()
			from := map[int32]kgo.Offset{}
			for p := range offs {
				o, ok := at[p]
				if !ok {
					o = v.starts[p]
				}
				from[p] = kgo.NewOffset().At(o)
			}
			cl = consumer(from)
			moved = time.Now()
			continue
		}
		fs.EachError(func(_ string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("reading %s[%d]: %v", topic, p, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			end := v.ends[r.Partition]
			if r.Offset >= end {
				return
			}
			moved = time.Now()
			at[r.Partition] = r.Offset + 1
			if r.Offset == end-1 {
				delete(offs, r.Partition)
			}
			if !r.Attrs.IsControl() {
				v.records[r.Partition] = append(v.records[r.Partition], r)
			}
		})
	}
	return v
}

// lastLines keeps the last lines written to it.
type lastLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *lastLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, strings.TrimRight(string(p), "\n"))
	if len(l.lines) > 30 {
		l.lines = l.lines[len(l.lines)-30:]
	}
	return len(p), nil
}

func (l *lastLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// diffViews compares a source's view with its mirror's: the same offsets
// read between, and the same records at the same offsets.
func diffViews(src, dst topicView) string {
	for _, o := range []struct {
		what     string
		src, dst map[int32]int64
	}{{"log start", src.starts, dst.starts}, {"end", src.ends, dst.ends}} {
		if len(o.src) != len(o.dst) {
			return fmt.Sprintf("source has %d partitions, mirror %d", len(o.src), len(o.dst))
		}
		for p, s := range o.src {
			if d, ok := o.dst[p]; !ok || d != s {
				return fmt.Sprintf("partition %d: source %s %d, mirror %s %d", p, o.what, s, o.what, d)
			}
		}
	}
	return testutil.DiffRecords(src.records, dst.records)
}

// assertIdentical compares the source topic and its mirror record by record
// and offset by offset, with their log start and end offsets, as
// read_uncommitted and as read_committed readers see them, and returns how
// many records a read_uncommitted reader sees.
func (e *env) assertIdentical(srcTopic, mirrorTopic string) int {
	e.t.Helper()
	return assertSameViews(e.t, e.src.ListenAddrs(), srcTopic, e.dst.ListenAddrs(), mirrorTopic, e.clientOpts...)
}

// assertSameViews is assertIdentical for any two clusters: srcTopic on
// srcAddrs is the original, dstTopic on dstAddrs its copy.
func assertSameViews(t *testing.T, srcAddrs []string, srcTopic string, dstAddrs []string, dstTopic string, opts ...kgo.Opt) int {
	t.Helper()
	n := 0
	for _, view := range isolationViews {
		s := readView(t, srcAddrs, srcTopic, view.committed, opts...)
		d := readView(t, dstAddrs, dstTopic, view.committed, opts...)
		if diff := diffViews(s, d); diff != "" {
			t.Fatalf("%s view: %s differs from %s: %s", view.name, dstTopic, srcTopic, diff)
		}
		if !view.committed {
			n = testutil.Count(s.records)
		}
	}
	return n
}
