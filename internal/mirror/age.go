package mirror

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Lag in time. A partition that is behind is as far behind as its oldest
// source record not yet copied is old: the record at the mirror's end
// offset. Its timestamp is the one of the source batch starting there.
// The worker knows it for the batches it holds (the fetcher and the
// writer note the oldest one that has not landed, see ageNote); when it
// holds none (a paused mirror, a full buffer, a fetch not yet answered)
// the runner reads the source batch at the mirror's end, at most once per
// ageReadEvery for a partition, and keeps it by offset (refreshAges).

// ageReadEvery bounds how often the source is read for a partition's age.
const ageReadEvery = 5 * time.Second

// ageNote is an offset and the timestamp (Unix ms) of the source batch
// starting there, written by one goroutine at a time and read by any. The
// pair is kept consistent without a lock: a writer clears at, writes ts,
// then sets at; a reader that sees the same at before and after reading
// ts has the ts that goes with it.
type ageNote struct {
	at atomic.Int64 // -1: none
	ts atomic.Int64
}

func (n *ageNote) init() { n.at.Store(-1) }

func (n *ageNote) set(at, ts int64) {
	n.at.Store(-1)
	n.ts.Store(ts)
	n.at.Store(at)
}

// get returns the timestamp noted for offset at.
func (n *ageNote) get(at int64) (int64, bool) {
	a := n.at.Load()
	ts := n.ts.Load()
	if a < 0 || a != at || n.at.Load() != a {
		return 0, false
	}
	return ts, true
}

// rawTimestamp is the timestamp of a v2 batch header in raw (Unix ms):
// baseTimestamp, or maxTimestamp for a LogAppendTime batch, whose records'
// timestamps are the broker's append time.
func rawTimestamp(raw []byte) (int64, bool) {
	const headerLen = 61
	if len(raw) < headerLen || raw[16] != 2 {
		return 0, false
	}
	if binary.BigEndian.Uint16(raw[21:23])&0x08 != 0 {
		return int64(binary.BigEndian.Uint64(raw[35:43])), true
	}
	return int64(binary.BigEndian.Uint64(raw[27:35])), true
}

// timestampAt finds, in the record batches of a fetch answer, the batch
// holding offset o and returns its timestamp. The last batch may be cut
// short (a broker cuts an answer at the byte limit): its header is
// enough.
func timestampAt(raw []byte, o int64) (int64, bool) {
	for len(raw) >= 61 {
		base := int64(binary.BigEndian.Uint64(raw[0:8]))
		length := int64(binary.BigEndian.Uint32(raw[8:12]))
		last := base + int64(binary.BigEndian.Uint32(raw[23:27]))
		if last >= o {
			return rawTimestamp(raw)
		}
		if length <= 0 || int64(len(raw)) < 12+length {
			return 0, false
		}
		raw = raw[12+length:]
	}
	return 0, false
}

// SourceTimestamps returns, for each partition of a source topic, the
// timestamp (Unix ms) of the source batch starting at, or holding, the
// given offset: its baseTimestamp, or maxTimestamp for a LogAppendTime
// batch. A partition with no batch there (the offset is the end of the
// log) is absent. It asks each partition leader once, with a small fetch
// that does not wait. An error of one partition leaves it absent; the
// error returned is the last one, nil when every partition was answered.
func SourceTimestamps(ctx context.Context, src *kgo.Client, topic string, offsets map[int32]int64) (map[int32]int64, error) {
	meta := &metaCache{cl: src}
	got, err := sourceTimestamps(ctx, src, meta, map[string]map[int32]int64{topic: offsets})
	return got[topic], err
}

// ageFetchBytes is what a timestamp read asks per partition: a batch
// header is 61 bytes, and a Kafka broker cuts a larger batch at the limit,
// so a read costs at most this per partition. A broker that sends whole
// batches only (kfake) leaves such a partition out; it is asked again
// alone, and the first partition of an answer always gets a whole batch.
const ageFetchBytes = 1 << 10

