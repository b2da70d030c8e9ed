package console

import (
	"fmt"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/mirror"
)

// fakeSource reports what its fields say.
type fakeSource struct {
	samples []Sample
	ok      bool
}

func (f *fakeSource) get() ([]Sample, bool) { return f.samples, f.ok }

// clock is a settable time for the sampler.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestSampler(src *fakeSource, interval time.Duration) (*Sampler, *clock) {
	s := NewSampler(src.get, interval)
	c := &clock{t: time.UnixMilli(1_800_000_000_000)}
	s.now = c.now
	return s, c
}

func TestRingKeepsTheLastPoints(t *testing.T) {
	for _, n := range []int{0, 1, 17, HistoryPoints - 1, HistoryPoints, HistoryPoints + 1, 3*HistoryPoints + 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var r ring
			for i := range n {
				r.add(point{ms: int64(i), records: int64(i)})
			}
			got := r.ordered()
			want := min(n, HistoryPoints)
			if len(got) != want {
				t.Fatalf("%d points kept, want %d", len(got), want)
			}
			if cap(r.pts) > HistoryPoints {
				t.Fatalf("ring has room for %d points, more than %d", cap(r.pts), HistoryPoints)
			}
			for i, p := range got {
				if w := int64(n - want + i); p.ms != w {
					t.Fatalf("point %d is sample %d, want %d (oldest first)", i, p.ms, w)
				}
			}
		})
	}
}

func TestSamplerFollowsTheMirrors(t *testing.T) {
	src := &fakeSource{ok: true, samples: []Sample{
		{Link: "l", Topic: "a", Records: 5, Seconds: math.NaN()},
		{Link: "l", Topic: "b", Records: 7, Seconds: 2.5},
	}}
	s, c := newTestSampler(src, 10*time.Second)
	s.Sample()
	c.t = c.t.Add(10 * time.Second)
	src.samples[0].Records = 6
	s.Sample()

	a := s.History("l", "a")
	if len(a) != 2 || a[0].LagRecords != 5 || a[1].LagRecords != 6 || a[1].TimeMs-a[0].TimeMs != 10_000 {
		t.Fatalf("history of a: %+v", a)
	}
	if a[0].LagSeconds != nil {
		t.Fatalf("unknown seconds answered as %v, want null", *a[0].LagSeconds)
	}
	b := s.History("l", "b")
	if len(b) != 2 || b[0].LagSeconds == nil || *b[0].LagSeconds != 2.5 {
		t.Fatalf("history of b: %+v", b)
	}
	if h := s.History("other", "a"); len(h) != 0 {
		t.Fatalf("a mirror of another link has %d points", len(h))
	}

	// An instance without a manager reports nothing: the history stays.
	src.ok = false
	s.Sample()
	if n := len(s.History("l", "a")); n != 2 {
		t.Fatalf("after a sample without a manager, %d points, want 2", n)
	}

	// A deleted mirror loses its history.
	src.ok, src.samples = true, src.samples[1:]
	c.t = c.t.Add(10 * time.Second)
	s.Sample()
	if h := s.History("l", "a"); len(h) != 0 || s.Series() != 1 {
		t.Fatalf("deleted mirror: %d points, %d series", len(h), s.Series())
	}

	// Samples older than the window are left out.
	c.t = c.t.Add(HistoryPoints*10*time.Second - time.Second)
	s.Sample()
	if h := s.History("l", "b"); len(h) != 2 {
		t.Fatalf("an hour later: %d points, want the last 2 (one within the hour and the new one)", len(h))
	}
}

// TestHistoryMemoryBound fills the history of 1,000 mirrors and checks
// the heap it takes against the documented bound.
func TestHistoryMemoryBound(t *testing.T) {
	const mirrors = 1000
	src := &fakeSource{ok: true}
	for i := range mirrors {
		src.samples = append(src.samples, Sample{Link: "link", Topic: fmt.Sprintf("topic-%04d", i), Records: int64(i), Seconds: math.NaN()})
	}
	s, c := newTestSampler(src, 10*time.Second)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range HistoryPoints + 10 {
		s.Sample()
		c.t = c.t.Add(10 * time.Second)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(s)
	used := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	bound := int64(mirrors * HistoryPoints * PointBytes)
	t.Logf("1,000 mirrors x %d points: %.1f MB on the heap (bound for the points: %.1f MB)", HistoryPoints, float64(used)/1e6, float64(bound)/1e6)
	// The points, plus the map, its keys and the rings' headers.
	if used > bound+bound/5 {
		t.Fatalf("history of 1,000 mirrors takes %d bytes, over %d", used, bound+bound/5)
	}
	if n := len(s.History("link", "topic-0999")); n != HistoryPoints {
		t.Fatalf("%d points kept, want %d", n, HistoryPoints)
	}
}

func TestSampleOfAMirror(t *testing.T) {
	v := link.MirrorView{Link: "l", Topic: "t", Lags: []mirror.Lag{{Partition: 0, Lag: 3}, {Partition: 1, Lag: 0}, {Partition: 2, Lag: 39}}}
	s := sampleOf(v)
	if s.Link != "l" || s.Topic != "t" || s.Records != 42 {
		t.Fatalf("sample %+v, want l/t with 42 records", s)
	}
	if !math.IsNaN(s.Seconds) {
		t.Fatalf("seconds %v while lagging partitions do not know their age, want NaN (unknown)", s.Seconds)
	}
	now := time.Now().UnixMilli()
	v.Lags[0].OldestUncopiedMs = now - 3000
	v.Lags[2].OldestUncopiedMs = now - 9000
	s = sampleOf(v)
	if s.Seconds < 8.9 || s.Seconds > 10 {
		t.Fatalf("seconds %v, want the oldest partition's age, about 9", s.Seconds)
	}
}
