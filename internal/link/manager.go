// Package link is the model and the owner of cluster links and mirror
// topics: it validates and applies every operation of the REST API, keeps
// the state durable in the store, and drives one mirror.Runner per link.
//
// # Durability
//
// Every change is written to the store (acks=all) before it is applied in
// memory and before the caller is answered. A crash at any point leaves the
// store with either the old or the new record; on restart the Manager loads
// the store and picks up where the records say.
//
// # Locks
//
// op serializes the API's state-changing operations; they may wait on the
// network and on runners. writeMu serializes read-modify-write of stored
// records, from operations and from runner hooks alike; it is never held
// while waiting on a runner, so a runner's hook can always finish. mu guards
// the in-memory maps for short reads and writes. Order: op, writeMu, mu.
package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/mirror"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/store"
)

// Config configures a Manager.
type Config struct {
	// Store holds the state; the Manager does not close it.
	Store *store.Store
	// Dest is a client for the destination cluster; not closed by the
	// Manager.
	Dest *kgo.Client
	// ClusterID is the destination cluster's id.
	ClusterID string
	Log       *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// MetadataInterval overrides how often sources are probed (tests).
	MetadataInterval time.Duration
	// PromoteTimeout bounds how long a promote waits for its mirrors to
	// catch up; zero means one minute.
	PromoteTimeout time.Duration
	// Principal is Strait's own principal on the destination, e.g.
	// User:strait; write protection never denies it.
	Principal string
	// Secrets seals sensitive link configs in the state topic. Without it
	// links cannot be given credentials.
	Secrets *secret.Sealer
	// MaxTopicsPerRequest caps the mirror topics one alter request may
	// name or match, so that one request cannot hold the daemon for long;
	// zero means DefaultMaxTopicsPerRequest.
	MaxTopicsPerRequest int
}

// DefaultMaxTopicsPerRequest is the default of Config.MaxTopicsPerRequest.
const DefaultMaxTopicsPerRequest = 10000

// maxPatternLen caps a mirror_topic_name_pattern: compiling and matching
// stay cheap.
const maxPatternLen = 1000

// Manager owns links and mirrors. It is safe for concurrent use.
type Manager struct {
	cfg Config
	log *slog.Logger

	// op is a one-slot semaphore rather than a mutex so that a sync task
	// waiting for it can give up when its link closes.
	op      chan struct{}
	writeMu sync.Mutex
	// reconcileMu serializes calls into the runners' Set.
	reconcileMu sync.Mutex

	mu      sync.RWMutex
	links   map[string]*Link
	mirrors map[string]*Mirror // by mirror topic name
	runs    map[string]*linkRun
	// offsets holds, per state key, the offset of the record the memory
	// reflects; guarded by writeMu.
	offsets map[string]int64

	// derived remembers, per mirror topic, the status a link condition
	// (paused, unavailable, failed) gives it and since when, so that
	// state_time_ms moves with those statuses too; see noteDerived.
	derivedMu sync.Mutex
	derived   map[string]derivedStatus

	// stopBG ends the background goroutines (state follower, restore
	// loop); bg waits for them.
	stopBG context.CancelFunc
	bg     sync.WaitGroup
}

