package link

import (
	"context"
	"fmt"
	"regexp"
	"regexp/syntax"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/mirror"
)

// Op is an alter-mirrors operation.
type Op string

// Alter-mirrors operations, named as in the REST paths (mirrors:<op>).
const (
	OpPause    Op = "pause"
	OpResume   Op = "resume"
	OpPromote  Op = "promote"
	OpFailover Op = "failover"
	// OpReverseStart and OpReversePause swap a mirror's direction on a
	// bidirectional link once everything is copied.
	OpReverseStart Op = "reverse-and-start-mirror"
	OpReversePause Op = "reverse-and-pause-mirror"
	// OpTruncateRestore turns the old primary back into a mirror of the
	// new one after a failover.
	OpTruncateRestore Op = "truncate-and-restore"
)

// Ops lists every alter-mirrors operation.
var Ops = []Op{OpPause, OpResume, OpPromote, OpFailover, OpReverseStart, OpReversePause, OpTruncateRestore}

// AlterOptions are the query options of an alter-mirrors request.
type AlterOptions struct {
	ValidateOnly bool
	// IncludePartitionTruncation asks truncate-and-restore for per
	// partition figures.
	IncludePartitionTruncation bool
}

// Per-topic error codes of alter results: HTTP-style, as Confluent's are.
const (
	codeRefused  = 400
	codeNotFound = 404
)

// Selection picks the mirror topics an operation applies to: either Names
// or Pattern (a regular expression that must match the whole name).
type Selection struct {
	Names      []string
	HasNames   bool
	Pattern    string
	HasPattern bool
}

// AlterResult is one topic's outcome of an alter-mirrors operation. A zero
// ErrorCode means the topic took the operation.
type AlterResult struct {
	Topic        string
	ErrorCode    int
	ErrorMessage string
	Lags         []mirror.Lag
	// MessagesTruncated is set by truncate-and-restore.
	MessagesTruncated *int64
	// Truncation is set by truncate-and-restore when asked for.
	Truncation []PartitionTruncation
}

// PartitionTruncation is what truncate-and-restore removed from one
// partition.
type PartitionTruncation struct {
	Partition         int32
	OffsetTruncatedTo int64
	MessagesTruncated int64
}

func (r *AlterResult) refuse(code int, format string, args ...any) {
	r.ErrorCode = code
	r.ErrorMessage = fmt.Sprintf(format, args...)
}

// linkState is what decide needs to know about the link.
type linkState struct {
	paused        bool
	unavailable   bool
	bidirectional bool
	prefixed      bool
}

