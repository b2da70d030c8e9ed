package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value", ms(7), 99, 7 * time.Millisecond},
		{"median of odd count", ms(5, 1, 3), 50, 3 * time.Millisecond},
		{"median of even count is the lower middle", ms(4, 1, 3, 2), 50, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 50, 50 * time.Millisecond},
		{"max", ms(hundred...), 100, 100 * time.Millisecond},
		{"p99 of 10 values is the largest", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 99, 10 * time.Millisecond},
		{"tiny p is the smallest", ms(3, 1, 2), 0.001, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := fmt.Sprint(tc.ds)
			if got := percentile(tc.ds, tc.p); got != tc.want {
				t.Fatalf("percentile(%v, %g) = %v, want %v", tc.ds, tc.p, got, tc.want)
			}
			if fmt.Sprint(tc.ds) != before {
				t.Fatal("percentile reordered its input")
			}
		})
	}
}

func TestParseStatTicks(t *testing.T) {
	// Field 14 (utime) is 1234, field 15 (stime) 56; the command name has
	// a space and a parenthesis in it, which naive splitting gets wrong.
	stat := "4242 (str ait) x) S 1 4242 4242 0 -1 4194560 1500 0 0 0 1234 56 0 0 20 0 9 0 100 1000000 2000 18446744073709551615\n"
	got, err := parseStatTicks([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if got != 1290 {
		t.Fatalf("ticks %d, want 1290", got)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 2 3 4 5 6 7 8 9 10 11 12 13", "1 (x) S 1 2 3 4 5 6 7 8 9 u s 0"} {
		if _, err := parseStatTicks([]byte(bad)); err == nil {
			t.Errorf("parseStatTicks(%q): no error", bad)
		}
	}
}

func TestParseStatusKB(t *testing.T) {
	status := "Name:\tstrait\nVmPeak:\t  900000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t   40000 kB\n"
	got, err := parseStatusKB([]byte(status), "VmHWM")
	if err != nil || got != 51234 {
		t.Fatalf("VmHWM = %d, %v; want 51234", got, err)
	}
	if _, err := parseStatusKB([]byte("Name:\tx\n"), "VmHWM"); err == nil {
		t.Error("no error for a missing key")
	}
	if _, err := parseStatusKB([]byte("VmHWM:\t12 MB\n"), "VmHWM"); err == nil {
		t.Error("no error for a unit other than kB")
	}
}

// TestReadUsageSelf checks the /proc reading against this process.
func TestReadUsageSelf(t *testing.T) {
	u, err := readUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSSBytes < 1<<20 || u.CPUSeconds < 0 {
		t.Fatalf("implausible usage of the test process: %+v", u)
	}
}

// rawBatch encodes a v2 batch header for records base..base+n-1 with
// body bytes of records.
func rawBatch(base int64, n int32, body int) []byte {
	b := kmsg.RecordBatch{FirstOffset: base, Magic: 2, LastOffsetDelta: n - 1, NumRecords: n, Records: make([]byte, body)}
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	return raw
}

func TestWalkBatches(t *testing.T) {
	a, b, c := rawBatch(0, 10, 100), rawBatch(10, 5, 50), rawBatch(15, 3, 30)
	set := append(append(append([]byte{}, a...), b...), c...)
	n, size, last, err := walkBatches(set)
	if err != nil || n != 3 || size != int64(len(set)) || last != 17 {
		t.Fatalf("walk = %d batches, %d bytes, last %d, %v; want 3, %d, 17", n, size, last, err, len(set))
	}
	// A fetch may end in the middle of a batch: that one is left out.
	n, size, last, err = walkBatches(set[:len(set)-7])
	if err != nil || n != 2 || size != int64(len(a)+len(b)) || last != 14 {
		t.Fatalf("cut walk = %d batches, %d bytes, last %d, %v; want 2, %d, 14", n, size, last, err, len(a)+len(b))
	}
	if n, _, _, err := walkBatches(nil); n != 0 || err != nil {
		t.Fatalf("empty walk = %d, %v", n, err)
	}
	bad := append([]byte{}, a...)
	binary.BigEndian.PutUint32(bad[8:], 3)
	if _, _, _, err := walkBatches(bad); err == nil {
		t.Fatal("no error for a batch length below the header size")
	}
}

func TestRecordMaker(t *testing.T) {
	for _, s := range []shape{largeShape(), smallShape()} {
		m := newRecordMaker(s, 1)
		r0, r1 := m.record(0), m.record(123)
		for _, r := range []*kgo.Record{r0, r1} {
			if len(r.Key)+len(r.Value) != s.recordSize || len(r.Key) != s.keySize {
				t.Fatalf("%s: key %d + value %d bytes, want %d with a %d-byte key", s.name, len(r.Key), len(r.Value), s.recordSize, s.keySize)
			}
		}
		if string(r1.Key) != strings.Repeat("0", s.keySize-3)+"123" {
			t.Fatalf("%s: key %q", s.name, r1.Key)
		}
		if s.textSize > 0 && !strings.HasPrefix(string(r0.Value), textPhrase) {
			t.Fatalf("%s: value does not start with the text", s.name)
		}
		if string(r0.Value[s.textSize:]) == string(r1.Value[s.textSize:]) {
			t.Fatalf("%s: two records have the same random part", s.name)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{Cases: CaseNames(), Copiers: []string{Strait, Baseline}, LargeMB: 1, SmallMB: 1,
		LatencyRate: 5, LatencySeconds: 15, CopyTimeout: time.Minute}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, f := range map[string]func(o *Options){
		"unknown case":        func(o *Options) { o.Cases = []string{"huge-3"} },
		"unknown copier":      func(o *Options) { o.Copiers = []string{"mm2"} },
		"no copier":           func(o *Options) { o.Copiers = nil },
		"zero size":           func(o *Options) { o.SmallMB = 0 },
		"latency within warm": func(o *Options) { o.LatencySeconds = 2 },
		"zero rate":           func(o *Options) { o.LatencyRate = 0 },
		"no timeout":          func(o *Options) { o.CopyTimeout = 0 },
	} {
		o := ok
		f(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	for _, name := range CaseNames() {
		c, err := buildCase(name, 3, 2)
		if err != nil {
			t.Fatal(err)
		}
		if want := strings.HasPrefix(name, "large"); (c.shape.codec == "lz4") != want {
			t.Errorf("%s: codec %s", name, c.shape.codec)
		}
	}
}

func TestCheckTargets(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &Report{
		LatencyRate: 5,
		Cases: []CaseResult{
			{Case: "large-3", Partitions: 3, ThroughputRatio: f(1.2), CPURatio: f(0.15)},
			{Case: "small-300", Partitions: 300, ThroughputRatio: f(0.9), CPURatio: f(1.1),
				Copies: []CopyResult{{Copier: Strait, PeakRSSMiB: 600}, {Copier: Baseline, PeakRSSMiB: 100}}},
			{Case: "small-3", Partitions: 3}, // a copier failed: no ratios, no targets
		},
		Latency: []LatencyResult{{Copier: Strait, P99Ms: 12}, {Copier: Baseline, P99Ms: 70}},
	}
	var got []string
	for _, tg := range checkTargets(r) {
		got = append(got, fmt.Sprintf("%v %s", tg.Met, tg.Goal))
	}
	want := []string{
		"true large-3: Strait CPU/GB at most 1/5 of the baseline's",
		"true large-3: Strait throughput at least the baseline's",
		"false small-300: Strait CPU/GB no worse than the baseline's",
		"false small-300: Strait throughput at least the baseline's",
		"false small-300: Strait peak RSS under 512 MiB",
		"true latency: Strait p99 under 50 ms at 5 MB/s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestRunCopier copies a topic with the baseline copier between two
// in-process clusters: every record lands on the same partition with the
// same key, value, headers and timestamp, and the copier stops by itself.
func TestRunCopier(t *testing.T) {
	src := testutil.NewCluster(t)
	dst := testutil.NewCluster(t)
	srcCl := testutil.Client(t, src.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	dstCl := testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, "in", 3, nil)
	testutil.CreateTopic(t, dstCl, "out", 3, nil)
	ts := time.UnixMilli(1_700_000_000_000)
	for i := range 300 {
		r := &kgo.Record{
			Topic: "in", Partition: int32(i % 3), Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i),
			Headers: []kgo.RecordHeader{{Key: "h", Value: []byte{byte(i)}}}, Timestamp: ts.Add(time.Duration(i) * time.Millisecond),
		}
		if err := srcCl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := RunCopier(ctx, CopierOptions{
		Source: src.ListenAddrs()[0], Dest: dst.ListenAddrs()[0], Topic: "in", DestTopic: "out", Compression: "lz4",
	})
	if err != nil {
		t.Fatalf("RunCopier: %v", err)
	}
	if diff := testutil.DiffRecords(testutil.ReadAll(t, src.ListenAddrs(), "in"), testutil.ReadAll(t, dst.ListenAddrs(), "out")); diff != "" {
		t.Fatalf("copy differs: %s", diff)
	}
}
