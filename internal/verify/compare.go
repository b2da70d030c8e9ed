package verify

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/strait-dev/strait/internal/batch"
)

// Code names the kind of a difference between a mirror and its source.
type Code string

// Kinds of difference.
const (
	// CodeRecords: a record's key, value or headers differ.
	CodeRecords Code = "RECORDS_DIFFER"
	// CodeHeader: a batch header field that must be copied differs
	// (record count, codec, attributes).
	CodeHeader Code = "BATCH_HEADER_DIFFERS"
	// CodeTimestamp: a timestamp or the timestamp type differs.
	CodeTimestamp Code = "TIMESTAMP_DIFFERS"
	// CodeMarker: a transaction marker is missing, extra or of the other
	// kind (commit against abort).
	CodeMarker Code = "MARKER_DIFFERS"
	// CodeProducer: the records are equal but their transactions are not:
	// a transactional batch against a plain one, or records of one source
	// transaction written by different producers on the mirror.
	CodeProducer Code = "PRODUCER_DIFFERS"
	// CodeMissing: the source has a record where the mirror has none.
	CodeMissing Code = "MISSING_RECORDS"
	// CodeExtra: the mirror has a record (not a filler) where the source
	// has none.
	CodeExtra Code = "EXTRA_RECORDS"
	// CodeCorrupt: a batch's CRC does not match its bytes.
	CodeCorrupt Code = "CORRUPT_BATCH"
	// CodeUnreadable: a batch cannot be parsed or decompressed.
	CodeUnreadable Code = "UNREADABLE_BATCH"
)

// Divergence is the first difference found in a partition.
type Divergence struct {
	// Offset is the first offset at which the mirror and the source
	// differ.
	Offset  int64  `json:"offset"`
	Code    Code   `json:"code"`
	Message string `json:"message"`
}

func (d *Divergence) Error() string { return fmt.Sprintf("offset %d: %s", d.Offset, d.Message) }

