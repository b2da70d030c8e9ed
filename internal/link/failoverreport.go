package link

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/mirror"
)

// What a failover would lose, before it happens: per mirror partition the
// records the mirror does not have yet and how old the oldest of them is
// (the window of data lost), the transactions the failover would abort,
// and for the consumer groups whose offsets the link syncs, what their
// consumers would see again or miss on the destination.

// FailoverPartition is what failing one mirror partition over now loses.
type FailoverPartition struct {
	Partition int32
	SourceEnd int64
	MirrorEnd int64
	// NotCopied is SourceEnd - MirrorEnd: records and markers.
	NotCopied int64
	// OldestNotCopiedMs is the timestamp of the first record not copied,
	// -1 when everything is copied or the source cannot say.
	OldestNotCopiedMs int64
	// LossSeconds is that record's age now.
	LossSeconds float64
	// OpenTxnStarts are the mirror offsets where the transactions open on
	// the mirror partition start: a failover aborts them.
	OpenTxnStarts []int64
}

// FailoverGroupPartition is one partition of a group's position.
type FailoverGroupPartition struct {
	Partition   int32
	Source      int64 // committed on the source
	Destination int64 // committed on the destination now, -1 for none
	After       int64 // where the group resumes after a failover
	Reprocessed int64
	Missed      int64
}

// FailoverGroup is a synced consumer group's outcome on one mirror topic.
type FailoverGroup struct {
	Group       string
	Reprocessed int64
	Missed      int64
	Partitions  []FailoverGroupPartition
}

// FailoverTopic is what failing one mirror topic over now loses.
type FailoverTopic struct {
	Topic, SourceTopic string
	Status             Status
	Verdict            string
	Partitions         []FailoverPartition
	Groups             []FailoverGroup
}

// FailoverReport is what failing a link's mirrors over now loses.
type FailoverReport struct {
	Link              string
	Verdict           string
	MaxLossSeconds    float64
	LaggingPartitions int
	LaggingTopics     int
	OpenTransactions  int
	Topics            []FailoverTopic
}

// FailoverReport says what a failover of the link's mirror topics (those
// named, or every one that is not stopped) would lose now. It changes
// nothing.
func (m *Manager) FailoverReport(ctx context.Context, linkName string, topics []string) (FailoverReport, error) {
	l, run, err := m.linkAndRun(linkName)
	if err != nil {
		return FailoverReport{}, err
	}
	var mirs []*Mirror
	if len(topics) == 0 {
		for _, mir := range m.mirrorsOf(linkName) {
			if mir.Status != StatusStopped {
				mirs = append(mirs, mir)
			}
		}
	}
	for _, t := range dedupe(topics) {
		mir, err := m.lookupMirror(linkName, t)
		if err != nil {
			return FailoverReport{}, err
		}
		if mir.Status == StatusStopped {
			return FailoverReport{}, errorf(ErrInvalid, "Mirror topic '%s' is already stopped: a failover has nothing left to lose.", t)
		}
		mirs = append(mirs, mir)
	}
	if run == nil || run.src == nil {
		return FailoverReport{}, errorf(ErrInvalid, "Cluster link '%s' cannot reach its source: what a failover loses cannot be told.", linkName)
	}
	rep := FailoverReport{Link: linkName}
	groups, err := m.syncedGroups(ctx, l.Configs, run.src)
	if err != nil {
		return FailoverReport{}, err
	}
	for _, mir := range mirs {
		ft, err := m.failoverTopic(ctx, l.Configs, run.src, mir, groups)
		if err != nil {
			return FailoverReport{}, err
		}
		lagging := false
		for _, p := range ft.Partitions {
			rep.OpenTransactions += len(p.OpenTxnStarts)
			if p.NotCopied > 0 {
				rep.LaggingPartitions++
				lagging = true
				rep.MaxLossSeconds = max(rep.MaxLossSeconds, p.LossSeconds)
			}
		}
		if lagging {
			rep.LaggingTopics++
		}
		rep.Topics = append(rep.Topics, ft)
	}
	rep.Verdict = failoverVerdict(rep.MaxLossSeconds, rep.LaggingPartitions, rep.LaggingTopics, rep.OpenTransactions, len(rep.Topics), rep.Topics)
	return rep, nil
}

