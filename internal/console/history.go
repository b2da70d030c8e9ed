package console

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"sync"
	"time"
)

// The lag history: every Interval the sampler reads the lag of every
// mirror and keeps the last HistoryPoints readings of each in a ring, so a
// console opened now charts the last hour at once. It lives in memory
// only: a restarted daemon, or an instance that just became active, starts
// with an empty history.

// HistoryPoints is how many samples a mirror's history keeps: an hour at
// the default interval of 10 s.
const HistoryPoints = 360

// DefaultInterval is the time between two samples.
const DefaultInterval = 10 * time.Second

// PointBytes is the memory one sample takes in a ring (time, records,
// seconds): a mirror's full history takes HistoryPoints*PointBytes,
// 8,640 bytes, so 1,000 mirrors take about 8.6 MB (plus the names).
const PointBytes = 24

// Sample is one mirror's lag at one moment.
type Sample struct {
	Link, Topic string
	// Records is the lag in records, summed over the partitions.
	Records int64
	// Seconds is the largest lag in seconds of the partitions (the age of
	// the oldest record not yet copied); NaN when unknown.
	Seconds float64
}

// Source returns the lag of every mirror now, and false when this
// instance has no mirrors to report (its state is not loaded): nothing is
// sampled and the history is kept as it is.
type Source func() ([]Sample, bool)

// point is one sample in a ring; seconds is NaN when unknown.
type point struct {
	ms      int64
	records int64
	seconds float64
}

// ring is the last HistoryPoints samples of one mirror; it grows to its
// bound and then overwrites the oldest.
type ring struct {
	pts  []point
	next int // where the next sample goes once full
}

func (r *ring) add(p point) {
	if len(r.pts) < HistoryPoints {
		if len(r.pts) == cap(r.pts) {
			// Grown here rather than by append, whose doubling would
			// take 512 points of room for 360.
			grown := make([]point, len(r.pts), min(max(2*cap(r.pts), 16), HistoryPoints))
			copy(grown, r.pts)
			r.pts = grown
		}
		r.pts = append(r.pts, p)
		return
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % HistoryPoints
}

// ordered returns the samples, oldest first.
func (r *ring) ordered() []point {
	out := make([]point, 0, len(r.pts))
	out = append(out, r.pts[r.next:]...)
	return append(out, r.pts[:r.next]...)
}

type seriesKey struct{ link, topic string }

// Sampler keeps the lag history of every mirror. Its methods are safe for
// concurrent use.
type Sampler struct {
	source   Source
	interval time.Duration
	now      func() time.Time

	mu     sync.Mutex // guards series
	series map[seriesKey]*ring
}

// NewSampler returns a sampler over source taking a sample every
// interval (zero means DefaultInterval) once Run is called.
func NewSampler(source Source, interval time.Duration) *Sampler {
	if interval <= 0 {
		interval = DefaultInterval
	}
	return &Sampler{source: source, interval: interval, now: time.Now, series: map[seriesKey]*ring{}}
}

// Run samples at once and then every interval until ctx ends.
func (s *Sampler) Run(ctx context.Context) {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		s.Sample()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Sample takes one sample of every mirror now. A mirror that is gone
// (deleted, or its link) loses its history, so the memory follows the
// mirrors there are.
func (s *Sampler) Sample() {
	samples, ok := s.source()
	if !ok {
		return
	}
	ms := s.now().UnixMilli()
	seen := make(map[seriesKey]bool, len(samples))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range samples {
		k := seriesKey{x.Link, x.Topic}
		seen[k] = true
		r := s.series[k]
		if r == nil {
			r = &ring{}
			s.series[k] = r
		}
		r.add(point{ms: ms, records: x.Records, seconds: x.Seconds})
	}
	for k := range s.series {
		if !seen[k] {
			delete(s.series, k)
		}
	}
}

// Point is one sample of a mirror's lag, as the history endpoint answers
// it.
type Point struct {
	TimeMs     int64    `json:"time_ms"`
	LagRecords int64    `json:"lag_records"`
	LagSeconds *float64 `json:"lag_seconds"` // null when unknown
}

// History returns a mirror's samples of the last HistoryPoints intervals,
// oldest first; none for a mirror the sampler has not seen.
func (s *Sampler) History(link, topic string) []Point {
	s.mu.Lock()
	r := s.series[seriesKey{link, topic}]
	var pts []point
	if r != nil {
		pts = r.ordered()
	}
	s.mu.Unlock()
	// Samples taken before a pause of the sampler (while its source had
	// nothing to report) may be older than the window: left out.
	since := s.now().Add(-HistoryPoints * s.interval).UnixMilli()
	out := make([]Point, 0, len(pts))
	for _, p := range pts {
		if p.ms < since {
			continue
		}
		q := Point{TimeMs: p.ms, LagRecords: p.records}
		if !math.IsNaN(p.seconds) && !math.IsInf(p.seconds, 0) {
			v := p.seconds
			q.LagSeconds = &v
		}
		out = append(out, q)
	}
	return out
}

// Series reports how many mirrors the sampler keeps a history of.
func (s *Sampler) Series() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.series)
}

// historyBody is the answer of GET /strait/v1/lag-history.
type historyBody struct {
	Kind       string  `json:"kind"`
	Link       string  `json:"link"`
	Topic      string  `json:"topic"`
	IntervalMs int64   `json:"interval_ms"`
	Points     []Point `json:"points"`
}

// serveHistory answers GET /strait/v1/lag-history?link=L&topic=T with the
// mirror's lag history; authentication and authorization (read on L) are
// done before (see Console.Mount).
func (s *Sampler) serveHistory(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	for k := range q {
		if k != "link" && k != "topic" {
			writeError(w, http.StatusBadRequest, 400, "Unknown query parameter '"+k+"': use link and topic.")
			return
		}
	}
	link, topic := q.Get("link"), q.Get("topic")
	if link == "" || topic == "" {
		writeError(w, http.StatusBadRequest, 400, "Query parameters 'link' and 'topic' are required.")
		return
	}
	writeJSON(w, http.StatusOK, historyBody{
		Kind:       "StraitLagHistory",
		Link:       link,
		Topic:      topic,
		IntervalMs: s.interval.Milliseconds(),
		Points:     s.History(link, topic),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error_code":500,"message":"Internal Server Error"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes Confluent's error body, as the API does.
func writeError(w http.ResponseWriter, status, code int, msg string) {
	writeJSON(w, status, struct {
		ErrorCode int    `json:"error_code"`
		Message   string `json:"message"`
	}{code, msg})
}
