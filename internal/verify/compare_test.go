package verify

import (
	"testing"

	"github.com/strait-dev/strait/internal/batch"
)

// scenario is a source log and a mirror log as batches.
type scenario struct {
	src, dst  []batch.Batch
	from      int64
	srcEnd    int64 // 0: the end of the last source batch
	dstEnd    int64
	compacted bool
}

func (s scenario) run() (int64, *Divergence, Stats) {
	srcEnd, dstEnd := s.srcEnd, s.dstEnd
	if srcEnd == 0 {
		srcEnd = endOf(s.src)
	}
	if dstEnd == 0 {
		dstEnd = endOf(s.dst)
	}
	return CompareAll(s.src, s.dst, s.from, srcEnd, dstEnd, s.compacted)
}

func asIs(t *testing.T, src []batch.Batch) []batch.Batch {
	var out []batch.Batch
	for _, b := range src {
		out = append(out, copied(t, b, 77))
	}
	return out
}

// TestIdentical: every way the copy writes a batch verifies, and only the
// batches the copy re-encodes are decompressed.
func TestIdentical(t *testing.T) {
	codecs := []batch.Codec{batch.CodecNone, batch.CodecGzip, batch.CodecSnappy, batch.CodecLZ4, batch.CodecZstd}
	commit, abort := true, false
	cases := []struct {
		name         string
		make         func(t *testing.T) scenario
		decompressed int64
		fillers      int64
	}{
		{"copied as they are, every codec", func(t *testing.T) scenario {
			var src []batch.Batch
			for i, c := range codecs {
				src = append(src, build(t, spec{base: int64(i * 10), n: 10, codec: c, ts: 1000}))
			}
			return scenario{src: src, dst: asIs(t, src)}
		}, 0, 0},
		{"merged uncompressed run", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 3, ts: 1000}), build(t, spec{base: 3, n: 2, ts: 900}), build(t, spec{base: 5, n: 4, ts: 2000})}
			return scenario{src: src, dst: []batch.Batch{mergedCopy(t, src...)}}
		}, 0, 0},
		{"merged lz4 run", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 3, codec: batch.CodecLZ4, ts: 1000}), build(t, spec{base: 3, n: 5, codec: batch.CodecLZ4, ts: 1500})}
			return scenario{src: src, dst: []batch.Batch{mergedCopy(t, src...)}}
		}, 3, 0},
		{"compacted batch filled with tombstones", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, deltas: []int32{1, 4, 5}, lastDelta: 7, codec: batch.CodecZstd, ts: 1000})}
			return scenario{src: src, dst: []batch.Batch{densified(t, src[0])}, compacted: true}
		}, 2, 5},
		{"batch compacted away, filler in its place", func(t *testing.T) scenario {
			a, b := build(t, spec{base: 0, n: 5, ts: 1000}), build(t, spec{base: 12, n: 3, ts: 1000})
			return scenario{src: []batch.Batch{a, b}, dst: []batch.Batch{copied(t, a, 5), fillerKeyed(t, 5, 7), copied(t, b, 5)}, compacted: true}
		}, 1, 7},
		{"compacted on the source after the copy", func(t *testing.T) scenario {
			orig := build(t, spec{base: 0, n: 8, codec: batch.CodecSnappy, ts: 1000, tag: "c"})
			thinned := build(t, spec{base: 0, deltas: []int32{2, 7}, lastDelta: 7, ts: 1000, tag: "c"})
			return scenario{src: []batch.Batch{thinned}, dst: []batch.Batch{copied(t, orig, 5)}, compacted: true}
		}, 1, 0},
		{"LogAppendTime stamped as CreateTime", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 4, attrs: batch.AttrLogAppendTime, ts: 1000})}
			return scenario{src: src, dst: []batch.Batch{stamped(t, src[0])}}
		}, 0, 0},
		{"transactions of two producers, interleaved", func(t *testing.T) scenario {
			src := []batch.Batch{
				build(t, spec{base: 0, n: 2, pid: 11, attrs: batch.AttrTransactional, ts: 1000}),
				build(t, spec{base: 2, n: 3, pid: 12, attrs: batch.AttrTransactional, ts: 1000}),
				build(t, spec{base: 5, n: 1, ts: 1000}),
				marker(t, 6, 12, commit),
				build(t, spec{base: 7, n: 2, pid: 11, attrs: batch.AttrTransactional, codec: batch.CodecZstd, ts: 1000}),
				marker(t, 9, 11, abort),
			}
			dst := []batch.Batch{copied(t, src[0], 501), copied(t, src[1], 502), copied(t, src[2], 9), marker(t, 6, 502, commit), copied(t, src[4], 501), marker(t, 9, 501, abort)}
			return scenario{src: src, dst: dst}
		}, 0, 0},
		{"aligned to a source log start inside a batch", func(t *testing.T) scenario {
			// The source starts at 50, inside its batch 45-54; the mirror
			// was padded with filler up to 45 and its filler deleted up
			// to 50.
			a, b := build(t, spec{base: 45, n: 10, codec: batch.CodecGzip, ts: 1000}), build(t, spec{base: 55, n: 5, ts: 1000})
			return scenario{src: []batch.Batch{a, b}, dst: []batch.Batch{copied(t, a, 3), copied(t, b, 3)}, from: 50}
		}, 0, 0},
		{"filler below the start is not read", func(t *testing.T) scenario {
			a := build(t, spec{base: 45, n: 10, ts: 1000})
			return scenario{src: []batch.Batch{a}, dst: []batch.Batch{filler(t, 0, 45), copied(t, a, 3)}, from: 45}
		}, 0, 0},
		{"a mirror behind its source", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 5, ts: 1000}), build(t, spec{base: 5, n: 5, ts: 1000})}
			return scenario{src: src, dst: asIs(t, src[:1])}
		}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.make(t)
			to, div, st := s.run()
			if div != nil {
				t.Fatalf("diverged: %+v", div)
			}
			want := min(endOf(s.src), endOf(s.dst))
			if to != want {
				t.Fatalf("verified to %d, want %d", to, want)
			}
			if st.Decompressed != tc.decompressed || st.Fillers != tc.fillers {
				t.Fatalf("decompressed %d batches and saw %d fillers, want %d and %d (%+v)", st.Decompressed, st.Fillers, tc.decompressed, tc.fillers, st)
			}
		})
	}
}

