// Package group makes the Strait instances of one destination a group
// through the destination cluster's own group protocol (JoinGroup,
// SyncGroup, Heartbeat, LeaveGroup, as Kafka Connect does): no other
// coordination service.
//
// The group decides which instance is active: the one that copies the
// mirror partitions, runs the sync tasks and answers the API. The others
// are standbys, ready to take over. The coordinator removes a member that
// stops heartbeating for the session timeout and a new assignment picks
// another; the old active may still be running (frozen, cut off) and write
// late, which is why every write to a mirror partition is fenced by the
// broker as well (internal/mirror/fence.go). Ownership moving through the
// group keeps two instances from copying side by side; the fence makes an
// overlap harmless.
//
// Assignments are sticky: the member that is active keeps the role through
// rebalances (another instance joining or leaving), and keeps copying while
// the group rebalances. A member that loses its session (its heartbeats
// fail for the session timeout, or the coordinator answers that it is no
// longer a member) gives the role up at once.
package group

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/retry"
)

// ProtocolType names Strait's group protocol; Protocol is its one
// assignment strategy, versioned with the metadata format.
const (
	ProtocolType = "strait"
	// Protocol v2 shares the mirror partitions among the members (v1 had
	// one active member copy everything): the two cannot be in one group.
	Protocol = "strait-share-v2"
)

// Info describes a member to the others, in its JoinGroup metadata.
type Info struct {
	// Instance names the process (host and pid), for people.
	Instance string `json:"instance"`
	// URL is where the instance serves the REST API.
	URL string `json:"url,omitempty"`
	// Version is the Strait version.
	Version string `json:"version,omitempty"`
	// Format is the state format the instance reads and writes.
	Format int `json:"format"`
	// Standby members never become active.
	Standby bool `json:"standby,omitempty"`
	// StartedMs is when the instance started; the oldest becomes active
	// when no member is.
	StartedMs int64 `json:"started_ms"`
	// ActiveGeneration is the generation in which the member was last made
	// active and has been since, -1 when it is not active.
	ActiveGeneration int32 `json:"active_generation"`
	// Stable is the owner list of the last decision the member has
	// applied (see assign.go): the partitions it may be copying are the
	// ones the hash gives it under this list.
	Stable []string `json:"stable,omitempty"`
}

// Assignment is what the group decided, as this member learned it.
type Assignment struct {
	Generation int32
	// Active is set when this member is the active instance: the one that
	// applies the API's changes and runs the link-level work.
	Active bool
	// ActiveInstance and ActiveURL describe the active member, empty when
	// no member is active (all standbys, or a newer format nobody reads).
	ActiveInstance string
	ActiveURL      string
	// Members is the group, as the leader saw it.
	Members []Info
	// MemberIDs are the members' ids, in the order of Members.
	MemberIDs []string
	// Self is this member's id.
	Self string

	d *decision // nil when this member owns nothing (not joined, lost)
}

// Owns reports whether this member copies partition p of the mirror topic.
func (a Assignment) Owns(topic string, p int32) bool {
	return a.d != nil && a.d.owns(a.Self, keyOf(topic, p))
}

// Owner returns the instance that owns partition p of the mirror topic
// once the group is stable, "" when no member may own partitions.
func (a Assignment) Owner(topic string, p int32) string {
	if a.d == nil {
		return ""
	}
	id := owner(a.d.Owners, keyOf(topic, p))
	for i, mid := range a.MemberIDs {
		if mid == id {
			return a.Members[i].Instance
		}
	}
	return ""
}

// Owning reports whether this member may own partitions at all.
func (a Assignment) Owning() bool {
	return a.d != nil && slices.Contains(a.d.Owners, a.Self)
}

// Settling reports whether partitions are being handed over: some are
// owned by nobody until their previous owner has let them go.
func (a Assignment) Settling() bool { return a.d != nil && a.d.Revoke }