// AlterMirrors applies op to the selected mirror topics of a link. Topics
// that cannot take the operation get their own error in the result and are
// left unchanged; the others change. With validateOnly every check runs and
// nothing changes.
func (m *Manager) AlterMirrors(ctx context.Context, linkName string, op Op, sel Selection, opt AlterOptions) ([]AlterResult, error) {
	ctx = withReason(ctx, "mirrors:"+string(op))
	validateOnly := opt.ValidateOnly
	if sel.HasNames == sel.HasPattern {
		return nil, errorf(ErrInvalid, "Give exactly one of mirror_topic_names and mirror_topic_name_pattern.")
	}
	var re *regexp.Regexp
	if sel.HasPattern {
		if len(sel.Pattern) > maxPatternLen {
			return nil, errorf(ErrInvalid, "mirror_topic_name_pattern is %d characters long; at most %d are accepted.", len(sel.Pattern), maxPatternLen)
		}
		var err error
		if re, err = wholeMatch(sel.Pattern); err != nil {
			return nil, errorf(ErrInvalid, "Invalid mirror_topic_name_pattern '%s': %v", sel.Pattern, err)
		}
	}
	if sel.HasNames && len(sel.Names) == 0 {
		return nil, errorf(ErrInvalid, "mirror_topic_names must name at least one topic.")
	}
	if err := m.checkCount(len(sel.Names)); err != nil {
		return nil, err
	}
	unlock, err := m.lockLink(ctx, linkName)
	if err != nil {
		return nil, err
	}
	defer unlock()
	l, run, err := m.linkAndRun(linkName)
	if err != nil {
		return nil, err
	}
	ls := linkState{paused: l.Configs.Paused(), bidirectional: l.Configs.Bidirectional(), prefixed: l.Configs.Prefix() != ""}
	if run != nil {
		ls.unavailable, _ = run.availability()
	}

	if op == OpTruncateRestore {
		return m.truncateAndRestore(ctx, l, run, sel, re, opt)
	}
	names := sel.Names
	if re != nil {
		names = nil
		for _, mir := range m.mirrorsOf(linkName) {
			if re.MatchString(mir.Topic) {
				names = append(names, mir.Topic)
			}
		}
	}
	names = dedupe(names)
	if err := m.checkCount(len(names)); err != nil {
		return nil, err
	}
	results := make([]AlterResult, len(names))
	var unknown []string
	accepted := map[string]transition{}
	for i, name := range names {
		results[i] = AlterResult{Topic: name, Lags: []mirror.Lag{}}
		m.mu.RLock()
		mir, ok := m.mirrors[name]
		m.mu.RUnlock()
		switch {
		case !ok:
			unknown = append(unknown, name)
		case mir.Link != linkName:
			results[i].refuse(codeRefused, "Topic '%s' is mirrored by cluster link '%s', not '%s'", name, mir.Link, linkName)
		default:
			tr := decide(op, mir, ls)
			if tr.refusal != "" {
				results[i].refuse(codeRefused, "%s", tr.refusal)
			} else if !tr.unchanged {
				accepted[name] = tr
			}
		}
	}
	m.markUnknown(ctx, results, unknown)

	failed := map[string]string{}
	reverse := op == OpReverseStart || op == OpReversePause
	if op == OpFailover && !validateOnly && len(accepted) > 0 {
		// Failover stops the mirrors as they are, so their last offset
		// sync is now. Promote's runs once each mirror has caught up (see
		// finishPromote).
		m.lastOffsetSync(ctx, linkName, run, topicsOf(accepted))
	}
	var remote *remoteSide
	if reverse && len(accepted) > 0 {
		var err error
		if remote, err = m.checkReverse(ctx, l, run, accepted); err != nil {
			for t := range accepted {
				failed[t] = fmt.Sprintf("Topic '%s' cannot be reversed: %v", t, err)
			}
			clear(accepted)
		}
		for t, msg := range remote.refusals() {
			failed[t] = msg
			delete(accepted, t)
		}
	}
	if (op == OpPromote || reverse) && len(accepted) > 0 {
		// Promote and reverse need the source: its end offsets are what
		// the mirror must reach. An unreachable source refuses them.
		ends, err := m.sourceEnds(ctx, run, topicsOf(accepted))
		if err != nil {
			for t := range accepted {
				failed[t] = fmt.Sprintf("Topic '%s' cannot take '%s': the source cluster is not reachable (%v); use failover to stop the mirror regardless of its lag", t, op, err)
			}
			clear(accepted)
		} else if !validateOnly {
			var complete func(context.Context, string) error
			if reverse {
				complete = func(ctx context.Context, t string) error {
					return m.completeReverse(ctx, linkName, remote, t, op == OpReversePause)
				}
			}
			for t, msg := range m.promote(ctx, linkName, run, accepted, ends, complete) {
				failed[t] = msg
			}
		}
	} else if !validateOnly && len(accepted) > 0 {
		switch op {
		case OpFailover:
			m.failover(ctx, linkName, run, topicsOf(accepted))
		default:
			topics := topicsOf(accepted)
			stopped := make(chan struct{})
			if op == OpPause && run != nil && run.runner != nil {
				// The copies stop while the records are written: the
				// answer waits for both. A mirror whose record could not
				// be written copies again below.
				go func() {
					defer close(stopped)
					run.runner.Stop(topics...)
				}()
			} else {
				close(stopped)
			}
			for t, err := range m.setStatuses(ctx, accepted) {
				failed[t] = fmt.Sprintf("Cannot record the new state of topic '%s': %v", t, err)
			}
			<-stopped
			m.reconcileTopics(linkName, topics)
		}
	}
	m.fillLags(ctx, linkName, run, results, failed)
	return results, nil
}

// fillLags puts the per-partition lags into the results: the lag left
// behind for stopped mirrors, the current lag for the others.
func (m *Manager) fillLags(ctx context.Context, linkName string, run *linkRun, results []AlterResult, failed map[string]string) {
	var live []string
	for i := range results {
		if msg, ok := failed[results[i].Topic]; ok {
			results[i].refuse(codeRefused, "%s", msg)
		}
		live = append(live, results[i].Topic)
	}
	if run != nil && run.runner != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		run.runner.RefreshLags(rctx, live...)
		cancel()
	}
	for i := range results {
		if results[i].ErrorCode == codeNotFound {
			continue
		}
		m.mu.RLock()
		mir, ok := m.mirrors[results[i].Topic]
		m.mu.RUnlock()
		if ok && mir.Link == linkName {
			results[i].Lags = m.lags(mir)
		}
	}
}

// transition is what an operation does to one mirror: the new stored
// status, or a refusal. unchanged is set when the mirror is already there.
type transition struct {
	to        Status
	unchanged bool
	refusal   string
}

// decide says what op does to mir, following the contract's table of
// allowed transitions.
func decide(op Op, mir *Mirror, ls linkState) transition {
	switch mir.Status {
	case StatusStopped:
		return transition{refusal: fmt.Sprintf("Topic '%s' has already stopped its mirror from '%s'", mir.Topic, mir.Link)}
	case StatusPendingStopped:
		return transition{refusal: fmt.Sprintf("Topic '%s' is already stopping its mirror from '%s'", mir.Topic, mir.Link)}
	}
	switch op {
	case OpPause:
		switch mir.Status {
		case StatusPaused:
			return transition{to: StatusPaused, unchanged: true}
		case StatusActive, StatusPendingMirror:
			return transition{to: StatusPaused}
		}
	case OpResume:
		switch mir.Status {
		case StatusActive, StatusPendingMirror:
			return transition{to: mir.Status, unchanged: true}
		case StatusPaused:
			if mir.Fresh {
				return transition{to: StatusPendingMirror}
			}
			return transition{to: StatusActive}
		}
	case OpFailover:
		// Failover stops whatever the state and the lag.
		return transition{to: StatusStopped}
	case OpReverseStart, OpReversePause:
		switch {
		case !ls.bidirectional:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be reversed: cluster link '%s' is not bidirectional (link.mode=BIDIRECTIONAL)", mir.Topic, mir.Link)}
		case ls.prefixed:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be reversed: cluster link '%s' has a cluster.link.prefix", mir.Topic, mir.Link)}
		}
		fallthrough
	case OpPromote:
		switch {
		case mir.Status == StatusPendingMirror:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be promoted yet: its mirror is still being set up (PENDING_MIRROR); wait until it is ACTIVE and try again (failover would stop it now, with whatever it has copied)", mir.Topic)}
		case mir.Status == StatusPendingRestore || mir.Status == StatusPendingSetupForRestore:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be promoted while it is being restored (%s); wait until it is ACTIVE and try again", mir.Topic, mir.Status)}
		case mir.Status != StatusActive && mir.Status != StatusPaused:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be promoted in state %s; use failover", mir.Topic, mir.Status)}
		case ls.paused:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be promoted while cluster link '%s' is paused (cluster.link.paused=true); resume the link or use failover", mir.Topic, mir.Link)}
		case ls.unavailable:
			return transition{refusal: fmt.Sprintf("Topic '%s' cannot be promoted: the source cluster of link '%s' is unavailable; use failover", mir.Topic, mir.Link)}
		}
		if op != OpPromote {
			return transition{to: StatusPendingSynchronize}
		}
		return transition{to: StatusStopped}
	}
	if mir.Status == StatusFailed {
		return transition{refusal: fmt.Sprintf("Topic '%s' cannot take '%s': its mirror has failed (%s); only failover or deleting the topic remain", mir.Topic, op, mir.TopicError)}
	}
	return transition{refusal: fmt.Sprintf("Topic '%s' cannot take '%s' in state %s; wait until it is ACTIVE or PAUSED and try again, or use failover to stop it now", mir.Topic, op, mir.Status)}
}

func (m *Manager) setStatus(ctx context.Context, topic string, to Status) error {
	_, err := m.updateMirror(ctx, topic, func(next *Mirror) error {
		if next.Status == to {
			return errNoChange
		}
		next.Status = to
		next.StateTimeMs = m.nowMs()
		return nil
	})
	return err
}

// setStatuses records the new status of each accepted mirror, all in one
// write to the store (a pause of a thousand mirrors is one round trip, not
// a thousand). It returns the mirrors whose record could not be written.
func (m *Manager) setStatuses(ctx context.Context, accepted map[string]transition) map[string]error {
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	now := m.nowMs()
	var next []*Mirror
	failed := map[string]error{}
	m.mu.RLock()
	for _, t := range topicsOf(accepted) {
		cur, ok := m.mirrors[t]
		switch {
		case !ok:
			failed[t] = errorf(ErrMirrorNotFound, "Mirror topic '%s' does not exist.", t)
			continue
		case cur.Status == accepted[t].to:
			continue
		}
		n := cur.clone()
		n.Status = accepted[t].to
		n.StateTimeMs = now
		next = append(next, n)
	}
	m.mu.RUnlock()
	for i, err := range m.putMirrorsLocked(ctx, next) {
		if err != nil {
			failed[next[i].Topic] = err
		}
	}
	return failed
}

// failover stops the mirrors at once, whatever their lag, and records what
// was left behind.
func (m *Manager) failover(ctx context.Context, linkName string, run *linkRun, topics []string) {
	// A failover stops whatever happens: an instance that does not report
	// its copy stopped within the bound has lost its session by then and
	// stopped by itself (internal/group), and the broker refuses its late
	// writes (the fence).
	hctx, cancel := context.WithTimeout(ctx, haltWait)
	for t, err := range m.haltCopy(hctx, linkName, run, topics) {
		m.log.Warn("failover: the copy of the mirror may still run on another instance", "topic", t, "err", err)
	}
	cancel()
	m.stopMirrors(ctx, linkName, run, topics)
	m.reconcile(linkName)
}

// haltWait bounds how long an operation waits for other instances to stop
// copying a mirror: longer than a group session, after which an instance
// that does not answer has stopped by itself.
const haltWait = 30 * time.Second

// stopMirrors records mirrors as STOPPED with their lags frozen. Their
// copy must already be stopped. Source transactions still open are aborted
// on the mirror first (see mirror.Runner.AbortOpenTransactions).
func (m *Manager) stopMirrors(ctx context.Context, linkName string, run *linkRun, topics []string) {
	m.abortOpenTransactions(ctx, run, topics)
	if run != nil && run.runner != nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		run.runner.RefreshLags(rctx, topics...)
		cancel()
	}
	for _, t := range topics {
		m.mu.RLock()
		mir := m.mirrors[t]
		m.mu.RUnlock()
		if mir == nil {
			continue
		}
		lags := m.lags(mir)
		stop := make([]StopLag, len(lags))
		ends := m.destEnds(ctx, t)
		for i, l := range lags {
			end := l.MirrorEnd
			if e, ok := ends[l.Partition]; ok {
				end = e // the destination's own figure is the truth
			}
			lag := int64(0)
			if l.LastSourceFetchOffset > end {
				lag = l.LastSourceFetchOffset - end
			}
			stop[i] = StopLag{Partition: l.Partition, Lag: lag, LastSourceFetchOffset: l.LastSourceFetchOffset, MirrorEnd: end}
		}
		_, err := m.updateMirror(ctx, t, func(next *Mirror) error {
			next.Status = StatusStopped
			next.PrevStatus = ""
			next.Halt = ""
			next.Stalls = nil
			next.StateTimeMs = m.nowMs()
			next.StopLags = stop
			return nil
		})
		if err != nil {
			m.log.Error("record mirror stop", "topic", t, "err", err)
			continue
		}
		// The topic takes writes now; if lifting fails here, the
		// maintenance loop lifts the denials later.
		if err := m.unprotect(ctx, t); err != nil {
			m.log.Warn("lift write protection", "topic", t, "err", err)
		}
		m.log.Info("mirror stopped", "link", linkName, "topic", t)
	}
}

// abortOpenTransactions aborts, on stopped mirrors, the destination
// transactions of source transactions that had not ended.
func (m *Manager) abortOpenTransactions(ctx context.Context, run *linkRun, topics []string) {
	if run == nil || run.runner == nil {
		return
	}
	for _, t := range topics {
		m.mu.RLock()
		mir := m.mirrors[t]
		m.mu.RUnlock()
		if mir == nil {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		if err := run.runner.AbortOpenTransactions(rctx, t, mir.Partitions); err != nil {
			m.log.Warn("abort open transactions of a stopped mirror", "topic", t, "err", err)
		}
		cancel()
	}
}

// promote moves the mirrors to PENDING_STOPPED, copies until each has
// everything its source had at the moment its copy stops, and then marks it
// STOPPED. A mirror that does not catch up within the promote timeout goes
// back to its previous status. It returns the topics that failed, with why.
func (m *Manager) promote(ctx context.Context, linkName string, run *linkRun, accepted map[string]transition, ends map[string]map[int32]int64, complete func(context.Context, string) error) map[string]string {
	failed := map[string]string{}
	var started []string
	for t, tr := range accepted {
		pending := StatusPendingStopped
		if tr.to == StatusPendingSynchronize {
			pending = StatusPendingSynchronize
		}
		_, err := m.updateMirror(ctx, t, func(next *Mirror) error {
			next.PrevStatus = next.Status
			next.Status = pending
			next.StateTimeMs = m.nowMs()
			return nil
		})
		if err != nil {
			failed[t] = fmt.Sprintf("Cannot record the new state of topic '%s': %v", t, err)
			continue
		}
		started = append(started, t)
	}
	m.reconcile(linkName) // PENDING_STOPPED mirrors copy, paused ones too
	deadline := time.Now().Add(m.cfg.PromoteTimeout)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, t := range started {
		m.mu.RLock()
		src := m.mirrors[t].SourceTopic
		m.mu.RUnlock()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := m.finishPromote(ctx, linkName, run, t, ends[src], deadline, complete); err != nil {
				mu.Lock()
				failed[t] = err.Error()
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed
}

// finishPromote waits for one mirror to reach target, stops its copy, and
// checks the source did not move meanwhile; if it did, it copies again.
func (m *Manager) finishPromote(ctx context.Context, linkName string, run *linkRun, topic string, target map[int32]int64, deadline time.Time, complete func(context.Context, string) error) error {
	for {
		lag, err := m.waitMirrorEnds(ctx, run, topic, target, deadline)
		if err != nil {
			m.revertPromote(ctx, linkName, topic)
			return fmt.Errorf("Topic '%s' could not be stopped: its mirror did not catch up with the source within %v (lag %d); stop the producers on the source and try again, or use failover", topic, m.cfg.PromoteTimeout, lag)
		}
		hctx, cancel := context.WithDeadline(ctx, deadline)
		herr := m.haltCopy(hctx, linkName, run, []string{topic})[topic]
		cancel()
		if herr != nil {
			m.revertPromote(ctx, linkName, topic)
			return fmt.Errorf("Topic '%s' could not be stopped: %v; try again", topic, herr)
		}
		m.mu.RLock()
		mir := m.mirrors[topic]
		m.mu.RUnlock()
		now, err := m.sourceEnds(ctx, run, []string{topic})
		if err != nil {
			m.revertPromote(ctx, linkName, topic)
			return fmt.Errorf("Topic '%s' could not be promoted: the source cluster became unreachable (%v); use failover", topic, err)
		}
		moved := false
		rctx, rcancel := context.WithTimeout(ctx, 5*time.Second)
		run.runner.RefreshLags(rctx, topic)
		rcancel()
		for _, l := range run.runner.Lags(topic) {
			if now[mir.SourceTopic][l.Partition] > l.MirrorEnd {
				moved = true
			}
		}
		if !moved {
			if complete != nil {
				if err := complete(ctx, topic); err != nil {
					m.revertPromote(ctx, linkName, topic)
					return fmt.Errorf("Topic '%s' could not be reversed: %v", topic, err)
				}
				return nil
			}
			// The sync caps offsets at the mirror's end, so only now,
			// with the mirror caught up and before it is STOPPED (never
			// synced again), does it carry the source's latest commits.
			m.lastOffsetSync(ctx, linkName, run, []string{topic})
			m.stopMirrors(ctx, linkName, run, []string{topic})
			return nil
		}
		// Records arrived while the copy stopped: copy them too.
		target = now[mir.SourceTopic]
		if err := m.unhalt(ctx, topic); err != nil {
			m.revertPromote(ctx, linkName, topic)
			return fmt.Errorf("Topic '%s' could not be promoted: %v; try again", topic, err)
		}
		m.reconcile(linkName)
	}
}

// lastOffsetSync runs one consumer offset sync for topics before their
// mirrors stop, so consumers moving over find the latest offsets. Errors
// are logged: the mirrors stop regardless.
func (m *Manager) lastOffsetSync(ctx context.Context, linkName string, run *linkRun, topics []string) {
	if run == nil || run.sync == nil {
		return
	}
	for _, e := range run.sync.SyncOffsets(ctx, topics) {
		m.log.Warn("last consumer offset sync before stopping", "link", linkName, "code", e.Code, "err", e.Message)
	}
}

// waitMirrorEnds waits until every partition of the mirror has reached the
// target end offsets, or deadline. It returns the lag left on failure.
func (m *Manager) waitMirrorEnds(ctx context.Context, run *linkRun, topic string, target map[int32]int64, deadline time.Time) (int64, error) {
	m.mu.RLock()
	mir := m.mirrors[topic]
	m.mu.RUnlock()
	remote := mir != nil && m.ownedOf(mir) != nil && len(m.ownedOf(mir)) < int(mir.Partitions)
	for {
		if remote {
			// Other instances copy some partitions: read their ends.
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			run.runner.RefreshLags(rctx, topic)
			cancel()
		}
		var lag int64
		for _, l := range run.runner.Lags(topic) {
			want := target[l.Partition]
			if l.MirrorEnd < want {
				lag += want - max(l.MirrorEnd, 0)
			}
		}
		if lag == 0 {
			return 0, nil
		}
		if time.Now().After(deadline) {
			return lag, context.DeadlineExceeded
		}
		select {
		case <-ctx.Done():
			return lag, ctx.Err()
		case <-time.After(20 * time.Millisecond): // polling the runner's figures
		}
	}
}

// revertPromote puts a mirror back where it was before a promote.
func (m *Manager) revertPromote(ctx context.Context, linkName, topic string) {
	// The request's context may be what ended; the revert must still land.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := m.updateMirror(rctx, topic, func(next *Mirror) error {
		if next.Status != StatusPendingStopped && next.Status != StatusPendingSynchronize {
			return errNoChange
		}
		next.Halt = ""
		next.Status = next.PrevStatus
		if next.Status == "" {
			next.Status = StatusActive
		}
		next.PrevStatus = ""
		next.StateTimeMs = m.nowMs()
		return nil
	})
	if err != nil {
		m.log.Error("revert promote", "topic", topic, "err", err)
	}
	m.reconcile(linkName)
}

// sourceEnds reads the source end offsets of the mirrors' source topics,
// keyed by source topic.
func (m *Manager) sourceEnds(ctx context.Context, run *linkRun, topics []string) (map[string]map[int32]int64, error) {
	if run == nil || run.src == nil {
		return nil, fmt.Errorf("the link has no usable source client")
	}
	var src []string
	m.mu.RLock()
	for _, t := range topics {
		if mir, ok := m.mirrors[t]; ok {
			src = append(src, mir.SourceTopic)
		}
	}
	m.mu.RUnlock()
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	listed, err := kadm.NewClient(run.src).ListEndOffsets(rctx, src...)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// destEnds reads the end offsets of a destination topic.
func (m *Manager) destEnds(ctx context.Context, topic string) map[int32]int64 {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := map[int32]int64{}
	listed, err := kadm.NewClient(m.cfg.Dest).ListEndOffsets(rctx, topic)
	if err != nil {
		return out
	}
	listed.Each(func(o kadm.ListedOffset) {
		if o.Err == nil {
			out[o.Partition] = o.Offset
		}
	})
	return out
}

// markUnknown fills the results of names that are not mirror topics: a
// destination topic that exists is "not mirrored", one that does not exist
// is not found.
func (m *Manager) markUnknown(ctx context.Context, results []AlterResult, unknown []string) {
	if len(unknown) == 0 {
		return
	}
	exists := map[string]bool{}
	if td, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, unknown...); err == nil {
		for name, d := range td {
			exists[name] = d.Err == nil
		}
	}
	for i := range results {
		name := results[i].Topic
		if !slices.Contains(unknown, name) {
			continue
		}
		if exists[name] {
			results[i].refuse(codeRefused, "Topic '%s' is not mirrored", name)
		} else {
			results[i].refuse(codeNotFound, "Topic '%s' not found", name)
		}
	}
}

func topicsOf(m map[string]transition) []string {
	out := make([]string, 0, len(m))
	for t := range m {
		out = append(out, t)
	}
	slices.Sort(out)
	return out
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// checkCount refuses a request that would touch more mirror topics than
// one request may: the caller splits it (a narrower pattern, fewer names).
func (m *Manager) checkCount(n int) error {
	if n > m.cfg.MaxTopicsPerRequest {
		return errorf(ErrInvalid, "The request selects %d mirror topics; at most %d are accepted in one request: split it.", n, m.cfg.MaxTopicsPerRequest)
	}
	return nil
}

// wholeMatch compiles a pattern that must match a whole topic name. The
// pattern is parsed on its own first and anchored as a parsed expression:
// pasted into "^(?:...)$" as text, "a)|(.*" would escape the anchors and
// "\Qa" would swallow the closing parenthesis.
func wholeMatch(pattern string) (*regexp.Regexp, error) {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil, err
	}
	return regexp.Compile(`^(?:` + re.String() + `)$`)
}
