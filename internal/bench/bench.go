// Package bench is `strait bench`: it measures Strait's raw batch copy
// against a consume-then-produce baseline on two local clusters.
//
// Everything runs as a child process of the same binary, on 127.0.0.1: a
// source and a destination `strait devcluster`, and for each measurement one
// copier, either `strait serve` (driven through its REST API) or the
// baseline `strait bench copier` (RunCopier). Each copier runs alone, so the
// CPU time and peak memory the kernel reports for its process are its own.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// Copier names.
const (
	Strait   = "strait"
	Baseline = "baseline"
)

// CaseNames returns the throughput cases in the order they run.
func CaseNames() []string { return []string{"large-3", "small-3", "large-300", "small-300"} }

// Options configures a benchmark run.
type Options struct {
	// Binary is the strait executable to start clusters and copiers from;
	// empty means this process's own executable.
	Binary string
	// Cases are throughput cases to run (see CaseNames); none skips them.
	Cases []string
	// Copiers are Strait and/or Baseline.
	Copiers []string
	// LargeMB and SmallMB are the record bytes (key plus value) of the
	// large and small cases, in MB of 10^6 bytes.
	LargeMB, SmallMB int
	// LatencyRate is the latency test's produce rate in MB/s; it runs for
	// LatencySeconds, 0 to skip it.
	LatencyRate    float64
	LatencySeconds int
	// DataDir holds the clusters' data and the child processes' logs. It
	// must be empty or absent; empty means a new temporary folder. It is
	// removed at the end unless Keep.
	DataDir string
	Keep    bool
	// DestDelay delays every response of the destination cluster: a
	// destination a round trip of DestDelay away. 0 for loopback.
	DestDelay time.Duration
	// CopyTimeout bounds one copy; a copier that has not finished by then
	// is reported as failed.
	CopyTimeout time.Duration
	// Command is the command line, recorded in the report.
	Command string
	// Out receives the result tables; Log the progress.
	Out io.Writer
	Log *slog.Logger
}

// Validate checks o's values.
func (o Options) Validate() error {
	for _, c := range o.Cases {
		if !slices.Contains(CaseNames(), c) {
			return fmt.Errorf("unknown case %q: want some of %s", c, strings.Join(CaseNames(), ","))
		}
	}
	if len(o.Copiers) == 0 {
		return errors.New("no copier: want strait, baseline or both")
	}
	for _, c := range o.Copiers {
		if c != Strait && c != Baseline {
			return fmt.Errorf("unknown copier %q: want strait or baseline", c)
		}
	}
	if o.LargeMB <= 0 || o.SmallMB <= 0 {
		return errors.New("--large-mb and --small-mb must be positive")
	}
	if o.LatencySeconds < 0 || (o.LatencySeconds > 0 && o.LatencyRate <= 0) {
		return errors.New("--latency-seconds must be 0 (skip) or more, with a positive --latency-rate")
	}
	if o.LatencySeconds > 0 && time.Duration(o.LatencySeconds)*time.Second <= latencyWarmup {
		return fmt.Errorf("--latency-seconds must be more than the %s warm-up", latencyWarmup)
	}
	if o.CopyTimeout <= 0 {
		return errors.New("--copy-timeout must be positive")
	}
	return nil
}

// benchCase is one throughput case.
type benchCase struct {
	name       string
	partitions int
	shape      shape
	bytes      int64
}

// buildCase returns the case called name ("large-3" ...).
func buildCase(name string, largeMB, smallMB int) (benchCase, error) {
	kind, parts, ok := strings.Cut(name, "-")
	if !ok || (parts != "3" && parts != "300") {
		return benchCase{}, fmt.Errorf("unknown case %q", name)
	}
	c := benchCase{name: name, partitions: 3}
	if parts == "300" {
		c.partitions = 300
	}
	switch kind {
	case "large":
		c.shape, c.bytes = largeShape(), int64(largeMB)*1e6
	case "small":
		c.shape, c.bytes = smallShape(), int64(smallMB)*1e6
	default:
		return benchCase{}, fmt.Errorf("unknown case %q", name)
	}
	return c, nil
}

