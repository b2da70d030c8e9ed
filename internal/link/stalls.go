package link

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Stalled partitions. The runner reports a partition that has offsets to
// copy and has copied none for a while (mirror.Config.StallTimeout), and
// reports it again when it moves. A stall is a condition, not a state of
// the mirror: it is kept in memory, shown while it lasts (the mirror's
// mirror_topic_error is UNKNOWN, its partitions count as IN_ERROR, and the
// link's MirrorTopicCopy task is IN_ERROR with the reason), and recorded
// once in the mirror's state transition errors so that it stays visible
// after it healed.

// TaskMirrorTopicCopy is the link task that reports the copy of its mirror
// topics.
const TaskMirrorTopicCopy = "MirrorTopicCopy"

// stalls holds the stalled partitions by mirror topic.
type stalls struct {
	mu sync.Mutex
	by map[string]map[int32]string
}

func (s *stalls) set(topic string, p int32, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]map[int32]string{}
	}
	if s.by[topic] == nil {
		s.by[topic] = map[int32]string{}
	}
	s.by[topic][p] = reason
}

func (s *stalls) clear(topic string, p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.by[topic], p)
	if len(s.by[topic]) == 0 {
		delete(s.by, topic)
	}
}

// of returns a topic's stalled partitions and their reasons, by partition.
func (s *stalls) of(topic string) map[int32]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int32]string, len(s.by[topic]))
	for p, r := range s.by[topic] {
		out[p] = r
	}
	return out
}

func (h *hooks) Stalled(topic string, partition int32, reason string) {
	h.m.stalls.set(topic, partition, reason)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Link != h.link {
			return errNoChange
		}
		mir.addTransitionError("PARTITION_STALLED", reason, h.m.nowMs())
		return nil
	})
	if err != nil {
		h.m.log.Error("record stalled partition", "topic", topic, "partition", partition, "err", err)
	}
}

func (h *hooks) Recovered(topic string, partition int32) {
	h.m.stalls.clear(topic, partition)
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
		st := m.stalls.of(mir.Topic)
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
