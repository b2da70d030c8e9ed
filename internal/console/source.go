package console

import (
	"math"
	"time"

	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/mirror"
)

// ManagerSource samples the mirrors of the link manager m returns; m
// returns nil until the instance has loaded its state.
func ManagerSource(m func() *link.Manager) Source {
	return func() ([]Sample, bool) {
		mgr := m()
		if mgr == nil {
			return nil, false
		}
		views, err := mgr.Mirrors("", "")
		if err != nil {
			return nil, false
		}
		out := make([]Sample, len(views))
		for i, v := range views {
			out[i] = sampleOf(v)
		}
		return out, true
	}
}

// sampleOf is a mirror's lag: records summed over its partitions, seconds
// the largest of its partitions' ages, unknown (NaN) while a partition
// that lags does not know its age yet.
func sampleOf(v link.MirrorView) Sample {
	s := Sample{Link: v.Link, Topic: v.Topic}
	for _, l := range v.Lags {
		s.Records += l.Lag
		sec := lagSeconds(l)
		if math.IsNaN(sec) || math.IsNaN(s.Seconds) {
			s.Seconds = math.NaN()
			continue
		}
		s.Seconds = max(s.Seconds, sec)
	}
	return s
}

// lagSeconds is a partition's lag in seconds, the age of its oldest record
// not yet copied, NaN when unknown.
func lagSeconds(l mirror.Lag) float64 {
	if sec, ok := l.Seconds(time.Now()); ok {
		return sec
	}
	return math.NaN()
}
