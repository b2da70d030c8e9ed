package link

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// patternManager returns a Manager with one link, "l", and an active
// mirror for each of topics, held in memory only: enough for AlterMirrors
// to select mirrors by pattern with validate_only, which needs no Kafka.
func patternManager(topics []string) *Manager {
	m := &Manager{
		cfg:     Config{MaxTopicsPerRequest: DefaultMaxTopicsPerRequest},
		log:     slog.New(slog.DiscardHandler),
		links:   map[string]*Link{"l": {Name: "l"}},
		mirrors: map[string]*Mirror{},
		runs:    map[string]*linkRun{},
		offsets: map[string]int64{},
	}
	for _, t := range topics {
		m.mirrors[t] = &Mirror{Link: "l", Topic: t, SourceTopic: t, Partitions: 1, Status: StatusActive}
	}
	return m
}

// longName returns a name of 10 KiB made of repeats of name.
func longName(name string) string {
	if name == "" {
		name = "a"
	}
	return strings.Repeat(name, 10<<10/len(name)+1)[:10<<10]
}

// short abbreviates a long name for a failure message.
func short(s string) string {
	if len(s) <= 64 {
		return s
	}
	return fmt.Sprintf("%s...(%d bytes)", s[:32], len(s))
}

func shortAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = short(n)
	}
	return out
}

// FuzzMirrorTopicNamePattern fuzzes mirror_topic_name_pattern (POST
// .../mirrors:<op>): AlterMirrors compiles it as "^(?:" + pattern + ")$".
// It must never panic, must refuse (ErrInvalid) exactly the patterns that
// are not regular expressions (and those over maxPatternLen), and must
// select exactly the mirrors whose whole name the pattern matches. One mirror name is 10 KiB long: RE2
// matching is linear, so the call finishes, whatever the pattern (a
// backtracking engine would not, on patterns such as (a+)+$).
func FuzzMirrorTopicNamePattern(f *testing.F) {
	for _, s := range [][2]string{
		{"orders-.*", "orders-eu"},
		{".*", ""},
		{"orders|payments", "payments"},
		{"dc1\\.orders", "dc1xorders"},
		{"(?i)ORDERS", "orders"},
		{"(?m)orders$", "orders"},
		{"(?s).*", "a\nb"},
		{"^orders$", "orders"},
		{"\\Qdc1.orders\\E", "dc1.orders"},
		{"[[:alpha:]]+\\d{2,3}", "abc12"},
		{"(a+)+$", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!"},
		{"(x+x+)+y", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"},
		{"a{1000}", "a"},
		{"a{1001}", "a"},
		{"((a{100}){100}){100}", "a"},
		{"[", "x"},
		{"(", "x"},
		{"\\", "x"},
		{"(?P<n>a)\\1", "aa"},
		{"\\pL+", "ordres-é"},
		{"\xff", "\xff"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		own, ownErr := regexp.Compile(pattern)
		topics := []string{name, longName(name), "orders", "dc1.orders", "orders-eu"}
		m := patternManager(topics)
		res, err := m.AlterMirrors(context.Background(), "l", OpPause, Selection{Pattern: pattern, HasPattern: true}, AlterOptions{ValidateOnly: true})
		if len(pattern) > maxPatternLen {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("pattern of %d bytes: %v, want ErrInvalid", len(pattern), err)
			}
			return
		}
		switch {
		case ownErr != nil || err != nil:
			if ownErr == nil || !errors.Is(err, ErrInvalid) {
				t.Fatalf("pattern %q (%v): %v, want ErrInvalid", pattern, ownErr, err)
			}
			return
		}
		own.Longest()
		var want []string
		for _, topic := range topics {
			// A whole-name match exists exactly when the leftmost-longest
			// match spans the name.
			if loc := own.FindStringIndex(topic); loc != nil && loc[0] == 0 && loc[1] == len(topic) && !slices.Contains(want, topic) {
				want = append(want, topic)
			}
		}
		var got []string
		for _, r := range res {
			if r.ErrorCode != 0 {
				t.Fatalf("pattern %q: %q refused: %s", pattern, short(r.Topic), r.ErrorMessage)
			}
			got = append(got, r.Topic)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("pattern %q selected %q, want %q", pattern, shortAll(got), shortAll(want))
		}
	})
}
