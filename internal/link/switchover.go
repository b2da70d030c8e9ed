package link

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/verify"
)

// A planned, lossless switchover of a set of mirror topics and the
// consumer groups that read them: wait until the producers on the source
// have stopped writing the topics and the mirrors have copied everything,
// verify the mirrors against their sources, commit the groups' offsets on
// the destination a last time, and promote. Any step that fails refuses
// the switchover, naming why, before anything is promoted.

// ErrRefused: a switchover did not happen (the mirrors are as they were).
var ErrRefused = errors.New("switchover refused")

// SwitchoverRequest is what to switch over and how long to wait.
type SwitchoverRequest struct {
	Selection Selection
	// Groups move with the topics: their offsets are committed on the
	// destination before the promote.
	Groups []string
	// Quiet is how long the source topics must take no new offsets;
	// zero means 5 s.
	Quiet time.Duration
	// Timeout bounds the wait for quiet and zero lag; zero means 60 s.
	Timeout time.Duration
	// BytesPerSecond caps the verification's reads from each cluster.
	BytesPerSecond int64
}

// SwitchoverPartition is one partition switched over.
type SwitchoverPartition struct {
	Partition int32
	End       int64 // where the source and the mirror both ended
	Verified  int64
}

// SwitchoverTopic is one mirror topic switched over.
type SwitchoverTopic struct {
	Topic, SourceTopic string
	Status             Status
	Partitions         []SwitchoverPartition
	Verified           verify.Stats
}

// SwitchoverOffset is one offset committed for a group.
type SwitchoverOffset struct {
	Topic     string
	Partition int32
	Offset    int64
}

// SwitchoverGroup is one group moved.
type SwitchoverGroup struct {
	Group   string
	Offsets []SwitchoverOffset
}

// SwitchoverResult is what a switchover did.
type SwitchoverResult struct {
	Link      string
	QuietWait time.Duration
	Took      time.Duration
	Topics    []SwitchoverTopic
	Groups    []SwitchoverGroup
}

func refuse(format string, args ...any) error {
	return errorf(ErrRefused, "Switchover refused: "+format, args...)
}

