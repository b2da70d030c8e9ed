package link

import (
	"context"
	"fmt"
	"sync"
)

// Operation locks. A state-changing operation of a link (mirror changes,
// config changes, the link's own creation and deletion) may wait on the
// network: on the link's source, on its runner catching up. So operations
// are serialized per link, never across links: a slow or unreachable
// cluster of one link delays nothing on another, and reads take no
// operation lock at all. Every wait for a lock gives up when the request's
// context ends.

// opLocks are the per-link operation locks; closing is held shared by
// every operation and exclusively by Close, which waits for them.
type opLocks struct {
	mu      sync.Mutex
	byLink  map[string]chan struct{}
	closing sync.RWMutex
	// topics are mirror topic names being created, not yet in the
	// catalog: two links cannot create the same topic side by side.
	topics map[string]string
}

// lockLink takes link's operation lock, waiting at most until ctx ends; it
// returns the unlock.
func (m *Manager) lockLink(ctx context.Context, link string) (func(), error) {
	m.ops.closing.RLock()
	m.ops.mu.Lock()
	if m.ops.byLink == nil {
		m.ops.byLink = map[string]chan struct{}{}
	}
	ch, ok := m.ops.byLink[link]
	if !ok {
		ch = make(chan struct{}, 1)
		m.ops.byLink[link] = ch
	}
	m.ops.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch; m.ops.closing.RUnlock() }, nil
	case <-ctx.Done():
		m.ops.closing.RUnlock()
		return nil, fmt.Errorf("another operation on cluster link '%s' is under way: %w", link, ctx.Err())
	}
}

// reserveTopic claims a mirror topic name for link while its creation is
// under way; the release forgets the claim.
func (m *Manager) reserveTopic(topic, link string) (func(), error) {
	m.ops.mu.Lock()
	defer m.ops.mu.Unlock()
	if m.ops.topics == nil {
		m.ops.topics = map[string]string{}
	}
	if other, ok := m.ops.topics[topic]; ok {
		return nil, errorf(ErrTopicExists, "Topic '%s' is being created as a mirror of cluster link '%s'.", topic, other)
	}
	m.ops.topics[topic] = link
	return func() {
		m.ops.mu.Lock()
		delete(m.ops.topics, topic)
		m.ops.mu.Unlock()
	}, nil
}

// waitOps waits for the operations under way and keeps new ones out.
func (m *Manager) waitOps() func() {
	m.ops.closing.Lock()
	return m.ops.closing.Unlock
}
