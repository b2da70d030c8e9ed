package link

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DeleteTopic deletes a destination mirror topic. Its copy is stopped and
// its mirror forgotten first, so nothing writes to the topic while it is
// deleted; this is how the Terraform provider deletes a mirror topic. Other
// topics are deleted only with Config.AllowTopicDelete.
func (m *Manager) DeleteTopic(ctx context.Context, topic string) error {
	m.mu.RLock()
	owner, isMirror := m.mirrors[topic]
	m.mu.RUnlock()
	if isMirror {
		unlock, err := m.lockLink(ctx, owner.Link)
		if err != nil {
			return err
		}
		defer unlock()
	}
	m.mu.RLock()
	mir, isMirror := m.mirrors[topic]
	var run *linkRun
	if isMirror {
		run = m.runs[mir.Link]
	}
	m.mu.RUnlock()
	adm := kadm.NewClient(m.cfg.Dest)
	if !isMirror {
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return fmt.Errorf("describe topic %q: %w", topic, err)
		}
		if d, ok := td[topic]; !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
			return errorf(ErrTopicNotFound, "This server does not host this topic-partition.")
		}
		if topic == m.cfg.Store.Topic() {
			return errorf(ErrInvalid, "Topic '%s' holds Strait's state and cannot be deleted through Strait.", topic)
		}
		if !m.cfg.AllowTopicDelete {
			// Strait holds the destination's credentials: without this
			// rule anyone allowed to call it could delete any topic there.
			return errorf(ErrNotMirror, "Topic '%s' is not a mirror topic: Strait deletes only the mirror topics it manages (delete it with the destination's own tools, or start Strait with allow_topic_delete).", topic)
		}
	}
	if isMirror {
		if run != nil && run.runner != nil {
			run.runner.Stop(topic)
		}
		// ACLs outlive topics: lift the denials while they are known.
		if err := m.liftDenials(ctx, topic, mir.WriteDenials); err != nil {
			m.reconcile(mir.Link)
			return err
		}
		m.writeMu.Lock()
		err := m.deleteMirrorLocked(ctx, mir)
		m.writeMu.Unlock()
		if err != nil {
			m.reconcile(mir.Link)
			return err
		}
		m.reconcile(mir.Link)
	}
	resp, err := adm.DeleteTopic(ctx, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.UnknownTopicOrPartition) {
		if isMirror {
			return nil // the mirror is gone and so is the topic
		}
		return errorf(ErrTopicNotFound, "This server does not host this topic-partition.")
	}
	if err != nil {
		return fmt.Errorf("delete topic %q: %w", topic, err)
	}
	m.log.Info("topic deleted", "topic", topic, "was_mirror", isMirror)
	return nil
}
