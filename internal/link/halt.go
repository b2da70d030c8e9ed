package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
)

// Halting a mirror on every instance. An operation that ends a mirror's
// copy (promote, failover, reverse, a forced link delete) must know that
// no instance copies it any more before it goes on: the topic is about to
// take other writes. The partitions this instance owns stop here at once.
// For the others, the mirror's record is marked halted (Mirror.Halt, a
// fresh id): every instance stops copying a halted mirror when it reads
// the record, and reports the partitions it owns as stopped (a "halted"
// report). The operation waits until each partition not owned here was
// reported by its owner under that id. An instance that died is replaced
// in the group by the owners that take its partitions over, which report
// them in turn; one that froze past its session has given its partitions
// up, and its late writes are refused by the broker (the fence).

// halts tracks, on the active instance, the partitions reported stopped
// under each halt id; and, on every instance, the reports already sent.
type halts struct {
	mu    sync.Mutex
	acked map[string]map[int32]bool
	sent  map[string]map[int32]bool
	wake  chan struct{}
}

func (h *halts) ack(id string, ps []int32) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.acked == nil {
		h.acked = map[string]map[int32]bool{}
	}
	if h.acked[id] == nil {
		h.acked[id] = map[int32]bool{}
	}
	for _, p := range ps {
		h.acked[id][p] = true
	}
	if h.wake != nil {
		close(h.wake)
		h.wake = nil
	}
}

// waitAcks waits until every partition in need was reported under id.
func (h *halts) waitAcks(ctx context.Context, id string, need []int32) error {
	for {
		h.mu.Lock()
		missing := 0
		for _, p := range need {
			if !h.acked[id][p] {
				missing++
			}
		}
		if h.wake == nil {
			h.wake = make(chan struct{})
		}
		wake := h.wake
		h.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d partitions copied by other instances were not reported stopped: %w", missing, ctx.Err())
		case <-wake:
		}
	}
}

// forget drops what is known of a halt id.
func (h *halts) forget(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.acked, id)
	delete(h.sent, id)
}

// unsent returns the partitions of ps not yet reported under id, and
// marks them sent.
func (h *halts) unsent(id string, ps []int32) []int32 {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.sent == nil {
		h.sent = map[string]map[int32]bool{}
	}
	if h.sent[id] == nil {
		h.sent[id] = map[int32]bool{}
	}
	var out []int32
	for _, p := range ps {
		if !h.sent[id][p] {
			h.sent[id][p] = true
			out = append(out, p)
		}
	}
	return out
}

// haltCopy stops the copy of topics on every instance. It returns the
// topics whose copy could not be confirmed stopped, with why; those stay
// halted until the caller moves them on or back (setting Halt to "").
func (m *Manager) haltCopy(ctx context.Context, linkName string, run *linkRun, topics []string) map[string]error {
	if run != nil && run.runner != nil {
		run.runner.Stop(topics...)
	}
	failed := map[string]error{}
	type waiting struct {
		topic, id string
		need      []int32
	}
	var wait []waiting
	for _, t := range topics {
		m.mu.RLock()
		mir := m.mirrors[t]
		m.mu.RUnlock()
		if mir == nil {
			continue
		}
		var need []int32
		for p := range mir.Partitions {
			if !m.owns(t, p) {
				need = append(need, p)
			}
		}
		if len(need) == 0 {
			continue // all copied here, and stopped above
		}
		id := newHaltID()
		if _, err := m.updateMirror(ctx, t, func(next *Mirror) error {
			next.Halt = id
			return nil
		}); err != nil {
			failed[t] = err
			continue
		}
		wait = append(wait, waiting{t, id, need})
	}
	for _, w := range wait {
		if err := m.halts.waitAcks(ctx, w.id, w.need); err != nil {
			failed[w.topic] = err
		}
		m.halts.forget(w.id)
	}
	return failed
}

// unhalt lets a halted mirror copy again.
func (m *Manager) unhalt(ctx context.Context, topic string) error {
	_, err := m.updateMirror(ctx, topic, func(next *Mirror) error {
		if next.Halt == "" {
			return errNoChange
		}
		next.Halt = ""
		return nil
	})
	return err
}

// reportHalted tells the active instance which owned partitions of the
// link's halted mirrors have stopped here. The runner has been Set.
func (m *Manager) reportHalted(linkName string, run *linkRun) {
	m.reportHaltedOf(linkName, run, m.mirrorsOf(linkName))
}

// reportHaltedOf is reportHalted for some mirrors of the link.
func (m *Manager) reportHaltedOf(linkName string, run *linkRun, mirs []*Mirror) {
	for _, mir := range mirs {
		if mir.Halt == "" {
			continue
		}
		var owned []int32
		for p := range mir.Partitions {
			if m.owns(mir.Topic, p) {
				owned = append(owned, p)
			}
		}
		ps := m.halts.unsent(mir.Halt, owned)
		if len(ps) == 0 {
			continue
		}
		h := &hooks{m: m, link: linkName, run: run}
		c := hookCall{Op: opHalted, Topic: mir.Topic, Partitions: ps, Halt: mir.Halt}
		m.bg.Add(1)
		go func() {
			defer m.bg.Done()
			h.background(c)
		}()
	}
}

func newHaltID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
