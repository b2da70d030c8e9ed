package link

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/store"
	"github.com/strait-dev/strait/internal/verify"
)

// Verification of mirror topics against their sources (internal/verify),
// with a checkpoint per partition in the state topic so that a run reads
// only what was written since the one before. The checkpoints of a mirror
// topic are one record, verify/<link>/<topic>, which also names the topic
// ids they belong to: a topic deleted and created again, or replaced by a
// truncate-and-restore, starts over.

const verifyKeyPrefix = "verify/"

func verifyKey(linkName, topic string) string { return verifyKeyPrefix + linkName + "/" + topic }

// Checkpoint is how far one partition is verified.
type Checkpoint struct {
	// Verified is the offset below which the mirror was compared with
	// its source and agrees (from the later of their log starts).
	Verified int64 `json:"verified_offset"`
	// Divergence is the first difference found, nil when none.
	Divergence *verify.Divergence `json:"divergence,omitempty"`
	// TimeMs is when the partition was last verified.
	TimeMs int64 `json:"time_ms"`
}

// verifyRecord is the state record of a mirror topic's checkpoints.
type verifyRecord struct {
	Link          string                `json:"link"`
	Topic         string                `json:"topic"`
	MirrorTopicID string                `json:"mirror_topic_id"`
	SourceTopicID string                `json:"source_topic_id"`
	Partitions    map[int32]*Checkpoint `json:"partitions"`
}

// verifications holds the checkpoints in memory and serializes the
// verifications of each mirror topic.
type verifications struct {
	mu      sync.Mutex
	records map[string]*verifyRecord // by state key
	running map[string]chan struct{} // by state key: one run at a time
}

// loadVerifications reads the checkpoint records of a loaded state.
func loadVerifications(kv map[string]store.Entry) map[string]*verifyRecord {
	out := map[string]*verifyRecord{}
	for k, e := range kv {
		if !strings.HasPrefix(k, verifyKeyPrefix) || e.Value == nil {
			continue
		}
		var r verifyRecord
		if json.Unmarshal(e.Value, &r) == nil {
			out[k] = &r
		}
	}
	return out
}

// lock takes the verification lock of a mirror topic, waiting until ctx
// ends.
func (v *verifications) lock(ctx context.Context, key string) (func(), error) {
	v.mu.Lock()
	if v.running == nil {
		v.running = map[string]chan struct{}{}
	}
	ch, ok := v.running[key]
	if !ok {
		ch = make(chan struct{}, 1)
		v.running[key] = ch
	}
	v.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("another verification of the topic is under way: %w", ctx.Err())
	}
}

func (v *verifications) get(key string) *verifyRecord {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.records[key]
}

func (v *verifications) set(key string, r *verifyRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.records == nil {
		v.records = map[string]*verifyRecord{}
	}
	v.records[key] = r
}

// VerifyOptions tune a verification.
type VerifyOptions struct {
	// Partitions to verify; empty means all.
	Partitions []int32
	// FromStart ignores the checkpoints: everything the logs hold is
	// compared again.
	FromStart bool
	// BytesPerSecond caps what is read from each cluster; zero or less
	// reads as fast as they answer.
	BytesPerSecond int64
}

// VerifyResult is a verification of one mirror topic.
type VerifyResult struct {
	Link        string
	Topic       string
	SourceTopic string
	Status      Status
	Partitions  []verify.PartitionResult
	Stats       verify.Stats
	Took        time.Duration
}

// Diverged reports whether a partition differs from its source.
func (r *VerifyResult) Diverged() bool {
	for _, p := range r.Partitions {
		if p.Divergence != nil {
			return true
		}
	}
	return false
}

// Complete reports whether every partition was verified up to the end of
// the mirror (or of the source, when the mirror is ahead) without a
// difference.
func (r *VerifyResult) Complete() bool {
	for _, p := range r.Partitions {
		if p.Divergence != nil || p.Error != "" || p.Verified < min(p.SourceEnd, p.MirrorEnd) {
			return false
		}
	}
	return true
}

