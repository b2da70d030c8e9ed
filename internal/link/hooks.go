package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/mirror"
)

// What a runner reports. On the active instance a report is applied here;
// on another instance it is sent to the active one as a command (see
// commands.go), which applies it: the mirror records have one writer.

// hookKind is the command kind of runner reports.
const hookKind = "hook"

// hookCall is one report, as sent to the active instance.
type hookCall struct {
	Op         string                    `json:"op"`
	Link       string                    `json:"link"`
	Topic      string                    `json:"topic"`
	Partition  int32                     `json:"partition,omitempty"`
	Partitions []int32                   `json:"partitions,omitempty"`
	Code       string                    `json:"code,omitempty"`
	Message    string                    `json:"message,omitempty"`
	Target     int64                     `json:"target,omitempty"`
	From       int64                     `json:"from,omitempty"`
	To         int64                     `json:"to,omitempty"`
	Count      int32                     `json:"count,omitempty"`
	Writers    map[int32]mirror.WriterID `json:"writers,omitempty"`
	Halt       string                    `json:"halt,omitempty"`
}

// Report operations.
const (
	opStarted   = "started"
	opFailed    = "failed"
	opAlign     = "align"
	opWriters   = "writers"
	opGrew      = "grew"
	opSkipped   = "skipped"
	opStalled   = "stalled"
	opRecovered = "recovered"
	opHalted    = "halted"
)

// report sends c to the active instance and returns its reply. Reports
// nobody waits for are retried until they are taken or the Manager
// closes: a lost one would leave a mirror PENDING_MIRROR, or a failure
// unrecorded.
func (h *hooks) report(ctx context.Context, c hookCall) ([]byte, error) {
	c.Link = h.link
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	for {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := h.m.Request(rctx, hookKind, b)
		cancel()
		var ce *CommandError
		if err == nil || errors.As(err, &ce) || ctx.Err() != nil {
			return out, err
		}
		h.m.log.Warn("report to the active instance", "op", c.Op, "topic", c.Topic, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// background runs a report nobody waits for.
func (h *hooks) background(c hookCall) {
	if _, err := h.report(h.m.bgCtx, c); err != nil && h.m.bgCtx.Err() == nil {
		h.m.log.Error("report to the active instance", "op", c.Op, "topic", c.Topic, "err", err)
	}
}

// handleHook applies a report on the active instance.
func (m *Manager) handleHook(ctx context.Context, body []byte) ([]byte, error) {
	var c hookCall
	if err := json.Unmarshal(body, &c); err != nil {
		return nil, err
	}
	m.mu.RLock()
	l, ok := m.links[c.Link]
	run := m.runs[c.Link]
	m.mu.RUnlock()
	if !ok {
		return nil, linkNotFound(c.Link)
	}
	h := &hooks{m: m, link: c.Link, run: run, cfg: l.Configs}
	switch c.Op {
	case opStarted:
		h.applyStarted(c.Topic, c.Partitions)
	case opFailed:
		h.applyFailed(c.Topic, c.Code, c.Message)
	case opAlign:
		return nil, h.applySaveAlign(ctx, c.Topic, c.Partition, c.Target)
	case opWriters:
		ids, err := h.applySaveWriters(ctx, c.Topic, c.Writers)
		if err != nil {
			return nil, err
		}
		return json.Marshal(ids)
	case opGrew:
		h.applyPartitionsGrew(c.Topic, c.Count)
	case opSkipped:
		h.applySkipped(c.Topic, c.Partition, c.From, c.To)
	case opStalled:
		h.applyStalled(c.Topic, c.Partition, c.Message)
	case opRecovered:
		h.applyRecovered(c.Topic, c.Partition)
	case opHalted:
		m.halts.ack(c.Halt, c.Partitions)
	default:
		return nil, fmt.Errorf("unknown report %q", c.Op)
	}
	return nil, nil
}

// Started implements mirror.Hooks.
func (h *hooks) Started(topic string, partitions []int32) {
	if h.m.Leading() {
		h.applyStarted(topic, partitions)
		return
	}
	h.background(hookCall{Op: opStarted, Topic: topic, Partitions: partitions})
}

// Failed implements mirror.Hooks.
func (h *hooks) Failed(topic, code, msg string) {
	if h.m.Leading() {
		h.applyFailed(topic, code, msg)
		return
	}
	h.background(hookCall{Op: opFailed, Topic: topic, Code: code, Message: msg})
}

// SaveAlign implements mirror.Hooks.
func (h *hooks) SaveAlign(ctx context.Context, topic string, partition int32, target int64) error {
	if h.m.Leading() {
		return h.applySaveAlign(ctx, topic, partition, target)
	}
	_, err := h.report(ctx, hookCall{Op: opAlign, Topic: topic, Partition: partition, Target: target})
	return err
}

// SaveWriters implements mirror.Hooks.
func (h *hooks) SaveWriters(ctx context.Context, topic string, ids map[int32]mirror.WriterID) (map[int32]mirror.WriterID, error) {
	if h.m.Leading() {
		return h.applySaveWriters(ctx, topic, ids)
	}
	b, err := h.report(ctx, hookCall{Op: opWriters, Topic: topic, Writers: ids})
	if err != nil {
		return nil, err
	}
	var out map[int32]mirror.WriterID
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("writer identities from the active instance: %w", err)
	}
	return out, nil
}

// PartitionsGrew implements mirror.Hooks. Only the active instance acts
// on it: it probes every topic too.
func (h *hooks) PartitionsGrew(topic string, partitions int32) {
	if h.m.Leading() {
		h.applyPartitionsGrew(topic, partitions)
	}
}

// Skipped implements mirror.Hooks.
func (h *hooks) Skipped(topic string, partition int32, from, to int64) {
	if h.m.Leading() {
		h.applySkipped(topic, partition, from, to)
		return
	}
	h.background(hookCall{Op: opSkipped, Topic: topic, Partition: partition, From: from, To: to})
}

// Stalled implements mirror.Hooks.
func (h *hooks) Stalled(topic string, partition int32, reason string) {
	if h.m.Leading() {
		h.applyStalled(topic, partition, reason)
		return
	}
	h.background(hookCall{Op: opStalled, Topic: topic, Partition: partition, Message: reason})
}

// Recovered implements mirror.Hooks.
func (h *hooks) Recovered(topic string, partition int32) {
	if h.m.Leading() {
		h.applyRecovered(topic, partition)
		return
	}
	h.background(hookCall{Op: opRecovered, Topic: topic, Partition: partition})
}

// hooks receives a runner's reports for one link.
type hooks struct {
	m    *Manager
	link string
	run  *linkRun
	cfg  linkconfig.Set
}

func (h *hooks) applyStarted(topic string, partitions []int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if !mir.Fresh || mir.Link != h.link {
			return errNoChange
		}
		changed := false
		for _, p := range partitions {
			if p >= 0 && p < mir.Partitions && !slices.Contains(mir.StartedParts, p) {
				mir.StartedParts = append(mir.StartedParts, p)
				changed = true
			}
		}
		if int32(len(mir.StartedParts)) < mir.Partitions {
			if !changed {
				return errNoChange
			}
			slices.Sort(mir.StartedParts)
			return nil
		}
		mir.Fresh = false
		mir.StartedParts = nil
		// A restore stays PENDING_RESTORE until it has copied everything
		// (finishRestores).
		if mir.Status == StatusPendingMirror {
			mir.Status = StatusActive
			mir.StateTimeMs = h.m.nowMs()
		}
		return nil
	})
	if err != nil {
		h.m.log.Error("record mirror start", "topic", topic, "err", err)
	}
}

