package link

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/mirror"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// linkRun is a link's running part: its source client and runner, and the
// source's availability as the runner's probes see it.
type linkRun struct {
	src      *kgo.Client
	runner   *mirror.Runner
	sync     *linksync.Syncer
	buildErr error // the source client could not be built

	mu           sync.Mutex
	failingSince time.Time
	lastOK       time.Time // the last probe that succeeded
	lastErr      error
	unavailable  bool
}

func (r *linkRun) close() {
	if r.sync != nil {
		r.sync.Close()
	}
	if r.runner != nil {
		r.runner.Close()
	}
	if r.src != nil {
		r.src.Close()
	}
}

// availability returns whether the source is unavailable and the last error.
func (r *linkRun) availability() (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.buildErr != nil {
		return true, r.buildErr
	}
	return r.unavailable, r.lastErr
}

// startRun builds the source client and runner of l.
func (m *Manager) startRun(l *Link) *linkRun {
	run := &linkRun{}
	cs, err := m.linkClient(l.Configs)
	if err == nil {
		run.src, err = kafkaclient.New(cs, m.log.With("link", l.Name, "cluster", "source"))
	}
	if err != nil {
		run.buildErr = err
		m.log.Error("link source client", "link", l.Name, "err", err)
		// The tasks still start: they run no round while the link is
		// FAILED, and their Status lists them as LINK_FAILED rather
		// than the link having no tasks at all.
		run.sync = m.startSync(l.Name, run)
		return run
	}
	interval := min(l.Configs.Duration(linkconfig.AvailabilityCheckMs), 5*time.Second)
	topics := 30 * time.Second // the runner's default
	if m.cfg.MetadataInterval > 0 {
		interval, topics = m.cfg.MetadataInterval, m.cfg.MetadataInterval
	}
	run.runner = mirror.NewRunner(mirror.Config{
		Source:            run.src,
		Dest:              m.cfg.Dest,
		DestClusterID:     m.cfg.ClusterID,
		Hooks:             &hooks{m: m, link: l.Name, run: run, cfg: l.Configs},
		Log:               m.log.With("link", l.Name),
		FetchMaxBytes:     int32(l.Configs.Int(linkconfig.ReplicaFetchResponseMax)),
		PartitionMaxBytes: int32(l.Configs.Int(linkconfig.ReplicaFetchMaxBytes)),
		FetchMaxWait:      l.Configs.Duration(linkconfig.ReplicaFetchWaitMaxMs),
		MetadataInterval:  interval,
		// Deleted, re-created or grown source topics are looked for
		// at this pace, and at once on a fetch error.
		TopicCheckInterval: topics,
		// A probe fails within availability.check.ms, so that an
		// outage is seen in about availability.check.ms x threshold.
		ProbeTimeout: min(max(l.Configs.Duration(linkconfig.AvailabilityCheckMs), time.Second), 15*time.Second),
		TxnIDPrefix:  "strait/" + l.Name,
		StallTimeout: m.cfg.StallTimeout,
		Observer:     m.mirrorObserver(l.Name),
	})
	run.sync = m.startSync(l.Name, run)
	return run
}

// startSync starts a link's sync tasks; they run rounds only while this
// instance is the active one, and show the active one's results here.
func (m *Manager) startSync(name string, run *linkRun) *linksync.Syncer {
	s := linksync.StartWith(&syncLink{m: m, name: name, run: run}, m.log.With("link", name), m.syncObserver(name))
	m.mu.RLock()
	r := m.taskResults[name]
	m.mu.RUnlock()
	if r != nil {
		s.SetResults(r)
	}
	return s
}

// restartRun replaces a link's runner and source client, for example after
// its connection configs changed, and reconciles it.
func (m *Manager) restartRun(name string) {
	m.mu.Lock()
	l, ok := m.links[name]
	old := m.runs[name]
	delete(m.runs, name)
	m.mu.Unlock()
	if old != nil {
		old.close()
	}
	if !ok {
		return
	}
	run := m.startRun(l)
	m.mu.Lock()
	m.runs[name] = run
	m.mu.Unlock()
	m.reconcile(name)
}

