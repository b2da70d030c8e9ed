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
// A link's operation lock (oplock.go) serializes the state-changing
// operations of that link only; they may wait on the network and on
// runners, and give up when their request's context ends. writeMu
// serializes read-modify-write of stored records, from operations and from
// runner hooks alike; it is never held while waiting on a runner, so a
// runner's hook can always finish. mu guards the in-memory maps for short
// reads and writes. Order: link operation lock, writeMu, mu.
package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/netguard"
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
	// MetadataInterval overrides how often sources are probed, and their
	// topics checked (tests).
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
	// Networks guards the addresses links may connect to; nil allows all.
	Networks *netguard.Guard
	// AllowTopicDelete lets DELETE /topics/{t} delete topics that are not
	// mirror topics.
	AllowTopicDelete bool
	// StallTimeout is how long a mirror partition with offsets to copy
	// may copy nothing before it is reported stalled; zero means one
	// minute.
	StallTimeout time.Duration
	// MaxTopicsPerRequest caps the mirror topics one alter request may
	// name or match, so that one request cannot hold the daemon for long;
	// zero means DefaultMaxTopicsPerRequest.
	MaxTopicsPerRequest int
	// VerifyInterval turns the background verifier on (verify.go): every
	// interval the active instance verifies every mirror topic, reading at
	// most VerifyBytesPerSecond from each cluster. Zero turns it off.
	VerifyInterval       time.Duration
	VerifyBytesPerSecond int64
	// Observers receives each link's measurements (internal/metrics); nil
	// discards them.
	Observers Observers
	// Follower starts the Manager as a follower of the active instance
	// (see roles.go): it makes no change to the state until Lead.
	Follower bool
	// Instance names this instance in the commands it sends, for logs.
	Instance string
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

	// ops are the per-link operation locks (oplock.go).
	ops     opLocks
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

	// linkStates are the links' states as last logged (statelog.go).
	linkStates linkStates
	// taskResults are the link task errors the active instance recorded
	// (synclink.go), by link; guarded by mu.
	taskResults map[string]map[string][]linksync.TaskError

	// verifies are the verification checkpoints (see verify.go).
	verifies verifications

	// stale are links whose credentials were sealed with a previous
	// secrets key; guarded by writeMu.
	stale map[string]bool

	// leading is set while this Manager is the active one (roles.go);
	// ownFn says which partitions it copies, nil for all (guarded by
	// ownMu); followed is the offset of the next state record to apply.
	leading  atomic.Bool
	ownMu    sync.Mutex
	ownFn    func(topic string, partition int32) bool
	ownerOf  func(topic string, partition int32) string
	followed atomic.Int64

	// cmds are the commands between instances (commands.go); halts the
	// mirrors being halted (halt.go).
	cmds  commands
	halts halts

	// bgCtx ends with the Manager: background goroutines (state follower,
	// restore loop, commands) use it; stopBG cancels it, bg waits for
	// them.
	bgCtx  context.Context
	stopBG context.CancelFunc
	bg     sync.WaitGroup
}

// New loads the state from the store and starts mirroring. Unless
// cfg.Follower is set, the Manager is the active one from the start (see
// roles.go); a follower copies nothing until SetOwnership.
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
	m := &Manager{cfg: cfg, log: cfg.Log, runs: map[string]*linkRun{}, stale: map[string]bool{}}
	m.bgCtx, m.stopBG = context.WithCancel(context.Background())
	m.HandleCommands(hookKind, m.handleHook)
	if cfg.Follower {
		m.ownFn = func(string, int32) bool { return false }
	}
	kv, next, err := cfg.Store.Load(ctx)
	if err != nil {
		m.stopBG()
		return nil, err
	}
	if err := cfg.Store.CheckFormat(ctx, kv, cfg.ClusterID); err != nil {
		m.stopBG()
		return nil, err
	}
	m.links, m.mirrors, m.offsets, err = decodeState(kv)
	if err != nil {
		m.stopBG()
		return nil, err
	}
	m.verifies.records = loadVerifications(kv)
	for k, e := range kv {
		if m.applyCommandRecord(k, e) {
			continue
		}
		m.applyTasksRecord(k, e)
	}
	for _, l := range m.links {
		stale, err := m.openLink(l)
		if err != nil {
			m.stopBG()
			return nil, err
		}
		if stale {
			m.stale[l.Name] = true
		}
	}
	m.followed.Store(next)
	if !cfg.Follower {
		if err := m.repair(ctx); err != nil {
			m.stopBG()
			return nil, err
		}
		m.leading.Store(true)
	}
	for _, l := range m.links {
		// A run's sync tasks start at once and look up their link.
		run := m.startRun(l)
		m.mu.Lock()
		m.runs[l.Name] = run
		m.mu.Unlock()
	}
	for name := range m.links {
		m.reconcile(name)
	}
	m.log.Info("state loaded", "links", len(m.links), "mirrors", len(m.mirrors), "active", m.Leading())
	m.bg.Add(3)
	go m.follow(m.bgCtx, next)
	go m.maintenanceLoop(m.bgCtx, 2*time.Second)
	go m.verifyLoop(m.bgCtx)
	return m, nil
}

