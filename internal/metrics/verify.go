package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/link"
)

// The verification's families (docs/verify.md), from the checkpoints in
// the state, which every instance holds: the active instance alone
// exports them, so each partition's series comes from one instance. They
// always have a partition label: an offset summed over partitions means
// nothing.
var (
	verifiedDesc = prometheus.NewDesc("strait_mirror_verified_offset",
		"Offset below which the mirror partition was verified identical to its source (docs/verify.md).",
		[]string{"link", "topic", "partition"}, nil)
	divergenceDesc = prometheus.NewDesc("strait_mirror_divergence",
		"1 when the last verification found the mirror partition different from its source, else 0.",
		[]string{"link", "topic", "partition"}, nil)
)

// verifications sends the verification checkpoints, on the active
// instance.
func (c collector) verifications(ch chan<- prometheus.Metric, m *link.Manager) {
	if !m.Leading() {
		return
	}
	for _, cp := range m.Checkpoints() {
		p := itoa(cp.Partition)
		ch <- prometheus.MustNewConstMetric(verifiedDesc, prometheus.GaugeValue, float64(cp.Verified), cp.Link, cp.Topic, p)
		ch <- prometheus.MustNewConstMetric(divergenceDesc, prometheus.GaugeValue, b2f(cp.Divergence != nil), cp.Link, cp.Topic, p)
	}
}