// status is the status a mirror reports: the stored one, or LINK_PAUSED,
// SOURCE_UNAVAILABLE or LINK_FAILED when the link says so.
func (m *Manager) status(mir *Mirror) Status {
	if mir.Status != StatusActive && mir.Status != StatusPendingMirror {
		return mir.Status
	}
	m.mu.RLock()
	l, ok := m.links[mir.Link]
	run := m.runs[mir.Link]
	m.mu.RUnlock()
	if !ok {
		return mir.Status
	}
	if run != nil && run.buildErr != nil {
		return StatusLinkFailed
	}
	if l.Configs.Paused() {
		return StatusLinkPaused
	}
	if run != nil {
		if unavailable, _ := run.availability(); unavailable {
			return StatusSourceUnavailable
		}
	}
	return mir.Status
}

// derivedStatus is a mirror's stored and reported status, and when the
// reported one last changed while the stored one did not (Unix ms; 0 when
// the stored status's own time holds).
type derivedStatus struct {
	stored, status Status
	since          int64
}

// noteDerived records the time the reported status of a link's mirrors
// changed. LINK_PAUSED, SOURCE_UNAVAILABLE and LINK_FAILED are not stored
// on a mirror (they follow the link), so their changes are noted here,
// when the link's configs, runner or availability change.
func (m *Manager) noteDerived(linkName string) {
	m.noteLinkState(linkName)
	m.mu.RLock()
	var mirs []*Mirror
	for _, mir := range m.mirrors {
		if mir.Link == linkName {
			mirs = append(mirs, mir)
		}
	}
	m.mu.RUnlock()
	m.noteDerivedOf(mirs)
}

// noteDerivedOf is noteDerived for some mirrors.
func (m *Manager) noteDerivedOf(mirs []*Mirror) {
	// Statuses first: status takes m.mu, which is never taken under
	// derivedMu.
	sts := make([]Status, len(mirs))
	for i, mir := range mirs {
		sts[i] = m.status(mir)
	}
	now := m.nowMs()
	m.derivedMu.Lock()
	defer m.derivedMu.Unlock()
	if m.derived == nil {
		m.derived = map[string]derivedStatus{}
	}
	for i, mir := range mirs {
		next := derivedStatus{stored: mir.Status, status: sts[i]}
		if prev, seen := m.derived[mir.Topic]; seen {
			conditionNow := sts[i] != mir.Status
			conditionEnded := prev.status != prev.stored && prev.stored == mir.Status
			switch {
			case prev.status == sts[i]:
				next.since = prev.since
			case conditionNow || conditionEnded:
				// A link condition began, changed or ended. (A change of
				// the stored status alone has the mirror's own time.)
				next.since = now
			}
		}
		m.derived[mir.Topic] = next
	}
}

// stateTimeMs is when mir's reported status last changed.
func (m *Manager) stateTimeMs(mir *Mirror) int64 {
	m.derivedMu.Lock()
	d := m.derived[mir.Topic]
	m.derivedMu.Unlock()
	return max(mir.StateTimeMs, d.since)
}

// reconcile tells the link's runner which mirrors to copy.
func (m *Manager) reconcile(linkName string) {
	defer m.noteDerived(linkName)
	m.reconcileMu.Lock()
	defer m.reconcileMu.Unlock()
	m.mu.RLock()
	l, ok := m.links[linkName]
	run := m.runs[linkName]
	var mirs []*Mirror
	if ok && run != nil && run.runner != nil {
		for _, mir := range m.mirrors {
			if mir.Link == linkName && mir.Status != StatusStopped {
				mirs = append(mirs, mir)
			}
		}
	}
	m.mu.RUnlock()
	if run != nil && run.runner != nil {
		specs := make([]mirror.Spec, len(mirs))
		for i, mir := range mirs {
			specs[i] = m.specOf(mir, l.Configs.Paused())
		}
		run.runner.Set(specs)
		m.reportHalted(linkName, run)
	}
}

// reconcileTopic is reconcile for one mirror topic of a link: it sets that
// topic's spec in the runner (or drops it, for a mirror that is gone or
// stopped) and leaves the link's other topics alone, so that creating the
// thousandth mirror costs what creating the first did.
func (m *Manager) reconcileTopic(linkName, topic string) {
	m.reconcileTopics(linkName, []string{topic})
}

