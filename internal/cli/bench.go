package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strait-dev/strait/internal/bench"
)

func newBench() *cobra.Command {
	var (
		o              bench.Options
		cases, copiers string
		asJSON         bool
		logLevel       string
	)
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure Strait's copy against a kgo consume-and-produce baseline",
		Long: `Measure throughput, CPU, memory and latency of Strait's raw batch copy
against a baseline copier, on two local clusters, in one run.

Every piece is a child process of this binary on 127.0.0.1: a source and a
destination cluster ("strait devcluster", kfake, data under --data-dir) and,
for each measurement, one copier alone:

  strait    "strait serve", given a link and a mirror topic through its REST
            API; it copies the source's record batches as raw bytes.
  baseline  "strait bench copier": franz-go's kgo consumer reading the topic
            from the start and a kgo producer (default batching, same codec,
            idempotent, acks=all) writing every record to the same partition
            of "<topic>-baseline", the way Redpanda Migrator and
            MirrorMaker 2 copy.

Throughput cases (--cases), each on a fresh source topic generated first:

  large-3    1 KiB records (mostly random, lz4 saves ~12%), lz4 batches of
             up to 1 MiB (linger 50ms), 3 partitions, --large-mb of records
  small-3    100 B records, uncompressed, about 10 records per batch,
             3 partitions, --small-mb of records
  large-300  as large-3 with 300 partitions
  small-300  as small-3 with 300 partitions

A copy is timed from starting the copier process (for strait: serve,
create the link and the mirror) until the destination topic's end offsets
equal the source's. Columns: seconds, of which (start) until the copier
could copy and (first) until the first record landed; MB/s and records/s of
source keys and values (MB = 10^6 bytes); CPU s/GB, the copier's
utime+stime from /proc per 10^9 bytes; CPU %, that time over the wall time
(100 = one core); peak RSS, its VmHWM; clusters CPU %, both clusters'.
--log-level debug logs the destination's record count every 20ms of a
copy, which shows where a copy stalls.

Latency (--latency-seconds, 0 to skip): for each copier a producer writes
1 KiB lz4 records to a 3-partition topic at --latency-rate, stamped with the
send time, while consumers of the source and destination topics record
receipt time minus timestamp; the first 2s are ignored.

The run ends with the targets of issue 4, met or not. It exits non-zero if
any measurement failed; the child processes' logs are in <data-dir>/logs
(use --keep to keep them).`,
		Example: `  strait bench                                  # everything, defaults
  strait bench --cases large-3 --copiers strait --latency-seconds 0
  strait bench --large-mb 256 --small-mb 32     # shorter copies, noisier ratios
  strait bench --json                           # the tables, then the figures as JSON`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Cases = splitList(cases)
			o.Copiers = splitList(copiers)
			return runBench(cmd, logLevel, asJSON, func(ctx context.Context, out io.Writer, log *slog.Logger, command string) (any, error) {
				o.Out, o.Log, o.Command = out, log, command
				if err := o.Validate(); err != nil {
					return nil, err
				}
				return bench.Run(ctx, o)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&cases, "cases", strings.Join(bench.CaseNames(), ","), "comma-separated throughput cases to run (empty: none)")
	f.StringVar(&copiers, "copiers", bench.Strait+","+bench.Baseline, "comma-separated copiers to measure: strait, baseline")
	f.IntVar(&o.LargeMB, "large-mb", 1024, "MB of record keys and values in each large case")
	f.IntVar(&o.SmallMB, "small-mb", 256, "MB of record keys and values in each small case")
	f.Float64Var(&o.LatencyRate, "latency-rate", 5, "latency test produce rate, MB/s")
	f.IntVar(&o.LatencySeconds, "latency-seconds", 15, "latency test duration per copier, seconds (0 skips it)")
	benchFlags(f, &o.DataDir, &o.Keep, &asJSON, &logLevel, "keep --data-dir, the logs and the topics at the end")
	f.DurationVar(&o.DestDelay, "dest-delay", 0, "send every destination response this much later: a destination a round trip away (0: loopback)")
	f.DurationVar(&o.CopyTimeout, "copy-timeout", 10*time.Minute, "give up on one copy after this long")
	cmd.AddCommand(newBenchCopier(), newBenchVerify(), newBenchScale())
	return cmd
}

// newBenchVerify measures the verification of a mirror against a plain
// consuming comparison.
func newBenchVerify() *cobra.Command {
	var (
		o        bench.VerifyOptions
		asJSON   bool
		logLevel string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Measure verifying a mirror against comparing it with kgo consumers",
		Long: `Measure Strait's verification of a mirror topic (raw batches of both
clusters, compared without decompressing what the copy kept as it was)
against a plain comparison: a franz-go kgo consumer on each cluster reading
the topic whole, decompressing, and the records compared one by one.

Two local clusters run as child processes ("strait devcluster"). For each
case (large-3 and small-3, as in "strait bench") a source topic is
generated, "strait serve" copies it, and then both comparisons run in this
process, --rounds times each, alternating. Columns: seconds, MB/s of
record keys and values (MB = 10^6 bytes), and this process's CPU seconds
per 10^9 bytes; "faster" is the consuming comparison's time over the
verification's, "CPU x" the ratio of their CPU.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runBench(cmd, logLevel, asJSON, func(ctx context.Context, out io.Writer, log *slog.Logger, command string) (any, error) {
				o.Out, o.Log, o.Command = out, log, command
				return bench.RunVerify(ctx, o)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.LargeMB, "large-mb", 512, "MB of record keys and values in the large case")
	f.IntVar(&o.SmallMB, "small-mb", 64, "MB of record keys and values in the small case")
	f.IntVar(&o.Rounds, "rounds", 3, "times each comparison runs per case")
	benchFlags(f, &o.DataDir, &o.Keep, &asJSON, &logLevel, "keep --data-dir and the logs at the end")
	return cmd
}

// newBenchScale is `strait bench scale`: many mirrors on one instance, and
// a backlog copied by several.
func newBenchScale() *cobra.Command {
	var (
		o         bench.ScaleOptions
		serves    []string
		instances string
		asJSON    bool
		logLevel  string
	)
	cmd := &cobra.Command{
		Use:   "scale",
		Short: "Measure Strait with many mirror topics, and with several instances",
		Long: `Measure what many mirror topics cost one "strait serve", and how the copy
of a backlog grows with instances sharing one destination. Every piece is a
child process of this binary on 127.0.0.1, as in "strait bench".

Many mirrors (--topics, 0 to skip), on fresh clusters of --brokers brokers
for each serve measured: --topics source topics of --partitions partitions
with --records-per-partition 100 B records each; one serve; one link; a
mirror per topic, created one call after another (timed); the time until
every mirror partition ends where its source does and every mirror is
ACTIVE; then, over --idle-seconds, the serve's CPU (utime+stime from
/proc), its resident memory (VmRSS), open descriptors and TCP connections
to each broker; the time of GET .../links/-/mirrors and
.../links/{link}/mirrors; pausing and resuming --pause-topics mirrors by
mirror_topic_name_pattern while a producer writes --produce-rate records a
second to their sources (the call's time, and when the mirrors' end
offsets last moved after a pause or first moved after a resume); and the
time a restarted serve takes to load the state until /readyz answers 200.

Throughput (--instances, empty to skip): a backlog of --throughput-mb MB of
the large case's records in --throughput-partitions partitions, copied by
1, 2, 3 ... serve processes sharing one destination (docs/scale-out.md),
each with GOMAXPROCS=--gomaxprocs, timed from creating the mirror once they
all share a probe mirror until the copy ends where the source does. Before
each copy the clusters are left to settle (under 15% of a core for a second,
at most 30 s); with --throughput-repeats every copy is made that many times,
the serves and counts taking turns, and the median one is reported.

--serve label=path (repeatable) measures other builds the same way in the
same run, for example a build of main before a change: every table then has
a column or rows per build. The run ends with the targets of issue 14.`,
		Example: `  strait bench scale                                        # modest defaults
  strait bench scale --topics 1000 --partitions 10 --idle-seconds 60 \
      --serve main=/tmp/strait-main --serve this=./strait         # before and after
  strait bench scale --instances '' --topics 4000                 # many mirrors only`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, s := range serves {
				label, path, ok := strings.Cut(s, "=")
				if !ok {
					return fmt.Errorf("--serve %q: want label=path", s)
				}
				o.Serves = append(o.Serves, bench.ServeBinary{Label: label, Path: path})
			}
			for _, v := range splitList(instances) {
				n, err := strconv.Atoi(v)
				if err != nil {
					return fmt.Errorf("--instances: %q is not a number", v)
				}
				o.Instances = append(o.Instances, n)
			}
			return runBench(cmd, logLevel, asJSON, func(ctx context.Context, out io.Writer, log *slog.Logger, command string) (any, error) {
				o.Out, o.Log, o.Command = out, log, command
				return bench.RunScale(ctx, o)
			})
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Topics, "topics", 200, "mirror topics on one serve (0 skips the many-mirrors part)")
	f.IntVar(&o.Partitions, "partitions", 10, "partitions of each mirror topic")
	f.IntVar(&o.RecordsPerPartition, "records-per-partition", 20, "100 B records in each source partition before the mirrors are created")
	f.IntVar(&o.Brokers, "brokers", 3, "brokers of each cluster in the many-mirrors part")
	f.IntVar(&o.PauseTopics, "pause-topics", 0, "mirrors paused and resumed by pattern (0: all)")
	f.IntVar(&o.ProduceRate, "produce-rate", 2000, "records a second written to the paused mirrors' sources during the pause and resume")
	f.IntVar(&o.IdleSeconds, "idle-seconds", 30, "window over which idle CPU is measured, seconds")
	f.IntVar(&o.ListRepeats, "list-repeats", 3, "times each mirror list is timed")
	f.StringVar(&instances, "instances", "1,2,3", "comma-separated instance counts that copy the backlog (empty skips the throughput part)")
	f.IntVar(&o.GoMaxProcs, "gomaxprocs", 1, "GOMAXPROCS of each serve in the throughput part (0 leaves it unset)")
	f.IntVar(&o.ThroughputMB, "throughput-mb", 256, "MB of record keys and values in the backlog")
	f.IntVar(&o.ThroughputPartitions, "throughput-partitions", 30, "partitions of the backlog topic")
	f.IntVar(&o.ThroughputRepeats, "throughput-repeats", 1, "copies of the backlog per serve and instance count, taking turns; the median is reported")
	f.StringArrayVar(&serves, "serve", nil, "label=path of a strait binary whose serve is measured (repeatable; default this binary)")
	f.StringVar(&o.ServeLogLevel, "serve-log-level", "warn", "log level of the serves (their logs are kept with --keep)")
	f.StringVar(&o.ProfileDir, "profile-dir", "", "write CPU and allocation profiles of the many-mirrors serves here (<label>-run.cpu, <label>-idle.cpu, <label>-idle.mem)")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Minute, "give up on one wait (a catch-up, a copy) after this long")
	benchFlags(f, &o.DataDir, &o.Keep, &asJSON, &logLevel, "keep --data-dir and the logs at the end")
	return cmd
}

