package link

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/mirror"
)

// MirrorView is a mirror topic as the API reports it.
type MirrorView struct {
	Link             string
	Topic            string
	SourceTopic      string
	Partitions       int32
	Status           Status
	TopicError       string
	StateTimeMs      int64
	Lags             []mirror.Lag
	TransitionErrors []TransitionError
	// SkippedOffsets counts source offsets lost to the mirror (retention
	// deleted them before they were copied).
	SkippedOffsets int64
	// CopiedBy names, by partition, the instance that copies it when
	// several share the work; empty for a single instance.
	CopiedBy map[int32]string
}

// CreateMirrorRequest is what creating a mirror topic takes.
type CreateMirrorRequest struct {
	SourceTopic       string
	MirrorTopic       string
	ReplicationFactor int
	Configs           []ConfigValue
}

var topicNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validTopicName(what, name string) error {
	if name == "." || name == ".." || !topicNameRE.MatchString(name) {
		return errorf(ErrInvalid, "Invalid %s '%s': use 1 to 249 characters of [a-zA-Z0-9._-], and not '.' or '..'.", what, name)
	}
	return nil
}

// internalTopics cannot be mirrored: they belong to the cluster itself.
var internalTopics = []string{"__consumer_offsets", "__transaction_state", "__cluster_metadata", "__share_group_state"}

// lockedConfigs are topic configs a mirror topic cannot take: they would
// make the destination change the bytes or refuse them.
var lockedConfigs = []string{"compression.type", "message.timestamp.type", "message.timestamp.difference.max.ms",
	"message.timestamp.before.max.ms", "message.timestamp.after.max.ms", "message.format.version", "message.downconversion.enable"}

// CreateMirror creates a mirror topic on the link: a destination topic with
// the source's partition count, copied from the source from the link's
// mirror.start.offset.spec on.
func (m *Manager) CreateMirror(ctx context.Context, linkName string, req CreateMirrorRequest) error {
	unlock, err := m.lockLink(ctx, linkName)
	if err != nil {
		return err
	}
	defer unlock()
	return m.createMirrorLocked(ctx, linkName, req)
}

// createMirrorLocked is CreateMirror for a caller holding the link's
// operation lock.
func (m *Manager) createMirrorLocked(ctx context.Context, linkName string, req CreateMirrorRequest) error {
	l, run, err := m.linkAndRun(linkName)
	if err != nil {
		return err
	}
	if req.SourceTopic == "" {
		return errorf(ErrInvalid, "source_topic_name is required.")
	}
	if err := validTopicName("source topic name", req.SourceTopic); err != nil {
		return err
	}
	name := l.Configs.Prefix() + req.SourceTopic
	if req.MirrorTopic != "" {
		if l.Configs.Prefix() != "" && req.MirrorTopic != name {
			return errorf(ErrInvalid, "Mirror topic name must be '%s': link '%s' has cluster.link.prefix '%s'.", name, linkName, l.Configs.Prefix())
		}
		name = req.MirrorTopic
	}
	if err := validTopicName("mirror topic name", name); err != nil {
		return err
	}
	if slices.Contains(internalTopics, req.SourceTopic) || strings.HasPrefix(req.SourceTopic, "__strait") {
		return errorf(ErrInvalid, "Topic '%s' is an internal topic and cannot be mirrored.", req.SourceTopic)
	}
	if name == m.cfg.Store.Topic() || slices.Contains(internalTopics, name) {
		return errorf(ErrInvalid, "Topic '%s' is an internal topic name.", name)
	}
	if req.ReplicationFactor < -1 || req.ReplicationFactor > 32767 { // 0 means not given
		return errorf(ErrInvalid, "Invalid replication factor %d.", req.ReplicationFactor)
	}
	overrides := map[string]string{}
	for _, c := range req.Configs {
		if slices.Contains(lockedConfigs, c.Name) {
			return errorf(ErrInvalid, "Config '%s' cannot be set on a mirror topic: the mirror keeps the source's bytes and timestamps.", c.Name)
		}
		if c.Value == nil {
			return errorf(ErrInvalid, "Config '%s' has no value.", c.Name)
		}
		overrides[c.Name] = *c.Value
	}
	release, err := m.reserveTopic(name, linkName)
	if err != nil {
		return err
	}
	defer release()
	m.mu.RLock()
	_, taken := m.mirrors[name]
	m.mu.RUnlock()
	if taken {
		return errorf(ErrTopicExists, "Topic '%s' already exists.", name)
	}
	if run == nil || run.buildErr != nil {
		return errorf(ErrInvalid, "Cluster link '%s' cannot reach its source: %v", linkName, run.buildErr)
	}

	// The source topic and the destination are asked at the same time:
	// creating a thousand mirrors one after another is round trips.
	type destCheck struct {
		exists bool
		err    error
	}
	dc := make(chan destCheck, 1)
	go func() {
		destTopics, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, name)
		d, ok := destTopics[name]
		dc <- destCheck{ok && d.Err == nil, err}
	}()
	src, err := m.describeSourceTopic(ctx, run, linkName, req.SourceTopic)
	dest := <-dc
	if err != nil {
		return err
	}
	if dest.err != nil {
		return fmt.Errorf("describe destination topic: %w", dest.err)
	}
	if dest.exists {
		return errorf(ErrTopicExists, "Topic '%s' already exists.", name)
	}

	now := m.nowMs()
	mir := &Mirror{
		Link:          linkName,
		Topic:         name,
		SourceTopic:   req.SourceTopic,
		Partitions:    src.partitions,
		SourceTopicID: hex.EncodeToString(src.id[:]),
		Status:        StatusPendingMirror,
		StateTimeMs:   now,
		TopicError:    TopicErrorNone,
		Fresh:         true,
		StartOffset:   l.Configs.Get(linkconfig.MirrorStartOffsetSpec),
		Compacted:     src.compacted,
	}
	m.writeMu.Lock()
	err = m.putMirrorLocked(ctx, mir)
	m.writeMu.Unlock()
	if err != nil {
		return err
	}
	rf := int16(req.ReplicationFactor)
	if req.ReplicationFactor == 0 {
		rf = -1
	}
	if err := createTopic(ctx, m.cfg.Dest, name, src.partitions, rf, mirrorTopicConfigs(src.configs, overrides)); err != nil {
		// Take the record back: the mirror never existed.
		m.writeMu.Lock()
		if derr := m.deleteMirrorLocked(ctx, mir); derr != nil {
			m.log.Error("take back mirror record", "topic", name, "err", derr)
		}
		m.writeMu.Unlock()
		return topicError(name, err)
	}
	m.reconcileTopic(linkName, name)
	if m.protectionWanted(mir) {
		if err := m.protect(ctx, name); err != nil {
			m.log.Warn("mirror write protection", "topic", name, "err", err)
		}
	}
	m.log.Info("mirror created", "link", linkName, "topic", name, "source_topic", req.SourceTopic, "partitions", src.partitions, "status", mir.Status)
	return nil
}