// New loads the state from the store and starts mirroring.
func New(ctx context.Context, cfg Config) (*Manager, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PromoteTimeout <= 0 {
		cfg.PromoteTimeout = time.Minute
	}
	if cfg.MaxTopicsPerRequest <= 0 {
		cfg.MaxTopicsPerRequest = DefaultMaxTopicsPerRequest
	}
	m := &Manager{cfg: cfg, log: cfg.Log, runs: map[string]*linkRun{}, op: make(chan struct{}, 1)}
	kv, next, err := cfg.Store.Load(ctx)
	if err != nil {
		return nil, err
	}
	m.links, m.mirrors, m.offsets, err = decodeState(kv)
	if err != nil {
		return nil, err
	}
	var stale []*Link
	for _, l := range m.links {
		old, err := m.openLink(l)
		if err != nil {
			return nil, err
		}
		if old {
			stale = append(stale, l)
		}
	}
	m.writeMu.Lock()
	for _, l := range stale {
		// Sealed with a previous secrets key: seal again with the
		// current one, so that the previous key can be dropped.
		if err := m.putLinkLocked(ctx, l); err != nil {
			m.writeMu.Unlock()
			return nil, fmt.Errorf("seal link %s with the current secrets key: %w", l.Name, err)
		}
		m.log.Info("link credentials sealed again with the current secrets key", "link", l.Name)
	}
	for topic, mir := range m.mirrors {
		switch {
		case m.links[mir.Link] == nil:
			// A crash during a forced link delete can leave mirrors of a
			// link that is gone; finish that delete.
			err = m.deleteMirrorLocked(ctx, mir)
		case mir.Status == StatusPendingStopped:
			// A promote was under way and never answered: undo it. (A
			// reverse, PENDING_SYNCHRONIZE, is settled once the remote
			// can be asked: see settleReverses.)
			undo := mir.clone()
			undo.Status, undo.PrevStatus = undo.PrevStatus, ""
			if undo.Status == "" {
				undo.Status = StatusActive
			}
			err = m.putMirrorLocked(ctx, undo)
		}
		if err != nil {
			m.writeMu.Unlock()
			return nil, fmt.Errorf("repair mirror %s: %w", topic, err)
		}
	}
	m.writeMu.Unlock()
	for _, l := range m.links {
		// A run's sync tasks start at once and look up their link.
		run := m.startRun(l)
		m.mu.Lock()
		m.runs[l.Name] = run
		m.mu.Unlock()
	}
	for _, mir := range m.mirrors {
		if mir.Fresh && mir.Status != StatusFailed {
			// The mirror record is written before its topic is created;
			// a crash between the two leaves a mirror without a topic.
			if err := m.ensureMirrorTopic(ctx, mir); err != nil {
				m.log.Warn("create mirror topic", "topic", mir.Topic, "err", err)
			}
		}
	}
	m.settleReverses(ctx)
	for name := range m.links {
		m.reconcile(name)
	}
	m.log.Info("state loaded", "links", len(m.links), "mirrors", len(m.mirrors))
	bctx, cancel := context.WithCancel(context.Background())
	m.stopBG = cancel
	m.bg.Add(2)
	go m.follow(bctx, next)
	go m.maintenanceLoop(bctx, 2*time.Second)
	return m, nil
}

func (m *Manager) lockOp()   { m.op <- struct{}{} }
func (m *Manager) unlockOp() { <-m.op }

