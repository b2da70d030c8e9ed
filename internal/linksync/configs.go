package linksync

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// SyncedConfigs are the topic configs that follow the source on every
// mirror: the ones that say what the data is and how long it stays.
// topic.config.sync.include adds to them.
var SyncedConfigs = []string{
	"cleanup.policy",
	"retention.ms",
	"retention.bytes",
	"max.message.bytes",
	"delete.retention.ms",
	"min.compaction.lag.ms",
	"max.compaction.lag.ms",
	"min.cleanable.dirty.ratio",
	"segment.bytes",
	"segment.ms",
	"local.retention.ms",
	"local.retention.bytes",
}

// NeverSynced are the topic configs a mirror keeps as Strait set them, even
// when topic.config.sync.include names them: the mirror must take the
// source's bytes and timestamps unchanged, and durability settings are the
// destination's own.
var NeverSynced = []string{
	"compression.type",
	"message.timestamp.type",
	"message.timestamp.difference.max.ms",
	"message.timestamp.before.max.ms",
	"message.timestamp.after.max.ms",
	"message.format.version",
	"message.downconversion.enable",
	"min.insync.replicas",
	"unclean.leader.election.enable",
	"leader.replication.throttled.replicas",
	"follower.replication.throttled.replicas",
}

// syncedNames is the list of configs synced for the link's settings.
func syncedNames(cfg linkconfig.Set) []string {
	names := slices.Clone(SyncedConfigs)
	for _, n := range strings.Split(cfg.Get(linkconfig.TopicConfigSyncInclude), ",") {
		n = strings.TrimSpace(n)
		if n != "" && !slices.Contains(names, n) && !slices.Contains(NeverSynced, n) {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// syncConfigs is one round of the topic config sync: for each mirror, the
// synced configs the source topic sets are set on the mirror, and the ones
// it does not set are reset to the destination's default. Both clusters are
// asked for the synced configs only, a few hundred topics a request, and
// each topic's are compared through maps: a round costs what the mirrors
// number, and a mirror already in step costs no write.
func (s *Syncer) syncConfigs(ctx context.Context, cfg linkconfig.Set) []TaskError {
	src := s.l.Source()
	if src == nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", "the link has no usable connection to its source"}}
	}
	mirrors := activeMirrors(s.l)
	if len(mirrors) == 0 {
		return nil
	}
	names := syncedNames(cfg)
	srcTopics := make([]string, 0, len(mirrors))
	dstTopics := make([]string, 0, len(mirrors))
	for st, m := range mirrors {
		srcTopics = append(srcTopics, st)
		dstTopics = append(dstTopics, m.Topic)
	}
	wants, err := describeSynced(ctx, src, srcTopics, names)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("describe source topic configs: %v", err)}}
	}
	haves, err := describeSynced(ctx, s.l.Dest(), dstTopics, names)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("describe mirror topic configs: %v", err)}}
	}
	dstAdm := kadm.NewClient(s.l.Dest())
	var errs []TaskError
	for _, st := range slices.Sorted(maps.Keys(mirrors)) {
		m := mirrors[st]
		want, ok := wants[st]
		if !ok {
			continue // the source topic may be gone; the mirror reports it
		}
		have, ok := haves[m.Topic]
		if !ok {
			continue
		}
		changes := configChanges(names, want, have)
		if len(changes) == 0 {
			continue
		}
		resp, err := dstAdm.AlterTopicConfigs(ctx, changes, m.Topic)
		if err == nil {
			_, err = resp.On(m.Topic, nil)
		}
		if err != nil {
			errs = append(errs, TaskError{"INTERNAL_ERROR", fmt.Sprintf("sync configs of '%s': %v", m.Topic, err)})
			continue
		}
		if c := changed(changes, "cleanup.policy"); c != nil {
			s.l.CompactedChanged(m.Topic, c.Op == kadm.SetConfig && strings.Contains(*c.Value, "compact"))
		}
		s.log.Info("mirror topic configs synced", "topic", m.Topic, "changes", changes)
	}
	return errs
}

// configChanges is what brings a mirror's synced configs (have) to its
// source's (want): set what differs, reset what the source does not set
// (the size limit excepted: it always follows, in effect).
func configChanges(names []string, want, have map[string]string) []kadm.AlterConfig {
	var changes []kadm.AlterConfig
	for _, n := range names {
		w, wok := want[n]
		h, hok := have[n]
		switch {
		case wok && (!hok || h != w):
			changes = append(changes, kadm.AlterConfig{Op: kadm.SetConfig, Name: n, Value: kadm.StringPtr(w)})
		case !wok && hok && n != sizeLimit:
			changes = append(changes, kadm.AlterConfig{Op: kadm.DeleteConfig, Name: n})
		}
	}
	return changes
}

func changed(cs []kadm.AlterConfig, name string) *kadm.AlterConfig {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// describeBatch is how many topics one DescribeConfigs request asks for.
const describeBatch = 500

// describeSynced returns, for each topic that could be described, the
// configs among names that the topic sets itself, and the size limit
// whatever sets it (the mirror must take every batch the source took). A
// topic with an error (gone, say) is left out. Only names are asked for.
func describeSynced(ctx context.Context, cl *kgo.Client, topics []string, names []string) (map[string]map[string]string, error) {
	want := make(map[string]bool, len(names))
	for _, n := range names {
		want[n] = true
	}
	out := make(map[string]map[string]string, len(topics))
	for batch := range slices.Chunk(topics, describeBatch) {
		req := kmsg.NewPtrDescribeConfigsRequest()
		for _, t := range batch {
			r := kmsg.NewDescribeConfigsRequestResource()
			r.ResourceType = kmsg.ConfigResourceTypeTopic
			r.ResourceName = t
			r.ConfigNames = names
			req.Resources = append(req.Resources, r)
		}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, err
		}
		for _, r := range resp.Resources {
			if r.ErrorCode != 0 {
				continue
			}
			vals := map[string]string{}
			for _, c := range r.Configs {
				if c.Value == nil || !want[c.Name] {
					continue
				}
				if c.Source == kmsg.ConfigSourceDynamicTopicConfig || c.Name == sizeLimit {
					vals[c.Name] = *c.Value
				}
			}
			out[r.ResourceName] = vals
		}
	}
	return out, nil
}

const sizeLimit = "max.message.bytes"