// topicError turns a CreateTopics error into a domain error.
func topicError(name string, err error) error {
	var ke *kerr.Error
	switch {
	case errors.Is(err, kerr.TopicAlreadyExists):
		return errorf(ErrTopicExists, "Topic '%s' already exists.", name)
	case errors.As(err, &ke) && !ke.Retriable:
		return errorf(ErrInvalid, "Cannot create topic '%s': %s", name, ke.Description)
	}
	return fmt.Errorf("create topic %q: %w", name, err)
}

// sourceTopic is what creating a mirror learns about its source topic.
type sourceTopic struct {
	partitions int32
	id         [16]byte
	configs    map[string]string
	compacted  bool
}

func (m *Manager) describeSourceTopic(ctx context.Context, run *linkRun, linkName, topic string) (sourceTopic, error) {
	var st sourceTopic
	adm := kadm.NewClient(run.src)
	// The configs are asked for alongside the topic: one round trip.
	type described struct {
		rcs kadm.ResourceConfigs
		err error
	}
	dc := make(chan described, 1)
	go func() {
		rcs, err := adm.DescribeTopicConfigs(ctx, topic)
		dc <- described{rcs, err}
	}()
	topics, err := adm.ListTopics(ctx, topic)
	cfgs := <-dc
	if err != nil {
		return st, errorf(ErrInvalid, "Unable to reach the source cluster of link '%s': %v", linkName, err)
	}
	d, ok := topics[topic]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return st, errorf(ErrInvalid, "Topic '%s' does not exist on the source cluster of link '%s'.", topic, linkName)
	}
	if d.Err != nil {
		return st, errorf(ErrInvalid, "Cannot describe source topic '%s': %v", topic, d.Err)
	}
	st.partitions = int32(len(d.Partitions))
	st.id = d.ID
	rcs, err := cfgs.rcs, cfgs.err
	if err != nil {
		return st, errorf(ErrInvalid, "Cannot describe the configs of source topic '%s': %v", topic, err)
	}
	st.configs = map[string]string{}
	for _, rc := range rcs {
		if rc.Err != nil {
			return st, errorf(ErrInvalid, "Cannot describe the configs of source topic '%s': %v", topic, rc.Err)
		}
		for _, c := range rc.Configs {
			if c.Value == nil {
				continue
			}
			// Only what the topic sets itself follows, so broker-wide
			// defaults of the source do not become topic overrides; the
			// size limit always follows, the mirror must take every batch.
			if c.Source == 1 /* DYNAMIC_TOPIC_CONFIG */ || c.Key == "max.message.bytes" {
				st.configs[c.Key] = *c.Value
			}
			if c.Key == "cleanup.policy" {
				// A compacted source makes a compacted mirror, which keeps
				// every offset with keyed filler records. (The value itself
				// follows above if the topic sets it.)
				st.compacted = strings.Contains(*c.Value, "compact")
			}
		}
	}
	return st, nil
}

