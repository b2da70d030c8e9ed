package bench

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The throughput part: a backlog copied by one and more serve processes
// sharing one destination (docs/scale-out.md).
const (
	tpTopic = "bench-tp"
	// tpProbe is an empty topic mirrored first, to see the group share
	// its partitions among every instance before the timed copy.
	tpProbe           = "bench-tp-probe"
	tpProbePartitions = 60
	tpLink            = "tp"
)

// InstancesResult is one copy of the backlog by Instances serve
// processes of one binary.
type InstancesResult struct {
	Label     string  `json:"label"`
	Instances int     `json:"instances"`
	Seconds   float64 `json:"seconds"`
	MBPerSec  float64 `json:"mb_per_s"`
	// CPUPercent is the instances' CPU time together over the copy's
	// wall time (100 = one core); ClusterCPUPercent both clusters'.
	CPUPercent        float64 `json:"cpu_percent"`
	ClusterCPUPercent float64 `json:"clusters_cpu_percent"`
	// Speedup is MBPerSec over that of one instance of the same binary
	// in this run.
	Speedup *float64 `json:"speedup,omitempty"`
	// Shares are the partitions of the backlog each instance copied.
	Shares []int  `json:"shares,omitempty"`
	Error  string `json:"error,omitempty"`
}

// runThroughput generates the backlog on clusters of its own and copies
// it with each serve binary and instance count.
func (e *scaleEnv) runThroughput(ctx context.Context) ([]InstancesResult, error) {
	src, dst, stop, err := e.startClusters(ctx, "tp", 1)
	if err != nil {
		return nil, err
	}
	defer stop()
	o := e.o
	if err := src.createTopic(ctx, tpTopic, o.ThroughputPartitions); err != nil {
		return nil, err
	}
	if err := src.createTopic(ctx, tpProbe, tpProbePartitions); err != nil {
		return nil, err
	}
	e.log.Info("throughput: generating", "mb", o.ThroughputMB, "partitions", o.ThroughputPartitions)
	g, err := generate(ctx, src, tpTopic, o.ThroughputPartitions, largeShape(), int64(o.ThroughputMB)*1e6)
	if err != nil {
		return nil, err
	}
	want, err := src.endOffsets(ctx, tpTopic)
	if err != nil {
		return nil, err
	}
	var out []InstancesResult
	run := 0
	for _, sb := range o.Serves {
		var one float64
		for _, n := range o.Instances {
			if ctx.Err() != nil {
				return out, ctx.Err()
			}
			run++
			e.log.Info("throughput: copying", "serve", sb.Label, "instances", n)
			r := e.copyWith(ctx, sb, n, run, src, dst, want, g.RecordBytes)
			e.log.Info("throughput: copied", "serve", sb.Label, "instances", n, "mb_s", round(r.MBPerSec, 1), "err", r.Error)
			if n == 1 && r.Error == "" {
				one = r.MBPerSec
			}
			if one > 0 && r.Error == "" {
				s := r.MBPerSec / one
				r.Speedup = &s
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// copyWith starts n serve processes of sb with a state topic of their
// own, waits until they share the work, and times the copy of the backlog
// into a mirror topic of its own (the link's prefix is r<run>.).
func (e *scaleEnv) copyWith(ctx context.Context, sb ServeBinary, n, run int, src, dst *cluster, want map[int32]int64, recordBytes int64) InstancesResult {
	res := InstancesResult{Label: sb.Label, Instances: n}
	fail := func(err error) InstancesResult {
		res.Error = err.Error()
		return res
	}
	env := append([]string{}, e.serveEnv...)
	if e.o.GoMaxProcs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(e.o.GoMaxProcs))
	}
	state := fmt.Sprintf("__strait_state_tp%d", run)
	prefix := fmt.Sprintf("r%d.", run)
	var svs []*serve
	defer func() {
		var ps []*proc
		for _, sv := range svs {
			ps = append(ps, sv.p)
		}
		stopAll(30*time.Second, ps...)
		if !e.o.Keep {
			if err := dst.deleteTopics(ctx, prefix+tpTopic, prefix+tpProbe, state); err != nil {
				e.log.Warn("cleanup", "err", err)
			}
		}
	}()
	for i := range n {
		sv, err := startServe(ctx, fmt.Sprintf("tp-%s-%d-%d", sb.Label, n, i), e.logDir, sb.Path, env, dst, state)
		if err != nil {
			return fail(err)
		}
		svs = append(svs, sv)
	}
	first := svs[0]
	if err := first.createLink(ctx, dst, src, tpLink, map[string]string{"cluster.link.prefix": prefix}); err != nil {
		return fail(fmt.Errorf("create link: %w", err))
	}
	mirrors := first.links(dst) + "/" + tpLink + "/mirrors"
	if n > 1 {
		// Every instance must have its share before the clock starts.
		if _, err := first.call(ctx, http.MethodPost, mirrors, map[string]string{"source_topic_name": tpProbe}); err != nil {
			return fail(fmt.Errorf("create probe mirror: %w", err))
		}
		err := waitFor(ctx, e.o.Timeout, 200*time.Millisecond, func() error {
			shares, err := sharesOf(ctx, first, mirrors+"/"+prefix+tpProbe)
			if err != nil {
				return err
			}
			if len(shares) < n {
				return fmt.Errorf("%d of %d instances copy", len(shares), n)
			}
			return nil
		})
		if err != nil {
			return fail(fmt.Errorf("instances sharing: %w", err))
		}
	}
	u0, c0, err := cpuOf(svs, src, dst)
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	if _, err := first.call(ctx, http.MethodPost, mirrors, map[string]string{"source_topic_name": tpTopic}); err != nil {
		return fail(fmt.Errorf("create mirror: %w", err))
	}
	err = waitFor(ctx, e.o.Timeout, 20*time.Millisecond, func() error {
		for _, sv := range svs {
			if err := sv.p.exited(); err != nil {
				return stopWaiting{err}
			}
		}
		got, err := dst.endOffsets(ctx, prefix+tpTopic)
		if err != nil {
			return err
		}
		// At debug level, the copy's progress over time shows stalls.
		e.log.Debug("progress", "instances", n, "seconds", round(time.Since(start).Seconds(), 3), "records", sumEnds(got))
		if !sameEnds(got, want) {
			return fmt.Errorf("%s holds %d of %d records", prefix+tpTopic, sumEnds(got), sumEnds(want))
		}
		return nil
	})
	if err != nil {
		return fail(fmt.Errorf("copy: %w", err))
	}
	res.Seconds = time.Since(start).Seconds()
	u1, c1, err := cpuOf(svs, src, dst)
	if err != nil {
		return fail(err)
	}
	res.MBPerSec = float64(recordBytes) / 1e6 / res.Seconds
	res.CPUPercent = 100 * (u1 - u0) / res.Seconds
	res.ClusterCPUPercent = 100 * (c1 - c0) / res.Seconds
	if shares, err := sharesOf(ctx, first, mirrors+"/"+prefix+tpTopic); err == nil {
		for _, c := range shares {
			res.Shares = append(res.Shares, c)
		}
	}
	return res
}

// sharesOf counts a mirror's partitions by the instance that copies them.
func sharesOf(ctx context.Context, sv *serve, url string) (map[string]int, error) {
	var m mirrorList
	b, err := sv.call(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// One mirror, not a list: wrap it.
	if err := unmarshalOne(b, &m); err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, d := range m.Data {
		for _, l := range d.MirrorLags {
			if l.StraitInstance != "" {
				out[l.StraitInstance]++
			}
		}
	}
	return out, nil
}

// cpuOf is the CPU seconds of the serve processes together, and of both
// clusters together.
func cpuOf(svs []*serve, src, dst *cluster) (serves, clusters float64, err error) {
	for _, sv := range svs {
		u, err := sv.p.usage()
		if err != nil {
			return 0, 0, err
		}
		serves += u.CPUSeconds
	}
	for _, c := range []*cluster{src, dst} {
		u, err := c.proc.usage()
		if err != nil {
			return 0, 0, err
		}
		clusters += u.CPUSeconds
	}
	return serves, clusters, nil
}
