package bench

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of a run; `strait bench --json` prints it.
type Report struct {
	Command        string          `json:"command"`
	Date           string          `json:"date"`
	CPUs           int             `json:"cpus"`
	GoVersion      string          `json:"go_version"`
	Platform       string          `json:"platform"`
	Revision       string          `json:"revision,omitempty"` // VCS revision of the binary, if recorded
	LargeMB        int             `json:"large_mb"`
	SmallMB        int             `json:"small_mb"`
	LatencyRate    float64         `json:"latency_rate_mb_s"`
	LatencySeconds int             `json:"latency_seconds"`
	Cases          []CaseResult    `json:"cases"`
	Latency        []LatencyResult `json:"latency"`
	Targets        []Target        `json:"targets"`
}

// CaseResult is one throughput case: its source data and each copier's
// figures.
type CaseResult struct {
	Case            string       `json:"case"`
	Partitions      int          `json:"partitions"`
	RecordSize      int          `json:"record_size"`
	Compression     string       `json:"compression"`
	Records         int64        `json:"records"`
	RecordBytes     int64        `json:"record_bytes"` // keys plus values
	Batches         int64        `json:"batches"`
	StoredBytes     int64        `json:"stored_bytes"` // batch bytes in the source log
	RecordsPerBatch float64      `json:"records_per_batch"`
	GenerateSeconds float64      `json:"generate_seconds"`
	Copies          []CopyResult `json:"copies"`
	// ThroughputRatio is Strait's MB/s over the baseline's, CPURatio
	// Strait's CPU seconds per GB over the baseline's; nil unless both
	// copiers succeeded.
	ThroughputRatio *float64 `json:"throughput_ratio,omitempty"`
	CPURatio        *float64 `json:"cpu_ratio,omitempty"`
}

