// Package mirror copies source partitions into mirror partitions on the
// destination with identical offsets.
//
// # Data path
//
// A Runner serves one link. It owns one fetcher goroutine per source broker
// that leads at least one mirrored partition; each fetcher sends one Fetch
// request for all of its partitions and hands the raw record batches to the
// partitions' queues. Each mirror partition has a worker goroutine that
// rewrites the producer fields of every batch (package batch) and produces
// the same bytes to the destination partition leader, checking that the
// broker assigned the batch the offset it has at the source.
//
// # Cursor
//
// The destination log end offset is the only cursor. A worker reads it when
// it starts and fetches the source from there; nothing else is saved, so a
// crash at any moment resumes without a gap or a duplicate. Batches are
// produced with an idempotent producer id per partition, so a retried
// produce that already landed is answered with its original offset.
//
// # Alignment
//
// When the source log starts above the destination's end (retention,
// DeleteRecords, mirror.start.offset.spec=latest), the worker pads the
// destination with filler records up to the base offset of the source batch
// that holds the start, copies from there, and then deletes the records
// below the source start on the destination (DeleteRecords). The target is
// saved through Hooks.SaveAlign first, so a crash between padding and
// deleting finishes the job on restart.
//
// # What an idle runner does
//
// Idle work grows with what changed, not with what exists (measured with
// strait bench scale, docs/benchmarks.md). A fetcher's round over
// thousands of idle partitions sends an empty incremental fetch and
// allocates nothing: partitions stay sorted, and each carries a mark of
// what the fetch session holds for it. Once a second the lag loop reads,
// for exactly the idle partitions due a check, the mirror's end, from the
// leaders the metadata cache knows (a partition idle for long is due less
// often, at most every 30 s). The source is probed for availability
// without topics; the mirrored topics' metadata is read every
// TopicCheckInterval (30 s), and at once only for a topic that needs it.
// Set and Update touch only the topics they change; topics stop together.
//
// # Locks
//
// Runner.mu guards the topic and fetcher maps; fetcher.mu guards a fetcher's
// partition set; part.mu guards a partition's queue and fetch cursor. Lock
// order: Runner.mu, then fetcher.mu, then part.mu. Workers never hold a lock
// across a network call.
package mirror
