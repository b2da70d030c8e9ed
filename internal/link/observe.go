package link

import (
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/mirror"
)

// Observers hands each link's runner and sync tasks where to report their
// measurements (internal/metrics implements it). Its methods must be safe
// for concurrent use.
type Observers interface {
	// Mirror is where the runner of link reports.
	Mirror(link string) mirror.Observer
	// Sync is where the sync tasks of link report.
	Sync(link string) linksync.Observer
}

// mirrorObserver is the runner's observer for link, nil for none.
func (m *Manager) mirrorObserver(link string) mirror.Observer {
	if m.cfg.Observers == nil {
		return nil
	}
	return m.cfg.Observers.Mirror(link)
}

// syncObserver is the sync tasks' observer for link, nil for none.
func (m *Manager) syncObserver(link string) linksync.Observer {
	if m.cfg.Observers == nil {
		return nil
	}
	return m.cfg.Observers.Sync(link)
}

// Owns reports whether this instance copies a mirror partition: every
// partition when the group shares none out. Metrics report the copy of
// the partitions an instance owns, so that series of several instances
// add up.
func (m *Manager) Owns(topic string, partition int32) bool { return m.owns(topic, partition) }

// MirrorsHere lists every mirror as Mirrors("", "") does, from memory
// only: the lag figures of partitions another instance copies are not
// read from the clusters (they are that instance's to report). For
// metrics, which must not make a scrape wait on the clusters.
func (m *Manager) MirrorsHere() []MirrorView {
	mirs := m.mirrorsOf("")
	out := make([]MirrorView, 0, len(mirs))
	for _, mir := range mirs {
		out = append(out, m.view(mir, false))
	}
	return out
}
