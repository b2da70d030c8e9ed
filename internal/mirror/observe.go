package mirror

import (
	"sync/atomic"
	"time"
)

// Observer receives a runner's measurements (internal/metrics implements
// it). Its methods are called on the copy path: they must be cheap and
// safe for concurrent use.
type Observer interface {
	// Partition returns the counters of one mirror partition. The runner
	// asks once per partition when it sets a topic up and keeps the
	// pointer, so the copy adds to them without a lookup; the same
	// partition should get the same counters every time, so that they
	// outlive a restart of the runner.
	Partition(topic string, partition int32) *PartitionCounters
	// Request reports one fetch (OpFetch) from the source or produce
	// (OpProduce) to the destination: took is its round trip, err its
	// outcome (nil when it was answered; an error it carries for a
	// partition comes through Error).
	Request(op string, took time.Duration, err error)
	// Error reports an error of op other than a failed request: a Kafka
	// error code a partition of an answer carries, a failed probe of the
	// source (OpSourceMetadata).
	Error(op string, err error)
}

// Operations named in Observer calls.
const (
	OpFetch          = "fetch"
	OpProduce        = "produce"
	OpSourceMetadata = "source_metadata"
)

// PartitionCounters counts the copy of one mirror partition.
type PartitionCounters struct {
	// Records counts the source records copied: data records of plain and
	// transactional batches (the tombstones standing in for compacted
	// offsets included); not filler, not transaction markers.
	Records atomic.Int64
	// Bytes counts the bytes of those batches as produced.
	Bytes atomic.Int64
	// Restarts counts the times the partition's worker started again
	// after an error.
	Restarts atomic.Int64
}

// nopObserver is the Observer of a runner given none.
type nopObserver struct{}

func (nopObserver) Partition(string, int32) *PartitionCounters { return new(PartitionCounters) }
func (nopObserver) Request(string, time.Duration, error)       {}
func (nopObserver) Error(string, error)                        {}