// Mirrors lists the mirrors of a link ("" for every link), optionally only
// those with the given status.
func (m *Manager) Mirrors(linkName string, status string) ([]MirrorView, error) {
	if linkName != "" {
		m.mu.RLock()
		_, ok := m.links[linkName]
		m.mu.RUnlock()
		if !ok {
			return nil, linkNotFound(linkName)
		}
	}
	if status != "" && !slices.Contains(Statuses, Status(status)) {
		return nil, errorf(ErrInvalid, "Invalid mirror_status '%s'.", status)
	}
	out := []MirrorView{}
	mirs := m.mirrorsOf(linkName)
	m.refreshRemoteLags(mirs)
	for _, mir := range mirs {
		v := m.view(mir, false)
		if status == "" || string(v.Status) == status {
			out = append(out, v)
		}
	}
	return out, nil
}

// Mirror describes one mirror topic of a link.
func (m *Manager) Mirror(linkName, topic string, withErrors bool) (MirrorView, error) {
	mir, err := m.lookupMirror(linkName, topic)
	if err != nil {
		return MirrorView{}, err
	}
	m.refreshRemoteLags([]*Mirror{mir})
	return m.view(mir, withErrors), nil
}

func (m *Manager) lookupMirror(linkName, topic string) (*Mirror, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if _, ok := m.links[linkName]; !ok {
		return nil, linkNotFound(linkName)
	}
	mir, ok := m.mirrors[topic]
	if !ok || mir.Link != linkName {
		return nil, errorf(ErrMirrorNotFound, "Mirror topic '%s' does not exist on cluster link '%s'.", topic, linkName)
	}
	return mir, nil
}

func (m *Manager) view(mir *Mirror, withErrors bool) MirrorView {
	v := MirrorView{
		Link:           mir.Link,
		Topic:          mir.Topic,
		SourceTopic:    mir.SourceTopic,
		Partitions:     mir.Partitions,
		Status:         m.status(mir),
		TopicError:     mir.TopicError,
		StateTimeMs:    m.stateTimeMs(mir),
		Lags:           m.lags(mir),
		SkippedOffsets: mir.SkippedOffsets,
	}
	if v.TopicError == "" {
		v.TopicError = TopicErrorNone
	}
	if by := m.ownerFn(); by != nil && mir.Status != StatusStopped {
		v.CopiedBy = make(map[int32]string, mir.Partitions)
		for p := range mir.Partitions {
			if name := by(mir.Topic, p); name != "" {
				v.CopiedBy[p] = name
			}
		}
	}
	if v.TopicError == TopicErrorNone && (v.Status == StatusActive || v.Status == StatusPendingMirror || v.Status == StatusPendingRestore) && len(mir.Stalls) > 0 {
		// A partition copies nothing: see stalls.go and the
		// link's MirrorTopicCopy task for why.
		v.TopicError = "UNKNOWN"
	}
	if withErrors {
		v.TransitionErrors = append([]TransitionError{}, mir.TransitionErrors...)
	}
	return v
}

// lags returns a mirror's lag per partition; a partition nothing is known
// about reports lag 0 and last_source_fetch_offset -1. A stopped mirror
// reports the lag it had when it stopped.
func (m *Manager) lags(mir *Mirror) []mirror.Lag {
	if mir.Status == StatusStopped {
		out := make([]mirror.Lag, len(mir.StopLags))
		for i, l := range mir.StopLags {
			out[i] = mirror.Lag{Partition: l.Partition, Lag: l.Lag, LastSourceFetchOffset: l.LastSourceFetchOffset, MirrorEnd: l.MirrorEnd}
		}
		return out
	}
	m.mu.RLock()
	run := m.runs[mir.Link]
	m.mu.RUnlock()
	var got []mirror.Lag
	if run != nil && run.runner != nil {
		got = run.runner.Lags(mir.Topic)
	}
	out := make([]mirror.Lag, mir.Partitions)
	for i := range out {
		out[i] = mirror.Lag{Partition: int32(i), LastSourceFetchOffset: -1, MirrorEnd: -1}
		if i < len(got) {
			out[i] = got[i]
		}
	}
	return out
}

// refreshRemoteLags reads, from the clusters, the lag figures of the
// partitions of mirs that another instance copies and that are older than
// a second: this instance does not see their copy.
func (m *Manager) refreshRemoteLags(mirs []*Mirror) {
	byLink := map[string][]string{}
	for _, mir := range mirs {
		if mir.Status == StatusStopped {
			continue
		}
		if owned := m.ownedOf(mir); owned != nil && len(owned) < int(mir.Partitions) {
			byLink[mir.Link] = append(byLink[mir.Link], mir.Topic)
		}
	}
	for name, topics := range byLink {
		m.mu.RLock()
		run := m.runs[name]
		m.mu.RUnlock()
		if run == nil || run.runner == nil {
			continue
		}
		ctx, cancel := context.WithTimeout(m.bgCtx, 2*time.Second)
		run.runner.RefreshStale(ctx, time.Second, topics...)
		cancel()
	}
}

// MirrorLink returns the link a destination topic mirrors through, and
// false if it is not a mirror topic.
func (m *Manager) MirrorLink(topic string) (string, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if mir, ok := m.mirrors[topic]; ok {
		return mir.Link, true
	}
	return "", false
}
