package link

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/store"
)

// putMirrorLocked durably stores mir and then makes it current in memory.
// Callers hold writeMu.
func (m *Manager) putMirrorLocked(ctx context.Context, mir *Mirror) error {
	b, err := json.Marshal(mir)
	if err != nil {
		return err
	}
	key := mirrorKey(mir.Link, mir.Topic)
	off, err := m.cfg.Store.Put(ctx, key, b)
	if err != nil {
		return err
	}
	m.offsets[key] = off
	m.mu.Lock()
	prev := m.mirrors[mir.Topic]
	m.mirrors[mir.Topic] = mir
	m.mu.Unlock()
	m.logTransition(ctx, prev, mir)
	return nil
}

// putMirrorsLocked durably stores mirs in one write to the store and makes
// the ones stored current in memory. It returns, for each mirror, nil or
// why it was not stored. Callers hold writeMu.
func (m *Manager) putMirrorsLocked(ctx context.Context, mirs []*Mirror) []error {
	errs := make([]error, len(mirs))
	recs := make([]store.Record, len(mirs))
	for i, mir := range mirs {
		b, err := json.Marshal(mir)
		if err != nil {
			return slices.Repeat([]error{err}, len(mirs))
		}
		recs[i] = store.Record{Key: mirrorKey(mir.Link, mir.Topic), Value: b}
	}
	offs, err := m.cfg.Store.PutMany(ctx, recs)
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, mir := range mirs {
		if offs[i] < 0 {
			errs[i] = cmp.Or(err, errors.New("not stored"))
			continue
		}
		m.offsets[recs[i].Key] = offs[i]
		m.mirrors[mir.Topic] = mir
	}
	return errs
}

// deleteMirrorLocked durably forgets a mirror. Callers hold writeMu.
func (m *Manager) deleteMirrorLocked(ctx context.Context, mir *Mirror) error {
	key := mirrorKey(mir.Link, mir.Topic)
	off, err := m.cfg.Store.Delete(ctx, key)
	if err != nil {
		return err
	}
	m.offsets[key] = off
	m.mu.Lock()
	if cur, ok := m.mirrors[mir.Topic]; ok && cur.Link == mir.Link {
		delete(m.mirrors, mir.Topic)
	}
	m.mu.Unlock()
	reason := reasonOf(ctx)
	if reason == "" {
		reason = "deleted"
	}
	m.log.Info("mirror deleted", "link", mir.Link, "topic", mir.Topic, "from", string(mir.Status), "reason", reason)
	return nil
}

// updateMirror applies fn to a copy of the stored mirror and stores the
// result. fn returning errNoChange skips the write.
func (m *Manager) updateMirror(ctx context.Context, topic string, fn func(*Mirror) error) (*Mirror, error) {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	m.mu.RLock()
	cur, ok := m.mirrors[topic]
	m.mu.RUnlock()
	if !ok {
		return nil, errorf(ErrMirrorNotFound, "Mirror topic '%s' does not exist.", topic)
	}
	next := cur.clone()
	if err := fn(next); err != nil {
		if errors.Is(err, errNoChange) {
			return cur, nil
		}
		return nil, err
	}
	if err := m.putMirrorLocked(ctx, next); err != nil {
		return nil, err
	}
	return next, nil
}

var errNoChange = errors.New("no change")

func (m *Manager) putLinkLocked(ctx context.Context, l *Link) error {
	sealed, err := m.sealLink(l)
	if err != nil {
		return err
	}
	b, err := json.Marshal(sealed)
	if err != nil {
		return err
	}
	off, err := m.cfg.Store.Put(ctx, linkKey(l.Name), b)
	if err != nil {
		return err
	}
	m.offsets[linkKey(l.Name)] = off
	m.mu.Lock()
	m.links[l.Name] = l
	m.mu.Unlock()
	return nil
}

// sealLink returns a copy of l for the state topic, its sensitive configs
// sealed.
func (m *Manager) sealLink(l *Link) (*Link, error) {
	out := *l
	out.Configs = l.Configs.Clone()
	for name, v := range out.Configs {
		if d, _ := linkconfig.Lookup(name); !d.Sensitive {
			continue
		}
		if m.cfg.Secrets == nil {
			return nil, errorf(ErrInvalid, "Config '%s' is a credential, and Strait stores credentials only sealed: start it with a secrets key (secrets_key_file or STRAIT_SECRETS_KEY; strait auth new-secrets-key makes one).", name)
		}
		sealed, err := m.cfg.Secrets.Seal(v, sealBinding(l, name))
		if err != nil {
			return nil, err
		}
		out.Configs[name] = sealed
	}
	return &out, nil
}

// sealBinding is where a sealed config of l belongs: the link's id and the
// config's name.
func sealBinding(l *Link, name string) string {
	return secret.Binding("strait link config", l.ID, name)
}

// openLink opens, in place, the sealed configs of a link read from the
// state topic. stale reports a value to seal again (a previous secrets key,
// an unbound format). Only credentials are opened: a sealed value under
// any other config was put there by someone else.
func (m *Manager) openLink(l *Link) (stale bool, err error) {
	for name, v := range l.Configs {
		if !secret.Sealed(v) {
			continue
		}
		if d, _ := linkconfig.Lookup(name); !d.Sensitive {
			return false, fmt.Errorf("link %s config %s holds a sealed value but is not a credential: the state record was altered", l.Name, name)
		}
		if m.cfg.Secrets == nil {
			return false, fmt.Errorf("link %s has sealed credentials and no secrets key is configured", l.Name)
		}
		plain, old, err := m.cfg.Secrets.Unseal(v, sealBinding(l, name))
		if err != nil {
			return false, fmt.Errorf("link %s config %s: %w", l.Name, name, err)
		}
		stale = stale || old
		l.Configs[name] = plain
	}
	return stale, nil
}

// deleteLinkLocked durably forgets a link. Callers hold writeMu.
func (m *Manager) deleteLinkLocked(ctx context.Context, name string) error {
	off, err := m.cfg.Store.Delete(ctx, linkKey(name))
	if err != nil {
		return err
	}
	m.offsets[linkKey(name)] = off
	m.mu.Lock()
	delete(m.links, name)
	m.mu.Unlock()
	return nil
}

// mirrorsOf returns the mirrors of a link sorted by topic ("" for all).
func (m *Manager) mirrorsOf(linkName string) []*Mirror {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []*Mirror
	for _, mir := range m.mirrors {
		if linkName == "" || mir.Link == linkName {
			out = append(out, mir)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}
