package verify

import (
	"testing"

	"github.com/strait-dev/strait/internal/batch"
)

// FuzzCompare feeds the comparer batches cut from arbitrary bytes: a
// broker's answer is input like any other. It must not panic, must not
// claim offsets past the ends, and must find a log identical to itself
// when its batches are whole, readable and dense.
func FuzzCompare(f *testing.F) {
	commit := true
	seeds := [][]byte{
		build(f, spec{base: 0, n: 3, ts: 1000}).Raw,
		build(f, spec{base: 0, n: 3, codec: batch.CodecZstd, ts: 1000}).Raw,
		build(f, spec{base: 0, deltas: []int32{1, 3}, lastDelta: 4, ts: 1000}).Raw,
		build(f, spec{base: 0, n: 1, pid: 4, control: &commit, ts: 1000}).Raw,
		batch.Filler(5, 1000),
	}
	for _, s := range seeds {
		f.Add(s, s, false)
		f.Add(s, seeds[0], true)
	}
	f.Fuzz(func(t *testing.T, src, dst []byte, compacted bool) {
		ss, _ := batch.Split(src)
		ds, _ := batch.Split(dst)
		srcEnd, dstEnd := endOf(ss), endOf(ds)
		if srcEnd < 0 || dstEnd < 0 || srcEnd > 1<<24 || dstEnd > 1<<24 {
			return // offsets no broker would hand out
		}
		to, div, _ := CompareAll(ss, ds, 0, srcEnd, dstEnd, compacted)
		if to > max(min(srcEnd, dstEnd), 0) {
			t.Fatalf("verified to %d, the logs end at %d and %d", to, srcEnd, dstEnd)
		}
		if div != nil && div.Offset < 0 {
			t.Fatalf("difference at %d", div.Offset)
		}
	})
}
