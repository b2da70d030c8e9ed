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
