package link

import (
	"context"
	"log/slog"
	"time"

	"github.com/strait-dev/strait/internal/store"
)

// follow tails the state topic and applies records this Manager did not
// write itself: changes made by the Strait on the other side of a
// bidirectional link (a reversed mirror), or by another instance. A record
// is applied only if it is newer than the one the memory reflects.
func (m *Manager) follow(ctx context.Context, from int64) {
	defer m.bg.Done()
	for ctx.Err() == nil {
		err := m.cfg.Store.Follow(ctx, from, func(key string, e store.Entry) {
			from = e.Offset + 1
			m.applyRecord(key, e)
			m.followed.Store(from)
		})
		if err != nil && ctx.Err() == nil {
			m.log.Warn("following the state topic", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

// applyRecord brings one state record into memory and restarts or
// reconciles what it affects.
func (m *Manager) applyRecord(key string, e store.Entry) {
	if m.applyCommandRecord(key, e) || m.applyTasksRecord(key, e) {
		return
	}
	m.writeMu.Lock()
	if off, ok := m.offsets[key]; ok && off >= e.Offset {
		m.writeMu.Unlock()
		return // already reflected (usually our own write)
	}
	m.offsets[key] = e.Offset
	var l *Link
	var mir *Mirror
	var err error
	if e.Value != nil {
		l, mir, err = decodeRecord(key, e.Value)
		if err == nil && l != nil {
			var stale bool
			stale, err = m.openLink(l)
			if stale {
				m.stale[l.Name] = true
			}
		}
		if err != nil {
			m.writeMu.Unlock()
			m.log.Error("state record", "key", key, "err", err)
			return
		}
	}
	var restart, reconcile, stop string
	var prev *Mirror
	m.mu.Lock()
	switch {
	case mir != nil:
		prev = m.mirrors[mir.Topic]
		m.mirrors[mir.Topic] = mir
		reconcile = mir.Link
	case l != nil:
		old, existed := m.links[l.Name]
		m.links[l.Name] = l
		if !existed || changedAny(old.Configs, l.Configs, connectionConfigs) {
			restart = l.Name
		} else {
			reconcile = l.Name
		}
	case len(key) > len(mirrorKeyPrefix) && key[:len(mirrorKeyPrefix)] == mirrorKeyPrefix:
		for topic, cur := range m.mirrors {
			if mirrorKey(cur.Link, topic) == key {
				delete(m.mirrors, topic)
				reconcile = cur.Link
			}
		}
	case len(key) > len(linkKeyPrefix) && key[:len(linkKeyPrefix)] == linkKeyPrefix:
		name := key[len(linkKeyPrefix):]
		if _, ok := m.links[name]; ok {
			delete(m.links, name)
			stop = name
		}
	}
	m.mu.Unlock()
	m.writeMu.Unlock()
	m.log.Debug("state change applied from the state topic", "key", key, "offset", e.Offset)
	if mir != nil {
		m.logTransitionAt(withReason(context.Background(), "written by another Strait instance"), slog.LevelDebug, prev, mir)
	}
	switch {
	case restart != "":
		m.restartRun(restart)
	case reconcile != "":
		m.reconcile(reconcile)
	case stop != "":
		m.restartRun(stop) // closes the run; the link is gone
	}
}