// lockOpCtx is lockOp that gives up when ctx ends.
func (m *Manager) lockOpCtx(ctx context.Context) error {
	select {
	case m.op <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// linkAndRun returns a link and its running part, or ErrLinkNotFound.
func (m *Manager) linkAndRun(name string) (*Link, *linkRun, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.links[name]
	if !ok {
		return nil, nil, linkNotFound(name)
	}
	return l, m.runs[name], nil
}

// Close stops all mirroring.
func (m *Manager) Close() {
	if m.stopBG != nil {
		m.stopBG()
		m.bg.Wait()
	}
	m.lockOp()
	defer m.unlockOp()
	m.mu.Lock()
	runs := m.runs
	m.runs = map[string]*linkRun{}
	m.mu.Unlock()
	for _, r := range runs {
		r.close()
	}
}

// ClusterID is the destination cluster's id.
func (m *Manager) ClusterID() string { return m.cfg.ClusterID }

// CheckCluster returns ErrClusterNotFound unless id is the destination's.
func (m *Manager) CheckCluster(id string) error {
	if id != m.cfg.ClusterID {
		return errorf(ErrClusterNotFound, "Cluster %s cannot be found.", id)
	}
	return nil
}

func (m *Manager) nowMs() int64 { return m.cfg.Now().UnixMilli() }

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
	cs, err := l.Configs.Client()
	if err == nil {
		run.src, err = kafkaclient.New(cs, m.log.With("link", l.Name, "cluster", "source"))
	}
	if err != nil {
		run.buildErr = err
		m.log.Error("link source client", "link", l.Name, "err", err)
		// The tasks still start: they run no round while the link is
		// FAILED, and their Status lists them as LINK_FAILED rather
		// than the link having no tasks at all.
		run.sync = linksync.Start(&syncLink{m: m, name: l.Name, run: run}, m.log.With("link", l.Name))
		return run
	}
	interval := min(l.Configs.Duration(linkconfig.AvailabilityCheckMs), 5*time.Second)
	if m.cfg.MetadataInterval > 0 {
		interval = m.cfg.MetadataInterval
	}
	run.runner = mirror.NewRunner(mirror.Config{
		Source:            run.src,
		Dest:              m.cfg.Dest,
		Hooks:             &hooks{m: m, link: l.Name, run: run, cfg: l.Configs},
		Log:               m.log.With("link", l.Name),
		FetchMaxBytes:     int32(l.Configs.Int(linkconfig.ReplicaFetchResponseMax)),
		PartitionMaxBytes: int32(l.Configs.Int(linkconfig.ReplicaFetchMaxBytes)),
		FetchMaxWait:      l.Configs.Duration(linkconfig.ReplicaFetchWaitMaxMs),
		MetadataInterval:  interval,
		// A probe fails within availability.check.ms, so that an
		// outage is seen in about availability.check.ms x threshold.
		ProbeTimeout: min(max(l.Configs.Duration(linkconfig.AvailabilityCheckMs), time.Second), 15*time.Second),
		TxnIDPrefix:  "strait/" + l.Name,
	})
	run.sync = linksync.Start(&syncLink{m: m, name: l.Name, run: run}, m.log.With("link", l.Name))
	return run
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
	m.mu.RLock()
	var mirs []*Mirror
	for _, mir := range m.mirrors {
		if mir.Link == linkName {
			mirs = append(mirs, mir)
		}
	}
	m.mu.RUnlock()
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
	var specs []mirror.Spec
	if ok && run != nil && run.runner != nil {
		paused := l.Configs.Paused()
		for _, mir := range m.mirrors {
			if mir.Link != linkName || mir.Status == StatusStopped {
				continue
			}
			// A promote copies until it is done, even a paused mirror; a
			// promote is refused while the link is paused.
			copying := (mir.Status == StatusActive || mir.Status == StatusPendingMirror || mir.Status == StatusPendingRestore) && !paused ||
				mir.Status == StatusPendingStopped || mir.Status == StatusPendingSynchronize
			specs = append(specs, mirror.Spec{
				Topic:         mir.Topic,
				SourceTopic:   mir.SourceTopic,
				Partitions:    mir.Partitions,
				SourceTopicID: mir.sourceTopicID(),
				Copying:       copying,
				Fresh:         mir.Fresh,
				StartOffset:   mir.StartOffset,
				Align:         mir.Align,
				Compacted:     mir.Compacted,
			})
		}
	}
	m.mu.RUnlock()
	if run != nil && run.runner != nil {
		run.runner.Set(specs)
	}
}

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
	m.mirrors[mir.Topic] = mir
	m.mu.Unlock()
	return nil
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
		sealed, err := m.cfg.Secrets.Seal(v)
		if err != nil {
			return nil, err
		}
		out.Configs[name] = sealed
	}
	return &out, nil
}

// openLink opens, in place, the sealed configs of a link read from the
// state topic. stale reports a value sealed with a previous secrets key.
func (m *Manager) openLink(l *Link) (stale bool, err error) {
	for name, v := range l.Configs {
		if !secret.Sealed(v) {
			continue
		}
		if m.cfg.Secrets == nil {
			return false, fmt.Errorf("link %s has sealed credentials and no secrets key is configured", l.Name)
		}
		plain, old, err := m.cfg.Secrets.Unseal(v)
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

func newLinkID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = (b[6] & 0x0f) | 0x40 // version 4
	b[8] = (b[8] & 0x3f) | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:])
}

// ensureMirrorTopic creates the destination topic of a fresh mirror if it
// is missing.
func (m *Manager) ensureMirrorTopic(ctx context.Context, mir *Mirror) error {
	err := createTopic(ctx, m.cfg.Dest, mir.Topic, mir.Partitions, -1, mirrorTopicConfigs(nil, nil))
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	return err
}

// createTopic creates a topic. Brokers before Kafka 3.6 do not know the
// message.timestamp.before/after.max.ms configs (their defaults accept any
// timestamp), so an INVALID_CONFIG is retried without them.
func createTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32, rf int16, configs map[string]*string) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, topic)
	if err == nil {
		err = resp.Err
	}
	if errors.Is(err, kerr.InvalidConfig) {
		if _, ok := configs["message.timestamp.before.max.ms"]; ok {
			trimmed := make(map[string]*string, len(configs))
			for k, v := range configs {
				trimmed[k] = v
			}
			delete(trimmed, "message.timestamp.before.max.ms")
			delete(trimmed, "message.timestamp.after.max.ms")
			return createTopic(ctx, cl, topic, partitions, rf, trimmed)
		}
	}
	return err
}

