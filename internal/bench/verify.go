package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/verify"
)

// `strait bench verify`: Strait's verification of a mirror (internal/verify,
// raw batches, nothing decompressed where the copy kept the batches) against
// a plain consuming comparison (a kgo consumer on each cluster, records
// decompressed and compared one by one), in the same run, on a mirror that
// Strait copied. The clusters are child processes; both comparisons run in
// this process one after the other, so its CPU time is theirs.

// VerifyOptions configures `strait bench verify`.
type VerifyOptions struct {
	// Binary is the strait executable; empty means this process's own.
	Binary string
	// LargeMB and SmallMB are the record bytes of the two cases.
	LargeMB, SmallMB int
	// Rounds is how many times each comparison runs per case.
	Rounds int
	// DataDir and Keep as in Options.
	DataDir string
	Keep    bool
	Command string
	Out     io.Writer
	Log     *slog.Logger
}

// VerifyMeasure is one comparison's figures, averaged over the rounds.
type VerifyMeasure struct {
	Seconds        float64 `json:"seconds"`
	MBPerSec       float64 `json:"mb_per_sec"`
	CPUSeconds     float64 `json:"cpu_seconds"`
	CPUSecondsPerG float64 `json:"cpu_seconds_per_gb"`
	// ClustersCPUPercent is both clusters' CPU over the wall time (100 =
	// one core): how busy serving the fetches kept them.
	ClustersCPUPercent float64 `json:"clusters_cpu_percent"`
}

// VerifyCase is one case's result.
type VerifyCase struct {
	Case          string        `json:"case"`
	Partitions    int           `json:"partitions"`
	Records       int64         `json:"records"`
	RecordBytes   int64         `json:"record_bytes"`
	SourceBatches int64         `json:"source_batches"`
	MirrorBatches int64         `json:"mirror_batches"`
	Decompressed  int64         `json:"decompressed_batches"`
	Verify        VerifyMeasure `json:"verify"`
	Consume       VerifyMeasure `json:"consume"`
	// Faster is the consuming comparison's time over the verification's.
	Faster float64 `json:"faster"`
	// CPURatio is the consuming comparison's CPU over the verification's.
	CPURatio float64 `json:"cpu_ratio"`
}

// RunVerify runs the verification benchmark and prints a table to o.Out.
func RunVerify(ctx context.Context, o VerifyOptions) ([]VerifyCase, error) {
	if o.LargeMB <= 0 || o.SmallMB <= 0 || o.Rounds <= 0 {
		return nil, errors.New("--large-mb, --small-mb and --rounds must be positive")
	}
	e, dataDir, done, err := newEnv(Options{Binary: o.Binary, DataDir: o.DataDir, Keep: o.Keep, Log: o.Log})
	if err != nil {
		return nil, err
	}
	defer done()
	stop, err := e.startClusters(ctx, dataDir, 0)
	if err != nil {
		return nil, err
	}
	defer stop()
	fmt.Fprintf(o.Out, "strait bench verify: %s, %d CPUs, %s %s/%s, revision %s\n\n", o.Command, runtime.NumCPU(), runtime.Version(), runtime.GOOS, runtime.GOARCH, revision())
	fmt.Fprintf(o.Out, "%-8s %6s %8s %8s | %-34s | %-34s | %7s %7s\n", "case", "MB", "src btch", "mir btch", "verify: s  MB/s  CPU s/GB  clus.%", "consume: s  MB/s  CPU s/GB  clus.%", "faster", "CPU x")
	var out []VerifyCase
	for _, c := range []benchCase{{name: "large-3", partitions: 3, shape: largeShape(), bytes: int64(o.LargeMB) * 1e6}, {name: "small-3", partitions: 3, shape: smallShape(), bytes: int64(o.SmallMB) * 1e6}} {
		vc, err := e.verifyCase(ctx, c, o.Rounds)
		if err != nil {
			return out, fmt.Errorf("case %s: %w", c.name, err)
		}
		fmt.Fprintf(o.Out, "%-8s %6.0f %8d %8d | %9.2f %6.1f %9.2f %6.0f | %10.2f %6.1f %9.2f %6.0f | %6.2fx %6.2fx\n", vc.Case, float64(vc.RecordBytes)/1e6, vc.SourceBatches, vc.MirrorBatches,
			vc.Verify.Seconds, vc.Verify.MBPerSec, vc.Verify.CPUSecondsPerG, vc.Verify.ClustersCPUPercent,
			vc.Consume.Seconds, vc.Consume.MBPerSec, vc.Consume.CPUSecondsPerG, vc.Consume.ClustersCPUPercent, vc.Faster, vc.CPURatio)
		out = append(out, vc)
	}
	return out, nil
}