// VerifyMirror compares a mirror topic with its source, partition by
// partition, from each partition's checkpoint up to where both have data,
// and records the new checkpoints. A STOPPED mirror is compared up to its
// end when it stopped.
func (m *Manager) VerifyMirror(ctx context.Context, linkName, topic string, opt VerifyOptions) (VerifyResult, error) {
	mir, err := m.lookupMirror(linkName, topic)
	if err != nil {
		return VerifyResult{}, err
	}
	_, run, err := m.linkAndRun(linkName)
	if err != nil {
		return VerifyResult{}, err
	}
	if run == nil || run.src == nil {
		return VerifyResult{}, errorf(ErrInvalid, "Cluster link '%s' cannot reach its source, so mirror topic '%s' cannot be verified.", linkName, topic)
	}
	parts := opt.Partitions
	if len(parts) == 0 {
		for p := int32(0); p < mir.Partitions; p++ {
			parts = append(parts, p)
		}
	}
	for _, p := range parts {
		if p < 0 || p >= mir.Partitions {
			return VerifyResult{}, errorf(ErrInvalid, "Mirror topic '%s' has no partition %d (it has %d).", topic, p, mir.Partitions)
		}
	}
	slices.Sort(parts)
	parts = slices.Compact(parts)
	key := verifyKey(linkName, topic)
	unlock, err := m.verifies.lock(ctx, key)
	if err != nil {
		return VerifyResult{}, err
	}
	defer unlock()
	destID, err := m.topicID(ctx, topic)
	if err != nil {
		return VerifyResult{}, err
	}
	rec := m.verifies.get(key)
	if rec == nil || rec.MirrorTopicID != destID || rec.SourceTopicID != mir.SourceTopicID {
		rec = &verifyRecord{Link: linkName, Topic: topic, MirrorTopicID: destID, SourceTopicID: mir.SourceTopicID, Partitions: map[int32]*Checkpoint{}}
	}
	t := verify.Target{Source: run.src, Mirror: m.cfg.Dest, SourceTopic: mir.SourceTopic, MirrorTopic: topic,
		Partitions: parts, Compacted: mir.Compacted, From: map[int32]int64{}}
	if !opt.FromStart {
		for p, cp := range rec.Partitions {
			t.From[p] = cp.Verified
		}
	}
	if mir.Status == StatusStopped {
		t.MirrorEnds = map[int32]int64{}
		for _, l := range mir.StopLags {
			t.MirrorEnds[l.Partition] = l.MirrorEnd
		}
	}
	rep, err := verify.Run(ctx, t, verify.Options{BytesPerSecond: opt.BytesPerSecond})
	if err != nil {
		if ctx.Err() != nil {
			return VerifyResult{}, err
		}
		// The logs' offsets could not be read: nothing was compared.
		return VerifyResult{}, errorf(ErrInvalid, "Mirror topic '%s' cannot be verified now: %v", topic, err)
	}
	if err := m.saveCheckpoints(ctx, key, rec, rep.Partitions); err != nil {
		return VerifyResult{}, err
	}
	return VerifyResult{Link: linkName, Topic: topic, SourceTopic: mir.SourceTopic, Status: m.status(mir),
		Partitions: rep.Partitions, Stats: rep.Stats, Took: rep.Took}, nil
}

// saveCheckpoints records a run's results: a partition's checkpoint moves
// to where the run got, and its divergence is the run's.
func (m *Manager) saveCheckpoints(ctx context.Context, key string, old *verifyRecord, results []verify.PartitionResult) error {
	next := *old
	next.Partitions = make(map[int32]*Checkpoint, len(old.Partitions))
	for p, cp := range old.Partitions {
		c := *cp
		next.Partitions[p] = &c
	}
	now := m.nowMs()
	for _, r := range results {
		next.Partitions[r.Partition] = &Checkpoint{Verified: r.Verified, Divergence: r.Divergence, TimeMs: now}
	}
	b, err := json.Marshal(&next)
	if err != nil {
		return err
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	off, err := m.cfg.Store.Put(ctx, key, b)
	if err != nil {
		return fmt.Errorf("record verification checkpoints: %w", err)
	}
	m.offsets[key] = off // our own record: the state follower skips it
	m.verifies.set(key, &next)
	return nil
}

// topicID returns a destination topic's id, hex.
func (m *Manager) topicID(ctx context.Context, topic string) (string, error) {
	td, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, topic)
	if err != nil {
		return "", fmt.Errorf("describe topic %s: %w", topic, err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		return "", errorf(ErrTopicNotFound, "Topic '%s' does not exist on the destination.", topic)
	}
	return hex.EncodeToString(d.ID[:]), nil
}

// MirrorCheckpoint is a mirror partition's verification checkpoint as the
// metrics report it.
type MirrorCheckpoint struct {
	Link, Topic string
	Partition   int32
	Checkpoint
}

// Checkpoints lists the verification checkpoints of every mirror topic
// that still exists, by link, topic and partition.
func (m *Manager) Checkpoints() []MirrorCheckpoint {
	m.verifies.mu.Lock()
	recs := make([]*verifyRecord, 0, len(m.verifies.records))
	for _, r := range m.verifies.records {
		recs = append(recs, r)
	}
	m.verifies.mu.Unlock()
	var out []MirrorCheckpoint
	for _, r := range recs {
		m.mu.RLock()
		mir, ok := m.mirrors[r.Topic]
		m.mu.RUnlock()
		if !ok || mir.Link != r.Link {
			continue
		}
		for p, cp := range r.Partitions {
			out = append(out, MirrorCheckpoint{Link: r.Link, Topic: r.Topic, Partition: p, Checkpoint: *cp})
		}
	}
	slices.SortFunc(out, func(a, b MirrorCheckpoint) int {
		if c := strings.Compare(a.Link+"/"+a.Topic, b.Link+"/"+b.Topic); c != 0 {
			return c
		}
		return int(a.Partition - b.Partition)
	})
	return out
}

// MirrorCheckpoints returns the verification checkpoints of a mirror
// topic, by partition; none before its first verification.
func (m *Manager) MirrorCheckpoints(linkName, topic string) ([]MirrorCheckpoint, error) {
	if _, err := m.lookupMirror(linkName, topic); err != nil {
		return nil, err
	}
	var out []MirrorCheckpoint
	for _, cp := range m.Checkpoints() {
		if cp.Link == linkName && cp.Topic == topic {
			out = append(out, cp)
		}
	}
	return out, nil
}

// applyVerifyRecord brings checkpoints another instance recorded into
// memory; it reports whether key was such a record.
func (m *Manager) applyVerifyRecord(key string, e store.Entry) bool {
	if !strings.HasPrefix(key, verifyKeyPrefix) {
		return false
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	if off, ok := m.offsets[key]; ok && off >= e.Offset {
		return true // our own write
	}
	m.offsets[key] = e.Offset
	var r verifyRecord
	if e.Value == nil || json.Unmarshal(e.Value, &r) != nil {
		m.verifies.mu.Lock()
		delete(m.verifies.records, key)
		m.verifies.mu.Unlock()
		return true
	}
	m.verifies.set(key, &r)
	return true
}