// env is a running benchmark: the clusters and where things go.
type env struct {
	o      Options
	bin    string
	logDir string
	src    *cluster
	dst    *cluster
	log    *slog.Logger
}

// newEnv makes what a run starts from: o's log (discarded when nil), the
// strait executable (this process's own when o.Binary is empty), and the
// data folder with its logs folder in it. done removes the data folder,
// or with o.Keep logs where it is.
func newEnv(o Options) (e *env, dataDir string, done func(), err error) {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	bin := o.Binary
	if bin == "" {
		if bin, err = os.Executable(); err != nil {
			return nil, "", nil, fmt.Errorf("find own executable: %w", err)
		}
	}
	if dataDir, err = prepareDataDir(o.DataDir); err != nil {
		return nil, "", nil, err
	}
	done = func() { _ = os.RemoveAll(dataDir) }
	if o.Keep {
		done = func() { log.Info("data and logs kept", "dir", dataDir) }
	}
	e = &env{o: o, bin: bin, logDir: filepath.Join(dataDir, "logs"), log: log}
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		done()
		return nil, "", nil, fmt.Errorf("create log folder: %w", err)
	}
	return e, dataDir, done, nil
}

// startClusters starts the source and the destination cluster, the
// destination's answers delayed by dstDelay; stop stops both.
func (e *env) startClusters(ctx context.Context, dataDir string, dstDelay time.Duration) (stop func(), err error) {
	if e.src, err = startCluster(ctx, e.bin, dataDir, e.logDir, "src", "bench-src", 0, 1); err != nil {
		return nil, err
	}
	if e.dst, err = startCluster(ctx, e.bin, dataDir, e.logDir, "dst", "bench-dst", dstDelay, 1); err != nil {
		e.src.close()
		return nil, err
	}
	return func() {
		e.dst.close()
		e.src.close()
	}, nil
}

// Run runs the benchmark and prints its tables to o.Out as results come
// in. It returns the report, and an error if a measurement failed (the
// report then holds the others) or the setup did.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e, dataDir, done, err := newEnv(o)
	if err != nil {
		return nil, err
	}
	defer done()

	rep := &Report{
		Command:   o.Command,
		Date:      time.Now().UTC().Format(time.RFC3339),
		CPUs:      runtime.NumCPU(),
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
		Revision:  revision(),
		LargeMB:   o.LargeMB, SmallMB: o.SmallMB,
		LatencyRate: o.LatencyRate, LatencySeconds: o.LatencySeconds,
	}
	printHeader(o.Out, rep)

	e.log.Info("starting clusters", "data_dir", dataDir)
	stop, err := e.startClusters(ctx, dataDir, o.DestDelay)
	if err != nil {
		return nil, err
	}
	defer stop()

	var failed []string
	for _, name := range o.Cases {
		c, err := buildCase(name, o.LargeMB, o.SmallMB)
		if err != nil {
			return rep, err
		}
		cr, err := e.runCase(ctx, c)
		if err != nil {
			return rep, fmt.Errorf("case %s: %w", name, err)
		}
		rep.Cases = append(rep.Cases, cr)
		printCase(o.Out, cr)
		for _, cp := range cr.Copies {
			if cp.Error != "" {
				failed = append(failed, name+"/"+cp.Copier)
			}
		}
	}
	if o.LatencySeconds > 0 {
		for _, copier := range o.Copiers {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			lr := e.runLatency(ctx, copier)
			rep.Latency = append(rep.Latency, lr)
			if lr.Error != "" {
				failed = append(failed, "latency/"+copier)
			}
		}
		printLatency(o.Out, rep)
	}
	rep.Targets = checkTargets(rep)
	printTargets(o.Out, "4", rep.Targets)
	if len(failed) > 0 {
		where := "run again with --keep to keep the child processes' logs"
		if o.Keep {
			where = "the child processes' logs are in " + e.logDir
		}
		return rep, fmt.Errorf("measurements failed: %s (%s)", strings.Join(failed, ", "), where)
	}
	return rep, ctx.Err()
}

