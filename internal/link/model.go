package link

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/linksync"
	"github.com/strait-dev/strait/internal/mirror"
	"github.com/strait-dev/strait/internal/store"
)

// Status is a mirror topic's status, as the REST API names it.
type Status string

// Mirror statuses (the contract's MirrorTopicStatus enum). Only these may
// ever be reported: Confluent's Go SDK rejects any other value.
const (
	StatusPendingMirror     Status = "PENDING_MIRROR"
	StatusActive            Status = "ACTIVE"
	StatusPaused            Status = "PAUSED"
	StatusLinkPaused        Status = "LINK_PAUSED"
	StatusSourceUnavailable Status = "SOURCE_UNAVAILABLE"
	StatusLinkFailed        Status = "LINK_FAILED"
	StatusFailed            Status = "FAILED"
	StatusPendingStopped    Status = "PENDING_STOPPED"
	StatusStopped           Status = "STOPPED"
	// StatusPendingSynchronize: a reverse is copying the last records
	// before it swaps the direction.
	StatusPendingSynchronize Status = "PENDING_SYNCHRONIZE"
	// StatusPendingSetupForRestore and StatusPendingRestore: a
	// truncate-and-restore is replacing the topic, then copying it.
	StatusPendingSetupForRestore Status = "PENDING_SETUP_FOR_RESTORE"
	StatusPendingRestore         Status = "PENDING_RESTORE"
)

// Statuses lists every status a client may filter on.
var Statuses = []Status{
	StatusActive, StatusFailed, StatusLinkFailed, StatusLinkPaused, StatusPaused,
	StatusPendingStopped, StatusSourceUnavailable, StatusStopped, StatusPendingMirror,
	StatusPendingSynchronize, StatusPendingSetupForRestore, StatusPendingRestore,
}

// TopicErrorNone is the mirror_topic_error of a healthy mirror.
const TopicErrorNone = "NO_ERROR"

// Link is a cluster link as stored in the state topic.
type Link struct {
	Name string `json:"name"`
	// ID is the link's UUID, 16 bytes hex-encoded.
	ID              string         `json:"id"`
	SourceClusterID string         `json:"source_cluster_id"`
	Configs         linkconfig.Set `json:"configs"`
	CreatedMs       int64          `json:"created_ms"`
	// SyncedACLs are the ACLs the link's ACL sync created on the
	// destination: the only ones it may remove.
	SyncedACLs []linksync.ACL `json:"synced_acls,omitempty"`
}

