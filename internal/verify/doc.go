// Package verify compares a mirror topic with its source, partition by
// partition and batch by batch, from raw record batches.
//
// Strait copies most batches as they are, rewriting only the header fields
// a producer owns (base offset, leader epoch, producer id, epoch and
// sequence). Such a batch is verified without reading its records: the
// rest of the header and the record bytes must be equal, and the mirror's
// CRC must be the source's carried through the header change (CRCs are
// linear, see batch.CombineCRC). The batches Strait re-encodes (merged runs
// of small compressed batches, compacted batches filled with tombstones,
// LogAppendTime batches stamped as CreateTime) and spans where the two
// logs no longer line up batch for batch (compaction after the copy) are
// decompressed and compared record by record. docs/verify.md says exactly
// what must match for each kind of batch.
//
// The Comparer is pure: it is fed batches of both sides in offset order and
// reports how far they agree and the first offset where they do not. Run
// drives it over a topic with raw Fetch requests to both clusters, bounded
// by a rate limit.
package verify
