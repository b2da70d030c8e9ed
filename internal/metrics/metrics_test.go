package metrics_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	tu "github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// fixture is a daemon mirroring between two kfake clusters, as the
// end-to-end tests start it (internal/e2e/env_test.go).
type fixture struct {
	src, dst     *kfake.Cluster
	srcCl, dstCl *kgo.Client
	api          *tu.API
}

func start(t *testing.T, configure func(*config.Config)) *fixture {
	t.Helper()
	f := &fixture{
		src: tu.NewCluster(t, kfake.ClusterID("source-cluster")),
		dst: tu.NewCluster(t, kfake.ClusterID("destination-cluster")),
	}
	f.srcCl = tu.Client(t, f.src.ListenAddrs())
	f.dstCl = tu.Client(t, f.dst.ListenAddrs())
	f.api = f.daemon(t, configure)
	return f
}

// daemon starts a Strait instance on the fixture's destination, stopped
// when the test ends, and returns its API.
func (f *fixture) daemon(t *testing.T, configure func(*config.Config)) *tu.API {
	t.Helper()
	cfg := daemontest.Config(f.dst)
	if configure != nil {
		configure(&cfg)
	}
	d := daemontest.Start(t, cfg, daemontest.Logger(), daemon.Options{MetadataInterval: 200 * time.Millisecond})
	return tu.NewAPI(t, "http://"+d.Addr(), "/kafka/v3", d.ClusterID())
}

func (f *fixture) mirror(t *testing.T, topic string) {
	t.Helper()
	f.api.JSON(http.MethodPost, "/links?link_name=l1", map[string]any{"configs": []map[string]string{
		{"name": "bootstrap.servers", "value": f.src.ListenAddrs()[0]},
	}}, http.StatusNoContent, nil)
	f.api.JSON(http.MethodPost, "/links/l1/mirrors", map[string]any{"source_topic_name": topic}, http.StatusNoContent, nil)
}

func (f *fixture) alter(t *testing.T, op, topic string) {
	t.Helper()
	var res struct {
		Data []struct {
			ErrorCode *int `json:"error_code"`
		} `json:"data"`
	}
	f.api.JSON(http.MethodPost, "/links/l1/mirrors:"+op, map[string]any{"mirror_topic_names": []string{topic}}, http.StatusOK, &res)
	if len(res.Data) != 1 || res.Data[0].ErrorCode != nil {
		t.Fatalf("%s %s: %+v", op, topic, res)
	}
}

// scrape reads /metrics as Prometheus would.
func (f *fixture) scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	return scrapeAt(t, f.api)
}

// scrapeAt reads the /metrics of the instance api is a client of.
func scrapeAt(t *testing.T, api *tu.API) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(api.Root + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return mfs
}

