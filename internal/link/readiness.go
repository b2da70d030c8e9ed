package link

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// Which consumers can move: a consumer group can switch to the destination
// when every topic it reads is mirrored, the mirrors have (almost) caught
// up, and its committed offsets on the destination are its offsets on the
// source (offsets are identical on both sides, so nothing is translated).

// ReadinessPartition is one partition a group has committed.
type ReadinessPartition struct {
	Partition   int32
	Source      int64 // committed on the source
	Destination int64 // committed on the destination, -1 for none
	MirrorEnd   int64
	SourceEnd   int64
	Lag         int64
}

// ReadinessTopic is one source topic a group has committed offsets on.
type ReadinessTopic struct {
	SourceTopic string
	// MirrorTopic is "" when the link does not mirror the topic.
	MirrorTopic string
	Lag         int64
	Partitions  []ReadinessPartition
}

// GroupReadiness is whether a group can move to the destination now.
type GroupReadiness struct {
	Link    string
	Group   string
	Ready   bool
	Reasons []string
	Topics  []ReadinessTopic
}

// GroupReadiness says, for the consumer groups of a link's source (every
// link when linkName is ""), whether each can move to the destination now,
// and if not, why. group "" means every group with offsets on a topic the
// link mirrors; a named group is reported on every link asked. maxLag is
// the lag, summed over a topic's partitions, still taken as caught up.
func (m *Manager) GroupReadiness(ctx context.Context, linkName, group string, maxLag int64, canRead func(link string) bool) ([]GroupReadiness, error) {
	var links []string
	if linkName != "" {
		if _, _, err := m.linkAndRun(linkName); err != nil {
			return nil, err
		}
		links = []string{linkName}
	} else {
		for _, l := range m.Links() {
			links = append(links, l.Name)
		}
	}
	out := []GroupReadiness{}
	for _, name := range links {
		if canRead != nil && !canRead(name) {
			continue
		}
		rs, err := m.linkReadiness(ctx, name, group, maxLag)
		if err != nil {
			return nil, err
		}
		out = append(out, rs...)
	}
	return out, nil
}

func (m *Manager) linkReadiness(ctx context.Context, linkName, group string, maxLag int64) ([]GroupReadiness, error) {
	l, run, err := m.linkAndRun(linkName)
	if err != nil {
		return nil, err
	}
	if run == nil || run.src == nil {
		return nil, errorf(ErrInvalid, "Cluster link '%s' cannot reach its source: its groups cannot be read.", linkName)
	}
	mirrored := map[string]*Mirror{} // by source topic
	for _, mir := range m.mirrorsOf(linkName) {
		if mir.Status != StatusStopped {
			mirrored[mir.SourceTopic] = mir
		}
	}
	srcAdm, dstAdm := kadm.NewClient(run.src), kadm.NewClient(m.cfg.Dest)
	groups := []string{group}
	if group == "" {
		listed, err := srcAdm.ListGroups(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the groups of link %s's source: %w", linkName, err)
		}
		groups = listed.Groups()
		sort.Strings(groups)
	}
	prefix := ""
	if l.Configs.Bool(linkconfig.ConsumerGroupPrefix) {
		prefix = l.Configs.Prefix()
	}
	filters, ferr := linkconfig.ParseGroupFilters(l.Configs.Get(linkconfig.ConsumerOffsetFilters))
	syncs := l.Configs.Bool(linkconfig.ConsumerOffsetSyncEnable)
	ends := endsCache{}
	var out []GroupReadiness
	for _, g := range groups {
		src, err := srcAdm.FetchOffsets(ctx, g)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("fetch the offsets of group %s on the source: %w", g, err)
		}
		dst, err := dstAdm.FetchOffsets(ctx, prefix+g)
		if err != nil && !errors.Is(err, kerr.GroupIDNotFound) {
			return nil, fmt.Errorf("fetch the offsets of group %s on the destination: %w", prefix+g, err)
		}
		gr := GroupReadiness{Link: linkName, Group: g, Reasons: []string{}}
		byTopic := map[string][]kadm.OffsetResponse{}
		src.Each(func(o kadm.OffsetResponse) {
			if o.Err == nil && o.At >= 0 {
				byTopic[o.Topic] = append(byTopic[o.Topic], o)
			}
		})
		anyMirrored := false
		topics := make([]string, 0, len(byTopic))
		for t := range byTopic {
			topics = append(topics, t)
			anyMirrored = anyMirrored || mirrored[t] != nil
		}
		if group == "" && !anyMirrored {
			continue // nothing to do with this link
		}
		sort.Strings(topics)
		if len(topics) == 0 {
			gr.Reasons = append(gr.Reasons, fmt.Sprintf("group '%s' has no committed offsets on link '%s''s source", g, linkName))
		}
		for _, t := range topics {
			rt, reasons, err := m.topicReadiness(ctx, t, mirrored[t], byTopic[t], dst, prefix+g, maxLag, ends)
			if err != nil {
				return nil, err
			}
			gr.Topics = append(gr.Topics, rt)
			gr.Reasons = append(gr.Reasons, reasons...)
		}
		if len(gr.Reasons) > 0 && anyMirrored {
			switch {
			case !syncs:
				gr.Reasons = append(gr.Reasons, fmt.Sprintf("link '%s' does not sync consumer offsets (consumer.offset.sync.enable is false)", linkName))
			case ferr != nil || !filters.Match(g):
				gr.Reasons = append(gr.Reasons, fmt.Sprintf("link '%s''s consumer.offset.group.filters do not include group '%s'", linkName, g))
			}
		}
		gr.Ready = len(gr.Reasons) == 0
		out = append(out, gr)
	}
	return out, nil
}

