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
	"strings"
	"time"
)

// ScaleOptions configures `strait bench scale`: many mirror topics on one
// `strait serve`, and the copy of a backlog by one and more instances.
type ScaleOptions struct {
	// Binary starts the clusters; empty means this process's executable.
	Binary string
	// Serves are the strait executables whose `serve` is measured, each
	// in turn with the same flags (for example a build of main, then this
	// one); empty means Binary, labelled "this".
	Serves []ServeBinary
	// Topics mirror topics of Partitions partitions each are created on
	// one serve; 0 skips that part. Each source partition holds
	// RecordsPerPartition records of 100 B first.
	Topics, Partitions, RecordsPerPartition int
	// Brokers is the brokers per cluster in the many-mirrors part.
	Brokers int
	// PauseTopics is how many of the mirrors are paused and resumed by
	// pattern (0: all); ProduceRate is the records per second written to
	// their source topics meanwhile.
	PauseTopics, ProduceRate int
	// IdleSeconds is the window over which idle CPU is measured.
	IdleSeconds int
	// ListRepeats is how many times each mirror list is timed.
	ListRepeats int
	// Instances are the numbers of serve processes that copy a backlog
	// together (for example 1,2,3); none skips that part. Each runs with
	// GOMAXPROCS=GoMaxProcs (0 leaves it unset). The backlog is
	// ThroughputMB MB of the large case's records in ThroughputPartitions
	// partitions.
	Instances                          []int
	GoMaxProcs                         int
	ThroughputMB, ThroughputPartitions int
	// ProfileDir, when set, receives CPU profiles of the many-mirrors
	// serves (<label>-run.cpu: the whole first run; <label>-idle.cpu and
	// .mem: the restarted serve over IdleSeconds from 20 s after its
	// start, with the allocations before in .mem.base), through
	// STRAIT_CPUPROFILE, STRAIT_MEMPROFILE and STRAIT_PROFILE_AFTER.
	ProfileDir string
	// ServeLogLevel is the serves' log level (default warn); their logs
	// are under DataDir/logs.
	ServeLogLevel string
	// Timeout bounds every wait (a catch-up, a copy).
	Timeout time.Duration
	// DataDir and Keep are as in Options.
	DataDir string
	Keep    bool
	Command string
	Out     io.Writer
	Log     *slog.Logger
}

// ServeBinary is a strait executable to measure, and its label in the
// report.
type ServeBinary struct {
	Label string `json:"label"`
	Path  string `json:"path"`
}

// Validate checks o's values.
func (o ScaleOptions) Validate() error {
	switch {
	case o.Topics < 0 || (o.Topics > 0 && o.Partitions <= 0):
		return errors.New("--topics must be 0 (skip) or more, with --partitions positive")
	case o.RecordsPerPartition < 0 || o.Brokers < 1:
		return errors.New("--records-per-partition must be 0 or more and --brokers at least 1")
	case o.PauseTopics < 0 || o.PauseTopics > o.Topics || o.ProduceRate < 0:
		return errors.New("--pause-topics must be between 0 (all) and --topics, --produce-rate not negative")
	case o.IdleSeconds < 1 || o.ListRepeats < 1:
		return errors.New("--idle-seconds and --list-repeats must be positive")
	case o.GoMaxProcs < 0 || o.Timeout <= 0:
		return errors.New("--gomaxprocs must not be negative and --timeout must be positive")
	case len(o.Instances) > 0 && (o.ThroughputMB <= 0 || o.ThroughputPartitions <= 0):
		return errors.New("--throughput-mb and --throughput-partitions must be positive")
	}
	for _, n := range o.Instances {
		if n < 1 || n > 16 {
			return fmt.Errorf("--instances: %d: want 1 to 16", n)
		}
	}
	seen := map[string]bool{}
	for _, s := range o.Serves {
		if s.Label == "" || s.Path == "" || seen[s.Label] {
			return fmt.Errorf("--serve %q=%q: want label=path, each label once", s.Label, s.Path)
		}
		seen[s.Label] = true
	}
	return nil
}

// scaleEnv is a running scale benchmark.
type scaleEnv struct {
	o       ScaleOptions
	bin     string
	dataDir string
	logDir  string
	log     *slog.Logger
	// clusters counts the clusters started, for unique names.
	clusters int
	// serveEnv is added to every serve's environment.
	serveEnv []string
}

