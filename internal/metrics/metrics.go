// Package metrics exposes Strait as Prometheus metrics (docs/metrics.md
// lists them). State (lags, statuses, link availability) is read from the
// link manager at scrape time, so it is never stale; events (records
// copied, request latencies, errors, sync rounds, state-topic writes) are
// counted as they happen, through the observers the link manager, the
// runners, the sync tasks and the store are given.
//
// The copy path counts into a mirror.PartitionCounters the worker holds a
// pointer to: no lookup by name per batch. Counters are kept here by link,
// topic and partition, so they outlive a runner's restart, and forgotten
// once their mirror is gone.
package metrics

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/mirror"
)

// Options tune the metrics; the zero value has no partition labels.
type Options struct {
	// PartitionLabels gives the per-partition families
	// (strait_mirror_lag_records, strait_mirror_lag_seconds,
	// strait_mirror_copied_records_total, strait_mirror_copied_bytes_total)
	// a partition label. Without it they are summed per topic (the lag in
	// seconds is the topic's largest): ten times fewer series at ten
	// partitions a topic.
	PartitionLabels bool
	// Ready, if set, is strait_ready: whether /readyz answers 200.
	Ready func() bool
}

// Metrics holds Strait's metrics. It implements link.Observers. Its
// methods are safe for concurrent use.
type Metrics struct {
	opt Options
	// m returns the link manager, nil while the instance has none
	// (starting, standby).
	m func() *link.Manager

	fetch, produce *prometheus.HistogramVec
	errs           *prometheus.CounterVec
	syncRuns       *prometheus.CounterVec
	syncErrs       *prometheus.CounterVec
	syncOK         *prometheus.GaugeVec
	stateWrite     prometheus.Histogram

	mu sync.Mutex
	// parts are the copy counters by mirror partition.
	parts map[partKey]*mirror.PartitionCounters
	// links are the links that were given observers: the ones whose
	// series are forgotten when they go.
	links map[string]bool
}

type partKey struct {
	link, topic string
	partition   int32
}

var _ link.Observers = (*Metrics)(nil)

// latencyBuckets span a loopback answer to a request that timed out. A
// fetch waits at the broker for data (replica.fetch.wait.max.ms, 500 ms by
// default), so an idle link's fetches gather at that wait.
var latencyBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