// Switchover moves mirror topics and consumer groups of a link to the
// destination without losing a record, or refuses (ErrRefused) and leaves
// the mirrors as they were.
func (m *Manager) Switchover(ctx context.Context, linkName string, req SwitchoverRequest) (SwitchoverResult, error) {
	start := time.Now()
	if req.Quiet <= 0 {
		req.Quiet = 5 * time.Second
	}
	if req.Timeout <= 0 {
		req.Timeout = time.Minute
	}
	l, run, err := m.linkAndRun(linkName)
	if err != nil {
		return SwitchoverResult{}, err
	}
	mirs, err := m.switchoverMirrors(linkName, req.Selection)
	if err != nil {
		return SwitchoverResult{}, err
	}
	if run == nil || run.src == nil {
		return SwitchoverResult{}, refuse("cluster link '%s' cannot reach its source", linkName)
	}
	if l.Configs.Paused() {
		return SwitchoverResult{}, refuse("cluster link '%s' is paused; resume it so that the mirrors catch up", linkName)
	}
	groups := dedupe(req.Groups)
	for _, g := range groups {
		if g == "" {
			return SwitchoverResult{}, errorf(ErrInvalid, "group_ids must not hold an empty name.")
		}
	}
	res := SwitchoverResult{Link: linkName}
	// 1. The producers stop and the mirrors catch up.
	ends, err := m.awaitQuiet(ctx, run.src, mirs, req.Quiet, req.Timeout)
	if err != nil {
		return res, err
	}
	res.QuietWait = time.Since(start)
	// 2. Verify.
	for _, mir := range mirs {
		st, err := m.switchoverVerify(ctx, linkName, mir, ends[mir.SourceTopic], req.BytesPerSecond)
		if err != nil {
			return res, err
		}
		res.Topics = append(res.Topics, st)
	}
	// 3. The groups' offsets, checked for every group before any is
	// committed.
	prefix := ""
	if l.Configs.Bool(linkconfig.ConsumerGroupPrefix) {
		prefix = l.Configs.Prefix()
	}
	planned, err := m.planGroups(ctx, run.src, prefix, groups, mirs, ends)
	if err != nil {
		return res, err
	}
	// 4. Nothing was written meanwhile.
	now, err := sourceEndsOf(ctx, run.src, mirs)
	if err != nil {
		return res, refuse("the source cannot be read: %v", err)
	}
	if moved := movedSince(ends, now); moved != "" {
		return res, refuse("producers wrote to the source while the switchover verified: %s", moved)
	}
	if err := m.commitGroups(ctx, planned); err != nil {
		return res, err
	}
	res.Groups = planned
	// 5. Promote.
	names := make([]string, len(mirs))
	for i, mir := range mirs {
		names[i] = mir.Topic
	}
	results, err := m.AlterMirrors(ctx, linkName, OpPromote, Selection{Names: names, HasNames: true}, AlterOptions{})
	if err != nil {
		return res, refuse("promote: %v", err)
	}
	var failed, done []string
	for _, r := range results {
		if r.ErrorCode != 0 {
			failed = append(failed, r.ErrorMessage)
		} else {
			done = append(done, r.Topic)
		}
	}
	if len(failed) > 0 {
		return res, refuse("the promote failed: %s (promoted: %s)", strings.Join(failed, "; "), strings.Join(done, ", "))
	}
	for i := range res.Topics {
		m.mu.RLock()
		if mir := m.mirrors[res.Topics[i].Topic]; mir != nil {
			res.Topics[i].Status = mir.Status
		}
		m.mu.RUnlock()
	}
	res.Took = time.Since(start)
	return res, nil
}

// switchoverMirrors resolves the selection to mirror topics of the link
// that are copying.
func (m *Manager) switchoverMirrors(linkName string, sel Selection) ([]*Mirror, error) {
	if sel.HasNames == sel.HasPattern {
		return nil, errorf(ErrInvalid, "Give exactly one of mirror_topic_names and mirror_topic_name_pattern.")
	}
	names := sel.Names
	if sel.HasPattern {
		if len(sel.Pattern) > maxPatternLen {
			return nil, errorf(ErrInvalid, "mirror_topic_name_pattern is %d characters long; at most %d are accepted.", len(sel.Pattern), maxPatternLen)
		}
		re, err := wholeMatch(sel.Pattern)
		if err != nil {
			return nil, errorf(ErrInvalid, "Invalid mirror_topic_name_pattern '%s': %v", sel.Pattern, err)
		}
		names = matching(m.mirrorsOf(linkName), re)
	}
	names = dedupe(names)
	if len(names) == 0 {
		return nil, errorf(ErrInvalid, "The request selects no mirror topic of cluster link '%s'.", linkName)
	}
	if err := m.checkCount(len(names)); err != nil {
		return nil, err
	}
	var out []*Mirror
	for _, n := range names {
		mir, err := m.lookupMirror(linkName, n)
		if err != nil {
			return nil, err
		}
		if st := m.status(mir); st != StatusActive {
			return nil, refuse("mirror topic '%s' is %s, not ACTIVE", n, st)
		}
		out = append(out, mir)
	}
	return out, nil
}

func matching(mirs []*Mirror, re *regexp.Regexp) []string {
	var out []string
	for _, mir := range mirs {
		if re.MatchString(mir.Topic) {
			out = append(out, mir.Topic)
		}
	}
	return out
}

