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
// is applied only if it is newer than the one the memory reflects. What the
// records read together change is reconciled together once they are all
// applied: a pause of a thousand mirrors stops their copies here at once,
// not one after another.
func (m *Manager) follow(ctx context.Context, from int64) {
	defer m.bg.Done()
	var b followBatch
	for ctx.Err() == nil {
		err := m.cfg.Store.Follow(ctx, from, func(key string, e store.Entry) {
			from = e.Offset + 1
			m.applyRecord(key, e, &b)
		}, func() {
			m.applyBatch(&b)
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

// followBatch is what the records of one batch ask for: links to restart
// (their connection changed) or stop (deleted), links to reconcile whole,
// and topics to reconcile, by link.
type followBatch struct {
	restart, full map[string]bool
	topics        map[string][]string
}

func (b *followBatch) add(m *map[string]bool, name string) {
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[name] = true
}

func (b *followBatch) addTopic(link, topic string) {
	if b.topics == nil {
		b.topics = map[string][]string{}
	}
	b.topics[link] = append(b.topics[link], topic)
}

// applyBatch restarts and reconciles what a batch of records changed, and
// empties it.
func (m *Manager) applyBatch(b *followBatch) {
	for name := range b.restart {
		m.restartRun(name) // reconciles; closes the run of a deleted link
	}
	for name := range b.full {
		if !b.restart[name] {
			m.reconcile(name)
		}
	}
	for name, topics := range b.topics {
		if !b.restart[name] && !b.full[name] {
			m.reconcileTopics(name, dedupe(topics))
		}
	}
	*b = followBatch{}
}

// applyRecord brings one state record into memory and notes in b what it
// asks to restart or reconcile.
func (m *Manager) applyRecord(key string, e store.Entry, b *followBatch) {
	if m.applyCommandRecord(key, e) || m.applyTasksRecord(key, e) || m.applyVerifyRecord(key, e) {
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
	var prev *Mirror
	// A mirror record changes one topic of its link: only that topic is
	// reconciled (reconcileTopics), so following a thousand records costs
	// a thousand topics' worth, not a thousand times every topic.
	m.mu.Lock()
	switch {
	case mir != nil:
		prev = m.mirrors[mir.Topic]
		if old := m.mirrors[mir.Topic]; old != nil && old.Link != mir.Link {
			// The topic went from one link to another (reversed): the
			// old link drops it.
			b.add(&b.full, old.Link)
		}
		m.mirrors[mir.Topic] = mir
		b.addTopic(mir.Link, mir.Topic)
	case l != nil:
		old, existed := m.links[l.Name]
		m.links[l.Name] = l
		if !existed || changedAny(old.Configs, l.Configs, connectionConfigs) {
			b.add(&b.restart, l.Name)
		} else {
			b.add(&b.full, l.Name)
		}
	case len(key) > len(mirrorKeyPrefix) && key[:len(mirrorKeyPrefix)] == mirrorKeyPrefix:
		for t, cur := range m.mirrors {
			if mirrorKey(cur.Link, t) == key {
				delete(m.mirrors, t)
				b.addTopic(cur.Link, t)
			}
		}
	case len(key) > len(linkKeyPrefix) && key[:len(linkKeyPrefix)] == linkKeyPrefix:
		name := key[len(linkKeyPrefix):]
		if _, ok := m.links[name]; ok {
			delete(m.links, name)
			b.add(&b.restart, name) // closes the run; the link is gone
		}
	}
	m.mu.Unlock()
	m.writeMu.Unlock()
	m.log.Debug("state change applied from the state topic", "key", key, "offset", e.Offset)
	if mir != nil {
		m.logTransitionAt(withReason(context.Background(), "written by another Strait instance"), slog.LevelDebug, prev, mir)
	}
}
