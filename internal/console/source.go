package console

import (
	"math"

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
// the largest of its partitions that know theirs.
func sampleOf(v link.MirrorView) Sample {
	s := Sample{Link: v.Link, Topic: v.Topic, Seconds: math.NaN()}
	for _, l := range v.Lags {
		s.Records += l.Lag
		if sec := lagSeconds(l); !math.IsNaN(sec) && (math.IsNaN(s.Seconds) || sec > s.Seconds) {
			s.Seconds = sec
		}
	}
	return s
}

// lagSeconds is a partition's lag in seconds, the age of its oldest record
// not yet copied, NaN when unknown. mirror.Lag does not carry it yet: when
// it does, this returns that field (NaN where the partition does not know).
func lagSeconds(mirror.Lag) float64 { return math.NaN() }
