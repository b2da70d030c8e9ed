// Package linksync runs a cluster link's background sync tasks: consumer
// offsets, topic configs, ACLs, and mirrors created for new source topics.
//
// Each task has its own goroutine and interval, read from the link's
// configs before every round, so a config change takes effect at the next
// round (Kick starts one at once). A task reports the errors of its last
// round; Status turns that into the link's task list.
package linksync

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/logdedup"
)

// Task names, as the REST API lists them.
const (
	TaskACLSync      = "AclSync"
	TaskAutoCreate   = "AutoCreateMirror"
	TaskOffsetSync   = "ConsumerOffsetSync"
	TaskConfigSync   = "TopicConfigsSync"
	linkStateActive  = "ACTIVE"
	linkStatePaused  = "PAUSED"
	linkStateFailed  = "FAILED"
	linkStateUnavail = "UNAVAILABLE"
)

// Mirror is a mirror topic of the link.
type Mirror struct {
	Topic       string
	SourceTopic string
	Partitions  int32
	// Stopped mirrors are no longer synced.
	Stopped bool
}

// Link is what the tasks need from the link they serve. The link package
// implements it; methods must be safe for concurrent use.
type Link interface {
	Name() string
	// Configs returns the link's current configs.
	Configs() linkconfig.Set
	// State is the link_state: ACTIVE, PAUSED, UNAVAILABLE or FAILED.
	State() string
	// Source is a client for the source; nil when it cannot be built.
	Source() *kgo.Client
	// Dest is a client for the destination.
	Dest() *kgo.Client
	// Mirrors lists the link's mirror topics.
	Mirrors() []Mirror
	// CreateMirror creates a mirror of a source topic (auto-create). It
	// gives up when ctx ends.
	CreateMirror(ctx context.Context, sourceTopic string) error
	// CompactedChanged tells the link a mirror's cleanup.policy changed.
	CompactedChanged(topic string, compacted bool)
	// SyncedACLs are the ACLs the ACL sync created on the destination.
	SyncedACLs() []ACL
	// SaveSyncedACLs durably records them.
	SaveSyncedACLs(ctx context.Context, acls []ACL) error
	// Runs reports whether this instance runs the link's tasks (it is the
	// active one); elsewhere the tasks wait and report the active
	// instance's results (SetResults).
	Runs() bool
	// Results receives the errors of every task after a round that
	// changed them, for the other instances to show.
	Results(map[string][]TaskError)
}

// TaskError is one error of a task's last round.
type TaskError struct {
	Code    string
	Message string
}

// Status is a task's state: ACTIVE, IN_ERROR, NOT_CONFIGURED, LINK_PAUSED,
// LINK_UNAVAILABLE or LINK_FAILED, with the last round's errors.
type Status struct {
	Name   string
	State  string
	Errors []TaskError
}

// Observer receives the outcome of every task round (internal/metrics
// implements it); its methods must be safe for concurrent use.
type Observer interface {
	// Round reports a round of task that took took and ended with errs
	// errors (0: it succeeded).
	Round(task string, took time.Duration, errs int)
}

// Syncer runs the tasks of one link.
type Syncer struct {
	l   Link
	log *slog.Logger
	obs Observer
	// fails keeps a task's repeated errors from flooding the log, by
	// task (see logdedup); fixed at Start.
	fails map[string]*logdedup.Cause

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	kick   chan struct{}

	mu      sync.Mutex
	results map[string][]TaskError // last round's errors, by task

	// offsetSync serializes offset sync rounds (the loop and SyncOffsets);
	// lastOffsets is what it last committed, to skip unchanged groups.
	offsetSync  sync.Mutex
	lastOffsets map[string]string
}

// task is one background task.
type task struct {
	name     string
	enabled  func(linkconfig.Set) bool
	interval func(linkconfig.Set) time.Duration
	run      func(context.Context, linkconfig.Set) []TaskError
}

func (s *Syncer) tasks() []task {
	return []task{
		{TaskOffsetSync, func(c linkconfig.Set) bool { return c.Bool(linkconfig.ConsumerOffsetSyncEnable) },
			func(c linkconfig.Set) time.Duration { return c.Duration(linkconfig.ConsumerOffsetSyncMs) }, s.syncOffsets},
		{TaskConfigSync, func(linkconfig.Set) bool { return true },
			func(c linkconfig.Set) time.Duration { return c.Duration(linkconfig.TopicConfigSyncMs) }, s.syncConfigs},
		{TaskACLSync, func(c linkconfig.Set) bool { return c.Bool(linkconfig.ACLSyncEnable) },
			func(c linkconfig.Set) time.Duration { return c.Duration(linkconfig.ACLSyncMs) }, s.syncACLs},
		// New source topics are looked for at the config sync's pace.
		{TaskAutoCreate, func(c linkconfig.Set) bool { return c.Bool(linkconfig.AutoCreateEnable) },
			func(c linkconfig.Set) time.Duration { return c.Duration(linkconfig.TopicConfigSyncMs) }, s.autoCreate},
	}
}