// verifyCase generates a source topic, has Strait copy it, and measures
// both comparisons of the mirror with it.
func (e *env) verifyCase(ctx context.Context, c benchCase, rounds int) (VerifyCase, error) {
	topic := "verify-" + c.name
	vc := VerifyCase{Case: c.name, Partitions: c.partitions}
	g, want, err := e.fill(ctx, c, topic)
	if err != nil {
		return vc, err
	}
	vc.Records, vc.RecordBytes = g.Records, g.RecordBytes
	e.log.Info("copying with strait", "case", c.name)
	p, err := startStrait(ctx, e, "verify-"+c.name, topic)
	if err != nil {
		return vc, err
	}
	err = waitFor(ctx, 10*time.Minute, 50*time.Millisecond, func() error {
		got, err := e.dst.endOffsets(ctx, topic)
		if err != nil {
			return err
		}
		if !sameEnds(got, want) {
			return fmt.Errorf("%s holds %d of %d records", topic, sumEnds(got), sumEnds(want))
		}
		return nil
	})
	p.stop(10 * time.Second) // copied: its CPU is not the comparisons'
	if err != nil {
		return vc, err
	}
	parts := make([]int32, c.partitions)
	for i := range parts {
		parts[i] = int32(i)
	}
	var vSec, vCPU, vCl, cSec, cCPU, cCl float64
	for r := 0; r < rounds; r++ {
		e.log.Info("verifying", "case", c.name, "round", r+1)
		sec, cpu, cl, err := e.measure(func() error {
			rep, err := verify.Run(ctx, verify.Target{Source: e.src.cl, Mirror: e.dst.cl, SourceTopic: topic, MirrorTopic: topic, Partitions: parts}, verify.Options{})
			if err != nil {
				return err
			}
			for _, p := range rep.Partitions {
				if p.Divergence != nil || p.Error != "" || p.Verified != want[p.Partition] {
					return fmt.Errorf("partition %d verified to %d of %d: %v %s", p.Partition, p.Verified, want[p.Partition], p.Divergence, p.Error)
				}
			}
			vc.SourceBatches, vc.MirrorBatches, vc.Decompressed = rep.Stats.SourceBatches, rep.Stats.MirrorBatches, rep.Stats.Decompressed
			return nil
		})
		if err != nil {
			return vc, fmt.Errorf("verify: %w", err)
		}
		vSec, vCPU, vCl = vSec+sec, vCPU+cpu, vCl+cl
		e.log.Info("consuming", "case", c.name, "round", r+1)
		sec, cpu, cl, err = e.measure(func() error {
			n, err := consumeAndCompare(ctx, e.src.addr, e.dst.addr, topic, want)
			if err == nil && n != g.Records {
				err = fmt.Errorf("compared %d records of %d", n, g.Records)
			}
			return err
		})
		if err != nil {
			return vc, fmt.Errorf("consume: %w", err)
		}
		cSec, cCPU, cCl = cSec+sec, cCPU+cpu, cCl+cl
	}
	gb := float64(vc.RecordBytes) / 1e9
	avg := func(sec, cpu, cl float64) VerifyMeasure {
		return VerifyMeasure{Seconds: round(sec/float64(rounds), 3), MBPerSec: round(gb*1000*float64(rounds)/sec, 1), CPUSeconds: round(cpu/float64(rounds), 3),
			CPUSecondsPerG: round(cpu/float64(rounds)/gb, 2), ClustersCPUPercent: round(100*cl/sec, 0)}
	}
	vc.Verify, vc.Consume = avg(vSec, vCPU, vCl), avg(cSec, cCPU, cCl)
	vc.Faster, vc.CPURatio = round(cSec/vSec, 2), round(cCPU/vCPU, 2)
	if !e.o.Keep {
		_ = e.src.deleteTopics(ctx, topic)
		_ = e.dst.deleteTopics(ctx, topic, "__strait_state_verify-"+c.name)
	}
	return vc, nil
}

