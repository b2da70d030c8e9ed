package link

import (
	"context"
	"fmt"
	"time"

	"github.com/strait-dev/strait/internal/retry"
)

// Roles. Every instance of a destination runs a Manager: it holds the
// whole state (read at start, then followed), answers reads, and copies
// the partitions the group gives it (SetOwnership). One of them, the
// active instance, also makes every change to the state and runs what a
// link does once (its sync tasks, restores, write protection, partition
// growth): Lead makes this Manager that one, Unlead ends it. The others
// have their changes made by it (commands.go).

// Leading reports whether this Manager is the active one.
func (m *Manager) Leading() bool { return m.leading.Load() }

// Lead makes this Manager the active one: it first reads the state topic
// up to its end (what the previous active instance wrote), repairs what a
// crash may have left half done, and carries out the commands waiting for
// an answer. It returns an error when the state cannot be read or
// repaired; the Manager then stays a follower.
func (m *Manager) Lead(ctx context.Context) error {
	if m.Leading() {
		return nil
	}
	if err := m.catchUp(ctx); err != nil {
		return fmt.Errorf("read the state topic to its end: %w", err)
	}
	if err := m.repair(ctx); err != nil {
		return err
	}
	m.leading.Store(true)
	m.log.Info("this instance applies the changes now (active)")
	m.mu.RLock()
	var names []string
	for name := range m.links {
		names = append(names, name)
	}
	m.mu.RUnlock()
	for _, name := range names {
		m.reconcile(name)
	}
	m.runPending()
	return nil
}

// Unlead ends this Manager's active role: it stops applying changes and
// running the links' once-only work, and copies on what it owns.
func (m *Manager) Unlead() {
	if m.leading.CompareAndSwap(true, false) {
		m.log.Info("another instance applies the changes now")
	}
}

// SetOwnership sets which mirror partitions this instance copies (nil:
// all of them) and applies it: when it returns, every partition no longer
// owned has stopped here. ownerOf, when not nil, names the instance that
// copies a partition, for the mirrors' views.
func (m *Manager) SetOwnership(owns func(topic string, partition int32) bool, ownerOf func(topic string, partition int32) string) {
	m.ownMu.Lock()
	m.ownFn = owns
	m.ownerOf = ownerOf
	m.ownMu.Unlock()
	m.mu.RLock()
	var names []string
	for name := range m.links {
		names = append(names, name)
	}
	m.mu.RUnlock()
	for _, name := range names {
		m.reconcile(name)
	}
}

// ownerFn returns the function naming the instance that copies a
// partition, nil when there is none.
func (m *Manager) ownerFn() func(string, int32) string {
	m.ownMu.Lock()
	defer m.ownMu.Unlock()
	return m.ownerOf
}

// owns reports whether this instance copies a partition.
func (m *Manager) owns(topic string, p int32) bool {
	m.ownMu.Lock()
	fn := m.ownFn
	m.ownMu.Unlock()
	return fn == nil || fn(topic, p)
}

// ownedOf returns the partitions of mir this instance copies, nil for
// all of them.
func (m *Manager) ownedOf(mir *Mirror) map[int32]bool {
	m.ownMu.Lock()
	fn := m.ownFn
	m.ownMu.Unlock()
	if fn == nil {
		return nil
	}
	out := make(map[int32]bool, mir.Partitions)
	for p := range mir.Partitions {
		if fn(mir.Topic, p) {
			out[p] = true
		}
	}
	return out
}

// catchUp waits until the state follower has applied every record the
// state topic held when it was called.
func (m *Manager) catchUp(ctx context.Context) error {
	var end int64
	err := retry.Do(ctx, m.log, "the end of the state topic", 10*time.Second, func(ctx context.Context) error {
		var err error
		end, err = m.cfg.Store.End(ctx)
		return err
	})
	if err != nil {
		return err
	}
	for {
		if m.followed.Load() >= end {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}
