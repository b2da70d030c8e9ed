package linksync

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
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
// it does not set are reset to the destination's default.
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
	var srcTopics, dstTopics []string
	for st, m := range mirrors {
		srcTopics = append(srcTopics, st)
		dstTopics = append(dstTopics, m.Topic)
	}
	srcCfgs, err := kadm.NewClient(src).DescribeTopicConfigs(ctx, srcTopics...)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("describe source topic configs: %v", err)}}
	}
	dstAdm := kadm.NewClient(s.l.Dest())
	dstCfgs, err := dstAdm.DescribeTopicConfigs(ctx, dstTopics...)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("describe mirror topic configs: %v", err)}}
	}
	var errs []TaskError
	for st, m := range mirrors {
		want, err := dynamicConfigs(srcCfgs, st, names)
		if err != nil {
			continue // the source topic may be gone; the mirror reports it
		}
		have, err := dynamicConfigs(dstCfgs, m.Topic, names)
		if err != nil {
			continue
		}
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

func changed(cs []kadm.AlterConfig, name string) *kadm.AlterConfig {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

// dynamicConfigs returns the configs among names that topic sets itself.
func dynamicConfigs(rcs kadm.ResourceConfigs, topic string, names []string) (map[string]string, error) {
	rc, err := rcs.On(topic, nil)
	if err != nil {
		return nil, err
	}
	if rc.Err != nil {
		return nil, rc.Err
	}
	out := map[string]string{}
	for _, c := range rc.Configs {
		if c.Value == nil || !slices.Contains(names, c.Key) {
			continue
		}
		// The size limit follows in effect, whatever sets it: the mirror
		// must take every batch the source took.
		if c.Source == kmsg.ConfigSourceDynamicTopicConfig || c.Key == sizeLimit {
			out[c.Key] = *c.Value
		}
	}
	return out, nil
}

const sizeLimit = "max.message.bytes"
