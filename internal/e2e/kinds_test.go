package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/batch"
	"github.com/strait-dev/strait/internal/testutil"
)

// compactedConfigs make kfake's cleaner compact everything but the active
// segment at once.
func compactedConfigs() map[string]*string {
	c, zero := "compact", "0"
	return map[string]*string{"cleanup.policy": &c, "min.compaction.lag.ms": &zero, "segment.ms": &zero}
}

// produceKeyed writes rounds of values for a few keys, so compaction has
// records to remove.
func produceKeyed(t *testing.T, addrs []string, topic string, rounds, keys int, codec kgo.CompressionCodec) {
	t.Helper()
	p := testutil.Client(t, addrs, kgo.ProducerBatchCompression(codec), kgo.ProducerLinger(time.Millisecond), kgo.DefaultProduceTopic(topic))
	for r := 0; r < rounds; r++ {
		var rs []*kgo.Record
		for k := 0; k < keys; k++ {
			// The round before the last updates half the keys, so the
			// batches before it survive in part (kfake's cleaner leaves
			// the last batch alone and does not count it).
			if r == rounds-2 && k%2 == 1 || r == rounds-1 && k > 0 {
				continue
			}
			rec := &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", k)), Value: []byte(fmt.Sprintf("round %d key %d", r, k)), Timestamp: time.Now().Add(time.Duration(r*keys+k) * time.Millisecond)}
			if r == rounds-2 && k%7 == 0 {
				rec.Value = nil // some tombstones
			}
			rs = append(rs, rec)
		}
		if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// assertSurvivorsAt checks that every record the source still has is on
// the mirror at the same offset, identical, and that every other mirror
// record in the source's range is a filler tombstone, or, when the source
// compacted after the copy (superseded), an older record of a key the
// source has a later record of. It checks what read_uncommitted and
// read_committed readers see: both must find the survivors where the source
// has them.
func assertSurvivorsAt(t *testing.T, e *env, topic string, superseded bool) {
	t.Helper()
	for _, view := range isolationViews {
		src := readView(t, e.src.ListenAddrs(), topic, view.committed).records
		dst := readView(t, e.dst.ListenAddrs(), topic, view.committed).records
		fillers, survivors, older := 0, 0, 0
		for p, srs := range src {
			latest := map[string]int64{}
			for _, r := range srs {
				latest[string(r.Key)] = r.Offset
			}
			byOffset := map[int64]*kgo.Record{}
			for _, r := range dst[p] {
				byOffset[r.Offset] = r
			}
			at := map[int64]bool{}
			for _, s := range srs {
				at[s.Offset] = true
				d := byOffset[s.Offset]
				if d == nil {
					t.Fatalf("%s, partition %d: source record at %d is not on the mirror", view.name, p, s.Offset)
				}
				if diff := testutil.DiffRecords(map[int32][]*kgo.Record{0: {s}}, map[int32][]*kgo.Record{0: {d}}); diff != "" {
					t.Fatalf("%s, partition %d: %s", view.name, p, diff)
				}
				survivors++
			}
			for _, d := range dst[p] {
				if at[d.Offset] || len(srs) == 0 || d.Offset < srs[0].Offset {
					continue
				}
				if bytes.Equal(d.Key, batch.FillerKey) && d.Value == nil {
					fillers++
					continue
				}
				if l, ok := latest[string(d.Key)]; superseded && ok && l > d.Offset {
					older++
					continue
				}
				t.Fatalf("%s, partition %d: mirror record at %d (key %q) is neither the source's nor filler", view.name, p, d.Offset, d.Key)
			}
		}
		if survivors == 0 || fillers == 0 {
			t.Fatalf("%s: %d records compared, %d fillers: the test did not exercise compaction", view.name, survivors, fillers)
		}
		t.Logf("%s: %d surviving records at their offsets, %d filler tombstones, %d records the source compacted since", view.name, survivors, fillers, older)
	}
}

// TestCompactedSource mirrors a compacted source, compacted before the
// mirror starts and compacted while it copies.
func TestCompactedSource(t *testing.T) {
	for _, during := range []bool{false, true} {
		t.Run(fmt.Sprintf("cleaner running %v", during), func(t *testing.T) {
			e := newEnv(t)
			testutil.CreateTopic(t, e.srcCl, "table", 2, compactedConfigs())
			produceKeyed(t, e.src.ListenAddrs(), "table", 30, 40, kgo.Lz4Compression())
			e.src.Compact()
			e.createLink("l1", nil)
			var wg sync.WaitGroup
			stop := make(chan struct{})
			if during {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						produceKeyed(t, e.src.ListenAddrs(), "table", 2, 40, kgo.SnappyCompression())
						e.src.Compact()
					}
				}()
			}
			e.createMirror("l1", "table")
			e.waitStatus("l1", "table", "ACTIVE")
			if during {
				testutil.WaitFor(t, 30*time.Second, "copy under way", func() error {
					_, ends := testutil.Offsets(t, e.dstCl, "table")
					if ends[0]+ends[1] < 3000 {
						return fmt.Errorf("mirror at %v", ends)
					}
					return nil
				})
				close(stop)
				wg.Wait()
			}
			testutil.WaitFor(t, 30*time.Second, "caught up", func() error {
				_, se := testutil.Offsets(t, e.srcCl, "table")
				_, de := testutil.Offsets(t, e.dstCl, "table")
				if se[0] != de[0] || se[1] != de[1] {
					v := e.describe("l1", "table")
					return fmt.Errorf("source %v mirror %v: %s %+v", se, de, v.MirrorStatus, v.TransitionErrors)
				}
				return nil
			})
			assertSurvivorsAt(t, e, "table", during)
			if v := e.describe("l1", "table"); v.MirrorStatus != "ACTIVE" {
				t.Fatalf("mirror %s %+v", v.MirrorStatus, v.TransitionErrors)
			}
		})
	}
}