// revision is the VCS revision the binary was built from, with
// "+modified" for a dirty tree, or "" when not recorded (go run does not
// record it).
func revision() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, modified string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				modified = "+modified"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + modified
}

// prepareDataDir returns dir, created, after checking it is empty (a
// previous run's clusters would clash with this one's topics); for "" a
// new temporary folder.
func prepareDataDir(dir string) (string, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "strait-bench-")
		if err != nil {
			return "", fmt.Errorf("create data folder: %w", err)
		}
		return d, nil
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", fmt.Errorf("create data folder: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("data folder: %w", err)
	case len(entries) > 0:
		return "", fmt.Errorf("data folder %s is not empty: give an empty or new one", dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data folder: %w", err)
	}
	return abs, nil
}

// destTopic is where copier writes topic: Strait's mirror topic has the
// source's name; the baseline writes to a topic of its own.
func destTopic(copier, topic string) string {
	if copier == Baseline {
		return topic + "-baseline"
	}
	return topic
}

// startCopier starts copier on topic. label names its log and state topic.
// The baseline's destination topic is created here with the source's
// partition count (Strait creates its mirror topic itself), so that either
// way topic creation counts in the copier's time.
func (e *env) startCopier(ctx context.Context, copier, label, topic string, partitions int, s shape) (*proc, error) {
	if copier == Strait {
		return startStrait(ctx, e, label, topic)
	}
	dt := destTopic(copier, topic)
	if err := e.dst.createTopic(ctx, dt, partitions); err != nil {
		return nil, err
	}
	return startProc("baseline-"+label, e.logDir, e.bin, "bench", "copier",
		"--source", e.src.addr, "--dest", e.dst.addr,
		"--topic", topic, "--dest-topic", dt,
		"--compression", s.codec, "--follow")
}

// fill creates the case's source topic and generates its records; it
// returns what it wrote and the topic's end offsets.
func (e *env) fill(ctx context.Context, c benchCase, topic string) (generated, map[int32]int64, error) {
	if err := e.src.createTopic(ctx, topic, c.partitions); err != nil {
		return generated{}, nil, err
	}
	e.log.Info("generating", "case", c.name, "mb", c.bytes/1e6)
	g, err := generate(ctx, e.src, topic, c.partitions, c.shape, c.bytes)
	if err != nil {
		return g, nil, err
	}
	want, err := e.src.endOffsets(ctx, topic)
	return g, want, err
}

// runCase generates a case's source topic, copies it with each copier in
// turn and deletes the case's topics. Only setup failures are returned; a
// copier's failure is in its CopyResult.
func (e *env) runCase(ctx context.Context, c benchCase) (CaseResult, error) {
	topic := "bench-" + c.name
	cr := CaseResult{
		Case: c.name, Partitions: c.partitions, RecordSize: c.shape.recordSize, Compression: c.shape.codec,
	}
	g, want, err := e.fill(ctx, c, topic)
	if err != nil {
		return cr, err
	}
	cr.Records, cr.RecordBytes, cr.Batches, cr.StoredBytes, cr.GenerateSeconds = g.Records, g.RecordBytes, g.Batches, g.StoredBytes, g.Seconds
	if g.Batches > 0 {
		cr.RecordsPerBatch = float64(g.Records) / float64(g.Batches)
	}
	e.log.Info("generated", "case", c.name, "records", g.Records, "batches", g.Batches, "seconds", round(g.Seconds, 1))
	for _, copier := range e.o.Copiers {
		if ctx.Err() != nil {
			return cr, ctx.Err()
		}
		e.log.Info("copying", "case", c.name, "copier", copier)
		res := e.runCopy(ctx, c, copier, topic, want, cr.RecordBytes)
		e.log.Info("copied", "case", c.name, "copier", copier, "seconds", round(res.Seconds, 2), "err", res.Error)
		cr.Copies = append(cr.Copies, res)
	}
	cr.ThroughputRatio, cr.CPURatio = ratios(cr.Copies)
	if !e.o.Keep {
		// Deleting frees the clusters' memory for the next cases.
		if err := e.src.deleteTopics(ctx, topic); err != nil {
			e.log.Warn("cleanup", "err", err)
		}
		if err := e.dst.deleteTopics(ctx, topic, destTopic(Baseline, topic), "__strait_state_"+c.name); err != nil {
			e.log.Warn("cleanup", "err", err)
		}
	}
	return cr, nil
}

