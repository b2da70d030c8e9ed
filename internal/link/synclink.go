package link

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/store"
)

// syncLink is a link as its sync tasks see it (linksync.Link).
type syncLink struct {
	m    *Manager
	name string
	run  *linkRun
}

var _ linksync.Link = (*syncLink)(nil)

func (s *syncLink) Name() string { return s.name }

// Runs implements linksync.Link: the active instance runs the tasks.
func (s *syncLink) Runs() bool { return s.m.Leading() }

// Results implements linksync.Link: the active instance records its tasks'
// errors for the other instances to show.
func (s *syncLink) Results(r map[string][]linksync.TaskError) {
	if !s.m.Leading() {
		return
	}
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(s.m.bgCtx, 30*time.Second)
	defer cancel()
	if _, err := s.m.cfg.Store.Put(ctx, tasksKeyPrefix+s.name, b); err != nil {
		s.m.log.Warn("record the link's task results", "link", s.name, "err", err)
	}
}

// tasksKeyPrefix keys the link task results the active instance records.
const tasksKeyPrefix = "tasks/"

// applyTasksRecord brings a link's task results recorded by the active
// instance into memory; it reports whether key was such a record.
func (m *Manager) applyTasksRecord(key string, e store.Entry) bool {
	name, ok := strings.CutPrefix(key, tasksKeyPrefix)
	if !ok {
		return false
	}
	var r map[string][]linksync.TaskError
	if e.Value != nil && json.Unmarshal(e.Value, &r) != nil {
		return true
	}
	m.mu.Lock()
	if m.taskResults == nil {
		m.taskResults = map[string]map[string][]linksync.TaskError{}
	}
	m.taskResults[name] = r
	run := m.runs[name]
	m.mu.Unlock()
	if run != nil && run.sync != nil && !m.Leading() {
		run.sync.SetResults(r)
	}
	return true
}

func (s *syncLink) Configs() linkconfig.Set {
	l, _, err := s.m.linkAndRun(s.name)
	if err != nil {
		return linkconfig.Set{}
	}
	return l.Configs
}

func (s *syncLink) State() string {
	v, err := s.m.Link(s.name, false)
	if err != nil {
		return "FAILED"
	}
	return v.State
}

func (s *syncLink) Source() *kgo.Client { return s.run.src }

func (s *syncLink) Dest() *kgo.Client { return s.m.cfg.Dest }

func (s *syncLink) Mirrors() []linksync.Mirror {
	var out []linksync.Mirror
	for _, mir := range s.m.mirrorsOf(s.name) {
		out = append(out, linksync.Mirror{Topic: mir.Topic, SourceTopic: mir.SourceTopic, Partitions: mir.Partitions, Stopped: mir.Status == StatusStopped})
	}
	return out
}

func (s *syncLink) CreateMirror(ctx context.Context, sourceTopic string) error {
	unlock, err := s.m.lockLink(ctx, s.name)
	if err != nil {
		return err
	}
	defer unlock()
	err = s.m.createMirrorLocked(ctx, s.name, CreateMirrorRequest{SourceTopic: sourceTopic})
	if errors.Is(err, ErrTopicExists) {
		return errors.Join(linksync.ErrTopicExists, err)
	}
	return err
}

func (s *syncLink) CompactedChanged(topic string, compacted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	changed := false
	_, err := s.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Compacted == compacted {
			return errNoChange
		}
		mir.Compacted, changed = compacted, true
		return nil
	})
	if err != nil {
		s.m.log.Error("record mirror cleanup policy", "topic", topic, "err", err)
		return
	}
	if !changed {
		return
	}
	// The copy picks the new filler kind up: the runners restart the
	// topic's workers when its compaction changes.
	s.m.reconcile(s.name)
}

func (s *syncLink) SyncedACLs() []linksync.ACL {
	l, _, err := s.m.linkAndRun(s.name)
	if err != nil {
		return nil
	}
	return l.SyncedACLs
}

func (s *syncLink) SaveSyncedACLs(ctx context.Context, acls []linksync.ACL) error {
	s.m.writeMu.Lock()
	defer s.m.writeMu.Unlock()
	l, _, err := s.m.linkAndRun(s.name)
	if err != nil {
		return err
	}
	next := *l
	next.SyncedACLs = acls
	return s.m.putLinkLocked(ctx, &next)
}