// sourceTimestamps is SourceTimestamps for several topics: one fetch per
// leader for all of them.
func sourceTimestamps(ctx context.Context, cl *kgo.Client, meta *metaCache, want map[string]map[int32]int64) (map[string]map[int32]int64, error) {
	type tp struct {
		topic string
		p     int32
	}
	out := make(map[string]map[int32]int64, len(want))
	byLeader := map[int32][]tp{}
	ids := map[string][16]byte{}
	var lastErr error
	for topic, offs := range want {
		for p := range offs {
			leader, id, err := meta.leader(ctx, topic, p, false)
			if err != nil {
				lastErr = err
				continue
			}
			ids[topic] = id
			byLeader[leader] = append(byLeader[leader], tp{topic, p})
		}
	}
	// Partitions an answer left out (see ageFetchBytes) are asked again,
	// alone.
	var again []tp
	ask := func(leader int32, tps []tp) (answered map[tp]bool, err error) {
		req := kmsg.NewPtrFetchRequest()
		req.ReplicaID = -1
		req.MaxWaitMillis = 0
		req.MinBytes = 0
		req.MaxBytes = int32(min(len(tps)*ageFetchBytes, 16<<20))
		req.SessionEpoch = -1
		idx := map[string]int{}
		for _, k := range tps {
			i, ok := idx[k.topic]
			if !ok {
				rt := kmsg.NewFetchRequestTopic()
				rt.Topic, rt.TopicID = k.topic, ids[k.topic]
				req.Topics = append(req.Topics, rt)
				i = len(req.Topics) - 1
				idx[k.topic] = i
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = k.p, want[k.topic][k.p], ageFetchBytes
			rp.CurrentLeaderEpoch, rp.LastFetchedEpoch, rp.LogStartOffset = -1, -1, -1
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			return nil, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return nil, err
		}
		names := map[[16]byte]string{}
		for t, id := range ids {
			names[id] = t
		}
		answered = map[tp]bool{}
		for _, rt := range resp.Topics {
			topic := rt.Topic
			if topic == "" {
				topic = names[rt.TopicID]
			}
			for _, rp := range rt.Partitions {
				k := tp{topic, rp.Partition}
				o, ok := want[topic][rp.Partition]
				if !ok {
					continue
				}
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					if isLeaderErr(err) || errors.Is(err, kerr.UnknownTopicID) {
						meta.leader(ctx, topic, rp.Partition, true) //nolint:errcheck // refresh only
					}
					lastErr = fmt.Errorf("%s[%d]: %w", topic, rp.Partition, err)
					answered[k] = true
					continue
				}
				if ts, ok := timestampAt(rp.RecordBatches, o); ok {
					if out[topic] == nil {
						out[topic] = map[int32]int64{}
					}
					out[topic][rp.Partition] = ts
					answered[k] = true
				} else if rp.HighWatermark <= o || len(tps) == 1 {
					answered[k] = true // nothing there yet
				}
			}
		}
		return answered, nil
	}
	for leader, tps := range byLeader {
		answered, err := ask(leader, tps)
		if err != nil {
			lastErr = err
			continue
		}
		for _, k := range tps {
			if !answered[k] {
				again = append(again, k)
			}
		}
	}
	for _, k := range again {
		leader, _, err := meta.leader(ctx, k.topic, k.p, false)
		if err == nil {
			_, err = ask(leader, []tp{k})
		}
		if err != nil {
			lastErr = err
		}
	}
	return out, lastErr
}

// oldestMs is the timestamp of the source batch at the partition's mirror
// end end, as the worker noted it or the runner read it; 0 when neither
// knows.
func (p *part) oldestMs(end int64) int64 {
	if ts, ok := p.held.get(end); ok {
		return ts
	}
	if ts, ok := p.read.get(end); ok {
		return ts
	}
	return 0
}

// refreshAges reads, for the partitions of ps that are behind and whose
// age neither the worker nor an earlier read knows, the timestamp of the
// source batch at the mirror's end: one fetch per source leader, and a
// partition at most once per ageReadEvery. Only the lag loop calls it.
func (r *Runner) refreshAges(ctx context.Context, ps []*part, now time.Time) {
	want := map[string]map[int32]int64{}
	parts := map[string]map[int32]*part{}
	for _, p := range ps {
		l := p.lag()
		st := p.t.spec.SourceTopic
		// A partition with batches out has noted the oldest of them.
		if _, dup := want[st][p.id]; dup || l.Lag == 0 || l.MirrorEnd < 0 || p.inflight.Load() > 0 ||
			p.oldestMs(l.MirrorEnd) != 0 || now.Sub(p.readAt) < ageReadEvery {
			continue
		}
		p.readAt = now
		if want[st] == nil {
			want[st] = map[int32]int64{}
			parts[st] = map[int32]*part{}
		}
		want[st][p.id] = l.MirrorEnd
		parts[st][p.id] = p
	}
	if len(want) == 0 {
		return
	}
	got, _ := sourceTimestamps(ctx, r.cfg.Source, &r.srcMeta, want)
	for st, byPart := range got {
		for id, ms := range byPart {
			parts[st][id].read.set(want[st][id], ms)
		}
	}
}

// Seconds is the lag in seconds at now, and whether it is known: 0 when
// caught up; the age of the source batch at the mirror's end otherwise
// (never negative: a source clock ahead of ours counts as no age).
func (l Lag) Seconds(now time.Time) (float64, bool) {
	if l.Lag == 0 {
		return 0, true
	}
	if l.OldestUncopiedMs == 0 {
		return 0, false
	}
	return max(0, float64(now.UnixMilli()-l.OldestUncopiedMs)/1000), true
}
