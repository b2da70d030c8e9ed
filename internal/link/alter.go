package link

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/mirror"
)

// Op is an alter-mirrors operation.
type Op string

// Alter-mirrors operations, named as in the REST paths (mirrors:<op>).
const (
	OpPause  Op = "pause"
	OpResume Op = "resume"
)

// Selection picks the mirror topics an operation applies to: either Names
// or Pattern (a regular expression that must match the whole name).
type Selection struct {
	Names      []string
	HasNames   bool
	Pattern    string
	HasPattern bool
}

// AlterResult is one topic's outcome of an alter-mirrors operation. A zero
// ErrorCode means the topic took the operation.
type AlterResult struct {
	Topic        string
	ErrorCode    int
	ErrorMessage string
	Lags         []mirror.Lag
}

// transition is what an operation does to one mirror: the new stored status,
// or a refusal. unchanged is set when the mirror is already there.
type transition struct {
	to        Status
	unchanged bool
	refusal   string
}

// AlterMirrors applies op to the selected mirror topics of a link. Topics
// that cannot take the operation get their own error in the result and are
// left unchanged; the others change. With validateOnly nothing changes.
func (m *Manager) AlterMirrors(ctx context.Context, linkName string, op Op, sel Selection, validateOnly bool) ([]AlterResult, error) {
	if sel.HasNames == sel.HasPattern {
		return nil, errorf(ErrInvalid, "Give exactly one of mirror_topic_names and mirror_topic_name_pattern.")
	}
	var re *regexp.Regexp
	if sel.HasPattern {
		var err error
		if re, err = regexp.Compile("^(?:" + sel.Pattern + ")$"); err != nil {
			return nil, errorf(ErrInvalid, "Invalid mirror_topic_name_pattern '%s': %v", sel.Pattern, err)
		}
	}
	if sel.HasNames && len(sel.Names) == 0 {
		return nil, errorf(ErrInvalid, "mirror_topic_names must name at least one topic.")
	}
	m.opMu.Lock()
	defer m.opMu.Unlock()
	m.mu.RLock()
	_, ok := m.links[linkName]
	m.mu.RUnlock()
	if !ok {
		return nil, errorf(ErrLinkNotFound, "Cluster link '%s' does not exist.", linkName)
	}

	names := sel.Names
	if re != nil {
		names = nil
		for _, mir := range m.mirrorsOf(linkName) {
			if re.MatchString(mir.Topic) {
				names = append(names, mir.Topic)
			}
		}
	}
	names = dedupe(names)
	results := make([]AlterResult, len(names))
	var unknown []string
	var changed []string
	for i, name := range names {
		results[i] = AlterResult{Topic: name, Lags: []mirror.Lag{}}
		m.mu.RLock()
		mir, ok := m.mirrors[name]
		m.mu.RUnlock()
		if !ok {
			unknown = append(unknown, name)
			continue
		}
		if mir.Link != linkName {
			results[i].ErrorCode = http.StatusBadRequest
			results[i].ErrorMessage = fmt.Sprintf("Topic '%s' is mirrored by cluster link '%s', not '%s'", name, mir.Link, linkName)
			continue
		}
		tr := decide(op, mir)
		if tr.refusal != "" {
			results[i].ErrorCode = http.StatusBadRequest
			results[i].ErrorMessage = tr.refusal
			continue
		}
		if validateOnly || tr.unchanged {
			continue
		}
		_, err := m.updateMirror(ctx, name, func(next *Mirror) error {
			if next.Status == tr.to {
				return errNoChange
			}
			next.Status = tr.to
			next.StateTimeMs = m.nowMs()
			return nil
		})
		if err != nil {
			results[i].ErrorCode = http.StatusInternalServerError
			results[i].ErrorMessage = fmt.Sprintf("Cannot record the new state of topic '%s': %v", name, err)
			continue
		}
		changed = append(changed, name)
	}
	if len(changed) > 0 {
		// Stops are synchronous: after this, a paused mirror gets nothing.
		m.reconcile(linkName)
	}
	m.markUnknown(ctx, results, unknown)

	m.mu.RLock()
	run := m.runs[linkName]
	m.mu.RUnlock()
	if run != nil && run.runner != nil {
		run.runner.RefreshLags(ctx, names...)
	}
	for i := range results {
		if results[i].ErrorCode != 0 && results[i].ErrorCode != http.StatusBadRequest {
			continue
		}
		m.mu.RLock()
		mir, ok := m.mirrors[results[i].Topic]
		m.mu.RUnlock()
		if ok && mir.Link == linkName {
			results[i].Lags = m.lags(mir)
		}
	}
	return results, nil
}

// decide says what op does to mir.
func decide(op Op, mir *Mirror) transition {
	if mir.Status == StatusStopped {
		return transition{refusal: fmt.Sprintf("Topic '%s' has already stopped its mirror from '%s'", mir.Topic, mir.Link)}
	}
	if mir.Status == StatusPendingStopped {
		return transition{refusal: fmt.Sprintf("Topic '%s' is already stopping its mirror from '%s'", mir.Topic, mir.Link)}
	}
	switch op {
	case OpPause:
		switch mir.Status {
		case StatusPaused:
			return transition{to: StatusPaused, unchanged: true}
		case StatusActive, StatusPendingMirror:
			return transition{to: StatusPaused}
		case StatusFailed:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be paused: its mirror has failed (%s)", mir.Topic, mir.TopicError)}
		}
	case OpResume:
		switch mir.Status {
		case StatusActive, StatusPendingMirror:
			return transition{to: mir.Status, unchanged: true}
		case StatusPaused:
			if mir.Fresh {
				return transition{to: StatusPendingMirror}
			}
			return transition{to: StatusActive}
		case StatusFailed:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be resumed: its mirror has failed (%s)", mir.Topic, mir.TopicError)}
		}
	}
	return transition{refusal: fmt.Sprintf("Topic '%s' cannot take '%s' in state %s", mir.Topic, op, mir.Status)}
}

// markUnknown fills the results of names that are not mirror topics: a
// destination topic that exists is "not mirrored", one that does not exist
// is not found.
func (m *Manager) markUnknown(ctx context.Context, results []AlterResult, unknown []string) {
	if len(unknown) == 0 {
		return
	}
	exists := map[string]bool{}
	if td, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, unknown...); err == nil {
		for name, d := range td {
			exists[name] = d.Err == nil
		}
	}
	for i := range results {
		name := results[i].Topic
		if !slices.Contains(unknown, name) {
			continue
		}
		if exists[name] {
			results[i].ErrorCode = http.StatusBadRequest
			results[i].ErrorMessage = fmt.Sprintf("Topic '%s' is not mirrored", name)
		} else {
			results[i].ErrorCode = http.StatusNotFound
			results[i].ErrorMessage = fmt.Sprintf("Topic '%s' not found", name)
		}
	}
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