// runBench runs one benchmark with its progress log on stderr and its
// tables on stdout, then, with --json, prints the figures it returned.
func runBench(cmd *cobra.Command, logLevel string, asJSON bool, run func(ctx context.Context, out io.Writer, log *slog.Logger, command string) (any, error)) error {
	ctx, stop := signalContext()
	defer stop()
	rep, err := run(ctx, cmd.OutOrStdout(), newLogger(cmd.ErrOrStderr(), logLevel, "text"), commandLine(cmd))
	if v := reflect.ValueOf(rep); asJSON && v.IsValid() && !v.IsNil() {
		enc := json.NewEncoder(cmd.OutOrStdout())
		enc.SetIndent("", "  ")
		if jerr := enc.Encode(rep); jerr != nil && err == nil {
			err = fmt.Errorf("print JSON: %w", jerr)
		}
	}
	return err
}

// benchFlags adds the flags every benchmark has.
func benchFlags(f *pflag.FlagSet, dataDir *string, keep, asJSON *bool, logLevel *string, keepHelp string) {
	f.StringVar(dataDir, "data-dir", "", "empty or new folder for cluster data and logs (default: a temporary folder)")
	f.BoolVar(keep, "keep", false, keepHelp)
	f.BoolVar(asJSON, "json", false, "also print the results as JSON at the end")
	f.StringVar(logLevel, "log-level", "info", "progress log level on stderr: debug, info, warn or error")
}

