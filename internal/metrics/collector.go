package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/link"
)

// The families read at scrape time. Their descriptions are made for both
// label sets (with and without partition); Describe sends the ones in use.
var (
	mirrorStateDesc = prometheus.NewDesc("strait_mirror_state",
		"The mirror's status as the API reports it: one series per mirror, with the status as its state label, always 1.",
		[]string{"link", "topic", "state"}, nil)
	partitionsDesc = prometheus.NewDesc("strait_mirror_partitions",
		"Mirror partitions by link and mirror status.",
		[]string{"link", "status"}, nil)
	skippedDesc = prometheus.NewDesc("strait_mirror_skipped_offsets_total",
		"Source offsets the source deleted (retention, DeleteRecords) before they could be copied.",
		[]string{"link", "topic"}, nil)
	restartsDesc = prometheus.NewDesc("strait_mirror_partition_restarts_total",
		"Times a mirror partition's copy started again after an error, summed over the topic's partitions.",
		[]string{"link", "topic"}, nil)
	linkStateDesc = prometheus.NewDesc("strait_link_state",
		"The link's link_state (ACTIVE, PAUSED, UNAVAILABLE, FAILED): one series per link, always 1.",
		[]string{"link", "state"}, nil)
	linkUpDesc = prometheus.NewDesc("strait_link_available",
		"1 when the link's source cluster is reachable and the link is not failed.",
		[]string{"link"}, nil)
)

// perPartition are the families with a partition label, or without one.
type perPartition struct {
	lag, lagSeconds, records, bytes *prometheus.Desc
}

func newPerPartition(partitionLabel bool) perPartition {
	labels := []string{"link", "topic"}
	scope := "summed over the topic's partitions"
	ageScope := "the largest over the topic's partitions"
	if partitionLabel {
		labels = append(labels, "partition")
		scope, ageScope = "per partition", "per partition"
	}
	return perPartition{
		lag: prometheus.NewDesc("strait_mirror_lag_records",
			"Offsets the mirror is behind the source high watermark last seen, "+scope+".", labels, nil),
		lagSeconds: prometheus.NewDesc("strait_mirror_lag_seconds",
			"Age of the oldest source record not yet copied (now minus the timestamp of the source batch at the mirror's end offset), 0 when caught up, "+ageScope+"; absent while not known.", labels, nil),
		records: prometheus.NewDesc("strait_mirror_copied_records_total",
			"Source records copied to the mirror (filler and transaction markers not counted), "+scope+".", labels, nil),
		bytes: prometheus.NewDesc("strait_mirror_copied_bytes_total",
			"Bytes of source record batches produced to the mirror, "+scope+".", labels, nil),
	}
}

var (
	withPartition    = newPerPartition(true)
	withoutPartition = newPerPartition(false)
)

// collector reads the link manager on every scrape.
type collector struct{ x *Metrics }

func (c collector) descs() perPartition {
	if c.x.opt.PartitionLabels {
		return withPartition
	}
	return withoutPartition
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	pp := c.descs()
	for _, d := range []*prometheus.Desc{mirrorStateDesc, partitionsDesc, skippedDesc, restartsDesc, linkStateDesc, linkUpDesc,
		pp.lag, pp.lagSeconds, pp.records, pp.bytes, verifiedDesc, divergenceDesc} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	m := c.x.m()
	if m == nil {
		// Starting or standby: this instance copies nothing. Its
		// counters are kept for when it is active again.
		return
	}
	now := time.Now()
	live := map[string]map[string]bool{}
	for _, l := range m.Links() {
		live[l.Name] = map[string]bool{}
		ch <- prometheus.MustNewConstMetric(linkStateDesc, prometheus.GaugeValue, 1, l.Name, l.State)
		ch <- prometheus.MustNewConstMetric(linkUpDesc, prometheus.GaugeValue, b2f(l.State != "UNAVAILABLE" && l.State != "FAILED"), l.Name)
	}
	mirrors := m.MirrorsHere()
	type key struct{ link, status string }
	counts := map[key]int{}
	for _, v := range mirrors {
		if live[v.Link] == nil {
			live[v.Link] = map[string]bool{}
		}
		live[v.Link][v.Topic] = true
		ch <- prometheus.MustNewConstMetric(mirrorStateDesc, prometheus.GaugeValue, 1, v.Link, v.Topic, string(v.Status))
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(v.SkippedOffsets), v.Link, v.Topic)
		counts[key{v.Link, string(v.Status)}] += int(v.Partitions)
		c.lags(ch, m, v, now)
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(partitionsDesc, prometheus.GaugeValue, float64(n), k.link, k.status)
	}
	c.x.forget(live)
	c.counters(ch, m)
	c.verifications(ch, m)
}

