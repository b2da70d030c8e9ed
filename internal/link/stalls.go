package link

import (
	"context"
	"fmt"
	"sort"
	"time"
)

// Stalled partitions. The runner reports a partition that has offsets to
// copy and has copied none for a while (mirror.Config.StallTimeout), and
// reports it again when it moves. A stall is a condition, not a state of
// the mirror: it is kept in the mirror's record (so that every instance
// shows it, whichever copies the partition), shown while it lasts (the mirror's
// mirror_topic_error is UNKNOWN, its partitions count as IN_ERROR, and the
// link's MirrorTopicCopy task is IN_ERROR with the reason), and recorded
// once in the mirror's state transition errors so that it stays visible
// after it healed.

// TaskMirrorTopicCopy is the link task that reports the copy of its mirror
// topics.
const TaskMirrorTopicCopy = "MirrorTopicCopy"

func (h *hooks) applyStalled(topic string, partition int32, reason string) {
	ctx, cancel := context.WithTimeout(h.m.bgCtx, 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Link != h.link || mir.Stalls[partition] == reason {
			return errNoChange
		}
		if mir.Stalls == nil {
			mir.Stalls = map[int32]string{}
		}
		if _, was := mir.Stalls[partition]; !was {
			mir.addTransitionError("PARTITION_STALLED", reason, h.m.nowMs())
		}
		mir.Stalls[partition] = reason
		return nil
	})
	if err != nil {
		h.m.log.Error("record stalled partition", "topic", topic, "partition", partition, "err", err)
	}
}

func (h *hooks) applyRecovered(topic string, partition int32) {
	ctx, cancel := context.WithTimeout(h.m.bgCtx, 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if _, ok := mir.Stalls[partition]; !ok || mir.Link != h.link {
			return errNoChange
		}
		delete(mir.Stalls, partition)
		if len(mir.Stalls) == 0 {
			mir.Stalls = nil
		}
		return nil
	})
	if err != nil {
		h.m.log.Error("record partition copying again", "topic", topic, "partition", partition, "err", err)
		return
	}
	h.m.log.Info("mirror partition copies again", "link", h.link, "topic", topic, "partition", partition)
}

// copyTask is the MirrorTopicCopy task of a link in state (the link's
// state, as its other tasks see it): IN_ERROR while a partition of its
// mirrors is stalled.
func (m *Manager) copyTask(linkName, state string) Task {
	t := Task{Name: TaskMirrorTopicCopy, State: "ACTIVE", Errors: []TaskError{}}
	switch state {
	case "PAUSED":
		t.State = "LINK_PAUSED"
		return t
	case "UNAVAILABLE":
		t.State = "LINK_UNAVAILABLE"
		return t
	case "FAILED":
		t.State = "LINK_FAILED"
		return t
	}
	for _, mir := range m.mirrorsOf(linkName) {
		st := mir.Stalls
		ps := make([]int32, 0, len(st))
		for p := range st {
			ps = append(ps, p)
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
		for _, p := range ps {
			t.State = "IN_ERROR"
			t.Errors = append(t.Errors, TaskError{Code: "INTERNAL_ERROR", Message: fmt.Sprintf("mirror topic '%s': %s", mir.Topic, st[p])})
		}
	}
	return t
}
