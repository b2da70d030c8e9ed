package link

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/linksync"
)

// syncLink is a link as its sync tasks see it (linksync.Link).
type syncLink struct {
	m    *Manager
	name string
	run  *linkRun
}

var _ linksync.Link = (*syncLink)(nil)

func (s *syncLink) Name() string { return s.name }

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
	// The copy picks the new filler kind up when its workers restart.
	if s.run.runner != nil {
		s.run.runner.Stop(topic)
	}
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