// Config configures a Member.
type Config struct {
	Client *kgo.Client
	// Group is the group id on the destination.
	Group string
	Info  Info
	// SessionTimeout is how long the coordinator keeps a member that does
	// not heartbeat (default 10 s); heartbeats go every third of it.
	SessionTimeout time.Duration
	// RebalanceTimeout is how long the coordinator waits for the members
	// to join again in a rebalance (default 10 s). A member joins again
	// within a heartbeat of a rebalance starting, whatever it is doing, so
	// this bounds only how long a dead member holds a rebalance up.
	RebalanceTimeout time.Duration
	Log              *slog.Logger
	// OnChange receives every change of the assignment. It must not
	// block: it runs on the member's loop.
	OnChange func(Assignment)
}

// joinWait bounds a JoinGroup or SyncGroup request: well past the
// rebalance timeout. A coordinator may start the rebalance timeout again
// whenever a member joins (kfake does): members that gave up waiting just
// past it and joined again would keep starting it, and a rebalance held up
// by a dead member would never end.
func (c *Config) joinWait() time.Duration {
	return 3*c.RebalanceTimeout + c.SessionTimeout
}

// heartbeatEvery is how often a member heartbeats: often enough that a
// rebalance (and so a hand-over) reaches every member within a second or
// so, and at most a third of the session timeout.
func (c *Config) heartbeatEvery() time.Duration {
	return min(c.SessionTimeout/3, time.Second)
}

// Member is this instance's membership. Run it with Run.
type Member struct {
	cfg Config

	mu       sync.Mutex
	memberID string
	current  Assignment
	lastOK   time.Time // the last answer of the coordinator that kept us in
	// rejoin asks the heartbeat loop to join again: a revoking decision
	// was applied (Applied), the group must hear it.
	rejoin chan struct{}
	// warnedProtocol is set once the refusal of another protocol was
	// logged.
	warnedProtocol bool
	// joining is set while a JoinGroup or SyncGroup is out.
	joining bool
}

// New returns a member; nothing is sent before Run.
func New(cfg Config) *Member {
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = 10 * time.Second
	}
	if cfg.RebalanceTimeout <= 0 {
		cfg.RebalanceTimeout = 10 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Info.ActiveGeneration = -1
	return &Member{cfg: cfg, rejoin: make(chan struct{}, 1)}
}

// Applied tells the member that the decision of generation gen has been
// applied: every partition it no longer owns has stopped. From then on it
// tells the group so, and after a revoking decision it joins again at
// once, so that the partitions it let go start at their new owners.
func (m *Member) Applied(gen int32) {
	m.mu.Lock()
	a := m.current
	if a.Generation != gen || a.d == nil {
		m.mu.Unlock()
		return
	}
	m.cfg.Info.Stable = slices.Clone(a.d.Owners)
	again := a.d.Revoke
	m.mu.Unlock()
	if again {
		select {
		case m.rejoin <- struct{}{}:
		default:
		}
	}
}

// Current is the assignment as last learned.
func (m *Member) Current() Assignment {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current
}

// Run joins the group and stays in it until ctx ends, then leaves it (so
// that another member takes over at once rather than after the session
// timeout). Errors are retried; Run returns only when ctx ends or on a
// permanent error (for example a missing permission on the group).
func (m *Member) Run(ctx context.Context) error {
	defer m.leave()
	watch, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go m.watchSession(watch)
	var bo retry.Backoff
	for ctx.Err() == nil {
		gen, err := m.join(ctx)
		if err == nil {
			bo.Reset()
			err = m.heartbeat(ctx, gen)
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, errRejoin):
			continue
		case errors.Is(err, kerr.InconsistentGroupProtocol):
			// Instances of another Strait version (another protocol) are
			// in the group: this one waits until they are gone.
			m.mu.Lock()
			warn := !m.warnedProtocol
			m.warnedProtocol = true
			m.mu.Unlock()
			if warn {
				m.cfg.Log.Error("the group has members of another Strait version, which share the work differently; this instance waits until they stop (upgrade every instance: see docs/scale-out.md)", "group", m.cfg.Group, "protocol", Protocol)
			}
			if err := retry.Sleep(ctx, 5*time.Second); err != nil {
				return nil
			}
			continue
		case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.FencedInstanceID):
			// The coordinator no longer counts us: whatever we were, we
			// are not it now.
			m.lose(err)
			if errors.Is(err, kerr.UnknownMemberID) {
				m.setMemberID("")
			}
			continue
		case !retry.Transient(err):
			m.lose(err)
			return fmt.Errorf("group %s: %w", m.cfg.Group, err)
		}
		m.cfg.Log.Warn("group membership", "group", m.cfg.Group, "err", err)
		if err := retry.Sleep(ctx, bo.Next()); err != nil {
			return nil
		}
	}
	return nil
}

