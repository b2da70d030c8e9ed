package verify

import (
	"context"
	"testing"
	"time"
)

// TestLimiter: reading past the one-second burst waits for the rate.
func TestLimiter(t *testing.T) {
	if NewLimiter(0) != nil {
		t.Fatal("a zero rate limits")
	}
	l := NewLimiter(100 << 10) // 100 KiB/s, 100 KiB of burst
	start := time.Now()
	for i := 0; i < 13; i++ {
		l.Take(context.Background(), 10<<10)
	}
	// 130 KiB at 100 KiB/s with 100 KiB of burst: 0.3 s.
	if took := time.Since(start); took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("130 KiB took %v at 100 KiB/s", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	l.Take(ctx, 1<<20)
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Fatalf("a cancelled take waited %v", took)
	}
	if got := l.chunkFor(4 << 20); got != 64<<10 { // a quarter second, but at least 64 KiB
		t.Fatalf("chunk %d under 100 KiB/s", got)
	}
}
