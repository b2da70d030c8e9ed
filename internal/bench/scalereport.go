package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// ScaleReport is the outcome of `strait bench scale`; --json prints it.
type ScaleReport struct {
	Command              string            `json:"command"`
	Date                 string            `json:"date"`
	CPUs                 int               `json:"cpus"`
	GoVersion            string            `json:"go_version"`
	Platform             string            `json:"platform"`
	Revision             string            `json:"revision,omitempty"`
	Serves               []ServeBinary     `json:"serves"`
	Topics               int               `json:"topics"`
	Partitions           int               `json:"partitions"`
	Brokers              int               `json:"brokers"`
	RecordsPerPartition  int               `json:"records_per_partition"`
	PauseTopics          int               `json:"pause_topics"`
	ProduceRate          int               `json:"produce_rate"`
	IdleSeconds          int               `json:"idle_seconds"`
	GoMaxProcs           int               `json:"gomaxprocs"`
	ThroughputMB         int               `json:"throughput_mb"`
	ThroughputPartitions int               `json:"throughput_partitions"`
	Throughput           []InstancesResult `json:"throughput"`
	Many                 []ManyResult      `json:"many"`
	Targets              []Target          `json:"targets"`
}

func printScaleHeader(w io.Writer, r *ScaleReport) {
	fmt.Fprintf(w, "strait bench scale: %s, %d CPUs, %s, %s\n", r.Platform, r.CPUs, r.GoVersion, r.Date)
	if r.Revision != "" {
		fmt.Fprintf(w, "bench built from revision %s\n", r.Revision)
	}
	for _, s := range r.Serves {
		fmt.Fprintf(w, "serve %q: %s\n", s.Label, s.Path)
	}
	fmt.Fprintln(w, "CPU % is CPU time over wall time (100 = one core busy); every figure of a table comes from this one run.")
}

func printThroughput(w io.Writer, r *ScaleReport) {
	procs := "GOMAXPROCS unset"
	if r.GoMaxProcs > 0 {
		procs = fmt.Sprintf("GOMAXPROCS=%d per instance", r.GoMaxProcs)
	}
	fmt.Fprintf(w, "\n== throughput: %d MB of 1 KiB lz4 records in %d partitions, copied by n instances sharing one destination (%s)\n",
		r.ThroughputMB, r.ThroughputPartitions, procs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "serve\tinstances\tseconds\tMB/s\tspeed-up\tCPU %\tclusters CPU %\tpartitions each\t")
	for _, t := range r.Throughput {
		if t.Error != "" {
			fmt.Fprintf(tw, "%s\t%d\tfailed\t\t\t\t\t\t\n", t.Label, t.Instances)
			continue
		}
		sp := ""
		if t.Speedup != nil {
			sp = fmt.Sprintf("%.2fx", *t.Speedup)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2f\t%.1f\t%s\t%.0f\t%.0f\t%s\t\n", t.Label, t.Instances, t.Seconds, t.MBPerSec, sp,
			t.CPUPercent, t.ClusterCPUPercent, joinInts(t.Shares, "/"))
	}
	tw.Flush()
	for _, t := range r.Throughput {
		if t.Error != "" {
			fmt.Fprintf(w, "%s with %d instances failed: %s\n", t.Label, t.Instances, t.Error)
		}
	}
}

