package linksync

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// Consumer offset sync: the committed offsets of the source groups the
// filters select, on topics the link mirrors, are committed for the same
// group on the destination. Offsets are identical on both sides, so nothing
// is translated; an offset is never set past what the mirror holds yet, so
// a consumer that moves over never skips a record. A destination group
// with members is left alone: its consumers own its offsets.

// syncOffsets is one round of the offset sync task.
func (s *Syncer) syncOffsets(ctx context.Context, cfg linkconfig.Set) []TaskError {
	return s.syncOffsetsOf(ctx, cfg, nil)
}

// SyncOffsets runs one offset sync now for the given mirror topics (all
// when nil), if the link syncs offsets: promote and failover call it before
// they stop a mirror, so consumers moving over find the latest offsets.
func (s *Syncer) SyncOffsets(ctx context.Context, topics []string) []TaskError {
	cfg := s.l.Configs()
	if !cfg.Bool(linkconfig.ConsumerOffsetSyncEnable) {
		return nil
	}
	return s.syncOffsetsOf(ctx, cfg, topics)
}

func (s *Syncer) syncOffsetsOf(ctx context.Context, cfg linkconfig.Set, only []string) []TaskError {
	s.offsetSync.Lock()
	defer s.offsetSync.Unlock()
	filters, err := linkconfig.ParseGroupFilters(cfg.Get(linkconfig.ConsumerOffsetFilters))
	if err != nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", err.Error()}}
	}
	src, dst := s.l.Source(), s.l.Dest()
	if src == nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", "the link has no usable connection to its source"}}
	}
	mirrors := activeMirrors(s.l)
	if len(only) > 0 {
		keep := map[string]bool{}
		for _, t := range only {
			keep[t] = true
		}
		for st, m := range mirrors {
			if !keep[m.Topic] {
				delete(mirrors, st)
			}
		}
	}
	if len(mirrors) == 0 {
		return nil
	}
	srcAdm, dstAdm := kadm.NewClient(src), kadm.NewClient(dst)
	listed, err := srcAdm.ListGroups(ctx)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("list source groups: %v", err)}}
	}
	var groups []string
	for g := range listed {
		if filters.Match(g) {
			groups = append(groups, g)
		}
	}
	sort.Strings(groups)
	if len(groups) == 0 {
		return nil
	}
	var mirrorTopics []string
	for _, m := range mirrors {
		mirrorTopics = append(mirrorTopics, m.Topic)
	}
	ends, err := dstAdm.ListEndOffsets(ctx, mirrorTopics...)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("list mirror end offsets: %v", err)}}
	}
	prefix := ""
	if cfg.Bool(linkconfig.ConsumerGroupPrefix) {
		prefix = cfg.Prefix()
	}
	var errs []TaskError
	for _, fetched := range srcAdm.FetchManyOffsets(ctx, groups...) {
		if fetched.Err != nil {
			errs = append(errs, TaskError{"INTERNAL_ERROR", fmt.Sprintf("fetch offsets of group '%s': %v", fetched.Group, fetched.Err)})
			continue
		}
		offs := kadm.Offsets{}
		fetched.Fetched.Each(func(o kadm.OffsetResponse) {
			m, ok := mirrors[o.Topic]
			if !ok || o.Err != nil || o.At < 0 {
				return
			}
			end, ok := ends.Lookup(m.Topic, o.Partition)
			if !ok || end.Err != nil {
				return
			}
			at := min(o.At, end.Offset) // never past what the mirror holds
			offs.Add(kadm.Offset{Topic: m.Topic, Partition: o.Partition, At: at, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
		})
		if len(offs) == 0 {
			continue
		}
		dest := prefix + fetched.Group
		if err := s.commitGroup(ctx, dstAdm, dest, offs); err != nil {
			errs = append(errs, *err)
		}
	}
	return errs
}

// commitGroup commits offs for group on the destination, unless the group
// has members there or the offsets did not change since the last commit.
func (s *Syncer) commitGroup(ctx context.Context, adm *kadm.Client, group string, offs kadm.Offsets) *TaskError {
	key := offsetsKey(offs)
	if s.lastOffsets[group] == key {
		return nil
	}
	described, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return &TaskError{"INTERNAL_ERROR", fmt.Sprintf("describe destination group '%s': %v", group, err)}
	}
	if d, ok := described[group]; ok && d.Err == nil && len(d.Members) > 0 {
		return &TaskError{"CONSUMER_GROUP_IN_USE_ERROR", fmt.Sprintf("group '%s' has %d active members on the destination; its offsets are left to them", group, len(d.Members))}
	}
	resp, err := adm.CommitOffsets(ctx, group, offs)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return &TaskError{"INTERNAL_ERROR", fmt.Sprintf("commit offsets of group '%s': %v", group, err)}
	}
	s.lastOffsets[group] = key
	return nil
}

func offsetsKey(offs kadm.Offsets) string {
	var parts []string
	offs.Each(func(o kadm.Offset) {
		parts = append(parts, fmt.Sprintf("%s/%d/%d/%d/%s", o.Topic, o.Partition, o.At, o.LeaderEpoch, o.Metadata))
	})
	sort.Strings(parts)
	return strings.Join(parts, ",")
}