// TestDivergences: every kind of difference is found, at its offset.
func TestDivergences(t *testing.T) {
	commit, abort := true, false
	plain := func(t *testing.T, codec batch.Codec) []batch.Batch {
		var src []batch.Batch
		for i := 0; i < 4; i++ {
			src = append(src, build(t, spec{base: int64(i * 5), n: 5, codec: codec, ts: 1000}))
		}
		return src
	}
	valueByte := func(raw []byte) { raw[len(raw)-3] ^= 1 } // inside the last record's value
	cases := []struct {
		name string
		make func(t *testing.T) scenario
		at   int64
		code Code
	}{
		{"a changed byte in a record", func(t *testing.T) scenario {
			src := plain(t, batch.CodecNone)
			dst := asIs(t, src)
			dst[2] = mutate(t, dst[2], valueByte)
			return scenario{src: src, dst: dst}
		}, 14, CodeRecords},
		{"a changed value in a compressed batch", func(t *testing.T) scenario {
			src := plain(t, batch.CodecLZ4)
			dst := asIs(t, src)
			dst[1] = copied(t, build(t, spec{base: 5, n: 5, codec: batch.CodecLZ4, ts: 1000, value: func(i int) []byte {
				if i == 3 {
					return []byte("other")
				}
				return defaultValue("", 5+int64(i))
			}}), 5)
			return scenario{src: src, dst: dst}
		}, 8, CodeRecords},
		{"a changed byte in a merged run", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 3, ts: 1000}), build(t, spec{base: 3, n: 3, ts: 1100})}
			return scenario{src: src, dst: []batch.Batch{mutate(t, mergedCopy(t, src...), valueByte)}}
		}, 5, CodeRecords},
		{"a missing batch", func(t *testing.T) scenario {
			src := plain(t, batch.CodecLZ4)
			dst := asIs(t, src)
			dst = []batch.Batch{dst[0], at(t, dst[2], 5), at(t, dst[3], 10)}
			return scenario{src: src, dst: dst}
		}, 5, CodeRecords},
		{"a marker of the wrong type", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 3, pid: 11, attrs: batch.AttrTransactional, ts: 1000}), marker(t, 3, 11, commit)}
			return scenario{src: src, dst: []batch.Batch{copied(t, src[0], 600), marker(t, 3, 600, abort)}}
		}, 3, CodeMarker},
		{"a marker where the source has data", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 1, ts: 1000})}
			return scenario{src: src, dst: []batch.Batch{marker(t, 0, 600, commit)}}
		}, 0, CodeMarker},
		{"an extra record at the end", func(t *testing.T) scenario {
			src := plain(t, batch.CodecNone)
			dst := append(asIs(t, src), copied(t, build(t, spec{base: 20, n: 1, ts: 1000}), 77))
			return scenario{src: src, dst: dst}
		}, 20, CodeExtra},
		{"an extra record in the middle", func(t *testing.T) scenario {
			src := plain(t, batch.CodecNone)
			dst := asIs(t, src)
			extra := copied(t, build(t, spec{base: 10, n: 1, ts: 1000, tag: "extra"}), 77)
			dst = []batch.Batch{dst[0], dst[1], extra, at(t, dst[2], 11), at(t, dst[3], 16)}
			return scenario{src: src, dst: dst}
		}, 10, CodeRecords},
		{"a mirror gap in a topic that is not compacted", func(t *testing.T) scenario {
			src := plain(t, batch.CodecNone)
			dst := asIs(t, src)
			return scenario{src: src, dst: []batch.Batch{dst[0], dst[2], dst[3]}}
		}, 5, CodeMissing},
		{"a record where the source has compacted nothing away", func(t *testing.T) scenario {
			a, b := build(t, spec{base: 0, n: 5, ts: 1000}), build(t, spec{base: 12, n: 3, ts: 1000})
			stray := copied(t, build(t, spec{base: 5, n: 7, ts: 1000}), 5)
			return scenario{src: []batch.Batch{a, b}, dst: []batch.Batch{copied(t, a, 5), stray, copied(t, b, 5)}}
		}, 5, CodeExtra},
		{"a transactional batch copied as plain", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 3, pid: 11, attrs: batch.AttrTransactional, ts: 1000})}
			d := copied(t, src[0], 600)
			d = mutate(t, d, func(raw []byte) { raw[22] &^= byte(batch.AttrTransactional) })
			return scenario{src: src, dst: []batch.Batch{d}}
		}, 0, CodeProducer},
		{"one source transaction written by two mirror producers", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, n: 2, pid: 11, attrs: batch.AttrTransactional, ts: 1000}), build(t, spec{base: 2, n: 2, pid: 11, attrs: batch.AttrTransactional, ts: 1000}), marker(t, 4, 11, commit)}
			return scenario{src: src, dst: []batch.Batch{copied(t, src[0], 600), copied(t, src[1], 601), marker(t, 4, 601, commit)}}
		}, 2, CodeProducer},
		{"a changed timestamp", func(t *testing.T) scenario {
			src := plain(t, batch.CodecZstd)
			dst := asIs(t, src)
			dst[3] = mutate(t, dst[3], func(raw []byte) { raw[34]++ }) // base timestamp
			return scenario{src: src, dst: dst}
		}, 15, CodeTimestamp},
		{"a batch that does not match its CRC", func(t *testing.T) scenario {
			src := plain(t, batch.CodecNone)
			dst := asIs(t, src)
			raw := append([]byte(nil), dst[1].Raw...)
			raw[len(raw)-2] ^= 1 // no new CRC: corrupt at rest
			dst[1] = parse(t, raw)
			return scenario{src: src, dst: dst}
		}, 5, CodeCorrupt},
		{"a re-encoded compacted batch with another survivor", func(t *testing.T) scenario {
			src := []batch.Batch{build(t, spec{base: 0, deltas: []int32{1, 4}, lastDelta: 6, codec: batch.CodecZstd, ts: 1000})}
			other := build(t, spec{base: 0, deltas: []int32{1, 5}, lastDelta: 6, codec: batch.CodecZstd, ts: 1000})
			return scenario{src: src, dst: []batch.Batch{densified(t, other)}}
		}, 4, CodeMissing},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.make(t)
			to, div, _ := s.run()
			if div == nil {
				t.Fatalf("no difference found; verified to %d", to)
			}
			if div.Offset != tc.at || div.Code != tc.code {
				t.Fatalf("difference %s at %d (%s), want %s at %d", div.Code, div.Offset, div.Message, tc.code, tc.at)
			}
			if to > div.Offset {
				t.Fatalf("verified to %d, past the difference at %d", to, div.Offset)
			}
			t.Logf("%s: %s", div.Code, div.Message)
		})
	}
}