// awaitQuiet waits until no source topic took a new offset for quiet, no
// transaction is open on them and every mirror ends where its source does.
// It returns the source ends then, by source topic.
func (m *Manager) awaitQuiet(ctx context.Context, src *kgo.Client, mirs []*Mirror, quiet, timeout time.Duration) (map[string]map[int32]int64, error) {
	deadline := time.Now().Add(timeout)
	poll := min(max(quiet/10, 50*time.Millisecond), 500*time.Millisecond)
	var last map[string]map[int32]int64
	since := time.Now()
	why, writing := "", ""
	for {
		ends, err := sourceEndsOf(ctx, src, mirs)
		if err != nil {
			why = fmt.Sprintf("the source cannot be read: %v", err)
		} else {
			if moved := movedSince(last, ends); moved != "" || last == nil {
				since = time.Now()
				if moved != "" {
					writing = "producers are still writing to the source: " + moved
				}
			}
			last = ends
			switch lag, open, err := m.quietState(ctx, src, mirs, ends); {
			case err != nil:
				why = err.Error()
			case open != "":
				why = open
				since = time.Now() // a transaction that ends writes a marker
			case writing != "" && time.Since(since) < quiet:
				// The writes are the cause; a lag they leave is their
				// effect.
				why = writing
			case lag != "":
				why = lag
			case time.Since(since) >= quiet:
				return ends, nil
			case why == "":
				why = fmt.Sprintf("the source topics took no new offset for only %v of %v", time.Since(since).Round(time.Millisecond), quiet)
			}
		}
		if time.Now().After(deadline) {
			return nil, refuse("after %v, %s; stop the producers and try again", timeout, why)
		}
		select {
		case <-ctx.Done():
			return nil, refuse("the request ended while waiting (%s)", why)
		case <-time.After(poll):
		}
	}
}

// quietState says what keeps the mirrors from being complete now: a lag,
// or a transaction open on the source.
func (m *Manager) quietState(ctx context.Context, src *kgo.Client, mirs []*Mirror, ends map[string]map[int32]int64) (lag, open string, err error) {
	for _, mir := range mirs {
		dst, err := endOffsets(ctx, m.cfg.Dest, mir.Topic)
		if err != nil {
			return "", "", fmt.Errorf("the mirror topic '%s' cannot be read: %v", mir.Topic, err)
		}
		txns, err := openTransactions(ctx, src, mir.SourceTopic, mir.Partitions)
		if err != nil {
			return "", "", err
		}
		for p := int32(0); p < mir.Partitions; p++ {
			if s := txns[p]; len(s) > 0 && open == "" {
				open = fmt.Sprintf("a transaction is open on source topic '%s' partition %d since offset %d", mir.SourceTopic, p, s[0])
			}
			if d := ends[mir.SourceTopic][p] - dst[p]; d > 0 && lag == "" {
				lag = fmt.Sprintf("mirror topic '%s' partition %d is %d records behind its source", mir.Topic, p, d)
			}
		}
	}
	return lag, open, nil
}

// sourceEndsOf reads the end offsets of the mirrors' source topics.
func sourceEndsOf(ctx context.Context, src *kgo.Client, mirs []*Mirror) (map[string]map[int32]int64, error) {
	out := map[string]map[int32]int64{}
	for _, mir := range mirs {
		e, err := endOffsets(ctx, src, mir.SourceTopic)
		if err != nil {
			return nil, err
		}
		out[mir.SourceTopic] = e
	}
	return out, nil
}

// movedSince names a partition whose end moved from before to now, ""
// when none did (or before is nil).
func movedSince(before, now map[string]map[int32]int64) string {
	if before == nil {
		return ""
	}
	topics := make([]string, 0, len(now))
	for t := range now {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		for p, e := range now[t] {
			if b, ok := before[t][p]; ok && b != e {
				return fmt.Sprintf("'%s' partition %d moved from %d to %d", t, p, b, e)
			}
		}
	}
	return ""
}

