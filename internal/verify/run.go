package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Target is a mirror topic and its source, and where to resume.
type Target struct {
	Source, Mirror           *kgo.Client
	SourceTopic, MirrorTopic string
	// Partitions lists the partitions to verify, in any order.
	Partitions []int32
	// Compacted says the mirror topic is compacted: records that only one
	// side still has are then allowed (a cleaner removed them).
	Compacted bool
	// From is where each partition's verification resumes (a checkpoint);
	// offsets below the logs' starts are skipped.
	From map[int32]int64
	// MirrorEnds caps what is verified of a partition (a stopped mirror:
	// its end when it stopped, past which it is a topic of its own).
	MirrorEnds map[int32]int64
}

// Options bound a verification run; zero values are fine.
type Options struct {
	// BytesPerSecond caps the bytes read from each cluster; zero or less
	// reads as fast as the clusters answer.
	BytesPerSecond int64
	// FetchBytes is the size of one fetch; zero means 4 MiB.
	FetchBytes int32
	// Parallel is how many partitions are verified at once; zero means 4.
	Parallel int
}

// PartitionResult is one partition's verification.
type PartitionResult struct {
	Partition int32 `json:"partition"`
	// From is where this run began.
	From int64 `json:"from_offset"`
	// Verified is the offset up to which (exclusive) the mirror and the
	// source were compared and agree, from the later of their log starts
	// (and of the first checkpoint).
	Verified    int64 `json:"verified_offset"`
	SourceStart int64 `json:"source_start_offset"`
	SourceEnd   int64 `json:"source_end_offset"`
	MirrorStart int64 `json:"mirror_start_offset"`
	MirrorEnd   int64 `json:"mirror_end_offset"`
	// Divergence is the first difference, nil when none was found.
	Divergence *Divergence `json:"divergence"`
	// Error says why the run stopped before the end without finding a
	// difference (a read that failed); empty otherwise.
	Error string `json:"error,omitempty"`
	Stats
}

// Report is the outcome of a run.
type Report struct {
	Partitions []PartitionResult
	// Stats sums the partitions'.
	Stats Stats
	Took  time.Duration
}

// Run compares the partitions of a mirror topic with its source up to
// where both have data now (the source's high watermark and the mirror's
// end, read in that order so that a copy under way is not taken for
// extra records). Each partition stops at its first difference. An error
// is returned only when nothing could be compared (offsets unreadable).
func Run(ctx context.Context, t Target, opt Options) (Report, error) {
	start := time.Now()
	if opt.FetchBytes <= 0 {
		opt.FetchBytes = 4 << 20
	}
	if opt.Parallel <= 0 {
		opt.Parallel = 4
	}
	res, err := bounds(ctx, t)
	if err != nil {
		return Report{}, err
	}
	srcLim, dstLim := NewLimiter(opt.BytesPerSecond), NewLimiter(opt.BytesPerSecond)
	src, dst := newReader(t.Source, t.SourceTopic, srcLim), newReader(t.Mirror, t.MirrorTopic, dstLim)
	fetchBytes := min(srcLim.chunkFor(opt.FetchBytes), dstLim.chunkFor(opt.FetchBytes))
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(opt.Parallel, len(res)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				verifyPartition(ctx, src, dst, &res[i], t.Compacted, fetchBytes)
			}
		}()
	}
	for i := range res {
		work <- i
	}
	close(work)
	wg.Wait()
	rep := Report{Partitions: res, Took: time.Since(start)}
	for i := range res {
		rep.Stats.add(res[i].Stats)
	}
	return rep, nil
}

// bounds reads the log starts and ends of both sides and sets where each
// partition's run begins and ends.
func bounds(ctx context.Context, t Target) ([]PartitionResult, error) {
	// The mirror's end first: the source's high watermark read after it
	// is at least everything the mirror copied by then.
	dstStarts, dstEnds, err := listOffsets(ctx, t.Mirror, t.MirrorTopic)
	if err != nil {
		return nil, fmt.Errorf("mirror topic %s: %w", t.MirrorTopic, err)
	}
	srcStarts, srcEnds, err := listOffsets(ctx, t.Source, t.SourceTopic)
	if err != nil {
		return nil, fmt.Errorf("source topic %s: %w", t.SourceTopic, err)
	}
	parts := append([]int32(nil), t.Partitions...)
	sort.Slice(parts, func(i, j int) bool { return parts[i] < parts[j] })
	out := make([]PartitionResult, 0, len(parts))
	for _, p := range parts {
		ds, dok := dstStarts[p]
		ss, sok := srcStarts[p]
		if !dok || !sok {
			return nil, fmt.Errorf("partition %d: %w", p, kerr.UnknownTopicOrPartition)
		}
		r := PartitionResult{Partition: p, SourceStart: ss, SourceEnd: srcEnds[p], MirrorStart: ds, MirrorEnd: dstEnds[p]}
		if end, ok := t.MirrorEnds[p]; ok && end >= 0 && end < r.MirrorEnd {
			r.MirrorEnd = end
		}
		r.From = max(t.From[p], ss, ds)
		r.Verified = r.From
		out = append(out, r)
	}
	return out, nil
}

func listOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, map[int32]int64, error) {
	adm := kadm.NewClient(cl)
	starts, err := adm.ListStartOffsets(ctx, topic)
	if err == nil {
		err = starts.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		return nil, nil, err
	}
	s, e := map[int32]int64{}, map[int32]int64{}
	starts.Each(func(o kadm.ListedOffset) { s[o.Partition] = o.Offset })
	ends.Each(func(o kadm.ListedOffset) { e[o.Partition] = o.Offset })
	return s, e, nil
}

// verifyPartition runs the comparison of one partition, fetching both
// sides ahead of it.
func verifyPartition(ctx context.Context, src, dst *reader, r *PartitionResult, compacted bool, fetchBytes int32) {
	limit := min(r.SourceEnd, r.MirrorEnd)
	c := NewComparer(r.From, limit, compacted)
	defer func() {
		c.Finish(r.SourceEnd, r.MirrorEnd)
		r.Verified, r.Divergence, r.Stats = c.Pos(), c.Divergence(), c.Stats()
	}()
	if c.Done() {
		return
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	chans := [2]chan chunk{make(chan chunk, 2), make(chan chunk, 2)}
	for i, rd := range []*reader{src, dst} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rd.stream(ctx, r.Partition, r.From, limit, fetchBytes, chans[i])
		}()
	}
	names := [2]string{"source", "mirror"}
	for !c.Done() {
		needS, needD := c.Step()
		for i, need := range [2]bool{needS, needD} {
			if !need {
				continue
			}
			ch, ok := <-chans[i]
			switch {
			case !ok:
				r.Error = fmt.Sprintf("the %s ended before offset %d", names[i], limit)
			case errors.Is(ch.err, kerr.OffsetOutOfRange):
				r.Error = fmt.Sprintf("the %s's log start moved past offset %d during the run (retention or DeleteRecords); the next run starts from there", names[i], c.Pos())
			case ch.err != nil:
				r.Error = fmt.Sprintf("read the %s: %v", names[i], ch.err)
			default:
				c.Add(Side(i), ch.batches, ch.known)
				continue
			}
			return
		}
	}
}