// repair finishes, as the active instance, what a crash of the previous
// one may have left half done: credentials sealed with an old key, the
// mirrors of a link deleted with force, a promote or a halt that was
// never answered, a mirror topic not yet created, a reverse under way.
func (m *Manager) repair(ctx context.Context) error {
	m.writeMu.Lock()
	m.mu.RLock()
	var stale []*Link
	for name := range m.stale {
		if l := m.links[name]; l != nil {
			stale = append(stale, l)
		}
	}
	mirrors := make([]*Mirror, 0, len(m.mirrors))
	for _, mir := range m.mirrors {
		mirrors = append(mirrors, mir)
	}
	m.mu.RUnlock()
	for _, l := range stale {
		// Sealed with a previous secrets key: seal again with the
		// current one, so that the previous key can be dropped.
		if err := m.putLinkLocked(ctx, l); err != nil {
			m.writeMu.Unlock()
			return fmt.Errorf("seal link %s with the current secrets key: %w", l.Name, err)
		}
		delete(m.stale, l.Name)
		m.log.Info("link credentials sealed again with the current secrets key", "link", l.Name)
	}
	for _, mir := range mirrors {
		var err error
		m.mu.RLock()
		orphan := m.links[mir.Link] == nil
		m.mu.RUnlock()
		switch {
		case orphan:
			// A crash during a forced link delete can leave mirrors of a
			// link that is gone; finish that delete.
			err = m.deleteMirrorLocked(ctx, mir)
		case mir.Status == StatusPendingStopped:
			// A promote was under way and never answered: undo it. (A
			// reverse, PENDING_SYNCHRONIZE, is settled once the remote
			// can be asked: see settleReverses.)
			undo := mir.clone()
			undo.Status, undo.PrevStatus, undo.Halt = undo.PrevStatus, "", ""
			if undo.Status == "" {
				undo.Status = StatusActive
			}
			err = m.putMirrorLocked(ctx, undo)
		case mir.Halt != "" && mir.Status != StatusPendingSynchronize:
			// An operation that halted the copy never finished.
			undo := mir.clone()
			undo.Halt = ""
			err = m.putMirrorLocked(ctx, undo)
		}
		if err != nil {
			m.writeMu.Unlock()
			return fmt.Errorf("repair mirror %s: %w", mir.Topic, err)
		}
	}
	m.writeMu.Unlock()
	for _, mir := range mirrors {
		if mir.Fresh && mir.Status != StatusFailed {
			// The mirror record is written before its topic is created;
			// a crash between the two leaves a mirror without a topic.
			if err := m.ensureMirrorTopic(ctx, mir); err != nil {
				m.log.Warn("create mirror topic", "topic", mir.Topic, "err", err)
			}
		}
	}
	m.settleReverses(ctx)
	return nil
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
	defer m.waitOps()()
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

// linkErrorMessage is link_error_message for a link_error: the category in
// words, never the connection error itself (what answered at the address
// the caller chose), which goes to the log.
func linkErrorMessage(code string) string {
	switch code {
	case "AUTHENTICATION_ERROR":
		return "The source cluster refused the link's credentials; see Strait's log."
	case "TIMEOUT_ERROR":
		return "The source cluster did not answer in time; see Strait's log."
	case "BOOTSTRAP_TCP_CONNECTION_FAILED_ERROR":
		return "Strait cannot connect to the source cluster's bootstrap servers; see Strait's log."
	case "MISCONFIGURATION_ERROR":
		return "The link's connection settings cannot be used; see Strait's log."
	}
	return "The source cluster cannot be reached; see Strait's log."
}

// describeError names a source connection problem for link_error.
func describeError(err error) string {
	switch {
	case err == nil:
		return "NO_ERROR"
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism), errors.As(err, new(*kafkaclient.OAuthError)):
		return "AUTHENTICATION_ERROR"
	case errors.Is(err, context.DeadlineExceeded):
		return "TIMEOUT_ERROR"
	case errors.Is(err, netguard.ErrDenied), kafkaclient.IsUnreachable(err):
		return "BOOTSTRAP_TCP_CONNECTION_FAILED_ERROR"
	default:
		return "UNKNOWN"
	}
}