// UUID returns the link id in canonical 8-4-4-4-12 form (link_id).
func (l *Link) UUID() string {
	h := l.ID
	if len(h) != 32 {
		return h
	}
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// ClusterLinkID returns the id as Confluent prints it (cluster_link_id): the
// 16 bytes in URL-safe base64 without padding.
func (l *Link) ClusterLinkID() string {
	b, err := hex.DecodeString(l.ID)
	if err != nil {
		return l.ID
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TransitionError is one entry of mirror_state_transition_errors.
type TransitionError struct {
	Code    string `json:"error_code"`
	Message string `json:"error_message"`
	TimeMs  int64  `json:"time_ms"`
}

// maxTransitionErrors bounds the errors kept per mirror.
const maxTransitionErrors = 10

// Mirror is a mirror topic as stored in the state topic.
type Mirror struct {
	Link        string `json:"link"`
	Topic       string `json:"topic"`
	SourceTopic string `json:"source_topic"`
	Partitions  int32  `json:"partitions"`
	// SourceTopicID is the source topic's id at creation, hex.
	SourceTopicID string `json:"source_topic_id,omitempty"`
	// Status is the stored status: PENDING_MIRROR, ACTIVE, PAUSED, FAILED,
	// PENDING_STOPPED or STOPPED. LINK_PAUSED and SOURCE_UNAVAILABLE are
	// derived from the link when reporting, never stored.
	Status      Status `json:"status"`
	StateTimeMs int64  `json:"state_time_ms"`
	TopicError  string `json:"topic_error"`
	// Fresh is true until every partition was set up once; the start
	// offset spec applies only then.
	Fresh       bool   `json:"fresh"`
	StartOffset string `json:"start_offset"`
	// StartedParts are the partitions of a Fresh mirror already set up;
	// the mirror stops being Fresh when all are. Instances that share
	// the partitions each report theirs.
	StartedParts []int32 `json:"started_parts,omitempty"`
	// Compacted is set when the mirror topic is compacted.
	Compacted bool `json:"compacted,omitempty"`
	// SkippedOffsets counts the source offsets deleted by the source's
	// retention before they could be copied.
	SkippedOffsets int64 `json:"skipped_offsets,omitempty"`
	// Align holds unfinished alignment targets by partition.
	Align map[int32]int64 `json:"align,omitempty"`
	// Writers are the producer identities the partitions are written as,
	// shared by every process that copies them (the fence, see
	// internal/mirror/fence.go).
	Writers          map[int32]mirror.WriterID `json:"writers,omitempty"`
	TransitionErrors []TransitionError         `json:"transition_errors,omitempty"`
	// PrevStatus is the status before a promote began (PENDING_STOPPED),
	// restored if the promote does not complete.
	PrevStatus Status `json:"prev_status,omitempty"`
	// StopLags are the partitions' lags when the mirror stopped: what a
	// failover left behind (all zero after a promote).
	StopLags []StopLag `json:"stop_lags,omitempty"`
	// Stalls are the partitions that copy nothing, with why (stalls.go).
	Stalls map[int32]string `json:"stalls,omitempty"`
	// Halt is set while an operation that ends the copy (promote,
	// failover, reverse, link delete) waits for every instance to stop
	// copying the mirror: no instance copies a halted mirror (halt.go).
	Halt string `json:"halt,omitempty"`
	// WriteDenials are the DENY WRITE ACLs Strait created on the topic,
	// recorded before they are created and removed when the mirror stops.
	WriteDenials []WriteDenial `json:"write_denials,omitempty"`
}

// WriteDenial is one DENY WRITE ACL on a mirror topic.
type WriteDenial struct {
	Principal string `json:"principal"`
	Host      string `json:"host"`
}

// StopLag is one partition's lag frozen when its mirror stopped.
type StopLag struct {
	Partition             int32 `json:"partition"`
	Lag                   int64 `json:"lag"`
	LastSourceFetchOffset int64 `json:"last_source_fetch_offset"`
	// MirrorEnd is the mirror's log end offset at the stop: the point the
	// mirror diverges from its source from then on.
	MirrorEnd int64 `json:"mirror_end"`
}

func (m *Mirror) clone() *Mirror {
	c := *m
	c.StartedParts = slices.Clone(m.StartedParts)
	c.Stalls = maps.Clone(m.Stalls)
	if m.Align != nil {
		c.Align = make(map[int32]int64, len(m.Align))
		for k, v := range m.Align {
			c.Align[k] = v
		}
	}
	if m.Writers != nil {
		c.Writers = make(map[int32]mirror.WriterID, len(m.Writers))
		for k, v := range m.Writers {
			c.Writers[k] = v
		}
	}
	c.TransitionErrors = append([]TransitionError(nil), m.TransitionErrors...)
	c.StopLags = append([]StopLag(nil), m.StopLags...)
	c.WriteDenials = append([]WriteDenial(nil), m.WriteDenials...)
	return &c
}

func (m *Mirror) addTransitionError(code, msg string, nowMs int64) {
	m.TransitionErrors = append(m.TransitionErrors, TransitionError{Code: code, Message: msg, TimeMs: nowMs})
	if n := len(m.TransitionErrors); n > maxTransitionErrors {
		m.TransitionErrors = m.TransitionErrors[n-maxTransitionErrors:]
	}
}

// sourceTopicID decodes SourceTopicID.
func (m *Mirror) sourceTopicID() [16]byte {
	var id [16]byte
	b, err := hex.DecodeString(m.SourceTopicID)
	if err == nil && len(b) == 16 {
		copy(id[:], b)
	}
	return id
}

// Store keys.
const (
	linkKeyPrefix   = "link/"
	mirrorKeyPrefix = "mirror/"
)

func linkKey(name string) string { return linkKeyPrefix + name }

func mirrorKey(linkName, topic string) string { return mirrorKeyPrefix + linkName + "/" + topic }

// decodeState turns the store's records into links and mirrors, and the
// offsets of the records they come from.
func decodeState(kv map[string]store.Entry) (map[string]*Link, map[string]*Mirror, map[string]int64, error) {
	links := map[string]*Link{}
	mirrors := map[string]*Mirror{}
	offsets := map[string]int64{}
	for k, e := range kv {
		offsets[k] = e.Offset
		if e.Value == nil {
			continue // deleted
		}
		l, m, err := decodeRecord(k, e.Value)
		if err != nil {
			return nil, nil, nil, err
		}
		if l != nil {
			links[l.Name] = l
		}
		if m != nil {
			mirrors[m.Topic] = m
		}
	}
	return links, mirrors, offsets, nil
}

// decodeRecord decodes one state record into a link or a mirror.
func decodeRecord(key string, value []byte) (*Link, *Mirror, error) {
	switch {
	case strings.HasPrefix(key, linkKeyPrefix):
		var l Link
		if err := json.Unmarshal(value, &l); err != nil {
			return nil, nil, fmt.Errorf("state record %q: %w", key, err)
		}
		if l.Configs == nil {
			l.Configs = linkconfig.Set{}
		}
		return &l, nil, nil
	case strings.HasPrefix(key, mirrorKeyPrefix):
		var m Mirror
		if err := json.Unmarshal(value, &m); err != nil {
			return nil, nil, fmt.Errorf("state record %q: %w", key, err)
		}
		return nil, &m, nil
	}
	return nil, nil, nil // a record of a later version: ignored
}
