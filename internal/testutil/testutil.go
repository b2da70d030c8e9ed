// Package testutil has the fixtures Strait's tests share: in-process kfake
// clusters, clients, polling with a deadline, and record-by-record
// comparison of a source topic and its mirror.
package testutil

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// NewCluster starts an in-process kfake cluster on a loopback port and
// closes it when the test ends.
func NewCluster(t testing.TB, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	base := []kfake.Opt{kfake.NumBrokers(1)} // kfake listens on 127.0.0.1 only
	c, err := kfake.NewCluster(append(base, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Client returns a franz-go client for addrs, closed when the test ends.
func Client(t testing.TB, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic with the given partitions and configs.
func CreateTopic(t testing.TB, cl *kgo.Client, topic string, partitions int32, configs map[string]*string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// WaitFor polls cond until it returns nil or d passes, then fails the test
// with cond's last error.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	wait := 10 * time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
		}
		time.Sleep(wait) // polling interval, not synchronisation
		wait = min(wait*2, 200*time.Millisecond)
	}
}

// Offsets returns the start and end offsets of every partition of topic.
func Offsets(t testing.TB, cl *kgo.Client, topic string) (starts, ends map[int32]int64) {
	t.Helper()
	// Generous: with -race on a loaded two-core machine a kfake answer
	// has been seen to take over 10 s.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(cl)
	s, err := adm.ListStartOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list start offsets: %v", err)
	}
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatalf("list end offsets: %v", err)
	}
	starts, ends = map[int32]int64{}, map[int32]int64{}
	s.Each(func(o kadm.ListedOffset) { starts[o.Partition] = o.Offset })
	e.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	return starts, ends
}

// ReadAll reads every record of topic between the partitions' start and end
// offsets, by partition, in offset order.
func ReadAll(t testing.TB, addrs []string, topic string, opts ...kgo.Opt) map[int32][]*kgo.Record {
	t.Helper()
	admCl := Client(t, addrs, opts...)
	starts, ends := Offsets(t, admCl, topic)
	out := map[int32][]*kgo.Record{}
	offs := map[int32]kgo.Offset{}
	left := 0
	for p, e := range ends {
		out[p] = nil
		if e > starts[p] {
			offs[p] = kgo.NewOffset().At(starts[p])
			left++
		}
	}
	if left == 0 {
		return out
	}
	cl := Client(t, addrs, append([]kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs})}, opts...)...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := map[int32]bool{}
	for len(done) < left {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading %s: timed out with %d of %d partitions done", topic, len(done), left)
		}
		fs.EachError(func(_ string, p int32, err error) { t.Fatalf("reading %s[%d]: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset < ends[r.Partition] {
				out[r.Partition] = append(out[r.Partition], r)
			}
			if r.Offset >= ends[r.Partition]-1 {
				done[r.Partition] = true
			}
		})
	}
	return out
}

// DiffRecords compares two reads record by record: same partitions, same
// offsets, keys, values, headers and timestamps. It returns a description
// of the first difference, or "" when identical.
func DiffRecords(src, dst map[int32][]*kgo.Record) string {
	if len(src) != len(dst) {
		return fmt.Sprintf("source has %d partitions, mirror %d", len(src), len(dst))
	}
	for p, s := range src {
		d := dst[p]
		if len(s) != len(d) {
			return fmt.Sprintf("partition %d: source has %d records, mirror %d", p, len(s), len(d))
		}
		for i := range s {
			if msg := diffRecord(s[i], d[i]); msg != "" {
				return fmt.Sprintf("partition %d record %d: %s", p, i, msg)
			}
		}
	}
	return ""
}

func diffRecord(a, b *kgo.Record) string {
	switch {
	case a.Offset != b.Offset:
		return fmt.Sprintf("offset %d vs %d", a.Offset, b.Offset)
	case !bytes.Equal(a.Key, b.Key) || (a.Key == nil) != (b.Key == nil):
		return fmt.Sprintf("offset %d: key %q vs %q", a.Offset, a.Key, b.Key)
	case !bytes.Equal(a.Value, b.Value) || (a.Value == nil) != (b.Value == nil):
		return fmt.Sprintf("offset %d: value differs", a.Offset)
	case !a.Timestamp.Equal(b.Timestamp):
		return fmt.Sprintf("offset %d: timestamp %v vs %v", a.Offset, a.Timestamp, b.Timestamp)
	case !slices.EqualFunc(a.Headers, b.Headers, func(x, y kgo.RecordHeader) bool {
		return x.Key == y.Key && bytes.Equal(x.Value, y.Value)
	}):
		return fmt.Sprintf("offset %d: headers differ", a.Offset)
	}
	return ""
}

// Count sums the records of a read.
func Count(rs map[int32][]*kgo.Record) int {
	n := 0
	for _, r := range rs {
		n += len(r)
	}
	return n
}

// WaitSameEnds waits until every partition of topic on dst ends where it
// ends on src, as listed when the wait begins.
func WaitSameEnds(t testing.TB, d time.Duration, srcCl, dstCl *kgo.Client, topic string) {
	t.Helper()
	_, srcEnds := Offsets(t, srcCl, topic)
	WaitFor(t, d, topic+" caught up", func() error {
		_, ends := Offsets(t, dstCl, topic)
		for p, want := range srcEnds {
			if ends[p] != want {
				return fmt.Errorf("%s[%d] at %d of %d", topic, p, ends[p], want)
			}
		}
		return nil
	})
}

// FreeAddr returns a loopback address nothing listens on: free for a
// server the test starts, refused to a client that dials it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
