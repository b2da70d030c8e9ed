package logdedup

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// TestCause: ten failures with one cause and three with another are two
// warnings (the second saying how often the first happened), and the
// recovery one line with the count; a success with nothing logged says
// nothing.
func TestCause(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var c Cause
	if n := c.Recover(log, "copies again"); n != 0 || buf.Len() != 0 {
		t.Fatalf("recover when healthy: %d, logged %q", n, buf.String())
	}
	c.Quiet(log, "restarting", errors.New("warming up"))
	warned := 0
	for i := 0; i < 10; i++ {
		if c.Fail(log, "restarting", errors.New("dial tcp: connection refused"), "partition", 3) {
			warned++
		}
	}
	for i := 0; i < 3; i++ {
		if c.Fail(log, "restarting", errors.New("NOT_LEADER_OR_FOLLOWER"), "partition", 3) {
			warned++
		}
	}
	if !c.Failing() {
		t.Fatal("not failing after failures")
	}
	if n := c.Recover(log, "copies again", "partition", 3); n != 14 {
		t.Fatalf("recover counted %d failures, want 14", n)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if warned != 2 || len(lines) != 3 {
		t.Fatalf("warned %d times, %d lines:\n%s", warned, len(lines), buf.String())
	}
	for i, want := range []string{
		`level=WARN msg=restarting partition=3 err="dial tcp: connection refused"`,
		`level=WARN msg=restarting partition=3 previous_err="dial tcp: connection refused" previous_repeated=10 err=NOT_LEADER_OR_FOLLOWER`,
		`level=INFO msg="copies again" partition=3 failures=14`,
	} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: %s\nwant it to contain %s", i, lines[i], want)
		}
	}
	if c.Failing() {
		t.Fatal("still failing after the recovery")
	}
}

func TestLimiter(t *testing.T) {
	l := NewLimiter(time.Minute)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		key        string
		at         time.Duration
		ok         bool
		suppressed int
	}{
		{"a", 0, true, 0},
		{"a", time.Second, false, 0},
		{"b", 2 * time.Second, true, 0}, // another condition is its own
		{"a", 30 * time.Second, false, 0},
		{"a", 61 * time.Second, true, 2},
		{"a", 62 * time.Second, false, 0},
	}
	for i, s := range steps {
		ok, n := l.Allow(s.key, t0.Add(s.at))
		if ok != s.ok || n != s.suppressed {
			t.Fatalf("step %d (%s at %v): %v, %d; want %v, %d", i, s.key, s.at, ok, n, s.ok, s.suppressed)
		}
	}
}