// endsCache holds end offsets by cluster side and topic, read once per
// call.
type endsCache map[string]map[int32]int64

func (m *Manager) topicReadiness(ctx context.Context, topic string, mir *Mirror, offs []kadm.OffsetResponse, dst kadm.OffsetResponses, destGroup string, maxLag int64, ends endsCache) (ReadinessTopic, []string, error) {
	rt := ReadinessTopic{SourceTopic: topic}
	sort.Slice(offs, func(i, j int) bool { return offs[i].Partition < offs[j].Partition })
	if mir == nil {
		for _, o := range offs {
			rt.Partitions = append(rt.Partitions, ReadinessPartition{Partition: o.Partition, Source: o.At, Destination: -1, MirrorEnd: -1, SourceEnd: -1})
		}
		return rt, []string{fmt.Sprintf("topic '%s' is not mirrored", topic)}, nil
	}
	rt.MirrorTopic = mir.Topic
	_, run, err := m.linkAndRun(mir.Link)
	if err != nil {
		return rt, nil, err
	}
	srcEnds, ok := ends["s/"+topic]
	if !ok {
		if srcEnds, err = endOffsets(ctx, run.src, topic); err != nil {
			return rt, nil, fmt.Errorf("source topic %s: %w", topic, err)
		}
		ends["s/"+topic] = srcEnds
	}
	dstEnds, ok := ends["d/"+mir.Topic]
	if !ok {
		if dstEnds, err = endOffsets(ctx, m.cfg.Dest, mir.Topic); err != nil {
			return rt, nil, fmt.Errorf("mirror topic %s: %w", mir.Topic, err)
		}
		ends["d/"+mir.Topic] = dstEnds
	}
	var reasons []string
	for p := int32(0); p < mir.Partitions; p++ {
		rt.Lag += max(0, srcEnds[p]-dstEnds[p])
	}
	if rt.Lag > maxLag {
		if maxLag == 0 {
			reasons = append(reasons, fmt.Sprintf("mirror topic '%s' is %d records behind its source", mir.Topic, rt.Lag))
		} else {
			reasons = append(reasons, fmt.Sprintf("mirror topic '%s' is %d records behind its source, more than max_lag %d", mir.Topic, rt.Lag, maxLag))
		}
	}
	if mir.Status != StatusActive && mir.Status != StatusPaused {
		reasons = append(reasons, fmt.Sprintf("mirror topic '%s' is %s", mir.Topic, m.status(mir)))
	}
	for _, o := range offs {
		rp := ReadinessPartition{Partition: o.Partition, Source: o.At, Destination: -1, MirrorEnd: dstEnds[o.Partition], SourceEnd: srcEnds[o.Partition]}
		rp.Lag = max(0, rp.SourceEnd-rp.MirrorEnd)
		if d, ok := dst.Lookup(mir.Topic, o.Partition); ok && d.Err == nil && d.At >= 0 {
			rp.Destination = d.At
		}
		switch {
		case rp.Destination < 0:
			reasons = append(reasons, fmt.Sprintf("group '%s' has no committed offset on the destination for %s[%d] (source: %d)", destGroup, mir.Topic, o.Partition, o.At))
		case rp.Destination != o.At:
			reasons = append(reasons, fmt.Sprintf("group '%s' is at %d on the destination for %s[%d], at %d on the source", destGroup, rp.Destination, mir.Topic, o.Partition, o.At))
		}
		rt.Partitions = append(rt.Partitions, rp)
	}
	return rt, reasons, nil
}