// runCopy measures one copier on one case: from starting the copier
// process (for Strait: and creating the link and mirror) until the
// destination topic's end offsets equal the source's.
func (e *env) runCopy(ctx context.Context, c benchCase, copier, topic string, want map[int32]int64, recordBytes int64) CopyResult {
	res := CopyResult{Copier: copier}
	fail := func(err error) CopyResult {
		res.Error = err.Error()
		return res
	}
	dt := destTopic(copier, topic)
	src0, err := e.src.proc.usage()
	if err != nil {
		return fail(err)
	}
	dst0, err := e.dst.proc.usage()
	if err != nil {
		return fail(err)
	}
	start := time.Now()
	p, err := e.startCopier(ctx, copier, c.name, topic, c.partitions, c.shape)
	if err != nil {
		return fail(err)
	}
	defer p.stop(10 * time.Second)
	res.StartSeconds = time.Since(start).Seconds()
	err = waitFor(ctx, e.o.CopyTimeout, 20*time.Millisecond, func() error {
		if err := p.exited(); err != nil {
			return stopWaiting{err}
		}
		got, err := e.dst.endOffsets(ctx, dt)
		if err != nil {
			return err
		}
		if res.FirstSeconds == 0 && sumEnds(got) > 0 {
			res.FirstSeconds = time.Since(start).Seconds()
		}
		// At debug level, the copy's progress over time shows stalls.
		e.log.Debug("progress", "copier", copier, "seconds", round(time.Since(start).Seconds(), 3), "records", sumEnds(got))
		for part, n := range got {
			if n > want[part] {
				return stopWaiting{fmt.Errorf("%s/%d holds %d records, the source %d", dt, part, n, want[part])}
			}
		}
		if !sameEnds(got, want) {
			return fmt.Errorf("%s holds %d of %d records", dt, sumEnds(got), sumEnds(want))
		}
		return nil
	})
	elapsed := time.Since(start)
	if err != nil {
		return fail(fmt.Errorf("%s copy: %w", copier, err))
	}
	// Read before stopping: a process that has exited has no VmHWM.
	u, err := p.usage()
	if err != nil {
		return fail(err)
	}
	src1, err := e.src.proc.usage()
	if err != nil {
		return fail(err)
	}
	dst1, err := e.dst.proc.usage()
	if err != nil {
		return fail(err)
	}
	res.SourceCPUSeconds = src1.CPUSeconds - src0.CPUSeconds
	res.DestCPUSeconds = dst1.CPUSeconds - dst0.CPUSeconds
	res.Seconds = elapsed.Seconds()
	res.MBPerSec = float64(recordBytes) / 1e6 / res.Seconds
	res.RecordsPerSec = float64(sumEnds(want)) / res.Seconds
	res.CPUSeconds = u.CPUSeconds
	res.CPUSecondsPerGB = u.CPUSeconds / (float64(recordBytes) / 1e9)
	res.CPUPercent = 100 * u.CPUSeconds / res.Seconds
	res.PeakRSSMiB = float64(u.PeakRSSBytes) / (1 << 20)
	return res
}

// ratios returns strait/baseline throughput and CPU per GB when both
// copiers succeeded.
func ratios(copies []CopyResult) (throughput, cpu *float64) {
	var s, b *CopyResult
	for i := range copies {
		switch c := &copies[i]; {
		case c.Error != "":
		case c.Copier == Strait:
			s = c
		case c.Copier == Baseline:
			b = c
		}
	}
	if s == nil || b == nil || b.MBPerSec == 0 || b.CPUSecondsPerGB == 0 {
		return nil, nil
	}
	t, c := s.MBPerSec/b.MBPerSec, s.CPUSecondsPerGB/b.CPUSecondsPerGB
	return &t, &c
}