// RunScale runs the scale benchmark and prints its tables to o.Out. It
// returns the report, and an error if a measurement failed (the report
// then holds the others) or the setup did.
func RunScale(ctx context.Context, o ScaleOptions) (*ScaleReport, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	e := &scaleEnv{o: o, log: o.Log}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	e.bin = o.Binary
	if e.bin == "" {
		var err error
		if e.bin, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("find own executable: %w", err)
		}
	}
	if o.ServeLogLevel != "" {
		e.serveEnv = []string{serveLogLevelEnv + "=" + o.ServeLogLevel}
	}
	if len(o.Serves) == 0 {
		o.Serves = []ServeBinary{{Label: "this", Path: e.bin}}
		e.o.Serves = o.Serves
	}
	if o.PauseTopics == 0 {
		e.o.PauseTopics = o.Topics
	}
	var err error
	if o.ProfileDir != "" {
		if e.o.ProfileDir, err = filepath.Abs(o.ProfileDir); err != nil {
			return nil, fmt.Errorf("profile folder: %w", err)
		}
		if err := os.MkdirAll(e.o.ProfileDir, 0o755); err != nil {
			return nil, fmt.Errorf("profile folder: %w", err)
		}
	}
	if e.dataDir, err = prepareDataDir(o.DataDir); err != nil {
		return nil, err
	}
	if o.Keep {
		defer e.log.Info("data and logs kept", "dir", e.dataDir)
	} else {
		defer os.RemoveAll(e.dataDir)
	}
	e.logDir = filepath.Join(e.dataDir, "logs")
	if err := os.MkdirAll(e.logDir, 0o755); err != nil {
		return nil, fmt.Errorf("create log folder: %w", err)
	}
	rep := &ScaleReport{
		Command: o.Command, Date: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(),
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH, Revision: revision(),
		Serves: e.o.Serves, Topics: o.Topics, Partitions: o.Partitions, Brokers: o.Brokers,
		RecordsPerPartition: o.RecordsPerPartition, PauseTopics: e.o.PauseTopics, ProduceRate: o.ProduceRate,
		IdleSeconds: o.IdleSeconds, GoMaxProcs: o.GoMaxProcs, ThroughputMB: o.ThroughputMB,
		ThroughputPartitions: o.ThroughputPartitions,
	}
	printScaleHeader(o.Out, rep)

	var failed []string
	if len(o.Instances) > 0 {
		rs, err := e.runThroughput(ctx)
		rep.Throughput = rs
		printThroughput(o.Out, rep)
		if err != nil {
			return rep, err
		}
		for _, r := range rs {
			if r.Error != "" {
				failed = append(failed, fmt.Sprintf("throughput/%s/%d", r.Label, r.Instances))
			}
		}
	}
	if o.Topics > 0 {
		for _, sb := range e.o.Serves {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			r := e.runMany(ctx, sb)
			rep.Many = append(rep.Many, r)
			if r.Error != "" {
				failed = append(failed, "many/"+sb.Label)
			}
		}
		printMany(o.Out, rep)
	}
	rep.Targets = scaleTargets(rep)
	printTargets(o.Out, "14", rep.Targets)
	if len(failed) > 0 {
		where := "run again with --keep to keep the child processes' logs"
		if o.Keep {
			where = "the child processes' logs are in " + e.logDir
		}
		return rep, fmt.Errorf("measurements failed: %s (%s)", strings.Join(failed, ", "), where)
	}
	return rep, ctx.Err()
}

// startClusters starts a source and a destination cluster with brokers
// brokers each, named after what they serve.
func (e *scaleEnv) startClusters(ctx context.Context, what string, brokers int) (src, dst *cluster, stop func(), err error) {
	e.clusters++
	n := e.clusters
	srcID, dstID := fmt.Sprintf("%s-src-%d", what, n), fmt.Sprintf("%s-dst-%d", what, n)
	// In memory: persisted, kfake keeps files open for every partition,
	// and 10,000 partitions pass the usual descriptor limits.
	if src, err = startCluster(ctx, e.bin, e.dataDir, e.logDir, "", srcID, 0, brokers); err != nil {
		return nil, nil, nil, err
	}
	if dst, err = startCluster(ctx, e.bin, e.dataDir, e.logDir, "", dstID, 0, brokers); err != nil {
		src.close()
		return nil, nil, nil, err
	}
	stop = func() {
		src.close()
		dst.close()
	}
	return src, dst, stop, nil
}