// logAppendTimeBatch builds a batch as a Kafka broker serves a
// LogAppendTime topic: the attribute set, max timestamp the append time,
// record deltas as the producer wrote them, and a valid CRC.
func logAppendTimeBatch(appendTime int64) []byte {
	var recs []byte
	for i := 0; i < 3; i++ {
		recs = batch.AppendRecord(recs, batch.Record{TimestampDelta: int64(i * 10), OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%d", i)), Value: []byte(fmt.Sprintf("v%d", i))})
	}
	raw := make([]byte, batch.HeaderSize+len(recs))
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	raw[16] = 2
	binary.BigEndian.PutUint16(raw[21:], batch.AttrLogAppendTime)
	binary.BigEndian.PutUint32(raw[23:], 2)
	binary.BigEndian.PutUint64(raw[27:], uint64(appendTime-1000)) // the producer's clock
	binary.BigEndian.PutUint64(raw[35:], uint64(appendTime))
	binary.BigEndian.PutUint64(raw[43:], 0xffffffffffffffff)
	binary.BigEndian.PutUint16(raw[51:], 0xffff)
	binary.BigEndian.PutUint32(raw[53:], 0xffffffff)
	binary.BigEndian.PutUint32(raw[57:], 3)
	copy(raw[61:], recs)
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

// TestLogAppendTimeSource mirrors a LogAppendTime source (kfake cannot
// store one, so the source serves a canned broker batch): the mirror's
// records carry the source's append time, which is what readers of the
// source see, as CreateTime timestamps.
func TestLogAppendTimeSource(t *testing.T) {
	const appendTime = 1_700_000_123_456
	e := newEnv(t, kfake.SyntheticFetch(kfake.SyntheticBatch{Batch: logAppendTimeBatch(appendTime)}))
	testutil.CreateTopic(t, e.srcCl, "lat", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "lat")
	testutil.WaitFor(t, 30*time.Second, "records copied", func() error {
		if _, ends := testutil.Offsets(t, e.dstCl, "lat"); ends[0] < 30 {
			return fmt.Errorf("mirror at %d", ends[0])
		}
		return nil
	})
	e.alter("l1", "pause", names("lat"), "")
	// The source serves batches without end, so each view reads the first
	// 30 records rather than up to an end offset.
	read := func(addrs []string, view string, level kgo.IsolationLevel) []*kgo.Record {
		cl := testutil.Client(t, addrs, kgo.FetchIsolationLevel(level), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"lat": {0: kgo.NewOffset().AtStart()}}))
		var out []*kgo.Record
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for len(out) < 30 && ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		}
		if len(out) < 30 {
			t.Fatalf("%s: read %d records of 30", view, len(out))
		}
		return out[:30]
	}
	for _, view := range isolationViews {
		s, d := read(e.src.ListenAddrs(), view.name, view.level), read(e.dst.ListenAddrs(), view.name, view.level)
		for i := range s {
			if s[i].Offset != d[i].Offset || !bytes.Equal(s[i].Key, d[i].Key) || !bytes.Equal(s[i].Value, d[i].Value) || !s[i].Timestamp.Equal(d[i].Timestamp) {
				t.Fatalf("%s record %d: source %d %s %v, mirror %d %s %v", view.name, i, s[i].Offset, s[i].Key, s[i].Timestamp, d[i].Offset, d[i].Key, d[i].Timestamp)
			}
			if d[i].Timestamp.UnixMilli() != appendTime || s[i].Attrs.TimestampType() != 1 || d[i].Attrs.TimestampType() != 0 {
				t.Fatalf("%s record %d: timestamp %d types %d/%d", view.name, i, d[i].Timestamp.UnixMilli(), s[i].Attrs.TimestampType(), d[i].Attrs.TimestampType())
			}
		}
	}
}

// TestCorruptSourceBatchFails: a source batch whose records do not match
// its CRC is not copied (the destination refuses the carried CRC), and the
// mirror fails instead of storing different bytes.
func TestCorruptSourceBatchFails(t *testing.T) {
	raw := logAppendTimeBatch(1_700_000_000_000)
	raw[21+1] &^= byte(batch.AttrLogAppendTime) // a plain CreateTime batch...
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	raw[len(raw)-1] ^= 0xff // ...with a record byte flipped after its CRC
	e := newEnv(t, kfake.SyntheticFetch(kfake.SyntheticBatch{Batch: raw}))
	testutil.CreateTopic(t, e.srcCl, "bad", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "bad")
	v := e.waitStatus("l1", "bad", "FAILED")
	if len(v.TransitionErrors) == 0 || !strings.Contains(v.TransitionErrors[0].ErrorMessage, "refuses the batch") {
		t.Fatalf("corrupt batch reported as %s %+v", v.MirrorTopicError, v.TransitionErrors)
	}
	if _, ends := testutil.Offsets(t, e.dstCl, "bad"); ends[0] != 0 {
		t.Fatalf("%d records of a corrupt batch reached the mirror", ends[0])
	}
}