// measure runs fn and returns its wall time, this process's CPU time over
// it and the clusters', in seconds.
func (e *env) measure(fn func() error) (sec, cpu, clusters float64, err error) {
	runtime.GC()
	cpuOf := func() (float64, float64, error) {
		var total float64
		for _, pid := range []int{e.src.proc.pid(), e.dst.proc.pid()} {
			u, err := readUsage(pid)
			if err != nil {
				return 0, 0, err
			}
			total += u.CPUSeconds
		}
		u, err := readUsage(os.Getpid())
		return u.CPUSeconds, total, err
	}
	self0, cl0, err := cpuOf()
	if err != nil {
		return 0, 0, 0, err
	}
	start := time.Now()
	if err := fn(); err != nil {
		return 0, 0, 0, err
	}
	sec = time.Since(start).Seconds()
	self1, cl1, err := cpuOf()
	if err != nil {
		return 0, 0, 0, err
	}
	return sec, self1 - self0, cl1 - cl0, nil
}

// consumeAndCompare is the plain comparison: a kgo consumer on each
// cluster reads the topic whole (decompressing its batches), and the
// records are compared one by one: offset, key, value, headers, timestamp.
// It returns how many it compared.
func consumeAndCompare(ctx context.Context, srcAddr, dstAddr, topic string, ends map[int32]int64) (int64, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type part struct {
		p   int32
		rs  []*kgo.Record
		err error
	}
	read := func(addr string, out chan<- part) {
		defer close(out)
		offs := map[int32]kgo.Offset{}
		for p, e := range ends {
			if e > 0 {
				offs[p] = kgo.NewOffset().AtStart()
			}
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
			kgo.FetchMaxPartitionBytes(4<<20))
		if err != nil {
			out <- part{err: err}
			return
		}
		defer cl.Close()
		left := len(offs)
		for left > 0 && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(_ string, p int32, err error) {
				select {
				case out <- part{p: p, err: err}:
				case <-ctx.Done():
				}
			})
			fs.EachPartition(func(ft kgo.FetchTopicPartition) {
				if len(ft.Records) == 0 {
					return
				}
				select {
				case out <- part{p: ft.Partition, rs: ft.Records}:
				case <-ctx.Done():
					return
				}
				if ft.Records[len(ft.Records)-1].Offset == ends[ft.Partition]-1 {
					left--
				}
			})
		}
	}
	chans := [2]chan part{make(chan part, 16), make(chan part, 16)}
	go read(srcAddr, chans[0])
	go read(dstAddr, chans[1])
	pending := map[int32]*[2][]*kgo.Record{}
	var n int64
	open := 2
	for open > 0 {
		var got part
		var side int
		var ok bool
		select {
		case got, ok = <-chans[0]:
			side = 0
		case got, ok = <-chans[1]:
			side = 1
		}
		if !ok {
			chans[side] = nil
			open--
			continue
		}
		if got.err != nil {
			return n, got.err
		}
		q := pending[got.p]
		if q == nil {
			q = &[2][]*kgo.Record{}
			pending[got.p] = q
		}
		q[side] = append(q[side], got.rs...)
		k := min(len(q[0]), len(q[1]))
		for i := 0; i < k; i++ {
			if s, d := q[0][i], q[1][i]; !sameRecord(s, d) {
				return n, fmt.Errorf("partition %d: offset %d differs", got.p, s.Offset)
			}
		}
		n += int64(k)
		q[0], q[1] = q[0][k:], q[1][k:]
	}
	return n, nil
}

func sameRecord(s, d *kgo.Record) bool {
	return s.Offset == d.Offset && bytes.Equal(s.Key, d.Key) && bytes.Equal(s.Value, d.Value) && s.Timestamp.Equal(d.Timestamp) &&
		slices.EqualFunc(s.Headers, d.Headers, func(x, y kgo.RecordHeader) bool { return x.Key == y.Key && bytes.Equal(x.Value, y.Value) })
}
