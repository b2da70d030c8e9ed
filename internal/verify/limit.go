package verify

import (
	"context"
	"sync"
	"time"
)

// Limiter bounds the bytes per second a verification reads from one
// cluster: a token bucket with one second of burst, whose debt is paid by
// waiting. A nil Limiter does not limit. It is safe for concurrent use.
type Limiter struct {
	rate float64 // bytes per second

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

// NewLimiter returns a limiter of bytesPerSecond, nil (no limit) for zero
// or less.
func NewLimiter(bytesPerSecond int64) *Limiter {
	if bytesPerSecond <= 0 {
		return nil
	}
	return &Limiter{rate: float64(bytesPerSecond), tokens: float64(bytesPerSecond), last: time.Now()}
}

// Take accounts for n bytes read and waits until the rate allows them, or
// ctx ends.
func (l *Limiter) Take(ctx context.Context, n int) {
	if l == nil || n <= 0 {
		return
	}
	l.mu.Lock()
	now := time.Now()
	l.tokens = min(l.rate, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	l.last = now
	l.tokens -= float64(n)
	debt := -l.tokens
	l.mu.Unlock()
	if debt <= 0 {
		return
	}
	t := time.NewTimer(time.Duration(debt / l.rate * float64(time.Second)))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// chunkFor is the fetch size under a limit: no fetch takes more than a
// quarter second's budget, so the rate holds over short runs too.
func (l *Limiter) chunkFor(limit int32) int32 {
	if l == nil {
		return limit
	}
	return int32(min(float64(limit), max(l.rate/4, 64<<10)))
}