func printMany(w io.Writer, r *ScaleReport) {
	fmt.Fprintf(w, "\n== many mirrors: %d topics x %d partitions = %d mirror partitions on one serve, %d brokers per cluster, %d records per partition\n",
		r.Topics, r.Partitions, r.Topics*r.Partitions, r.Brokers, r.RecordsPerPartition)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"measure"}
	for _, m := range r.Many {
		head = append(head, m.Label)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	row := func(name string, f func(m ManyResult) string) {
		cells := []string{name}
		for _, m := range r.Many {
			if m.Error != "" {
				cells = append(cells, "failed")
				continue
			}
			cells = append(cells, f(m))
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t")+"\t")
	}
	f2 := func(v float64) string { return fmt.Sprintf("%.2f", v) }
	f0 := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	row(fmt.Sprintf("create %d mirrors, s", r.Topics), func(m ManyResult) string { return f2(m.CreateSeconds) })
	row("  slowest create, ms", func(m ManyResult) string { return f0(m.CreateMaxMs) })
	row("catch-up after the last create, s", func(m ManyResult) string { return f2(m.CatchUpSeconds) })
	row("all ACTIVE after the last create, s", func(m ManyResult) string { return f2(m.ActiveSeconds) })
	row(fmt.Sprintf("idle CPU %% (%d s)", r.IdleSeconds), func(m ManyResult) string { return f2(m.IdleCPUPercent) })
	row("  clusters' CPU % meanwhile", func(m ManyResult) string { return f2(m.IdleClusterCPUPercent) })
	row("RSS MiB (peak)", func(m ManyResult) string { return fmt.Sprintf("%.0f (%.0f)", m.RSSMiB, m.PeakRSSMiB) })
	row("open descriptors", func(m ManyResult) string { return fmt.Sprint(m.FDs) })
	row("connections per source broker", func(m ManyResult) string { return joinInts(m.SourceConns, "/") })
	row("connections per destination broker", func(m ManyResult) string { return joinInts(m.DestConns, "/") })
	row("list links/-/mirrors, ms (max)", func(m ManyResult) string { return fmt.Sprintf("%.0f (%.0f)", m.ListAllMs, m.ListAllMaxMs) })
	row("list links/{l}/mirrors, ms (max)", func(m ManyResult) string { return fmt.Sprintf("%.0f (%.0f)", m.ListLinkMs, m.ListLinkMaxMs) })
	row("  answer, KB", func(m ManyResult) string { return fmt.Sprintf("%.0f", float64(m.ListBytes)/1e3) })
	row(fmt.Sprintf("pause %d by pattern: call, ms", r.PauseTopics), func(m ManyResult) string { return bulkCell(m.Pause, m.Pause.CallMs) })
	row("  ends last moved, ms after the call", func(m ManyResult) string { return bulkCell(m.Pause, m.Pause.SettledMs) })
	row("  records landed after the answer", func(m ManyResult) string {
		if m.Pause.Error != "" {
			return "failed"
		}
		return fmt.Sprint(m.Pause.AfterAnswer)
	})
	row(fmt.Sprintf("resume %d by pattern: call, ms", r.PauseTopics), func(m ManyResult) string { return bulkCell(m.Resume, m.Resume.CallMs) })
	row("  ends moved again, ms after the call", func(m ManyResult) string { return bulkCell(m.Resume, m.Resume.SettledMs) })
	row("restart until /readyz, s", func(m ManyResult) string { return f2(m.RestartSeconds) })
	row("  state topic records", func(m ManyResult) string { return fmt.Sprint(m.StateRecords) })
	tw.Flush()
	for _, m := range r.Many {
		if m.Error != "" {
			fmt.Fprintf(w, "%s failed: %s\n", m.Label, m.Error)
		}
		for what, b := range map[string]BulkResult{"pause": m.Pause, "resume": m.Resume} {
			if b.Error != "" {
				fmt.Fprintf(w, "%s %s failed: %s\n", m.Label, what, b.Error)
			}
		}
	}
}

func bulkCell(b BulkResult, v float64) string {
	if b.Error != "" {
		return "failed"
	}
	return fmt.Sprintf("%.0f", v)
}

func joinInts(vs []int, sep string) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, sep)
}

// scaleTargets compares the run with the goals of issue 14, for every
// serve binary measured. A goal whose figures are missing, or whose size
// the run does not reach, is left out.
func scaleTargets(r *ScaleReport) []Target {
	var ts []Target
	total := r.Topics * r.Partitions
	for _, m := range r.Many {
		if m.Error != "" {
			continue
		}
		p := m.Label + ": "
		switch {
		case total >= 40000:
			ts = append(ts, Target{p + "40,000 partitions: idle CPU under 8%", fmt.Sprintf("%.2f%%", m.IdleCPUPercent), m.IdleCPUPercent < 8})
		case total >= 10000:
			ts = append(ts, Target{p + "10,000 partitions: idle CPU under 2%", fmt.Sprintf("%.2f%%", m.IdleCPUPercent), m.IdleCPUPercent < 2})
			ts = append(ts, Target{p + "10,000 partitions within 1 GiB resident", fmt.Sprintf("%.0f MiB", m.RSSMiB), m.RSSMiB < 1024})
			ts = append(ts, Target{p + "list all mirrors under 1 s", fmt.Sprintf("%.0f ms", m.ListAllMaxMs), m.ListAllMaxMs < 1000})
			ts = append(ts, Target{p + "list a link's mirrors under 1 s", fmt.Sprintf("%.0f ms", m.ListLinkMaxMs), m.ListLinkMaxMs < 1000})
			ts = append(ts, Target{p + "state loaded at start-up under 10 s", fmt.Sprintf("%.2f s", m.RestartSeconds), m.RestartSeconds < 10})
		}
		if r.Topics >= 1000 {
			per := m.CreateSeconds * 1000 / float64(r.Topics)
			ts = append(ts, Target{p + "create 1,000 mirrors under 5 s", fmt.Sprintf("%.2f s per 1,000", per), per < 5})
		}
		if r.PauseTopics >= 1000 && m.Pause.Error == "" {
			ts = append(ts, Target{p + fmt.Sprintf("pause %d by pattern answers under 100 ms", r.PauseTopics), fmt.Sprintf("%.0f ms", m.Pause.CallMs), m.Pause.CallMs < 100})
			ts = append(ts, Target{p + "copying stops within a second", fmt.Sprintf("%.0f ms", m.Pause.SettledMs), m.Pause.SettledMs < 1000})
		}
		most := 0
		for _, c := range append(append([]int{}, m.SourceConns...), m.DestConns...) {
			most = max(most, c)
		}
		ts = append(ts, Target{p + "connections per broker bounded (at most 16)", fmt.Sprintf("at most %d", most), most <= 16})
	}
	for _, t := range r.Throughput {
		if t.Instances == 3 && t.Speedup != nil {
			ts = append(ts, Target{t.Label + ": 3 instances copy at least 2.5x one", fmt.Sprintf("%.2fx", *t.Speedup), *t.Speedup >= 2.5})
		}
	}
	return ts
}
