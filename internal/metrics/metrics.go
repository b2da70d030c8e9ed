// Package metrics exposes Strait's state as Prometheus metrics, read from
// the link manager at scrape time so the figures are never stale.
package metrics

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/link"
)

var (
	lagDesc = prometheus.NewDesc("strait_mirror_lag_records",
		"Records the mirror topic is behind the source high watermark last seen, summed over partitions.",
		[]string{"link", "topic"}, nil)
	partitionsDesc = prometheus.NewDesc("strait_mirror_partitions",
		"Mirror partitions by link and mirror status.",
		[]string{"link", "status"}, nil)
	skippedDesc = prometheus.NewDesc("strait_mirror_skipped_offsets_total",
		"Source offsets the source deleted (retention) before they could be copied.",
		[]string{"link", "topic"}, nil)
	linkUpDesc = prometheus.NewDesc("strait_link_available",
		"1 when the link's source cluster is reachable and the link is not failed.",
		[]string{"link"}, nil)
	verifiedDesc = prometheus.NewDesc("strait_mirror_verified_offset",
		"Offset below which the mirror partition was verified identical to its source (docs/verify.md).",
		[]string{"link", "topic", "partition"}, nil)
	divergenceDesc = prometheus.NewDesc("strait_mirror_divergence",
		"1 when the last verification found the mirror partition different from its source.",
		[]string{"link", "topic", "partition"}, nil)
)

// collector reads the manager on every scrape; m returns nil while the
// instance has none (starting, standby), and then the collector has
// nothing to say.
type collector struct{ m func() *link.Manager }

// Register adds Strait's collectors to reg, over the manager m returns.
func Register(reg prometheus.Registerer, m func() *link.Manager) error {
	return reg.Register(collector{m})
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- lagDesc
	ch <- partitionsDesc
	ch <- linkUpDesc
	ch <- skippedDesc
	ch <- verifiedDesc
	ch <- divergenceDesc
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.m()
	if m == nil {
		return
	}
	for _, cp := range m.Checkpoints() {
		p := strconv.Itoa(int(cp.Partition))
		diverged := 0.0
		if cp.Divergence != nil {
			diverged = 1
		}
		ch <- prometheus.MustNewConstMetric(verifiedDesc, prometheus.GaugeValue, float64(cp.Verified), cp.Link, cp.Topic, p)
		ch <- prometheus.MustNewConstMetric(divergenceDesc, prometheus.GaugeValue, diverged, cp.Link, cp.Topic, p)
	}
	for _, l := range m.Links() {
		up := 1.0
		if l.State == "UNAVAILABLE" || l.State == "FAILED" {
			up = 0
		}
		ch <- prometheus.MustNewConstMetric(linkUpDesc, prometheus.GaugeValue, up, l.Name)
	}
	mirrors, err := m.Mirrors("", "")
	if err != nil {
		return
	}
	type key struct{ link, status string }
	counts := map[key]int{}
	for _, v := range mirrors {
		var lag int64
		for _, l := range v.Lags {
			lag += l.Lag
		}
		ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(lag), v.Link, v.Topic)
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(v.SkippedOffsets), v.Link, v.Topic)
		counts[key{v.Link, string(v.Status)}] += int(v.Partitions)
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(partitionsDesc, prometheus.GaugeValue, float64(n), k.link, k.status)
	}
}
