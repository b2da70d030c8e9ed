package mirror

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/strait-dev/strait/internal/batch"
)

// chunk is what one fetch returned for one partition.
type chunk struct {
	gen     uint64
	batches []batch.Batch
	bytes   int
}

// fetchEvent is a partition-level fetch error for the worker to handle.
type fetchEvent struct {
	gen uint64
	err error
}

// part is one mirror partition: the fetch cursor and queue shared by the
// fetcher (producer of chunks) and the worker (consumer), plus lag figures.
type part struct {
	t  *topicRun
	id int32

	// fetcherID is the source broker whose fetcher has this partition, -1
	// for none. Written under Runner.mu.
	fetcherID atomic.Int64

	srcHW   atomic.Int64 // source high watermark last seen, -1 unknown
	destEnd atomic.Int64 // mirror log end offset, -1 unknown
	// inflight counts produce requests out; produced counts the ones
	// done. Together they tell an idle partition, whose end offset on the
	// destination must be exactly destEnd.
	inflight atomic.Int32
	produced atomic.Uint64
	// confirmedEnd is where the worker knows the mirror to end while it
	// waits with nothing out, -1 at any other time (setting up, copying,
	// restarting): only then can the runner compare it with the mirror's
	// end. moved is the end the runner found instead, -1 for none.
	confirmedEnd atomic.Int64
	moved        atomic.Int64
	// idleSince is when the worker last began waiting with nothing out
	// (Unix ns); checkedAt when the runner last compared the mirror's end
	// with confirmedEnd (only the lag loop touches it).
	idleSince atomic.Int64
	checkedAt int64
	// progressAt is when the partition last moved or had nothing to copy
	// (Unix ns), stalled whether it is reported stalled, and lastErr the
	// worker's last error (see stall.go). watchEnd is the end seen by the
	// last watch; only the runner's lag loop touches it.
	progressAt atomic.Int64
	nudgedAt   atomic.Int64
	stalled    atomic.Bool
	lastErr    atomic.Value // string
	watchEnd   int64

	// counters count the partition's copy (see Observer.Partition).
	counters *PartitionCounters
	// held is the oldest source batch the worker holds that has not
	// landed, as the fetcher and the writer note it; read is the source
	// batch at the mirror's end as the runner last read it, readAt when
	// (only the lag loop touches readAt). See age.go.
	held, read ageNote
	readAt     time.Time
	// running is set while the partition's worker runs here; cancel
	// stops that worker and done is closed when it has returned. All
	// three are guarded by Runner.mu.
	running bool
	cancel  context.CancelFunc
	done    chan struct{}
	// lagAt is when lag figures of a partition without a worker here
	// were last read from the clusters (Unix ns; see RefreshLags).
	lagAt atomic.Int64

	mu sync.Mutex
	// ready is set when the fetcher may fetch the partition.
	ready bool
	// stopped is set once the partition's worker is being stopped.
	stopped bool
	// fetchOffset is the next source offset to fetch.
	fetchOffset int64
	// gen changes whenever the cursor is reset; fetched data carrying an
	// older gen is dropped.
	gen   uint64
	queue []chunk
	// queued counts the bytes of the chunks in queue and of those the
	// worker took and has not finished; the runner's total is their sum
	// over partitions.
	queued int
	events []fetchEvent
	// sess marks the fetch session that holds the partition (see
	// session); only fetchers touch it.
	sess   sessMark
	notify chan struct{}
}

func newPart(t *topicRun, id int32, counters *PartitionCounters) *part {
	p := &part{t: t, id: id, notify: make(chan struct{}, 1), counters: counters}
	p.held.init()
	p.read.init()
	p.fetcherID.Store(-1)
	p.srcHW.Store(-1)
	p.destEnd.Store(-1)
	p.confirmedEnd.Store(-1)
	p.moved.Store(-1)
	return p
}

// reset clears the queue before a worker starts.
func (p *part) reset() {
	p.mu.Lock()
	p.ready, p.stopped = false, false
	p.gen++
	p.dropLocked()
	p.mu.Unlock()
}

// stop makes the partition unfetchable and drops what is queued.
func (p *part) stop() {
	p.mu.Lock()
	p.ready, p.stopped = false, true
	p.gen++
	p.dropLocked()
	p.mu.Unlock()
	p.wake()
}

// arm sets the fetch cursor to offset and lets the fetcher fetch again,
// dropping anything fetched before.
func (p *part) arm(offset int64) {
	p.mu.Lock()
	if !p.stopped {
		p.gen++
		p.fetchOffset = offset
		p.dropLocked()
		p.ready = true
	}
	p.mu.Unlock()
	p.t.kickFetchers()
}

// disarm stops fetching until the next arm.
func (p *part) disarm() {
	p.mu.Lock()
	p.ready = false
	p.gen++
	p.dropLocked()
	p.mu.Unlock()
}

func (p *part) wake() {
	select {
	case p.notify <- struct{}{}:
	default:
	}
}

// dropLocked discards the queued chunks and events (not the ones the worker
// holds: consumed accounts for those). Callers hold p.mu.
func (p *part) dropLocked() {
	n := 0
	for _, c := range p.queue {
		n += c.bytes
	}
	p.queued -= n
	p.t.buffered.Add(-int64(n))
	p.queue, p.events = nil, nil
}

// take removes and returns everything queued for the worker.
func (p *part) take() ([]chunk, []fetchEvent) {
	p.mu.Lock()
	defer p.mu.Unlock()
	q, ev := p.queue, p.events
	p.queue, p.events = nil, nil
	return q, ev
}

// consumed gives back buffer room after the worker handled n bytes.
func (p *part) consumed(n int) {
	p.mu.Lock()
	p.queued -= n
	p.mu.Unlock()
	p.t.buffered.Add(-int64(n))
	p.t.kickFetchers()
}

// lag computes the partition's lag from the last figures seen.
func (p *part) lag() Lag {
	hw, end := p.srcHW.Load(), p.destEnd.Load()
	l := Lag{Partition: p.id, LastSourceFetchOffset: hw, MirrorEnd: end}
	if hw >= 0 && end >= 0 && hw > end {
		l.Lag = hw - end
		l.OldestUncopiedMs = p.oldestMs(end)
	}
	return l
}
