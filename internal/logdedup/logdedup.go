// Package logdedup keeps repeated warnings out of the log: a condition
// that fails again and again (a dial, a probe, a sync round) is logged
// once per cause, with how often it happened when it changes or heals,
// instead of once per attempt.
package logdedup

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Cause follows one condition that fails and heals, such as a
// partition's worker or a link's sync task. Its zero value is ready; it is
// safe for concurrent use.
type Cause struct {
	mu sync.Mutex
	// cause is the one last logged, "" while healthy; count how many
	// failures had it; failures counts every failure since the last
	// success.
	cause    string
	count    int
	failures int
}

// Fail records a failure whose cause is err's text. It logs msg at warn
// level, with args, the error and, when the cause replaces another, how
// many times the other happened, only when the cause changed; a repeat is
// logged at debug level. It returns whether it logged at warn level.
func (c *Cause) Fail(log *slog.Logger, msg string, err error, args ...any) bool {
	cause := err.Error()
	c.mu.Lock()
	c.failures++
	same := cause == c.cause
	prevCause, prevCount := c.cause, c.count
	if same {
		c.count++
	} else {
		c.cause, c.count = cause, 1
	}
	c.mu.Unlock()
	if same {
		log.Debug(msg, append(args, "err", err, "repeated", prevCount+1)...)
		return false
	}
	if prevCause != "" {
		args = append(args, "previous_err", prevCause, "previous_repeated", prevCount)
	}
	log.Warn(msg, append(args, "err", err)...)
	return true
}

// Quiet records a failure that is not worth a warning (yet): it is
// logged at debug level and counted, and a later Fail or Recover tells
// of it.
func (c *Cause) Quiet(log *slog.Logger, msg string, err error, args ...any) {
	c.mu.Lock()
	c.failures++
	c.mu.Unlock()
	log.Debug(msg, append(args, "err", err)...)
}

// Recover records a success. If a failure was logged at warn level
// since the last success, it logs msg at info level with args and the
// number of failures, and returns that number; otherwise it logs nothing
// and returns 0.
func (c *Cause) Recover(log *slog.Logger, msg string, args ...any) int {
	c.mu.Lock()
	warned, n := c.cause != "", c.failures
	c.cause, c.count, c.failures = "", 0, 0
	c.mu.Unlock()
	if !warned {
		return 0
	}
	log.Info(msg, append(args, "failures", n)...)
	return n
}

// Failing reports whether a failure was logged at warn level since the
// last success.
func (c *Cause) Failing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause != ""
}

// Limiter lets one line per key through per window: for logs whose
// source cannot say when a condition healed (a client library's
// warnings). Its zero value is not ready: use NewLimiter.
type Limiter struct {
	window time.Duration
	mu     sync.Mutex
	seen   map[string]*limited
}

type limited struct {
	at         time.Time // when the key was last let through
	suppressed int
}

// maxKeys bounds the keys a Limiter remembers; past it, keys not let
// through within the window are forgotten.
const maxKeys = 1024

// NewLimiter returns a Limiter with the given window.
func NewLimiter(window time.Duration) *Limiter {
	return &Limiter{window: window, seen: map[string]*limited{}}
}

// Allow reports whether a line with key may be logged at now, and how
// many lines with it were held back since the last one let through.
func (l *Limiter) Allow(key string, now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.seen[key]
	if ok && now.Sub(s.at) < l.window {
		s.suppressed++
		return false, 0
	}
	if !ok {
		if len(l.seen) >= maxKeys {
			for k, v := range l.seen {
				if now.Sub(v.at) >= l.window {
					delete(l.seen, k)
				}
			}
		}
		if len(l.seen) >= maxKeys {
			return true, 0 // too many conditions at once: let it through unremembered
		}
		s = &limited{}
		l.seen[key] = s
	}
	n := s.suppressed
	s.at, s.suppressed = now, 0
	return true, n
}

// Log logs msg at level through l when the limiter lets it through, with
// "suppressed" set to the lines held back before it; key names the
// condition (for example the message and the error text).
func (l *Limiter) Log(log *slog.Logger, level slog.Level, key, msg string, args ...any) {
	ok, n := l.Allow(key, time.Now())
	if !ok {
		return
	}
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Log(context.Background(), level, msg, args...)
}
