package link

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// Write protection: Kafka has no read-only topics, so on a destination with
// an authorizer Strait can deny WRITE on a mirror topic to every principal
// an ACL allows to write it (except Strait's own), while the topic is a
// mirror, and lift those denials when it stops. A DENY wins over any ALLOW
// in Kafka's authorizer. An ALLOW for User:* cannot be countered this way
// without denying Strait too; that is reported, not papered over.

// protectionWanted reports whether a mirror should carry write denials.
func (m *Manager) protectionWanted(mir *Mirror) bool {
	m.mu.RLock()
	l := m.links[mir.Link]
	m.mu.RUnlock()
	if l == nil || !l.Configs.Bool(linkconfig.MirrorWriteProtection) {
		return false
	}
	switch mir.Status {
	case StatusStopped, StatusPendingSetupForRestore:
		return false
	}
	return true
}

// syncProtection adds or lifts the write denials of every mirror as its
// link's config and its status say. Errors are logged and retried on the
// next round.
func (m *Manager) syncProtection(ctx context.Context) {
	for _, mir := range m.mirrorsOf("") {
		var err error
		if m.protectionWanted(mir) {
			err = m.protect(ctx, mir.Topic)
		} else if len(mir.WriteDenials) > 0 {
			err = m.unprotect(ctx, mir.Topic)
		}
		if err != nil && ctx.Err() == nil {
			m.log.Warn("mirror write protection", "topic", mir.Topic, "err", err)
		}
	}
}

// protect denies WRITE on the mirror topic to the principals allowed to
// write it.
func (m *Manager) protect(ctx context.Context, topic string) error {
	adm := kadm.NewClient(m.cfg.Dest)
	described, err := adm.DescribeACLs(ctx, kadm.NewACLs().Topics(topic).ResourcePatternType(kadm.ACLPatternMatch).
		Allow().AllowHosts().Operations(kadm.OpWrite, kadm.OpAll))
	if err != nil {
		return fmt.Errorf("describe ACLs: %w", err)
	}
	var want []WriteDenial
	wildcard := false
	for _, r := range described {
		if r.Err != nil {
			return fmt.Errorf("describe ACLs: %w", r.Err)
		}
		for _, d := range r.Described {
			switch d.Principal {
			case m.cfg.Principal:
			case "User:*":
				wildcard = true
			default:
				w := WriteDenial{Principal: d.Principal, Host: d.Host}
				if !slices.Contains(want, w) {
					want = append(want, w)
				}
			}
		}
	}
	m.mu.RLock()
	mir := m.mirrors[topic]
	m.mu.RUnlock()
	if mir == nil {
		return nil
	}
	var add []WriteDenial
	for _, w := range want {
		if !slices.Contains(mir.WriteDenials, w) {
			add = append(add, w)
		}
	}
	if len(add) > 0 || (wildcard && !mir.hasTransitionError(errWildcardWrite)) {
		// Record first: a denial that exists but is not recorded would
		// never be lifted.
		_, err = m.updateMirror(ctx, topic, func(next *Mirror) error {
			next.WriteDenials = append(next.WriteDenials, add...)
			if wildcard && !next.hasTransitionError(errWildcardWrite) {
				next.addTransitionError(errWildcardWrite, fmt.Sprintf("an ACL allows User:* to write topic '%s'; Strait cannot deny it without denying itself, so other writers are not blocked", topic), m.nowMs())
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	m.mu.RLock()
	mir = m.mirrors[topic]
	m.mu.RUnlock()
	return m.applyDenials(ctx, topic, mir.WriteDenials, true)
}

// errWildcardWrite is the transition error code for an unblockable ALLOW.
const errWildcardWrite = "AUTHORIZATION_ERROR"

func (m *Mirror) hasTransitionError(code string) bool {
	for _, e := range m.TransitionErrors {
		if e.Code == code {
			return true
		}
	}
	return false
}

// unprotect lifts the write denials Strait created on a topic.
func (m *Manager) unprotect(ctx context.Context, topic string) error {
	m.mu.RLock()
	mir := m.mirrors[topic]
	m.mu.RUnlock()
	if mir == nil || len(mir.WriteDenials) == 0 {
		return nil
	}
	if err := m.liftDenials(ctx, topic, mir.WriteDenials); err != nil {
		return err
	}
	_, err := m.updateMirror(ctx, topic, func(next *Mirror) error {
		next.WriteDenials = nil
		return nil
	})
	return err
}

func (m *Manager) liftDenials(ctx context.Context, topic string, ws []WriteDenial) error {
	return m.applyDenials(ctx, topic, ws, false)
}

// applyDenials creates (or deletes) one DENY WRITE ACL per denial.
func (m *Manager) applyDenials(ctx context.Context, topic string, ws []WriteDenial, create bool) error {
	adm := kadm.NewClient(m.cfg.Dest)
	for _, w := range ws {
		b := kadm.NewACLs().Topics(topic).ResourcePatternType(kadm.ACLPatternLiteral).
			Deny(w.Principal).DenyHosts(w.Host).Operations(kadm.OpWrite)
		var err error
		if create {
			var res kadm.CreateACLsResults
			if res, err = adm.CreateACLs(ctx, b); err == nil {
				for _, r := range res {
					err = errors.Join(err, r.Err)
				}
			}
		} else {
			var res kadm.DeleteACLsResults
			if res, err = adm.DeleteACLs(ctx, b); err == nil {
				for _, r := range res {
					err = errors.Join(err, r.Err)
				}
			}
		}
		if err != nil {
			return fmt.Errorf("DENY WRITE for %s on %s (create %v): %w", w.Principal, topic, create, err)
		}
	}
	return nil
}

// maintenanceLoop runs the periodic work that has no other owner: finishing
// restores and keeping write protection in line with new ACLs.
func (m *Manager) maintenanceLoop(ctx context.Context, interval time.Duration) {
	defer m.bg.Done()
	for {
		// What a link does once is the active instance's to do.
		if m.Leading() {
			m.finishRestores(ctx)
			m.syncProtection(ctx)
			m.sweepCommands(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}