var errRejoin = errors.New("rejoin")

func (m *Member) setMemberID(id string) {
	m.mu.Lock()
	m.memberID = id
	m.mu.Unlock()
}

func (m *Member) kept() {
	m.mu.Lock()
	m.lastOK = time.Now()
	m.mu.Unlock()
}

// watchSession gives the active role up when the coordinator has not
// confirmed the membership for a session timeout: by then it has removed
// this member and may have made another one active.
func (m *Member) watchSession(ctx context.Context) {
	t := time.NewTicker(m.cfg.SessionTimeout / 10)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		m.mu.Lock()
		// A member waiting in a rebalance is waited for by the
		// coordinator for the rebalance timeout: its silence is the
		// coordinator's, not a lost session.
		limit := m.cfg.SessionTimeout
		if m.joining {
			limit += m.cfg.RebalanceTimeout
		}
		late := (m.current.Active || m.current.d != nil) && time.Since(m.lastOK) > limit
		m.mu.Unlock()
		if late {
			m.lose(fmt.Errorf("no answer from the group coordinator for %s", limit))
		}
	}
}

// lose gives up the active role and every partition, if held: the
// coordinator may have given them to others already.
func (m *Member) lose(why error) {
	m.mu.Lock()
	was := m.current.Active
	owned := m.current.d != nil
	m.current.Active = false
	m.current.d = nil
	m.cfg.Info.ActiveGeneration = -1
	// It copies nothing now: whatever list it tells, the hash gives it
	// nothing under a list without it.
	m.cfg.Info.Stable = nil
	a := m.current
	m.mu.Unlock()
	if was {
		m.cfg.Log.Warn("no longer the active instance", "group", m.cfg.Group, "why", why)
	}
	if was || owned {
		if owned {
			m.cfg.Log.Warn("no longer a member of the group: this instance copies nothing until it joins again", "group", m.cfg.Group, "why", why)
		}
		m.cfg.OnChange(a)
	}
}

// join runs JoinGroup and SyncGroup and applies the assignment; it returns
// the generation joined.
func (m *Member) join(ctx context.Context) (int32, error) {
	m.mu.Lock()
	info := m.cfg.Info
	memberID := m.memberID
	m.joining = true
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		m.joining = false
		m.mu.Unlock()
	}()
	meta, _ := json.Marshal(info)
	req := kmsg.NewPtrJoinGroupRequest()
	req.Group = m.cfg.Group
	req.SessionTimeoutMillis = int32(m.cfg.SessionTimeout / time.Millisecond)
	req.RebalanceTimeoutMillis = int32(m.cfg.RebalanceTimeout / time.Millisecond)
	req.ProtocolType = ProtocolType
	req.MemberID = memberID
	p := kmsg.NewJoinGroupRequestProtocol()
	p.Name, p.Metadata = Protocol, meta
	req.Protocols = append(req.Protocols, p)
	jctx, cancel := context.WithTimeout(ctx, m.cfg.joinWait())
	resp, err := req.RequestWith(jctx, m.cfg.Client)
	cancel()
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.MemberIDRequired) {
			m.setMemberID(resp.MemberID)
			return 0, errRejoin
		}
		return 0, err
	}
	m.setMemberID(resp.MemberID)
	m.kept()
	var assignments []kmsg.SyncGroupRequestGroupAssignment
	if resp.LeaderID == resp.MemberID {
		assignments = m.assign(resp.Generation, resp.Members)
	}
	sreq := kmsg.NewPtrSyncGroupRequest()
	sreq.Group = m.cfg.Group
	sreq.Generation = resp.Generation
	sreq.MemberID = resp.MemberID
	sreq.ProtocolType = kmsg.StringPtr(ProtocolType)
	sreq.Protocol = kmsg.StringPtr(Protocol)
	sreq.GroupAssignment = assignments
	sctx, cancel := context.WithTimeout(ctx, m.cfg.joinWait())
	sresp, err := sreq.RequestWith(sctx, m.cfg.Client)
	cancel()
	if err != nil {
		return 0, err
	}
	if err := kerr.ErrorForCode(sresp.ErrorCode); err != nil {
		if errors.Is(err, kerr.RebalanceInProgress) {
			return 0, errRejoin
		}
		return 0, err
	}
	m.kept()
	var d decision
	if err := json.Unmarshal(sresp.MemberAssignment, &d); err != nil && len(sresp.MemberAssignment) > 0 {
		return 0, fmt.Errorf("group %s: unreadable assignment: %w", m.cfg.Group, err)
	}
	m.apply(resp.Generation, resp.MemberID, d)
	return resp.Generation, nil
}

