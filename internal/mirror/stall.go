package mirror

import (
	"fmt"
	"time"
)

// A partition that cannot make progress says so. A worker that restarts on
// every attempt (a refused sequence, a broker error that never heals) keeps
// its mirror ACTIVE while its lag grows; the status would lie. The runner
// watches every copying partition once a second, in memory: one that has
// offsets to copy and has copied none for Config.StallTimeout is reported
// through Hooks.Stalled with the worker's last error, and through
// Hooks.Recovered as soon as it moves again (or stops being copied).

// watchStalls checks the copying partitions of ts for progress.
func (r *Runner) watchStalls(ts []*topicRun, now time.Time) {
	r.mu.Lock()
	clear(r.watched)
	ps := r.watched[:0]
	for _, t := range ts {
		for _, p := range t.parts {
			if p.running {
				ps = append(ps, p)
			}
		}
	}
	r.watched = ps // kept for the next tick (only the lag loop calls this)
	r.mu.Unlock()
	for _, p := range ps {
		t := p.t
		end, hw := p.destEnd.Load(), p.srcHW.Load()
		if end != p.watchEnd || (hw >= 0 && end >= hw) {
			// Moved, or nothing to copy.
			p.watchEnd = end
			p.progressAt.Store(now.UnixNano())
			if p.stalled.CompareAndSwap(true, false) {
				r.report(func() { r.cfg.Hooks.Recovered(t.spec.Topic, p.id) })
			}
			continue
		}
		since := time.Unix(0, p.progressAt.Load())
		if now.Sub(since) >= r.cfg.StallTimeout/2 && p.nudgedAt.Load() < since.UnixNano() {
			// Halfway: hand the partition to its fetcher afresh, with
			// a new fetch session, in case the fetches themselves are
			// what stopped.
			p.nudgedAt.Store(now.UnixNano())
			r.nudge(p)
		}
		if now.Sub(since) < r.cfg.StallTimeout || !p.stalled.CompareAndSwap(false, true) {
			continue
		}
		reason := fmt.Sprintf("partition %d has copied nothing for %s", p.id, now.Sub(since).Round(time.Second))
		if hw >= 0 {
			reason += fmt.Sprintf(" with %d offsets to copy (mirror at %d, source at %d)", hw-max(end, 0), end, hw)
		} else {
			reason += " and has fetched nothing from the source"
		}
		if e, ok := p.lastErr.Load().(string); ok && e != "" {
			reason += "; last error: " + e
		}
		r.log.Warn("mirror partition stalled", "topic", t.spec.Topic, "partition", p.id, "reason", reason)
		r.report(func() { r.cfg.Hooks.Stalled(t.spec.Topic, p.id, reason) })
	}
}

// clearStalls reports the stalled partitions of a topic that stopped
// copying as recovered: a paused mirror is not stuck.
func (r *Runner) clearStalls(t *topicRun) {
	for _, p := range t.parts {
		if p.stalled.CompareAndSwap(true, false) {
			r.report(func() { r.cfg.Hooks.Recovered(t.spec.Topic, p.id) })
		}
	}
}

// report calls a hook off the runner's loops: hooks write state.
func (r *Runner) report(fn func()) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
}

// nudge takes p out of its fetcher, makes that fetcher open a new fetch
// session, and lets the next metadata probe give p to its leader's fetcher
// again: a partition that no fetch answers any more (a session the broker
// and the runner see differently, a fetcher that lost it) is fetched anew.
func (r *Runner) nudge(p *part) {
	r.mu.Lock()
	if f, ok := r.fetchers[int32(p.fetcherID.Load())]; ok {
		f.remove(p)
		f.resetSession.Store(true)
	}
	p.fetcherID.Store(-1)
	r.mu.Unlock()
	r.log.Info("mirror partition copies nothing: fetching it afresh", "topic", p.t.spec.Topic, "partition", p.id, "mirror_end", p.destEnd.Load(), "source_end", p.srcHW.Load())
	r.kickMeta()
}