// CopyResult is one copier's figures on one case. MB are 10^6 bytes of
// keys and values, GB 10^9.
type CopyResult struct {
	Copier  string  `json:"copier"`
	Seconds float64 `json:"seconds"`
	// StartSeconds is the part of Seconds before the copier could copy:
	// for Strait until the mirror was created, for the baseline until its
	// process was started.
	StartSeconds float64 `json:"start_seconds"`
	// FirstSeconds is the part of Seconds until the destination topic had
	// its first record.
	FirstSeconds    float64 `json:"first_record_seconds"`
	MBPerSec        float64 `json:"mb_per_s"`
	RecordsPerSec   float64 `json:"records_per_s"`
	CPUSeconds      float64 `json:"cpu_seconds"`
	CPUSecondsPerGB float64 `json:"cpu_s_per_gb"`
	// CPUPercent is CPUSeconds over Seconds (100 is one core busy): far
	// below the core count, the copier is waiting, not computing.
	CPUPercent float64 `json:"cpu_percent"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
	// SourceCPUSeconds and DestCPUSeconds are what the two cluster
	// processes used during the copy: on a small machine the clusters,
	// not the copier, may be what limits the throughput.
	SourceCPUSeconds float64 `json:"source_cluster_cpu_seconds"`
	DestCPUSeconds   float64 `json:"dest_cluster_cpu_seconds"`
	Error            string  `json:"error,omitempty"`
}

// clusterCPUPercent is both clusters' CPU time over the copy's wall time.
func (c CopyResult) clusterCPUPercent() float64 {
	if c.Seconds == 0 {
		return 0
	}
	return 100 * (c.SourceCPUSeconds + c.DestCPUSeconds) / c.Seconds
}

// LatencyResult is one copier's end-to-end latency, from the producer's
// send time (the record timestamp, in ms) to a consumer of the destination
// receiving the record. The source figures are a consumer of the source
// topic in the same run: the floor without any copy.
type LatencyResult struct {
	Copier       string  `json:"copier"`
	RateMBPerSec float64 `json:"rate_mb_s"` // achieved produce rate
	Records      int     `json:"records"`   // measured, after the warm-up
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
	SourceP50Ms  float64 `json:"source_p50_ms"`
	SourceP99Ms  float64 `json:"source_p99_ms"`
	SourceMaxMs  float64 `json:"source_max_ms"`
	// CopierCPUPercent is the copier's CPU time over wall time after the
	// warm-up (100 is one core).
	CopierCPUPercent float64 `json:"copier_cpu_percent"`
	PeakRSSMiB       float64 `json:"peak_rss_mib"`
	Error            string  `json:"error,omitempty"`
}

// Target is one of the goals of issue 4 and whether this run met it.
type Target struct {
	Goal   string `json:"goal"`
	Actual string `json:"actual"`
	Met    bool   `json:"met"`
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. It returns 0 for no values. ds is not modified.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	return s[min(max(rank, 1), len(s))-1]
}

func round(v float64, digits int) float64 {
	f := math.Pow(10, float64(digits))
	return math.Round(v*f) / f
}

// checkTargets compares the run with the goals of issue 4. A goal whose
// measurements are missing from the run is left out.
func checkTargets(r *Report) []Target {
	var ts []Target
	for _, c := range r.Cases {
		if c.ThroughputRatio == nil {
			continue
		}
		tr, cpu := *c.ThroughputRatio, *c.CPURatio
		large := strings.HasPrefix(c.Case, "large")
		if large {
			ts = append(ts, Target{
				Goal:   c.Case + ": Strait CPU/GB at most 1/5 of the baseline's",
				Actual: fmt.Sprintf("%.3fx the baseline's", cpu),
				Met:    cpu <= 0.2,
			})
		} else {
			ts = append(ts, Target{
				Goal:   c.Case + ": Strait CPU/GB no worse than the baseline's",
				Actual: fmt.Sprintf("%.3fx the baseline's", cpu),
				Met:    cpu <= 1,
			})
		}
		ts = append(ts, Target{
			Goal:   c.Case + ": Strait throughput at least the baseline's",
			Actual: fmt.Sprintf("%.3fx the baseline's", tr),
			Met:    tr >= 1,
		})
	}
	for _, c := range r.Cases {
		if c.Partitions < 300 {
			continue
		}
		for _, cp := range c.Copies {
			if cp.Copier == Strait && cp.Error == "" {
				ts = append(ts, Target{
					Goal:   c.Case + ": Strait peak RSS under 512 MiB",
					Actual: fmt.Sprintf("%.0f MiB", cp.PeakRSSMiB),
					Met:    cp.PeakRSSMiB < 512,
				})
			}
		}
	}
	for _, l := range r.Latency {
		if l.Copier == Strait && l.Error == "" {
			ts = append(ts, Target{
				Goal:   fmt.Sprintf("latency: Strait p99 under 50 ms at %g MB/s", r.LatencyRate),
				Actual: fmt.Sprintf("%.1f ms", l.P99Ms),
				Met:    l.P99Ms < 50,
			})
		}
	}
	return ts
}

func printHeader(w io.Writer, r *Report) {
	fmt.Fprintf(w, "strait bench: %s, %d CPUs, %s, %s\n", r.Platform, r.CPUs, r.GoVersion, r.Date)
	if r.Revision != "" {
		fmt.Fprintf(w, "built from revision %s\n", r.Revision)
	}
	fmt.Fprintln(w, "MB = 10^6 bytes of record keys and values; CPU and peak RSS are the copier process's own;")
	fmt.Fprintln(w, "CPU % is CPU time over wall time (100 = one core busy); clusters CPU % is both kfake processes'.")
}

func printCase(w io.Writer, c CaseResult) {
	fmt.Fprintf(w, "\n== %s: %d partitions, %d B records, %s; %d records, %.1f MB (%.1f MB stored in %d batches, %.1f records/batch)\n",
		c.Case, c.Partitions, c.RecordSize, c.Compression, c.Records, float64(c.RecordBytes)/1e6,
		float64(c.StoredBytes)/1e6, c.Batches, c.RecordsPerBatch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "copier\tseconds\t(start)\t(first)\tMB/s\trecords/s\tCPU s/GB\tCPU %\tpeak RSS MiB\tclusters CPU %\t")
	for _, cp := range c.Copies {
		if cp.Error != "" {
			fmt.Fprintf(tw, "%s\tfailed\t\t\t\t\t\t\t\t\t\n", cp.Copier)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.1f\t%.0f\t%.2f\t%.0f\t%.0f\t%.0f\t\n",
			cp.Copier, cp.Seconds, cp.StartSeconds, cp.FirstSeconds, cp.MBPerSec, cp.RecordsPerSec, cp.CPUSecondsPerGB, cp.CPUPercent, cp.PeakRSSMiB, cp.clusterCPUPercent())
	}
	tw.Flush()
	for _, cp := range c.Copies {
		if cp.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", cp.Copier, cp.Error)
		}
	}
	if c.ThroughputRatio != nil {
		fmt.Fprintf(w, "strait/baseline: throughput %.2fx (higher is better), CPU per GB %.2fx (lower is better)\n",
			*c.ThroughputRatio, *c.CPURatio)
	}
}

func printLatency(w io.Writer, r *Report) {
	fmt.Fprintf(w, "\n== latency: %d B records, lz4, %d partitions, %g MB/s for %ds (first %s ignored); ms from send to receipt\n",
		largeShape().recordSize, latencyPartitions, r.LatencyRate, r.LatencySeconds, latencyWarmup)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "copier\tMB/s sent\trecords\tp50\tp99\tmax\tsource p50\tsource p99\tcopier CPU %\tpeak RSS MiB\t")
	for _, l := range r.Latency {
		if l.Error != "" {
			fmt.Fprintf(tw, "%s\tfailed\t\t\t\t\t\t\t\t\t\n", l.Copier)
			continue
		}
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.1f\t%.0f\t\n",
			l.Copier, l.RateMBPerSec, l.Records, l.P50Ms, l.P99Ms, l.MaxMs, l.SourceP50Ms, l.SourceP99Ms, l.CopierCPUPercent, l.PeakRSSMiB)
	}
	tw.Flush()
	for _, l := range r.Latency {
		if l.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", l.Copier, l.Error)
		}
	}
}

func printTargets(w io.Writer, issue string, ts []Target) {
	if len(ts) == 0 {
		return
	}
	fmt.Fprintf(w, "\n== targets (issue %s)\n", issue)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range ts {
		met := "NOT MET"
		if t.Met {
			met = "met"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", met, t.Goal, t.Actual)
	}
	tw.Flush()
}
