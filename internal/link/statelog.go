package link

import (
	"context"
	"log/slog"
	"sync"
)

// State changes in the log. Every change of a mirror's stored status is
// one line at info level, from the instance that wrote it
// (putMirrorLocked; the instances that apply it from the state topic log
// it at debug level), with the link, the topic, the states before and
// after and the reason: the operation that asked for it (withReason), or
// what the runner reported (a failure's code and message). A link's state
// (ACTIVE, PAUSED, UNAVAILABLE, FAILED) is one line per change too; the
// statuses its mirrors take from it (LINK_PAUSED, SOURCE_UNAVAILABLE,
// LINK_FAILED) are not logged per mirror: the link's line says it.

type reasonKey struct{}

// withReason names, for the state changes ctx's operation makes, why they
// happen (for example the REST operation "mirrors:pause").
func withReason(ctx context.Context, reason string) context.Context {
	return context.WithValue(ctx, reasonKey{}, reason)
}

func reasonOf(ctx context.Context) string {
	r, _ := ctx.Value(reasonKey{}).(string)
	return r
}

// logTransition logs a change of a mirror's stored status; prev is nil for
// a new mirror.
func (m *Manager) logTransition(ctx context.Context, prev, next *Mirror) {
	m.logTransitionAt(ctx, slog.LevelInfo, prev, next)
}

// logTransitionAt is logTransition at level (at least; a failure is a
// warning): the instances that follow a change another one made log it
// at debug level, so that one change is one line at info level.
func (m *Manager) logTransitionAt(ctx context.Context, level slog.Level, prev, next *Mirror) {
	from := Status("")
	if prev != nil {
		from = prev.Status
	}
	if from == next.Status {
		return
	}
	reason := reasonOf(ctx)
	if reason == "" {
		reason = defaultReason(prev, next)
	}
	args := []any{"link", next.Link, "topic", next.Topic, "from", string(from), "to", string(next.Status), "reason", reason}
	if next.Status == StatusFailed && level >= slog.LevelInfo {
		level = slog.LevelWarn
		args = append(args, "error", next.TopicError)
		if n := len(next.TransitionErrors); n > 0 {
			args = append(args, "cause", next.TransitionErrors[n-1].Message)
		}
	}
	m.log.Log(ctx, level, "mirror state changed", args...)
}

// defaultReason says why a mirror changed when no operation named it.
func defaultReason(prev, next *Mirror) string {
	switch {
	case prev == nil:
		return "created"
	case next.Status == StatusFailed:
		return "the copy cannot go on faithfully"
	case prev.Status == StatusPendingMirror && next.Status == StatusActive:
		return "every partition is set up"
	case prev.Status == StatusPendingRestore && next.Status == StatusActive:
		return "the restore caught up"
	}
	return "state record written"
}

// linkStates remembers the state each link last had in the log.
type linkStates struct {
	mu sync.Mutex
	by map[string]string
}

// noteLinkState logs a link whose state changed since it was last noted.
func (m *Manager) noteLinkState(name string) {
	v, err := m.Link(name, false)
	m.linkStates.mu.Lock()
	if m.linkStates.by == nil {
		m.linkStates.by = map[string]string{}
	}
	prev, known := m.linkStates.by[name]
	if err != nil {
		delete(m.linkStates.by, name) // deleted: the audit log has it
		m.linkStates.mu.Unlock()
		return
	}
	m.linkStates.by[name] = v.State
	m.linkStates.mu.Unlock()
	if known && prev == v.State {
		return
	}
	args := []any{"link", name, "from", prev, "to", v.State, "reason", m.linkReason(name, prev, v)}
	level := slog.LevelInfo
	if v.State == "UNAVAILABLE" || v.State == "FAILED" {
		level = slog.LevelWarn
		args = append(args, "error", v.Error)
	}
	m.log.Log(context.Background(), level, "link state changed", args...)
}

// linkReason says why a link is in the state of v.
func (m *Manager) linkReason(name, prev string, v LinkView) string {
	m.mu.RLock()
	run := m.runs[name]
	m.mu.RUnlock()
	switch v.State {
	case "FAILED":
		if run != nil && run.buildErr != nil {
			return "the source client cannot be built: " + run.buildErr.Error()
		}
	case "UNAVAILABLE":
		if run != nil {
			if _, err := run.availability(); err != nil {
				return "the source cluster does not answer: " + err.Error()
			}
		}
		return "the source cluster does not answer"
	case "PAUSED":
		return "cluster.link.paused=true"
	case "ACTIVE":
		switch prev {
		case "":
			return "started"
		case "PAUSED":
			return "cluster.link.paused=false"
		case "UNAVAILABLE":
			return "the source cluster answers again"
		}
	}
	return "state changed"
}