// lags sends a mirror's lag in offsets and in seconds, for the partitions
// this instance copies (for a stopped mirror: would copy), so that each
// partition's lag comes from one instance.
func (c collector) lags(ch chan<- prometheus.Metric, m *link.Manager, v link.MirrorView, now time.Time) {
	pp := c.descs()
	var sum int64
	age, ageKnown, reported := 0.0, true, false
	for _, l := range v.Lags {
		if !m.Owns(v.Topic, l.Partition) {
			continue
		}
		reported = true
		a, known := l.Seconds(now)
		if v.Status == link.StatusStopped {
			known = false // frozen at the stop: no age to tell
		}
		if c.x.opt.PartitionLabels {
			p := itoa(l.Partition)
			ch <- prometheus.MustNewConstMetric(pp.lag, prometheus.GaugeValue, float64(l.Lag), v.Link, v.Topic, p)
			if known {
				ch <- prometheus.MustNewConstMetric(pp.lagSeconds, prometheus.GaugeValue, a, v.Link, v.Topic, p)
			}
			continue
		}
		sum += l.Lag
		ageKnown = ageKnown && known
		age = max(age, a)
	}
	if !c.x.opt.PartitionLabels && reported {
		ch <- prometheus.MustNewConstMetric(pp.lag, prometheus.GaugeValue, float64(sum), v.Link, v.Topic)
		if ageKnown && v.Status != link.StatusStopped {
			ch <- prometheus.MustNewConstMetric(pp.lagSeconds, prometheus.GaugeValue, age, v.Link, v.Topic)
		}
	}
}

// counters sends the copy counters, per partition or summed per topic:
// what this instance copied. A partition another instance copies is left
// out unless this one copied some of it before it moved: then its count
// stays, so that the counts of all instances add up to what was copied.
func (c collector) counters(ch chan<- prometheus.Metric, m *link.Manager) {
	pp := c.descs()
	type topicKey struct{ link, topic string }
	type sums struct{ records, bytes, restarts int64 }
	type snap struct {
		k                        partKey
		records, bytes, restarts int64
	}
	c.x.mu.Lock()
	snaps := make([]snap, 0, len(c.x.parts))
	for k, pc := range c.x.parts {
		snaps = append(snaps, snap{k, pc.Records.Load(), pc.Bytes.Load(), pc.Restarts.Load()})
	}
	c.x.mu.Unlock()
	byTopic := map[topicKey]*sums{}
	for _, sn := range snaps {
		if sn.records == 0 && sn.bytes == 0 && sn.restarts == 0 && !m.Owns(sn.k.topic, sn.k.partition) {
			continue
		}
		tk := topicKey{sn.k.link, sn.k.topic}
		s := byTopic[tk]
		if s == nil {
			s = &sums{}
			byTopic[tk] = s
		}
		s.restarts += sn.restarts
		if c.x.opt.PartitionLabels {
			p := itoa(sn.k.partition)
			ch <- prometheus.MustNewConstMetric(pp.records, prometheus.CounterValue, float64(sn.records), sn.k.link, sn.k.topic, p)
			ch <- prometheus.MustNewConstMetric(pp.bytes, prometheus.CounterValue, float64(sn.bytes), sn.k.link, sn.k.topic, p)
			continue
		}
		s.records += sn.records
		s.bytes += sn.bytes
	}
	for k, s := range byTopic {
		ch <- prometheus.MustNewConstMetric(restartsDesc, prometheus.CounterValue, float64(s.restarts), k.link, k.topic)
		if !c.x.opt.PartitionLabels {
			ch <- prometheus.MustNewConstMetric(pp.records, prometheus.CounterValue, float64(s.records), k.link, k.topic)
			ch <- prometheus.MustNewConstMetric(pp.bytes, prometheus.CounterValue, float64(s.bytes), k.link, k.topic)
		}
	}
}