// syncedGroups lists the source groups whose offsets the link syncs, with
// their committed offsets; nil when the link syncs none.
func (m *Manager) syncedGroups(ctx context.Context, cfg linkconfig.Set, src *kgo.Client) (map[string]kadm.OffsetResponses, error) {
	if !cfg.Bool(linkconfig.ConsumerOffsetSyncEnable) {
		return nil, nil
	}
	filters, err := linkconfig.ParseGroupFilters(cfg.Get(linkconfig.ConsumerOffsetFilters))
	if err != nil {
		return nil, nil //nolint:nilerr // a link with bad filters syncs nothing
	}
	adm := kadm.NewClient(src)
	listed, err := adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list source groups: %w", err)
	}
	var names []string
	for g := range listed {
		if filters.Match(g) {
			names = append(names, g)
		}
	}
	out := map[string]kadm.OffsetResponses{}
	for _, f := range adm.FetchManyOffsets(ctx, names...) {
		if f.Err == nil {
			out[f.Group] = f.Fetched
		}
	}
	return out, nil
}

func (m *Manager) failoverTopic(ctx context.Context, cfg linkconfig.Set, src *kgo.Client, mir *Mirror, groups map[string]kadm.OffsetResponses) (FailoverTopic, error) {
	ft := FailoverTopic{Topic: mir.Topic, SourceTopic: mir.SourceTopic, Status: m.status(mir)}
	dstEnds, err := endOffsets(ctx, m.cfg.Dest, mir.Topic)
	if err != nil {
		return ft, fmt.Errorf("mirror topic %s: %w", mir.Topic, err)
	}
	srcEnds, err := endOffsets(ctx, src, mir.SourceTopic)
	if err != nil {
		return ft, errorf(ErrInvalid, "The source topic '%s' cannot be read (%v): what a failover loses cannot be told.", mir.SourceTopic, err)
	}
	open, err := openTransactions(ctx, m.cfg.Dest, mir.Topic, mir.Partitions)
	if err != nil {
		return ft, err
	}
	lagging := map[int32]int64{}
	for p := int32(0); p < mir.Partitions; p++ {
		fp := FailoverPartition{Partition: p, SourceEnd: srcEnds[p], MirrorEnd: dstEnds[p], OldestNotCopiedMs: -1, OpenTxnStarts: open[p]}
		if fp.SourceEnd > fp.MirrorEnd {
			fp.NotCopied = fp.SourceEnd - fp.MirrorEnd
			lagging[p] = fp.MirrorEnd
		}
		ft.Partitions = append(ft.Partitions, fp)
	}
	if len(lagging) > 0 {
		ts, err := mirror.SourceTimestamps(ctx, src, mir.SourceTopic, lagging)
		if err != nil {
			return ft, fmt.Errorf("read the oldest records not copied of %s: %w", mir.SourceTopic, err)
		}
		now := m.nowMs()
		for i := range ft.Partitions {
			if t, ok := ts[ft.Partitions[i].Partition]; ok {
				ft.Partitions[i].OldestNotCopiedMs = t
				ft.Partitions[i].LossSeconds = float64(max(0, now-t)) / 1000
			}
		}
	}
	if ft.Groups, err = m.failoverGroups(ctx, cfg, mir, ft.Partitions, groups); err != nil {
		return ft, err
	}
	var loss float64
	laggingParts, txns := 0, 0
	for _, p := range ft.Partitions {
		txns += len(p.OpenTxnStarts)
		if p.NotCopied > 0 {
			laggingParts++
			loss = max(loss, p.LossSeconds)
		}
	}
	ft.Verdict = failoverVerdict(loss, laggingParts, min(laggingParts, 1), txns, 1, []FailoverTopic{ft})
	return ft, nil
}