// Start starts the tasks of l.
func Start(l Link, log *slog.Logger) *Syncer { return StartWith(l, log, nil) }

// StartWith starts the tasks of l, reporting every round to obs (nil:
// nowhere).
func StartWith(l Link, log *slog.Logger, obs Observer) *Syncer {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Syncer{l: l, log: log, obs: obs, ctx: ctx, cancel: cancel, kick: make(chan struct{}), results: map[string][]TaskError{}, lastOffsets: map[string]string{},
		fails: map[string]*logdedup.Cause{}}
	for _, t := range s.tasks() {
		s.fails[t.name] = &logdedup.Cause{}
	}
	for _, t := range s.tasks() {
		s.wg.Add(1)
		go s.loop(t)
	}
	return s
}

// Close stops the tasks and waits for them.
func (s *Syncer) Close() {
	s.cancel()
	s.wg.Wait()
}

// Kick starts a round of every task now (after a config change).
func (s *Syncer) Kick() {
	s.mu.Lock()
	close(s.kick)
	s.kick = make(chan struct{})
	s.mu.Unlock()
}

func (s *Syncer) kicked() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kick
}

func (s *Syncer) loop(t task) {
	defer s.wg.Done()
	for s.ctx.Err() == nil {
		kick := s.kicked()
		cfg := s.l.Configs()
		if t.enabled(cfg) && s.l.State() == linkStateActive && s.l.Runs() {
			ctx, cancel := context.WithTimeout(s.ctx, max(t.interval(cfg), 10*time.Second))
			start := time.Now()
			errs := t.run(ctx, cfg)
			cancel()
			if s.ctx.Err() != nil {
				return // stopped mid-round: not an outcome
			}
			if s.obs != nil {
				s.obs.Round(t.name, time.Since(start), len(errs))
			}
			s.mu.Lock()
			changed := !slices.Equal(s.results[t.name], errs)
			s.results[t.name] = errs
			var all map[string][]TaskError
			if changed {
				all = maps.Clone(s.results)
			}
			s.mu.Unlock()
			if changed {
				s.l.Results(all)
			}
			s.logRound(t.name, errs)
		}
		select {
		case <-s.ctx.Done():
		case <-kick:
		case <-time.After(t.interval(cfg)):
		}
	}
}

// logRound logs a round's errors once per cause: a task that fails the
// same way every round says so once, and once more when it recovers.
func (s *Syncer) logRound(task string, errs []TaskError) {
	c := s.fails[task]
	if len(errs) == 0 {
		c.Recover(s.log, "link sync task succeeds again", "task", task)
		return
	}
	// The round's errors, in order, are its cause: the same errors again
	// are a repeat.
	var b strings.Builder
	for i, e := range errs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(e.Code + ": " + e.Message)
	}
	c.Fail(s.log, "link sync", errors.New(b.String()), "task", task, "errors", len(errs))
}

// SetResults replaces the tasks' last errors with those the active
// instance reported (Link.Results); the tasks do not run here.
func (s *Syncer) SetResults(r map[string][]TaskError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.results = maps.Clone(r)
	if s.results == nil {
		s.results = map[string][]TaskError{}
	}
}

// Status reports every task, in name order.
func (s *Syncer) Status() []Status {
	cfg := s.l.Configs()
	state := s.l.State()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Status
	for _, t := range s.tasks() {
		st := Status{Name: t.name, State: "ACTIVE", Errors: []TaskError{}}
		switch {
		case !t.enabled(cfg):
			st.State = "NOT_CONFIGURED"
		case state == linkStatePaused:
			st.State = "LINK_PAUSED"
		case state == linkStateUnavail:
			st.State = "LINK_UNAVAILABLE"
		case state == linkStateFailed:
			st.State = "LINK_FAILED"
		case len(s.results[t.name]) > 0:
			st.State = "IN_ERROR"
			st.Errors = append(st.Errors, s.results[t.name]...)
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// activeMirrors returns the link's mirrors that are not stopped, by source
// topic.
func activeMirrors(l Link) map[string]Mirror {
	out := map[string]Mirror{}
	for _, m := range l.Mirrors() {
		if !m.Stopped {
			out[m.SourceTopic] = m
		}
	}
	return out
}