// hooks receives a runner's reports for one link.
type hooks struct {
	m    *Manager
	link string
	run  *linkRun
	cfg  linkconfig.Set
}

func (h *hooks) Started(topic string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if !mir.Fresh || mir.Link != h.link {
			return errNoChange
		}
		mir.Fresh = false
		// A restore stays PENDING_RESTORE until it has copied everything
		// (finishRestores).
		if mir.Status == StatusPendingMirror {
			mir.Status = StatusActive
			mir.StateTimeMs = h.m.nowMs()
		}
		return nil
	})
	if err != nil {
		h.m.log.Error("record mirror start", "topic", topic, "err", err)
	}
}

func (h *hooks) Failed(topic, code, msg string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if mir.Link != h.link || mir.Status == StatusStopped || mir.Status == StatusFailed {
			return errNoChange
		}
		now := h.m.nowMs()
		mir.Status = StatusFailed
		mir.TopicError = code
		mir.StateTimeMs = now
		mir.addTransitionError(code, msg, now)
		return nil
	})
	if err != nil {
		h.m.log.Error("record mirror failure", "topic", topic, "err", err)
	}
}

func (h *hooks) SaveAlign(ctx context.Context, topic string, partition int32, target int64) error {
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		if target < 0 {
			if _, ok := mir.Align[partition]; !ok {
				return errNoChange
			}
			delete(mir.Align, partition)
			return nil
		}
		if mir.Align == nil {
			mir.Align = map[int32]int64{}
		}
		mir.Align[partition] = target
		return nil
	})
	return err
}

func (h *hooks) PartitionsGrew(topic string, partitions int32) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.m.growMirror(ctx, h.link, topic, partitions); err != nil {
		h.m.log.Warn("follow source partition growth", "topic", topic, "partitions", partitions, "err", err)
	}
}

func (h *hooks) Skipped(topic string, partition int32, from, to int64) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := h.m.updateMirror(ctx, topic, func(mir *Mirror) error {
		mir.SkippedOffsets += to - from
		mir.addTransitionError("SOURCE_RECORDS_EXPIRED", fmt.Sprintf("partition %d: the source deleted offsets %d to %d (retention or DeleteRecords) before they were copied; the mirror continues from %d (%d offsets lost to the mirror so far)", partition, from, to-1, to, mir.SkippedOffsets), h.m.nowMs())
		return nil
	})
	if err != nil {
		h.m.log.Error("record skipped offsets", "topic", topic, "err", err)
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
			h.m.log.Info("source cluster reachable again", "link", h.link)
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
	if !r.unavailable && now.Sub(r.failingSince) >= limit {
		r.unavailable = true
		h.m.log.Warn("source cluster unavailable", "link", h.link, "err", err)
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

// mirrorTopicConfigs returns the configs a mirror topic needs so the
// destination accepts the source's bytes unchanged, plus user overrides.
func mirrorTopicConfigs(sourceConfigs map[string]string, overrides map[string]string) map[string]*string {
	out := map[string]*string{
		// Keep the source's codec and batch layout as they are.
		"compression.type": kadm.StringPtr("producer"),
		// Keep the source's timestamps, however old.
		"message.timestamp.type":          kadm.StringPtr("CreateTime"),
		"message.timestamp.before.max.ms": kadm.StringPtr("9223372036854775807"),
		"message.timestamp.after.max.ms":  kadm.StringPtr("9223372036854775807"),
	}
	// Data configs that follow the source at creation.
	for _, name := range []string{"max.message.bytes", "retention.ms", "retention.bytes", "cleanup.policy"} {
		if v, ok := sourceConfigs[name]; ok {
			out[name] = kadm.StringPtr(v)
		}
	}
	for k, v := range overrides {
		out[k] = kadm.StringPtr(v)
	}
	return out
}

// describeError names a source connection problem for link_error.
func describeError(err error) string {
	switch {
	case err == nil:
		return "NO_ERROR"
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "AUTHENTICATION_ERROR"
	case errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT_ERROR"
	case kafkaclient.IsUnreachable(err):
		return "BOOTSTRAP_TCP_CONNECTION_FAILED_ERROR"
	default:
		return "UNKNOWN"
	}
}