// series returns the series of a family whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	mf := mfs[name]
	if mf == nil {
		return nil
	}
	var out []*dto.Metric
	for _, m := range mf.Metric {
		ok := true
		for k, v := range want {
			if label(m, k) != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func hasLabel(m *dto.Metric, name string) bool {
	for _, l := range m.Label {
		if l.GetName() == name {
			return true
		}
	}
	return false
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return m.Untyped.GetValue()
}

// sum adds the values of a family's series whose labels include want, and
// says how many there were.
func sum(mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, int) {
	ms := series(mfs, name, want)
	total := 0.0
	for _, m := range ms {
		total += value(m)
	}
	return total, len(ms)
}

func produce(t *testing.T, cl *kgo.Client, topic string, n int, ts time.Time) {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Value: []byte(fmt.Sprintf("value %d %s", i, strings.Repeat("x", i%300))), Timestamp: ts}
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// TestCopyMetrics mirrors a known number of records and checks that the
// copy counters say so exactly, with and without partition labels, that
// the state, latency and health families are there, and that the whole
// exposition passes client_golang's lint.
func TestCopyMetrics(t *testing.T) {
	for _, partitionLabels := range []bool{true, false} {
		t.Run(fmt.Sprintf("partition_labels=%v", partitionLabels), func(t *testing.T) {
			f := start(t, func(c *config.Config) { c.MetricsPartitionLabels = partitionLabels })
			tu.CreateTopic(t, f.srcCl, "orders", 3, nil)
			// Small batches (merged on the way) and large ones.
			small := tu.Client(t, f.src.ListenAddrs(), kgo.ProducerLinger(0), kgo.MaxBufferedRecords(1))
			produce(t, small, "orders", 300, time.Now())
			produce(t, f.srcCl, "orders", 1700, time.Now())
			_, srcEnds := tu.Offsets(t, f.srcCl, "orders")
			f.mirror(t, "orders")
			tu.WaitSameEnds(t, time.Minute, f.srcCl, f.dstCl, "orders")

			var mfs map[string]*dto.MetricFamily
			mirror := map[string]string{"link": "l1", "topic": "orders"}
			tu.WaitFor(t, 30*time.Second, "the copy counted and caught up", func() error {
				mfs = f.scrape(t)
				if got, _ := sum(mfs, "strait_mirror_copied_records_total", mirror); got != 2000 {
					return fmt.Errorf("strait_mirror_copied_records_total = %v, want 2000", got)
				}
				if got, n := sum(mfs, "strait_mirror_lag_records", mirror); got != 0 || n == 0 {
					return fmt.Errorf("strait_mirror_lag_records = %v (%d series)", got, n)
				}
				if got, n := sum(mfs, "strait_mirror_lag_seconds", mirror); got != 0 || n == 0 {
					return fmt.Errorf("strait_mirror_lag_seconds = %v (%d series)", got, n)
				}
				if got, _ := sum(mfs, "strait_mirror_state", map[string]string{"link": "l1", "topic": "orders", "state": "ACTIVE"}); got != 1 {
					return fmt.Errorf("strait_mirror_state ACTIVE = %v", got)
				}
				return nil
			})

			perPartition := []string{"strait_mirror_copied_records_total", "strait_mirror_copied_bytes_total", "strait_mirror_lag_records", "strait_mirror_lag_seconds"}
			for _, name := range perPartition {
				ms := series(mfs, name, mirror)
				want := 1
				if partitionLabels {
					want = 3
				}
				if len(ms) != want {
					t.Errorf("%s has %d series for the mirror, want %d", name, len(ms), want)
				}
				for _, m := range ms {
					if hasLabel(m, "partition") != partitionLabels {
						t.Errorf("%s: partition label %v, want %v", name, hasLabel(m, "partition"), partitionLabels)
					}
				}
			}
			if partitionLabels {
				for p, end := range srcEnds {
					got, _ := sum(mfs, "strait_mirror_copied_records_total", map[string]string{"link": "l1", "topic": "orders", "partition": fmt.Sprint(p)})
					if got != float64(end) {
						t.Errorf("partition %d: %v records copied, the source has %d", p, got, end)
					}
				}
			}
			checks := []struct {
				name string
				want map[string]string
				ok   func(float64) bool
			}{
				{"strait_mirror_copied_bytes_total", mirror, func(v float64) bool { return v > 2000 }},
				{"strait_mirror_partition_restarts_total", mirror, func(v float64) bool { return v >= 0 }},
				{"strait_mirror_skipped_offsets_total", mirror, func(v float64) bool { return v == 0 }},
				{"strait_mirror_partitions", map[string]string{"link": "l1", "status": "ACTIVE"}, func(v float64) bool { return v == 3 }},
				{"strait_link_state", map[string]string{"link": "l1", "state": "ACTIVE"}, func(v float64) bool { return v == 1 }},
				{"strait_link_available", map[string]string{"link": "l1"}, func(v float64) bool { return v == 1 }},
				{"strait_mirror_fetch_duration_seconds", map[string]string{"link": "l1"}, func(v float64) bool { return v > 0 }},
				{"strait_mirror_produce_duration_seconds", map[string]string{"link": "l1"}, func(v float64) bool { return v > 0 }},
				{"strait_state_write_duration_seconds", nil, func(v float64) bool { return v > 0 }},
				{"strait_ready", nil, func(v float64) bool { return v == 1 }},
			}
			for _, c := range checks {
				got, n := sum(mfs, c.name, c.want)
				if n == 0 || !c.ok(got) {
					t.Errorf("%s%v = %v (%d series)", c.name, c.want, got, n)
				}
			}

			problems, err := testutil.GatherAndLint(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
				out := make([]*dto.MetricFamily, 0, len(mfs))
				for _, mf := range mfs {
					out = append(out, mf)
				}
				return out, nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("lint: %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// TestLagWhilePaused pauses a mirror, writes records with known
// timestamps to its source, and checks the lag in records and in seconds:
// the age is the oldest record's not yet copied, whatever came after it,
// and both go back to 0 once the mirror is resumed.
func TestLagWhilePaused(t *testing.T) {
	f := start(t, nil)
	tu.CreateTopic(t, f.srcCl, "p", 1, nil)
	produce(t, f.srcCl, "p", 10, time.Now().Add(-time.Hour))
	f.mirror(t, "p")
	tu.WaitSameEnds(t, time.Minute, f.srcCl, f.dstCl, "p")
	f.alter(t, "pause", "p")

	mirror := map[string]string{"link": "l1", "topic": "p", "partition": "0"}
	oldest := time.Now().Add(-90 * time.Second)
	produce(t, f.srcCl, "p", 5, oldest)
	// waitLag waits for the lag in records, and for the lag in seconds to
	// be the age of oldest within a tolerance (the figures are read about
	// once a second).
	waitLag := func(records float64) {
		t.Helper()
		tu.WaitFor(t, 30*time.Second, fmt.Sprintf("lag %v records, %v old", records, time.Since(oldest).Round(time.Second)), func() error {
			mfs := f.scrape(t)
			got, _ := sum(mfs, "strait_mirror_lag_records", mirror)
			age, n := sum(mfs, "strait_mirror_lag_seconds", mirror)
			want := time.Since(oldest).Seconds()
			if got != records || n != 1 || age < want-3 || age > want+3 {
				return fmt.Errorf("lag %v records, %v s (%d series), want %v s", got, age, n, want)
			}
			return nil
		})
	}
	waitLag(5)
	// Newer records behind: the oldest one not copied is still the same.
	produce(t, f.srcCl, "p", 5, time.Now().Add(-5*time.Second))
	waitLag(10)

	f.alter(t, "resume", "p")
	tu.WaitFor(t, 30*time.Second, "caught up again", func() error {
		mfs := f.scrape(t)
		lag, _ := sum(mfs, "strait_mirror_lag_records", mirror)
		age, n := sum(mfs, "strait_mirror_lag_seconds", mirror)
		copied, _ := sum(mfs, "strait_mirror_copied_records_total", mirror)
		if lag != 0 || age != 0 || n != 1 || copied != 20 {
			return fmt.Errorf("lag %v records, %v s (%d series), %v copied", lag, age, n, copied)
		}
		return nil
	})
}

// TestInstancesAddUp runs two instances that share the partitions of a
// mirror: each reports the lag of the partitions it copies, once across
// the two, and their copy counters add up to the records copied, exactly,
// whichever instance copied which.
func TestInstancesAddUp(t *testing.T) {
	f := start(t, nil)
	other := f.daemon(t, nil)
	tu.CreateTopic(t, f.srcCl, "shared", 8, nil)
	produce(t, f.srcCl, "shared", 800, time.Now())
	f.mirror(t, "shared")
	tu.WaitSameEnds(t, time.Minute, f.srcCl, f.dstCl, "shared")
	mirror := map[string]string{"link": "l1", "topic": "shared"}
	tu.WaitFor(t, 30*time.Second, "both instances copying, their figures adding up", func() error {
		copied, lagSeries := 0.0, map[string]int{}
		for _, api := range []*tu.API{f.api, other} {
			mfs := scrapeAt(t, api)
			n, _ := sum(mfs, "strait_mirror_copied_records_total", mirror)
			copied += n
			ms := series(mfs, "strait_mirror_lag_records", mirror)
			if len(ms) == 0 || len(ms) == 8 {
				return fmt.Errorf("one instance reports the lag of %d partitions: not shared (yet)", len(ms))
			}
			for _, m := range ms {
				lagSeries[label(m, "partition")]++
			}
		}
		if copied != 800 {
			return fmt.Errorf("%v records copied in all, want 800", copied)
		}
		for p := range 8 {
			if n := lagSeries[fmt.Sprint(p)]; n != 1 {
				return fmt.Errorf("partition %d's lag reported by %d instances", p, n)
			}
		}
		return nil
	})
}