// New makes the metrics over the manager m returns and registers them
// with reg.
func New(reg prometheus.Registerer, opt Options, m func() *link.Manager) (*Metrics, error) {
	x := &Metrics{
		opt:   opt,
		m:     m,
		parts: map[partKey]*mirror.PartitionCounters{},
		links: map[string]bool{},
		fetch: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strait_mirror_fetch_duration_seconds",
			Help:    "Round trip of the link's fetch requests to the source, broker wait included.",
			Buckets: latencyBuckets,
		}, []string{"link"}),
		produce: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strait_mirror_produce_duration_seconds",
			Help:    "Round trip of the link's produce requests to the destination (acks=all).",
			Buckets: latencyBuckets,
		}, []string{"link"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_errors_total",
			Help: "Errors by link (empty for the daemon's own), operation and Kafka error code (or TIMEOUT, NETWORK, UNKNOWN).",
		}, []string{"link", "op", "code"}),
		syncRuns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_link_sync_runs_total",
			Help: "Rounds of the link's sync tasks.",
		}, []string{"link", "task"}),
		syncErrs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strait_link_sync_errors_total",
			Help: "Errors the link's sync task rounds reported.",
		}, []string{"link", "task"}),
		syncOK: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strait_link_sync_last_success_timestamp_seconds",
			Help: "When a round of the link's sync task last ended without error (Unix seconds).",
		}, []string{"link", "task"}),
		stateWrite: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strait_state_write_duration_seconds",
			Help:    "Time to write a record to the state topic (acks=all), failed writes included.",
			Buckets: latencyBuckets,
		}),
	}
	cs := []prometheus.Collector{x.fetch, x.produce, x.errs, x.syncRuns, x.syncErrs, x.syncOK, x.stateWrite, collector{x}}
	if opt.Ready != nil {
		cs = append(cs, prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strait_ready",
			Help: "1 when this instance serves the API (what /readyz answers 200 for), else 0.",
		}, func() float64 { return b2f(opt.Ready()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return x, nil
}

// Mirror returns where the runner of link reports.
func (x *Metrics) Mirror(linkName string) mirror.Observer {
	x.noteLink(linkName)
	return &linkObserver{
		x:       x,
		link:    linkName,
		fetch:   x.fetch.WithLabelValues(linkName),
		produce: x.produce.WithLabelValues(linkName),
	}
}

// Sync returns where the sync tasks of link report.
func (x *Metrics) Sync(linkName string) linksync.Observer {
	x.noteLink(linkName)
	return syncObserver{x: x, link: linkName}
}

// StateWrite records a write to the state topic (store.Store.Observe).
func (x *Metrics) StateWrite(took time.Duration, err error) {
	x.stateWrite.Observe(took.Seconds())
	x.countError("", "state_write", err)
}

func (x *Metrics) noteLink(name string) {
	x.mu.Lock()
	x.links[name] = true
	x.mu.Unlock()
}

// countError counts err, when it is one: a cancellation (a stop) is not.
func (x *Metrics) countError(linkName, op string, err error) {
	if code := ErrorCode(err); code != "" {
		x.errs.WithLabelValues(linkName, op, code).Inc()
	}
}

// partition returns the counters of one mirror partition, the same ones
// every time until the mirror is forgotten.
func (x *Metrics) partition(linkName, topic string, p int32) *mirror.PartitionCounters {
	k := partKey{linkName, topic, p}
	x.mu.Lock()
	defer x.mu.Unlock()
	c := x.parts[k]
	if c == nil {
		c = new(mirror.PartitionCounters)
		x.parts[k] = c
	}
	return c
}

// forget drops the counters of mirrors and the series of links that are
// gone; mirrors and links are the ones there are, by link.
func (x *Metrics) forget(mirrors map[string]map[string]bool) {
	x.mu.Lock()
	for k := range x.parts {
		if !mirrors[k.link][k.topic] {
			delete(x.parts, k)
		}
	}
	var gone []string
	for l := range x.links {
		if _, ok := mirrors[l]; !ok {
			gone = append(gone, l)
			delete(x.links, l)
		}
	}
	x.mu.Unlock()
	for _, l := range gone {
		by := prometheus.Labels{"link": l}
		for _, v := range []interface{ DeletePartialMatch(prometheus.Labels) int }{x.fetch, x.produce, x.errs, x.syncRuns, x.syncErrs, x.syncOK} {
			v.DeletePartialMatch(by)
		}
	}
}

// linkObserver is a link's mirror.Observer.
type linkObserver struct {
	x              *Metrics
	link           string
	fetch, produce prometheus.Observer
}

func (o *linkObserver) Partition(topic string, p int32) *mirror.PartitionCounters {
	return o.x.partition(o.link, topic, p)
}

func (o *linkObserver) Request(op string, took time.Duration, err error) {
	switch op {
	case mirror.OpFetch:
		o.fetch.Observe(took.Seconds())
	case mirror.OpProduce:
		o.produce.Observe(took.Seconds())
	}
	o.x.countError(o.link, op, err)
}

func (o *linkObserver) Error(op string, err error) { o.x.countError(o.link, op, err) }

// syncObserver is a link's linksync.Observer.
type syncObserver struct {
	x    *Metrics
	link string
}

func (o syncObserver) Round(task string, _ time.Duration, errs int) {
	o.x.syncRuns.WithLabelValues(o.link, task).Inc()
	if errs > 0 {
		o.x.syncErrs.WithLabelValues(o.link, task).Add(float64(errs))
		return
	}
	o.x.syncOK.WithLabelValues(o.link, task).SetToCurrentTime()
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }
