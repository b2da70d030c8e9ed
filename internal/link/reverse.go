package link

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/mirror"
	"github.com/strait-dev/strait/internal/store"
)

// remoteSide is the other side of a bidirectional link during a reverse:
// its state and the topics it refuses.
type remoteSide struct {
	r       *store.Remote
	view    remoteView
	refused map[string]string
}

func (rs *remoteSide) refusals() map[string]string {
	if rs == nil {
		return nil
	}
	return rs.refused
}

// checkReverse checks that the other side can take the reversed mirrors:
// it has the same bidirectional link, and each source topic is not itself
// a live mirror there.
func (m *Manager) checkReverse(ctx context.Context, l *Link, run *linkRun, accepted map[string]transition) (*remoteSide, error) {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	view, r, err := m.remoteLink(rctx, l, run)
	if err != nil {
		return nil, err
	}
	rs := &remoteSide{r: r, view: view, refused: map[string]string{}}
	for t := range accepted {
		m.mu.RLock()
		src := m.mirrors[t].SourceTopic
		m.mu.RUnlock()
		if rm := view.mirrors[src]; rm != nil && rm.Status != StatusStopped {
			rs.refused[t] = fmt.Sprintf("Topic '%s' cannot be reversed: the remote topic '%s' is itself a mirror (%s) of link '%s'", t, src, rm.Status, rm.Link)
		}
	}
	return rs, nil
}

// completeReverse swaps the direction of a mirror whose copy has stopped
// with nothing left to copy: the remote topic becomes a mirror of the local
// one (written to the remote state topic, which the Strait there follows),
// then the local topic stops being a mirror and takes writes.
func (m *Manager) completeReverse(ctx context.Context, linkName string, rs *remoteSide, topic string, paused bool) error {
	m.mu.RLock()
	mir := m.mirrors[topic]
	m.mu.RUnlock()
	if mir == nil {
		return errors.New("the mirror disappeared")
	}
	td, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, topic)
	if err != nil {
		return err
	}
	id := td[topic].ID
	status := StatusActive
	if paused {
		status = StatusPaused
	}
	remote := &Mirror{
		Link:          linkName,
		Topic:         mir.SourceTopic,
		SourceTopic:   topic,
		Partitions:    mir.Partitions,
		SourceTopicID: hex.EncodeToString(id[:]),
		Status:        status,
		StateTimeMs:   m.nowMs(),
		TopicError:    TopicErrorNone,
		StartOffset:   "earliest",
	}
	m.mu.RLock()
	run := m.runs[linkName]
	m.mu.RUnlock()
	m.abortOpenTransactions(ctx, run, []string{topic})
	// The local record goes with the reverse, so its write denials must
	// go first.
	if err := m.liftDenials(ctx, topic, mir.WriteDenials); err != nil {
		return err
	}
	if err := putRemoteMirror(ctx, rs.r, remote); err != nil {
		return err
	}
	m.writeMu.Lock()
	err = m.deleteMirrorLocked(ctx, mir)
	m.writeMu.Unlock()
	if err != nil {
		return err
	}
	m.reconcile(linkName)
	m.log.Info("mirror reversed", "link", linkName, "topic", topic, "remote_status", status)
	return nil
}

// truncateAndRestore turns local topics that were the source of a mirror
// that failed over (the old primary) back into mirrors of the remote
// topics (the new primary). Kafka cannot cut the end of a log, so the local
// topic is deleted, re-created and copied again from the remote, which has
// the same records up to the failover point and the new ones after it.
func (m *Manager) truncateAndRestore(ctx context.Context, l *Link, run *linkRun, sel Selection, re *regexp.Regexp, opt AlterOptions) ([]AlterResult, error) {
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	view, _, rerr := m.remoteLink(rctx, l, run)
	cancel()
	names := sel.Names
	if re != nil {
		names = nil
		for _, rm := range view.mirrors {
			if rm.Link == l.Name && rm.Status == StatusStopped && re.MatchString(rm.SourceTopic) {
				names = append(names, rm.SourceTopic)
			}
		}
	}
	names = dedupe(names)
	if err := m.checkCount(len(names)); err != nil {
		return nil, err
	}
	results := make([]AlterResult, len(names))
	for i, t := range names {
		results[i] = AlterResult{Topic: t, Lags: []mirror.Lag{}}
		res := &results[i]
		switch {
		case !l.Configs.Bidirectional():
			res.refuse(codeRefused, "Topic '%s' cannot be restored: cluster link '%s' is not bidirectional (link.mode=BIDIRECTIONAL)", t, l.Name)
			continue
		case l.Configs.Prefix() != "":
			res.refuse(codeRefused, "Topic '%s' cannot be restored: cluster link '%s' has a cluster.link.prefix", t, l.Name)
			continue
		case rerr != nil:
			res.refuse(codeRefused, "Topic '%s' cannot be restored: %v", t, rerr)
			continue
		}
		plan, err := m.planRestore(ctx, l, run, view, t)
		if err != nil {
			var de *Error
			if errors.As(err, &de) && errors.Is(de, ErrTopicNotFound) {
				res.refuse(codeNotFound, "%s", de.Msg)
			} else {
				res.refuse(codeRefused, "%v", err)
			}
			continue
		}
		total := int64(0)
		for _, pt := range plan.truncation {
			total += pt.MessagesTruncated
		}
		res.MessagesTruncated = &total
		if opt.IncludePartitionTruncation {
			res.Truncation = plan.truncation
		}
		if opt.ValidateOnly {
			continue
		}
		if err := m.startRestore(ctx, l.Name, plan.mirror); err != nil {
			res.MessagesTruncated, res.Truncation = nil, nil
			res.refuse(codeRefused, "Topic '%s' could not be restored: %v", t, err)
		}
	}
	m.fillLags(ctx, l.Name, run, results, nil)
	return results, nil
}

// restorePlan is what restoring one topic will do.
type restorePlan struct {
	mirror     *Mirror
	truncation []PartitionTruncation
}

// planRestore checks that local topic t can be restored from the remote and
// works out what it loses: every record after the failover point, which is
// where the remote mirror stopped.
func (m *Manager) planRestore(ctx context.Context, l *Link, run *linkRun, view remoteView, t string) (restorePlan, error) {
	var plan restorePlan
	m.mu.RLock()
	local := m.mirrors[t]
	m.mu.RUnlock()
	if local != nil && local.Status != StatusStopped {
		return plan, fmt.Errorf("Topic '%s' is already a mirror (%s) of link '%s'", t, local.Status, local.Link)
	}
	rm := view.mirrors[t]
	if rm == nil || rm.Link != l.Name || rm.SourceTopic != t || rm.Status != StatusStopped {
		return plan, fmt.Errorf("Topic '%s' cannot be restored: the remote topic '%s' is not a stopped mirror of it on link '%s'; truncate-and-restore applies to the old primary after a failover", t, t, l.Name)
	}
	if len(rm.StopLags) != int(rm.Partitions) {
		return plan, fmt.Errorf("Topic '%s' cannot be restored: the remote mirror recorded no failover point", t)
	}
	td, err := kadm.NewClient(m.cfg.Dest).ListTopics(ctx, t)
	if err != nil {
		return plan, err
	}
	d, ok := td[t]
	if !ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition) {
		return plan, errorf(ErrTopicNotFound, "Topic '%s' not found", t)
	}
	if int32(len(d.Partitions)) != rm.Partitions {
		return plan, fmt.Errorf("Topic '%s' has %d partitions, the remote topic %d", t, len(d.Partitions), rm.Partitions)
	}
	groups, err := activeGroupsOn(ctx, m.cfg.Dest, t)
	if err != nil {
		return plan, fmt.Errorf("Topic '%s' cannot be restored: its consumer groups cannot be checked: %v", t, err)
	}
	if len(groups) > 0 {
		return plan, fmt.Errorf("Topic '%s' cannot be restored while consumer groups are active on it (%s); stop their consumers first", t, strings.Join(groups, ", "))
	}
	rtd, err := kadm.NewClient(run.src).ListTopics(ctx, t)
	if err != nil {
		return plan, fmt.Errorf("cannot describe the remote topic '%s': %v", t, err)
	}
	remoteID := rtd[t].ID
	ends := m.destEnds(ctx, t)
	for _, sl := range rm.StopLags {
		cut := max(ends[sl.Partition]-sl.MirrorEnd, 0)
		plan.truncation = append(plan.truncation, PartitionTruncation{Partition: sl.Partition, OffsetTruncatedTo: sl.MirrorEnd, MessagesTruncated: cut})
	}
	plan.mirror = &Mirror{
		Link:          l.Name,
		Topic:         t,
		SourceTopic:   t,
		Partitions:    rm.Partitions,
		Status:        StatusPendingSetupForRestore,
		StateTimeMs:   m.nowMs(),
		TopicError:    TopicErrorNone,
		Fresh:         true,
		StartOffset:   "earliest",
		SourceTopicID: hex.EncodeToString(remoteID[:]),
	}
	return plan, nil
}

// activeGroupsOn names the consumer groups that have members and committed
// offsets on topic. A restore deletes and re-creates the topic under them:
// their consumers would carry on from offsets that now hold other records,
// so the contract refuses the restore while such groups are active. An old
// broker reports no group state; its groups count as active.
func activeGroupsOn(ctx context.Context, cl *kgo.Client, topic string) ([]string, error) {
	adm := kadm.NewClient(cl)
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	var live []string
	for _, g := range listed.Sorted() {
		// Share groups keep no committed offsets to fetch.
		if g.State != "Empty" && g.State != "Dead" && g.ProtocolType != "share" {
			live = append(live, g.Group)
		}
	}
	if len(live) == 0 {
		return nil, nil
	}
	fetched := adm.FetchManyOffsets(ctx, live...)
	var out []string
	for _, g := range live {
		r := fetched[g]
		if r.Err != nil {
			return nil, fmt.Errorf("group '%s': %w", g, r.Err)
		}
		if len(r.Fetched[topic]) > 0 {
			out = append(out, g)
		}
	}
	return out, nil
}

