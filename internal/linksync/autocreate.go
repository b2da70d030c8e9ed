package linksync

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// ErrTopicExists is what Link.CreateMirror returns (wrapped) when the
// destination already has a topic of the mirror's name.
var ErrTopicExists = errors.New("topic exists")

// maxAutoCreatePerRound bounds one round's work: filters that select a
// hundred thousand source topics create their mirrors over many rounds,
// while the daemon keeps serving requests in between.
const maxAutoCreatePerRound = 200

// autoCreate is one round of auto-created mirrors: every source topic the
// filters select that the link does not mirror yet becomes a mirror
// topic. Internal topics never do.
func (s *Syncer) autoCreate(ctx context.Context, cfg linkconfig.Set) []TaskError {
	filters, err := linkconfig.ParseTopicFilters(cfg.Get(linkconfig.AutoCreateFilters))
	if err != nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", err.Error()}}
	}
	src := s.l.Source()
	if src == nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", "the link has no usable connection to its source"}}
	}
	topics, err := kadm.NewClient(src).ListTopics(ctx)
	if err != nil {
		return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("list source topics: %v", err)}}
	}
	mirrored := map[string]bool{}
	for _, m := range s.l.Mirrors() {
		mirrored[m.SourceTopic] = true
	}
	names := topics.Names()
	sort.Strings(names)
	var errs []TaskError
	created := 0
	for _, t := range names {
		if topics[t].IsInternal || Internal(t) || mirrored[t] || !filters.Match(t) {
			continue
		}
		if created == maxAutoCreatePerRound || ctx.Err() != nil {
			s.log.Info("auto-create round full; the next round creates more mirrors", "created", created)
			break
		}
		created++
		if err := s.l.CreateMirror(ctx, t); err != nil {
			code := "INTERNAL_ERROR"
			if errors.Is(err, ErrTopicExists) {
				code = "TOPIC_EXISTS_ERROR"
			}
			errs = append(errs, TaskError{code, fmt.Sprintf("auto-create mirror of '%s': %v", t, err)})
			continue
		}
		s.log.Info("mirror auto-created", "source_topic", t)
	}
	return errs
}

// Internal reports whether a topic belongs to a cluster or tool rather than
// to applications: such topics are never mirrored automatically.
func Internal(topic string) bool {
	return strings.HasPrefix(topic, "__") || strings.HasPrefix(topic, "_confluent") || topic == "_schemas"
}