func diverge(at int64, code Code, format string, args ...any) *Divergence {
	return &Divergence{Offset: at, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Stats counts what a comparison read and how.
type Stats struct {
	// SourceBatches and MirrorBatches count the batches compared (a batch
	// read twice, because a comparison stopped inside it, counts twice).
	SourceBatches int64 `json:"source_batches"`
	MirrorBatches int64 `json:"mirror_batches"`
	// SourceBytes and MirrorBytes are the bytes of those batches.
	SourceBytes int64 `json:"source_bytes"`
	MirrorBytes int64 `json:"mirror_bytes"`
	// Offsets counts the offsets verified.
	Offsets int64 `json:"offsets"`
	// Decompressed counts the batches that had to be decompressed (both
	// sides).
	Decompressed int64 `json:"decompressed_batches"`
	// Fillers counts filler records on the mirror where the source has
	// none (alignment and compaction padding).
	Fillers int64 `json:"fillers"`
	// Compacted counts offsets where only one side still has a record on a
	// compacted topic: a cleaner removed it on the other.
	Compacted int64 `json:"compacted"`
}

func (s *Stats) add(o Stats) {
	s.SourceBatches += o.SourceBatches
	s.MirrorBatches += o.MirrorBatches
	s.SourceBytes += o.SourceBytes
	s.MirrorBytes += o.MirrorBytes
	s.Offsets += o.Offsets
	s.Decompressed += o.Decompressed
	s.Fillers += o.Fillers
	s.Compacted += o.Compacted
}

// Side is one of the two logs compared.
type Side int

// The two sides.
const (
	Source Side = iota
	Mirror
)

// side is one log's batches not yet compared, in offset order, and how far
// the log is known: every batch that starts below known is in q or was
// compared already.
type side struct {
	q     []batch.Batch
	known int64
}

// drop forgets the batches that end at or before pos.
func (s *side) drop(pos int64) {
	i := 0
	for i < len(s.q) && s.q[i].NextOffset() <= pos {
		i++
	}
	if i > 0 {
		clear(s.q[:i]) // the batches point into fetch buffers: let them go
		s.q = s.q[i:]
	}
}

// itemAt returns the end (exclusive) of what holds offset at: a batch, or a
// gap up to the next batch or to known. from is where to start looking in
// q; next is where to look for the item after this one. ok is false when
// the log is not known that far.
func (s *side) itemAt(at int64, from int) (end int64, next int, ok bool) {
	for i := from; i < len(s.q); i++ {
		b := &s.q[i]
		if b.NextOffset() <= at {
			continue
		}
		if b.BaseOffset <= at {
			return b.NextOffset(), i + 1, true
		}
		return b.BaseOffset, i, true
	}
	if at < s.known {
		return s.known, len(s.q), true
	}
	return 0, len(s.q), false
}

// overlapping returns the batches of s that hold offsets in [from, to).
func (s *side) overlapping(from, to int64) []batch.Batch {
	var out []batch.Batch
	for i := range s.q {
		b := &s.q[i]
		if b.BaseOffset >= to {
			break
		}
		if b.NextOffset() > from {
			out = append(out, *b)
		}
	}
	return out
}

// maxSpanItems bounds how many batches and gaps a span may take before the
// two logs are compared record by record up to where they stand: logs that
// do not line up batch for batch (compaction) would otherwise be held in
// memory whole.
const maxSpanItems = 4096

// Comparer compares one partition of a mirror with its source. Feed it the
// batches of both sides in offset order with Add; Step compares as far as
// they go. It is not safe for concurrent use.
type Comparer struct {
	compacted bool
	pos       int64
	limit     int64
	src, dst  side
	div       *Divergence
	stats     Stats
	// open maps a source producer with a transaction open in the compared
	// range to the mirror producer that replays it, and back.
	open, ropen map[int64]int64
}

// NewComparer compares offsets [from, limit). compacted says the topic is
// compacted: records only one side still has are then allowed.
func NewComparer(from, limit int64, compacted bool) *Comparer {
	return &Comparer{compacted: compacted, pos: from, limit: limit,
		src: side{known: from}, dst: side{known: from},
		open: map[int64]int64{}, ropen: map[int64]int64{}}
}

// Add hands the comparer the next batches of one side, in offset order,
// and how far that side is known now: known is past every batch given so
// far, and no batch starts in a gap below it.
func (c *Comparer) Add(sd Side, bs []batch.Batch, known int64) {
	s := &c.src
	if sd == Mirror {
		s = &c.dst
	}
	s.q = append(s.q, bs...)
	if n := len(s.q); n > 0 {
		known = max(known, s.q[n-1].NextOffset())
	}
	s.known = max(s.known, known)
}

// Pos is the offset up to which (exclusive) the sides were compared and
// agree.
func (c *Comparer) Pos() int64 { return c.pos }

// Divergence is the first difference found, nil while there is none.
func (c *Comparer) Divergence() *Divergence { return c.div }

// Stats returns what the comparison read so far.
func (c *Comparer) Stats() Stats { return c.stats }

// Done reports whether the comparison reached its limit or a difference.
func (c *Comparer) Done() bool { return c.div != nil || c.pos >= c.limit }

// Step compares as far as the batches given allow. It returns which sides
// need more batches for it to go on; both false when it is done.
func (c *Comparer) Step() (needSource, needMirror bool) {
	for !c.Done() {
		c.src.drop(c.pos)
		c.dst.drop(c.pos)
		end, records, needS, needD := c.span()
		if needS || needD {
			return needS, needD
		}
		c.compareSpan(end, records)
	}
	return false, false
}

// span finds the end of the next span from pos: the first offset at which
// a batch (or gap) ends on both sides, so the span can be compared on its
// own. records is set when the span must be compared record by record
// because the sides have no common boundary (it is then cut at the limit
// or after maxSpanItems).
func (c *Comparer) span() (end int64, records, needS, needD bool) {
	eS, iS, okS := c.src.itemAt(c.pos, 0)
	eD, iD, okD := c.dst.itemAt(c.pos, 0)
	for n := 0; ; n++ {
		if !okS || !okD {
			return 0, false, !okS, !okD
		}
		switch {
		case eS == eD && eS <= c.limit:
			return eS, false, false, false
		case min(eS, eD) >= c.limit:
			return c.limit, true, false, false
		case n >= maxSpanItems:
			return min(eS, eD), true, false, false
		case eS < eD:
			eS, iS, okS = c.src.itemAt(eS, iS)
		default:
			eD, iD, okD = c.dst.itemAt(eD, iD)
		}
	}
}

// compareSpan compares [pos, end) and moves pos to end unless they differ.
func (c *Comparer) compareSpan(end int64, forceRecords bool) {
	ss := c.src.overlapping(c.pos, end)
	ds := c.dst.overlapping(c.pos, end)
	for i := range ss {
		c.stats.SourceBatches++
		c.stats.SourceBytes += int64(len(ss[i].Raw))
	}
	for i := range ds {
		c.stats.MirrorBatches++
		c.stats.MirrorBytes += int64(len(ds[i].Raw))
	}
	var div *Divergence
	switch {
	case forceRecords:
		div = c.compareRecords(ss, ds, end)
	case len(ss) == 1 && len(ds) == 1 && ss[0].BaseOffset == ds[0].BaseOffset && ss[0].NextOffset() == end && ds[0].NextOffset() == end:
		div = c.compareOne(&ss[0], &ds[0], end)
	case len(ds) == 1 && len(ss) > 1 && merged(ss, &ds[0], end):
		div = c.compareMerged(ss, &ds[0], end)
	default:
		div = c.compareRecords(ss, ds, end)
	}
	if div != nil {
		c.div = div
		return
	}
	c.stats.Offsets += end - c.pos
	c.pos = end
}

// merged reports whether d can be the merge of the source batches ss
// (batch.Merge): contiguous plain batches that d covers exactly.
func merged(ss []batch.Batch, d *batch.Batch, end int64) bool {
	if d.BaseOffset != ss[0].BaseOffset || d.NextOffset() != end || ss[len(ss)-1].NextOffset() != end {
		return false
	}
	for i := range ss {
		if !batch.Mergeable(&ss[i]) || i > 0 && ss[i].BaseOffset != ss[i-1].NextOffset() {
			return false
		}
	}
	return true
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// carriedCRC is the CRC d must have if its records are s's: s's CRC carried
// through the change from s's header to d's (see batch.RewriteCarryCRC).
func carriedCRC(s, d *batch.Batch) uint32 {
	const crcFrom = 21 // the CRC covers the attributes onwards
	hs := crc32.Checksum(s.Raw[crcFrom:batch.HeaderSize], castagnoli)
	hd := crc32.Checksum(d.Raw[crcFrom:batch.HeaderSize], castagnoli)
	return s.CRC ^ batch.CombineCRC(hs^hd, 0, int64(len(s.Raw)-batch.HeaderSize))
}

// compareOne compares a source batch with the mirror batch on the same
// offsets.
func (c *Comparer) compareOne(s, d *batch.Batch, end int64) *Divergence {
	at := max(s.BaseOffset, c.pos)
	if div := checkMagic(s, d, at); div != nil {
		return div
	}
	switch {
	case s.Control() != d.Control():
		return diverge(at, CodeMarker, "%s on the source, %s on the mirror", batchKind(s), batchKind(d))
	case s.Control():
		return c.compareMarkers(s, d, at)
	case !s.Dense() || s.LogAppendTime():
		// Strait re-encodes these batches (batch.Densify,
		// batch.StampLogAppendTime): only their records can match.
		return c.compareRecords([]batch.Batch{*s}, []batch.Batch{*d}, end)
	}
	var why *Divergence
	switch {
	case s.Transactional() != d.Transactional():
		why = diverge(at, CodeProducer, "the batch at %d is %s on the source and %s on the mirror", s.BaseOffset, txnWord(s), txnWord(d))
	case s.RecordCount != d.RecordCount:
		why = diverge(at, CodeHeader, "the batch at %d has %d records on the source, %d on the mirror", s.BaseOffset, s.RecordCount, d.RecordCount)
	case s.LogAppendTime() != d.LogAppendTime():
		why = diverge(at, CodeTimestamp, "the batch at %d has %s timestamps on the source, %s on the mirror", s.BaseOffset, tsType(s), tsType(d))
	case s.BaseTimestamp != d.BaseTimestamp || s.MaxTimestamp != d.MaxTimestamp:
		why = diverge(at, CodeTimestamp, "the batch at %d has timestamps %d..%d on the source, %d..%d on the mirror", s.BaseOffset, s.BaseTimestamp, s.MaxTimestamp, d.BaseTimestamp, d.MaxTimestamp)
	case s.Codec() != d.Codec():
		why = diverge(at, CodeHeader, "the batch at %d is compressed with %s on the source, %s on the mirror", s.BaseOffset, codecName(s.Codec()), codecName(d.Codec()))
	case s.Attributes&^batch.AttrTransactional != d.Attributes&^batch.AttrTransactional:
		why = diverge(at, CodeHeader, "the batch at %d has attributes %#x on the source, %#x on the mirror", s.BaseOffset, s.Attributes, d.Attributes)
	case !bytes.Equal(s.Raw[batch.HeaderSize:], d.Raw[batch.HeaderSize:]):
		why = diverge(at, CodeRecords, "the records of the batch at %d differ", s.BaseOffset)
	}
	if why != nil {
		// Say which record differs; a compacted topic's cleaner may also
		// have re-encoded a batch whose records are still the same.
		if div := c.compareRecords([]batch.Batch{*s}, []batch.Batch{*d}, end); div != nil || c.compacted {
			return div
		}
		return why
	}
	if d.CRC != carriedCRC(s, d) {
		return corrupt(s, d, at)
	}
	if s.Transactional() {
		return c.noteTxnData(s.ProducerID, d.ProducerID, at)
	}
	return nil
}

// corrupt names the side whose batch does not match its CRC.
func corrupt(s, d *batch.Batch, at int64) *Divergence {
	switch {
	case !batch.CheckCRC(d.Raw):
		return diverge(at, CodeCorrupt, "the mirror batch at %d does not match its CRC", d.BaseOffset)
	case !batch.CheckCRC(s.Raw):
		return diverge(at, CodeCorrupt, "the source batch at %d does not match its CRC", s.BaseOffset)
	}
	return diverge(at, CodeCorrupt, "the mirror batch at %d has CRC %#08x, which is not the source's carried through the header change", d.BaseOffset, d.CRC)
}

func checkMagic(s, d *batch.Batch, at int64) *Divergence {
	switch {
	case s.Magic != 2:
		return diverge(at, CodeUnreadable, "the source batch at %d has message format v%d, which Strait does not copy", s.BaseOffset, s.Magic)
	case d.Magic != 2:
		return diverge(at, CodeUnreadable, "the mirror batch at %d has message format v%d", d.BaseOffset, d.Magic)
	}
	return nil
}

// compareMarkers compares two control batches on the same offset.
func (c *Comparer) compareMarkers(s, d *batch.Batch, at int64) *Divergence {
	sc, err := markerCommits(s)
	if err != nil {
		return diverge(at, CodeUnreadable, "the source marker at %d: %v", s.BaseOffset, err)
	}
	dc, err := markerCommits(d)
	if err != nil {
		return diverge(at, CodeUnreadable, "the mirror marker at %d: %v", d.BaseOffset, err)
	}
	if sc != dc {
		return diverge(at, CodeMarker, "%s on the source, %s on the mirror", markerWord(sc), markerWord(dc))
	}
	return c.noteMarker(s.ProducerID, d.ProducerID, at)
}

// markerCommits reads whether a control batch commits: its one record's
// key is the marker's version and type (1 commit, 0 abort). Control
// batches are never compressed.
func markerCommits(b *batch.Batch) (bool, error) {
	data := b.Raw[batch.HeaderSize:]
	if b.Codec() != batch.CodecNone {
		return false, fmt.Errorf("compressed control batch")
	}
	recs, err := batch.ParseRecords(data, b.RecordCount)
	if err != nil {
		return false, err
	}
	if len(recs) != 1 || len(recs[0].Key) < 4 {
		return false, fmt.Errorf("not a transaction marker")
	}
	return binary.BigEndian.Uint16(recs[0].Key[2:4]) == 1, nil
}

// noteTxnData records that a source producer's transactional data is
// written by a mirror producer; within one transaction that must not
// change, and two source producers must not share one.
func (c *Comparer) noteTxnData(src, dst int64, at int64) *Divergence {
	if m, ok := c.open[src]; ok {
		if m != dst {
			return diverge(at, CodeProducer, "source producer %d's open transaction is written by mirror producer %d at %d, by %d before", src, dst, at, m)
		}
		return nil
	}
	if r, ok := c.ropen[dst]; ok && r != src {
		return diverge(at, CodeProducer, "mirror producer %d writes the transactions of source producers %d and %d", dst, r, src)
	}
	c.open[src], c.ropen[dst] = dst, src
	return nil
}

// noteMarker checks that a marker ends, on the mirror, the transaction that
// replays the source transaction it ends.
func (c *Comparer) noteMarker(src, dst int64, at int64) *Divergence {
	m, ok := c.open[src]
	switch {
	case ok && m != dst:
		return diverge(at, CodeProducer, "the marker ending source producer %d's transaction is written by mirror producer %d, its records by %d", src, dst, m)
	case !ok:
		if r, taken := c.ropen[dst]; taken && r != src {
			return diverge(at, CodeProducer, "the marker of source producer %d is written by mirror producer %d, which replays source producer %d", src, dst, r)
		}
	}
	delete(c.open, src)
	delete(c.ropen, dst)
	return nil
}

func batchKind(b *batch.Batch) string {
	if b.Control() {
		return "a transaction marker"
	}
	return "a data batch"
}

func txnWord(b *batch.Batch) string {
	if b.Transactional() {
		return "transactional"
	}
	return "not transactional"
}

func tsType(b *batch.Batch) string {
	if b.LogAppendTime() {
		return "LogAppendTime"
	}
	return "CreateTime"
}

func markerWord(commit bool) string {
	if commit {
		return "a commit marker"
	}
	return "an abort marker"
}

func codecName(c batch.Codec) string {
	switch c {
	case batch.CodecNone:
		return "none"
	case batch.CodecGzip:
		return "gzip"
	case batch.CodecSnappy:
		return "snappy"
	case batch.CodecLZ4:
		return "lz4"
	case batch.CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", c)
}

// Finish checks, once the comparison reached its limit, that the mirror
// does not end past the source: offsets the mirror holds beyond the
// source's end are records the source never had (or lost).
func (c *Comparer) Finish(sourceEnd, mirrorEnd int64) {
	if c.div == nil && c.pos >= c.limit && mirrorEnd > sourceEnd {
		c.div = diverge(sourceEnd, CodeExtra, "the mirror ends at %d but the source at %d: the mirror holds offsets the source has not written (or has lost)", mirrorEnd, sourceEnd)
	}
}

// CompareAll compares whole logs given as batches: the source's, which ends
// at sourceEnd, and the mirror's, which ends at mirrorEnd, from offset
// from. It returns the offset up to which they agree, the first
// difference if any, and what was read.
func CompareAll(src, dst []batch.Batch, from, sourceEnd, mirrorEnd int64, compacted bool) (int64, *Divergence, Stats) {
	c := NewComparer(from, min(sourceEnd, mirrorEnd), compacted)
	c.Add(Source, src, sourceEnd)
	c.Add(Mirror, dst, mirrorEnd)
	c.Step()
	c.Finish(sourceEnd, mirrorEnd)
	return c.Pos(), c.Divergence(), c.Stats()
}