// apply makes a decision this member's assignment and reports a change.
func (m *Member) apply(gen int32, self string, d decision) {
	a := Assignment{Generation: gen, Active: d.Active == self, Self: self, d: &d}
	for _, mem := range d.Members {
		a.Members = append(a.Members, mem.Info)
		a.MemberIDs = append(a.MemberIDs, mem.ID)
		if mem.ID == d.Active {
			a.ActiveInstance, a.ActiveURL = mem.Info.Instance, mem.Info.URL
		}
	}
	m.mu.Lock()
	prev := m.current
	m.current = a
	switch {
	case a.Active && !prev.Active:
		m.cfg.Info.ActiveGeneration = gen
	case !a.Active:
		m.cfg.Info.ActiveGeneration = -1
	}
	if !slices.Contains(d.Owners, self) {
		// Nothing to copy, nothing to let go: what it tells is settled.
		m.cfg.Info.Stable = slices.Clone(d.Owners)
	}
	m.mu.Unlock()
	if a.Active != prev.Active || a.ActiveInstance != prev.ActiveInstance || a.ActiveURL != prev.ActiveURL {
		if a.Active {
			m.cfg.Log.Info("this is the active instance", "group", m.cfg.Group, "generation", gen, "members", len(a.Members))
		} else {
			m.cfg.Log.Info("another instance is active", "group", m.cfg.Group, "generation", gen, "active", a.ActiveInstance)
		}
	}
	m.cfg.Log.Info("group decision", "group", m.cfg.Group, "generation", gen, "members", len(a.Members), "owners", len(d.Owners), "handing_over", d.Revoke)
	m.cfg.OnChange(a)
}

// heartbeat heartbeats until the coordinator asks for a rejoin or an error
// ends the membership.
func (m *Member) heartbeat(ctx context.Context, gen int32) error {
	every := m.cfg.heartbeatEvery()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.rejoin:
			return errRejoin
		case <-t.C:
		}
		m.mu.Lock()
		memberID := m.memberID
		m.mu.Unlock()
		req := kmsg.NewPtrHeartbeatRequest()
		req.Group, req.Generation, req.MemberID = m.cfg.Group, gen, memberID
		hctx, cancel := context.WithTimeout(ctx, every)
		resp, err := req.RequestWith(hctx, m.cfg.Client)
		cancel()
		if err == nil {
			err = kerr.ErrorForCode(resp.ErrorCode)
		}
		switch {
		case err == nil:
			m.kept()
		case errors.Is(err, kerr.RebalanceInProgress):
			m.kept()
			return errRejoin
		case retry.Transient(err) && !errors.Is(err, kerr.UnknownMemberID) && !errors.Is(err, kerr.IllegalGeneration):
			// Keep trying; watchSession gives the role up if this lasts.
			m.cfg.Log.Debug("heartbeat", "group", m.cfg.Group, "err", err)
		default:
			return err
		}
	}
}

// leave leaves the group so that the others rebalance at once.
func (m *Member) leave() {
	m.lose(errors.New("leaving the group"))
	m.mu.Lock()
	memberID := m.memberID
	m.mu.Unlock()
	if memberID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrLeaveGroupRequest()
	req.Group = m.cfg.Group
	req.MemberID = memberID
	mem := kmsg.NewLeaveGroupRequestMember()
	mem.MemberID = memberID
	req.Members = append(req.Members, mem)
	if _, err := req.RequestWith(ctx, m.cfg.Client); err != nil {
		m.cfg.Log.Debug("leave group", "group", m.cfg.Group, "err", err)
	}
}