// reconcileTopics is reconcileTopic for several topics of a link, in one
// call into the runner: what stops, stops together.
func (m *Manager) reconcileTopics(linkName string, topics []string) {
	m.reconcileMu.Lock()
	m.mu.RLock()
	l, ok := m.links[linkName]
	run := m.runs[linkName]
	var mirs []*Mirror
	var drop []string
	for _, t := range topics {
		if mir := m.mirrors[t]; mir != nil && mir.Link == linkName {
			mirs = append(mirs, mir)
			if mir.Status != StatusStopped {
				continue
			}
		}
		drop = append(drop, t) // gone, another link's now, or stopped
	}
	m.mu.RUnlock()
	running := ok && run != nil && run.runner != nil
	if running {
		specs := make([]mirror.Spec, 0, len(mirs))
		for _, mir := range mirs {
			if mir.Status != StatusStopped {
				specs = append(specs, m.specOf(mir, l.Configs.Paused()))
			}
		}
		run.runner.Update(specs, drop...)
	}
	m.reconcileMu.Unlock()
	if running {
		m.reportHaltedOf(linkName, run, mirs)
	}
	m.noteDerivedOf(mirs)
}

// specOf is what the runner of mir's link copies of it, on a link paused
// or not.
func (m *Manager) specOf(mir *Mirror, paused bool) mirror.Spec {
	// A promote copies until it is done, even a paused mirror; a
	// promote is refused while the link is paused.
	copying := ((mir.Status == StatusActive || mir.Status == StatusPendingMirror || mir.Status == StatusPendingRestore) && !paused ||
		mir.Status == StatusPendingStopped || mir.Status == StatusPendingSynchronize) && mir.Halt == ""
	return mirror.Spec{
		Topic:         mir.Topic,
		SourceTopic:   mir.SourceTopic,
		Partitions:    mir.Partitions,
		SourceTopicID: mir.sourceTopicID(),
		Copying:       copying,
		Fresh:         mir.Fresh,
		StartOffset:   mir.StartOffset,
		Align:         mir.Align,
		Compacted:     mir.Compacted,
		Writers:       mir.Writers,
		Owned:         m.ownedOf(mir),
	}
}

func (h *hooks) SourceReachable(err error) {
	if h.reachable(err) {
		h.m.noteDerived(h.link)
	}
}

// reachable records a probe's outcome and reports whether the link's
// availability changed.
func (h *hooks) reachable(err error) bool {
	r := h.run
	r.mu.Lock()
	defer r.mu.Unlock()
	now := h.m.cfg.Now()
	if err == nil {
		changed := r.unavailable
		if changed {
			// The link's state change is logged by noteLinkState.
			h.m.log.Debug("source cluster reachable again", "link", h.link)
		}
		r.failingSince, r.lastErr, r.unavailable, r.lastOK = time.Time{}, nil, false, now
		return changed
	}
	if r.failingSince.IsZero() {
		// Failing since the last probe that succeeded, not since this
		// one, which may have taken its whole timeout to fail.
		r.failingSince = now
		if !r.lastOK.IsZero() {
			r.failingSince = r.lastOK
		}
	}
	r.lastErr = err
	limit := h.cfg.Duration(linkconfig.AvailabilityCheckMs) * time.Duration(h.cfg.Int(linkconfig.AvailabilityThreshold))
	if r.lastOK.IsZero() {
		// The source never answered since the link started: nothing
		// was ever reachable, so there is no outage to ride out.
		limit = 0
	}
	if !r.unavailable && now.Sub(r.failingSince) >= limit {
		r.unavailable = true
		h.m.log.Debug("source cluster unavailable", "link", h.link, "err", err)
		return true
	}
	return false
}

// growMirror adds partitions to a mirror topic whose source grew, then
// records the new count, so the copy of the new partitions begins.
func (m *Manager) growMirror(ctx context.Context, linkName, topic string, partitions int32) error {
	m.mu.RLock()
	mir := m.mirrors[topic]
	m.mu.RUnlock()
	if mir == nil || mir.Link != linkName || mir.Partitions >= partitions {
		return nil
	}
	adm := kadm.NewClient(m.cfg.Dest)
	resp, err := adm.UpdatePartitions(ctx, int(partitions), topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil && !errors.Is(err, kerr.InvalidPartitions) {
		return err
	}
	// INVALID_PARTITIONS: the destination has them already (a crash after
	// adding them and before recording the count).
	if _, err := m.updateMirror(ctx, topic, func(next *Mirror) error {
		if next.Partitions >= partitions {
			return errNoChange
		}
		next.Partitions = partitions
		return nil
	}); err != nil {
		return err
	}
	m.log.Info("mirror follows source partitions", "topic", topic, "partitions", partitions)
	m.reconcile(linkName)
	return nil
}
