package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/buildinfo"
)

// BuildInfo is the strait_build_info gauge: always 1, with the version,
// commit and Go version of the running binary as labels, so a dashboard
// can tell which instances run which build (and join it onto other
// series by instance).
func BuildInfo(in buildinfo.Info) prometheus.Collector {
	commit := in.Commit
	if in.Modified {
		commit += "-dirty"
	}
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "strait_build_info",
		Help:        "Always 1; the labels say which Strait build runs.",
		ConstLabels: prometheus.Labels{"version": in.Version, "commit": commit, "goversion": in.GoVersion},
	})
	g.Set(1)
	return g
}