// failoverGroups works out where each synced group would resume on the
// destination after a failover of mir. A failover syncs the offsets one
// last time (see lastOffsetSync), which moves a group to its source
// position capped at the mirror's end, unless the group has members on
// the destination (the sync leaves it alone).
func (m *Manager) failoverGroups(ctx context.Context, cfg linkconfig.Set, mir *Mirror, parts []FailoverPartition, groups map[string]kadm.OffsetResponses) ([]FailoverGroup, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	prefix := ""
	if cfg.Bool(linkconfig.ConsumerGroupPrefix) {
		prefix = cfg.Prefix()
	}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	adm := kadm.NewClient(m.cfg.Dest)
	var out []FailoverGroup
	for _, g := range names {
		srcOffs := map[int32]int64{}
		groups[g].Each(func(o kadm.OffsetResponse) {
			if o.Topic == mir.SourceTopic && o.Err == nil && o.At >= 0 {
				srcOffs[o.Partition] = o.At
			}
		})
		if len(srcOffs) == 0 {
			continue
		}
		dest := prefix + g
		fetched, err := adm.FetchOffsets(ctx, dest)
		if errors.Is(err, kerr.GroupIDNotFound) {
			fetched, err = nil, nil // no offsets on the destination yet
		}
		if err != nil {
			return nil, fmt.Errorf("fetch the offsets of group %s on the destination: %w", dest, err)
		}
		described, err := adm.DescribeGroups(ctx, dest)
		if err != nil {
			return nil, fmt.Errorf("describe group %s on the destination: %w", dest, err)
		}
		synced := true
		if d, ok := described[dest]; ok && d.Err == nil && len(d.Members) > 0 {
			synced = false // the last sync leaves a group with members alone
		}
		fg := FailoverGroup{Group: g}
		for _, p := range parts {
			at, ok := srcOffs[p.Partition]
			if !ok {
				continue
			}
			gp := FailoverGroupPartition{Partition: p.Partition, Source: at, Destination: -1}
			if o, ok := fetched.Lookup(mir.Topic, p.Partition); ok && o.Err == nil && o.At >= 0 {
				gp.Destination = o.At
			}
			gp.After = gp.Destination
			if synced {
				gp.After = min(at, p.MirrorEnd)
			}
			if gp.After >= 0 {
				gp.Reprocessed = max(0, min(at, p.MirrorEnd)-gp.After)
				gp.Missed = max(0, p.SourceEnd-max(at, p.MirrorEnd)) + max(0, gp.After-at)
			}
			fg.Reprocessed += gp.Reprocessed
			fg.Missed += gp.Missed
			fg.Partitions = append(fg.Partitions, gp)
		}
		out = append(out, fg)
	}
	return out, nil
}

// openTransactions lists, per partition of a mirror topic, where the
// transactions open on it start.
func openTransactions(ctx context.Context, cl *kgo.Client, topic string, partitions int32) (map[int32][]int64, error) {
	set := kadm.TopicsSet{topic: {}}
	for p := int32(0); p < partitions; p++ {
		set[topic][p] = struct{}{}
	}
	ps, err := kadm.NewClient(cl).DescribeProducers(ctx, set)
	if err != nil {
		return nil, fmt.Errorf("describe the producers of %s: %w", topic, err)
	}
	out := map[int32][]int64{}
	ps.EachProducer(func(p kadm.DescribedProducer) {
		if p.Topic == topic && p.CurrentTxnStartOffset >= 0 {
			out[p.Partition] = append(out[p.Partition], p.CurrentTxnStartOffset)
		}
	})
	for _, s := range out {
		slices.Sort(s)
	}
	return out, nil
}

// endOffsets lists a topic's end offsets.
func endOffsets(ctx context.Context, cl *kgo.Client, topic string) (map[int32]int64, error) {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	listed, err := kadm.NewClient(cl).ListEndOffsets(rctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	listed.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
	return out, nil
}

// failoverVerdict says in one line what a failover loses.
func failoverVerdict(loss float64, laggingParts, laggingTopics, txns, topics int, fts []FailoverTopic) string {
	var b strings.Builder
	if laggingParts == 0 {
		fmt.Fprintf(&b, "failover now loses no data: every partition of %s is copied", plural(topics, "topic"))
	} else {
		fmt.Fprintf(&b, "failover now loses at most %.1f s of data on %s of %s", loss, plural(laggingParts, "partition"), plural(laggingTopics, "topic"))
	}
	if txns > 0 {
		fmt.Fprintf(&b, ", and aborts %s open on the source", plural(txns, "transaction"))
	}
	var again, missed int64
	groups := map[string]bool{}
	for _, ft := range fts {
		for _, g := range ft.Groups {
			again += g.Reprocessed
			missed += g.Missed
			if g.Reprocessed > 0 || g.Missed > 0 {
				groups[g.Group] = true
			}
		}
	}
	if len(groups) > 0 {
		fmt.Fprintf(&b, "; consumers of %s would see %s again and miss %d", plural(len(groups), "group"), plural(int(again), "record"), missed)
	}
	return b.String()
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