// newBenchCopier is the baseline copier the benchmark starts as a child
// process, hidden from help.
func newBenchCopier() *cobra.Command {
	var (
		o        bench.CopierOptions
		logLevel string
	)
	cmd := &cobra.Command{
		Use:    "copier",
		Short:  "Copy a topic with a kgo consume-and-produce loop (the benchmark baseline)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			o.Log = newLogger(cmd.ErrOrStderr(), logLevel, "text")
			return bench.RunCopier(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Source, "source", "", "source bootstrap address (required)")
	f.StringVar(&o.Dest, "dest", "", "destination bootstrap address (required)")
	f.StringVar(&o.Topic, "topic", "", "source topic (required)")
	f.StringVar(&o.DestTopic, "dest-topic", "", "destination topic, existing with as many partitions (required)")
	f.StringVar(&o.Compression, "compression", "none", "producer codec: none or lz4")
	f.BoolVar(&o.Follow, "follow", false, "keep copying until stopped (default: stop once the records present at start are copied)")
	f.StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	for _, name := range []string{"source", "dest", "topic", "dest-topic"} {
		_ = cmd.MarkFlagRequired(name) // the flags exist: no error
	}
	return cmd
}

// commandLine is the command as run, with the flags that were set.
func commandLine(cmd *cobra.Command) string {
	parts := []string{cmd.CommandPath()}
	cmd.Flags().Visit(func(f *pflag.Flag) {
		parts = append(parts, "--"+f.Name+"="+f.Value.String())
	})
	return strings.Join(parts, " ")
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for v := range strings.SplitSeq(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