// startRestore records the restore, replaces the local topic and lets the
// copy begin. The record comes first: a crash after it finishes the restore
// on restart.
func (m *Manager) startRestore(ctx context.Context, linkName string, mir *Mirror) error {
	m.writeMu.Lock()
	err := m.putMirrorLocked(ctx, mir)
	m.writeMu.Unlock()
	if err != nil {
		return err
	}
	if err := m.replaceTopic(ctx, mir); err != nil {
		// Committed: the restore loop tries again, and the mirror shows
		// PENDING_SETUP_FOR_RESTORE with the error meanwhile.
		m.noteRestoreError(ctx, mir.Topic, err)
		return nil
	}
	m.reconcile(linkName)
	return nil
}

// noteRestoreError records a failed attempt to replace a restoring topic.
func (m *Manager) noteRestoreError(ctx context.Context, topic string, err error) {
	m.log.Warn("truncate-and-restore: replacing the topic failed, will retry", "topic", topic, "err", err)
	_, uerr := m.updateMirror(ctx, topic, func(next *Mirror) error {
		next.addTransitionError("ILLEGAL_STATE", fmt.Sprintf("replacing topic '%s' for truncate-and-restore failed: %v", topic, err), m.nowMs())
		return nil
	})
	if uerr != nil {
		m.log.Error("record restore error", "topic", topic, "err", uerr)
	}
}

// finishRestores finishes restores whose topic could not be replaced yet
// (after an error, or a crash), and marks ACTIVE those that have copied
// everything the remote had.
func (m *Manager) finishRestores(ctx context.Context) {
	for _, mir := range m.mirrorsOf("") {
		if mir.Status == StatusPendingRestore && !mir.Fresh && m.caughtUp(mir) {
			// The copy has reached the remote's end once: restored.
			if err := m.setStatus(ctx, mir.Topic, StatusActive); err != nil {
				m.log.Error("finish restore", "topic", mir.Topic, "err", err)
			}
			continue
		}
		if mir.Status != StatusPendingSetupForRestore || ctx.Err() != nil {
			continue
		}
		if err := m.replaceTopic(ctx, mir); err != nil {
			if ctx.Err() == nil {
				m.noteRestoreError(ctx, mir.Topic, err)
			}
			continue
		}
		m.reconcile(mir.Link)
	}
}

// replaceTopic deletes and re-creates a restoring mirror's topic, empty,
// then marks the mirror PENDING_RESTORE so its copy starts.
func (m *Manager) replaceTopic(ctx context.Context, mir *Mirror) error {
	adm := kadm.NewClient(m.cfg.Dest)
	resp, err := adm.DeleteTopic(ctx, mir.Topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.UnknownTopicOrPartition) {
		return fmt.Errorf("delete topic: %w", err)
	}
	// Kafka deletes asynchronously; creating too early says it exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err = createTopic(ctx, m.cfg.Dest, mir.Topic, mir.Partitions, -1, mirrorTopicConfigs(nil, nil))
		if err == nil || !errors.Is(err, kerr.TopicAlreadyExists) || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("re-create topic: %w", err)
	}
	return m.setStatus(ctx, mir.Topic, StatusPendingRestore)
}

// settleReverses decides, at start, the reverses a crash interrupted
// (mirrors left PENDING_SYNCHRONIZE): if the remote side already mirrors
// the topic back, the reverse happened and the local record goes; if not,
// the mirror returns to its previous status.
func (m *Manager) settleReverses(ctx context.Context) {
	m.mu.RLock()
	var settle []*Mirror
	for _, mir := range m.mirrors {
		if mir.Status == StatusPendingSynchronize {
			settle = append(settle, mir)
		}
	}
	m.mu.RUnlock()
	for _, mir := range settle {
		topic := mir.Topic
		m.mu.RLock()
		l, run := m.links[mir.Link], m.runs[mir.Link]
		m.mu.RUnlock()
		done := false
		if l != nil && run != nil {
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			view, _, err := m.remoteLink(rctx, l, run)
			cancel()
			rm := view.mirrors[mir.SourceTopic]
			done = err == nil && rm != nil && rm.Link == mir.Link && rm.SourceTopic == topic && rm.Status != StatusStopped
		}
		m.writeMu.Lock()
		var err error
		if done {
			err = m.deleteMirrorLocked(ctx, mir)
		} else {
			undo := mir.clone()
			undo.Status, undo.PrevStatus, undo.Halt = undo.PrevStatus, "", ""
			if undo.Status == "" {
				undo.Status = StatusActive
			}
			err = m.putMirrorLocked(ctx, undo)
		}
		m.writeMu.Unlock()
		if err != nil {
			m.log.Error("settle interrupted reverse", "topic", topic, "err", err)
		}
	}
}

// caughtUp reports whether every partition of a mirror has copied up to
// the source end last seen.
func (m *Manager) caughtUp(mir *Mirror) bool {
	m.refreshRemoteLags([]*Mirror{mir})
	for _, l := range m.lags(mir) {
		if l.LastSourceFetchOffset < 0 || l.MirrorEnd < l.LastSourceFetchOffset {
			return false
		}
	}
	return true
}