// switchoverVerify verifies a mirror up to its source's end.
func (m *Manager) switchoverVerify(ctx context.Context, linkName string, mir *Mirror, ends map[int32]int64, rate int64) (SwitchoverTopic, error) {
	st := SwitchoverTopic{Topic: mir.Topic, SourceTopic: mir.SourceTopic}
	res, err := m.VerifyMirror(ctx, linkName, mir.Topic, VerifyOptions{BytesPerSecond: rate})
	if err != nil {
		return st, refuse("mirror topic '%s' could not be verified: %v", mir.Topic, err)
	}
	st.Verified = res.Stats
	for _, p := range res.Partitions {
		switch {
		case p.Divergence != nil:
			return st, refuse("mirror topic '%s' partition %d differs from its source at offset %d: %s", mir.Topic, p.Partition, p.Divergence.Offset, p.Divergence.Message)
		case p.Error != "":
			return st, refuse("mirror topic '%s' partition %d could not be verified past offset %d: %s", mir.Topic, p.Partition, p.Verified, p.Error)
		case p.Verified < ends[p.Partition] || p.MirrorEnd != ends[p.Partition]:
			return st, refuse("mirror topic '%s' partition %d is verified up to offset %d, its source ends at %d", mir.Topic, p.Partition, p.Verified, ends[p.Partition])
		}
		st.Partitions = append(st.Partitions, SwitchoverPartition{Partition: p.Partition, End: ends[p.Partition], Verified: p.Verified})
	}
	return st, nil
}

// planGroups reads the groups' offsets on the source topics and checks that
// they can be moved: no consumer of theirs still runs on the source, none
// yet on the destination.
func (m *Manager) planGroups(ctx context.Context, src *kgo.Client, prefix string, groups []string, mirs []*Mirror, ends map[string]map[int32]int64) ([]SwitchoverGroup, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	bySource := map[string]*Mirror{}
	for _, mir := range mirs {
		bySource[mir.SourceTopic] = mir
	}
	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(m.cfg.Dest)
	var out []SwitchoverGroup
	for _, g := range groups {
		for side, adm := range map[string]*kadm.Client{"source": srcAdm, "destination": dstAdm} {
			name := g
			if side == "destination" {
				name = prefix + g
			}
			d, err := adm.DescribeGroups(ctx, name)
			if err != nil {
				return nil, refuse("group '%s' cannot be described on the %s: %v", name, side, err)
			}
			if dg, ok := d[name]; ok && dg.Err == nil && len(dg.Members) > 0 {
				return nil, refuse("group '%s' has %d members on the %s: stop its consumers first", name, len(dg.Members), side)
			}
		}
		fetched, err := srcAdm.FetchOffsets(ctx, g)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, refuse("the offsets of group '%s' cannot be read on the source: %v", g, err)
		}
		sg := SwitchoverGroup{Group: prefix + g}
		fetched.Each(func(o kadm.OffsetResponse) {
			mir, ok := bySource[o.Topic]
			if !ok || o.Err != nil || o.At < 0 {
				return
			}
			sg.Offsets = append(sg.Offsets, SwitchoverOffset{Topic: mir.Topic, Partition: o.Partition, Offset: min(o.At, ends[o.Topic][o.Partition])})
		})
		if len(sg.Offsets) == 0 {
			return nil, refuse("group '%s' has no committed offsets on the topics switched over", g)
		}
		slices.SortFunc(sg.Offsets, func(a, b SwitchoverOffset) int {
			if c := strings.Compare(a.Topic, b.Topic); c != 0 {
				return c
			}
			return int(a.Partition - b.Partition)
		})
		out = append(out, sg)
	}
	return out, nil
}

// commitGroups commits the planned offsets on the destination.
func (m *Manager) commitGroups(ctx context.Context, groups []SwitchoverGroup) error {
	adm := kadm.NewClient(m.cfg.Dest)
	for _, g := range groups {
		offs := kadm.Offsets{}
		for _, o := range g.Offsets {
			offs.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
		}
		resp, err := adm.CommitOffsets(ctx, g.Group, offs)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return refuse("the offsets of group '%s' cannot be committed on the destination: %v", g.Group, err)
		}
	}
	return nil
}