func (h *hooks) applyFailed(topic, code, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Link != h.link || mir.Status == StatusStopped || mir.Status == StatusFailed {
			return errNoChange
		}
		now := h.m.nowMs()
		mir.Status = StatusFailed
		mir.TopicError = code
		mir.StateTimeMs = now
		mir.addTransitionError(code, msg, now)
		return nil
	})
	if err != nil {
		h.m.log.Error("record mirror failure", "topic", topic, "err", err)
	}
}

func (h *hooks) applySaveAlign(ctx context.Context, topic string, partition int32, target int64) error {
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if target < 0 {
			if _, ok := mir.Align[partition]; !ok {
				return errNoChange
			}
			delete(mir.Align, partition)
			return nil
		}
		if mir.Align == nil {
			mir.Align = map[int32]int64{}
		}
		mir.Align[partition] = target
		return nil
	})
	return err
}

func (h *hooks) applySaveWriters(ctx context.Context, topic string, ids map[int32]mirror.WriterID) (map[int32]mirror.WriterID, error) {
	out := make(map[int32]mirror.WriterID, len(ids))
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Link != h.link {
			return errorf(ErrMirrorNotFound, "Mirror topic '%s' does not exist.", topic)
		}
		if mir.Writers == nil {
			mir.Writers = map[int32]mirror.WriterID{}
		}
		changed := false
		for p, id := range ids {
			if cur, ok := mir.Writers[p]; ok && cur.ID == id.ID && cur.Epoch >= id.Epoch {
				out[p] = cur
				continue
			} else if ok && cur.ID != id.ID {
				out[p] = cur // allocated before: keep the one every owner uses
				continue
			}
			mir.Writers[p] = id
			out[p] = id
			changed = true
		}
		if !changed {
			return errNoChange
		}
		return nil
	})
	return out, err
}

func (h *hooks) applyPartitionsGrew(topic string, partitions int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.m.growMirror(ctx, h.link, topic, partitions); err != nil {
		h.m.log.Warn("follow source partition growth", "topic", topic, "partitions", partitions, "err", err)
	}
}

func (h *hooks) applySkipped(topic string, partition int32, from, to int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		mir.SkippedOffsets += to - from
		mir.addTransitionError("SOURCE_RECORDS_EXPIRED", fmt.Sprintf("partition %d: the source deleted offsets %d to %d (retention or DeleteRecords) before they were copied; the mirror continues from %d (%d offsets lost to the mirror so far)", partition, from, to-1, to, mir.SkippedOffsets), h.m.nowMs())
		return nil
	})
	if err != nil {
		h.m.log.Error("record skipped offsets", "topic", topic, "err", err)
	}
}
