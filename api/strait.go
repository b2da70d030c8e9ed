package api

// The JSON shapes of Strait's own endpoints, under /strait/v1 (outside
// Confluent's API): verification, the failover report, consumer group
// readiness and the planned switchover. docs/api.md describes them.

// VerifyStats counts what a verification read and how.
type VerifyStats struct {
	SourceBatches int64 `json:"source_batches"`
	MirrorBatches int64 `json:"mirror_batches"`
	SourceBytes   int64 `json:"source_bytes"`
	MirrorBytes   int64 `json:"mirror_bytes"`
	// Offsets counts the offsets compared.
	Offsets int64 `json:"offsets"`
	// DecompressedBatches counts the batches that had to be decompressed
	// (both sides): those Strait re-encodes, and spans that compaction
	// made unlike batch for batch.
	DecompressedBatches int64 `json:"decompressed_batches"`
	// Fillers counts filler records on the mirror where the source has
	// no record.
	Fillers int64 `json:"fillers"`
	// Compacted counts offsets that only one side still has on a
	// compacted topic.
	Compacted int64 `json:"compacted"`
}

// Divergence is the first offset at which a mirror partition differs from
// its source, and how.
type Divergence struct {
	Offset int64 `json:"offset"`
	// Code is RECORDS_DIFFER, BATCH_HEADER_DIFFERS, TIMESTAMP_DIFFERS,
	// MARKER_DIFFERS, PRODUCER_DIFFERS, MISSING_RECORDS, EXTRA_RECORDS,
	// CORRUPT_BATCH or UNREADABLE_BATCH.
	Code    string `json:"code"`
	Message string `json:"message"`
}

// VerifiedPartition is one partition of a verification.
type VerifiedPartition struct {
	Partition int32 `json:"partition"`
	// FromOffset is where this run began (the checkpoint, or the later
	// of the log starts).
	FromOffset int64 `json:"from_offset"`
	// VerifiedOffset: every offset below it (from the log starts) was
	// compared and agrees.
	VerifiedOffset    int64       `json:"verified_offset"`
	SourceStartOffset int64       `json:"source_start_offset"`
	SourceEndOffset   int64       `json:"source_end_offset"`
	MirrorStartOffset int64       `json:"mirror_start_offset"`
	MirrorEndOffset   int64       `json:"mirror_end_offset"`
	Divergence        *Divergence `json:"divergence"`
	// Error says why the run stopped early without a difference.
	Error *string `json:"error"`
	VerifyStats
}

// MirrorVerification is the answer of POST .../mirrors/{topic}:verify.
type MirrorVerification struct {
	Kind            string           `json:"kind"`
	Metadata        ResourceMetadata `json:"metadata"`
	LinkName        string           `json:"link_name"`
	MirrorTopicName string           `json:"mirror_topic_name"`
	SourceTopicName string           `json:"source_topic_name"`
	MirrorStatus    string           `json:"mirror_status"`
	// Verified: every partition agrees up to the mirror's end.
	Verified bool `json:"verified"`
	// Diverged: a partition differs.
	Diverged   bool                `json:"diverged"`
	Summary    string              `json:"summary"`
	TookMs     int64               `json:"took_ms"`
	Partitions []VerifiedPartition `json:"partitions"`
	Totals     VerifyStats         `json:"totals"`
}

// VerificationCheckpoint is one partition's last verification.
type VerificationCheckpoint struct {
	Partition      int32       `json:"partition"`
	VerifiedOffset int64       `json:"verified_offset"`
	Divergence     *Divergence `json:"divergence"`
	TimeMs         int64       `json:"time_ms"`
}

// MirrorCheckpoints is the answer of GET .../mirrors/{topic}/verification.
type MirrorCheckpoints struct {
	Kind            string                   `json:"kind"`
	Metadata        ResourceMetadata         `json:"metadata"`
	LinkName        string                   `json:"link_name"`
	MirrorTopicName string                   `json:"mirror_topic_name"`
	Partitions      []VerificationCheckpoint `json:"partitions"`
}

// FailoverPartition is what failing one mirror partition over now loses.
type FailoverPartition struct {
	Partition       int32 `json:"partition"`
	SourceEndOffset int64 `json:"source_end_offset"`
	MirrorEndOffset int64 `json:"mirror_end_offset"`
	// RecordsNotCopied is the source offsets the mirror does not have
	// (records, and transaction markers).
	RecordsNotCopied int64 `json:"records_not_copied"`
	// OldestNotCopiedTimestampMs is the timestamp of the first record not
	// copied, null when everything is.
	OldestNotCopiedTimestampMs *int64 `json:"oldest_not_copied_timestamp_ms"`
	// DataLossSeconds is the age of that record now: the window of data
	// a failover now loses.
	DataLossSeconds float64 `json:"data_loss_seconds"`
	// OpenTransactions are the transactions open on the mirror partition,
	// which a failover aborts: source transactions not yet ended.
	OpenTransactions []OpenTransaction `json:"open_transactions"`
}

// OpenTransaction is a transaction a failover would abort.
type OpenTransaction struct {
	// StartOffset is the mirror offset of its first record.
	StartOffset int64 `json:"start_offset"`
	// RecordsOnMirror is how many offsets from its start the mirror
	// holds: its records there, and any interleaved with them.
	RecordsOnMirror int64 `json:"records_on_mirror"`
}

// FailoverGroupPartition is one partition of a group's position.
type FailoverGroupPartition struct {
	Partition int32 `json:"partition"`
	// SourceOffset is the group's committed offset on the source.
	SourceOffset int64 `json:"source_offset"`
	// DestinationOffset is its committed offset on the destination now
	// (-1 when none).
	DestinationOffset int64 `json:"destination_offset"`
	// OffsetAfterFailover is where the group resumes on the destination
	// after a failover, whose last offset sync moves it when it can.
	OffsetAfterFailover int64 `json:"offset_after_failover"`
	// Reprocessed: records its consumers would see again.
	Reprocessed int64 `json:"reprocessed"`
	// Missed: records it has not consumed yet that it would never see
	// (not copied, or skipped by an offset past its position).
	Missed int64 `json:"missed"`
}

// FailoverGroup is a consumer group whose offsets the link syncs.
type FailoverGroup struct {
	GroupID     string                   `json:"group_id"`
	Reprocessed int64                    `json:"reprocessed"`
	Missed      int64                    `json:"missed"`
	Partitions  []FailoverGroupPartition `json:"partitions"`
}

// FailoverTopic is what failing one mirror topic over now loses.
type FailoverTopic struct {
	MirrorTopicName string              `json:"mirror_topic_name"`
	SourceTopicName string              `json:"source_topic_name"`
	MirrorStatus    string              `json:"mirror_status"`
	Verdict         string              `json:"verdict"`
	Partitions      []FailoverPartition `json:"partitions"`
	Groups          []FailoverGroup     `json:"groups"`
}

// FailoverReport is the answer of GET .../links/{link}/failover-report.
type FailoverReport struct {
	Kind     string           `json:"kind"`
	Metadata ResourceMetadata `json:"metadata"`
	LinkName string           `json:"link_name"`
	// Verdict says in one line what a failover now loses.
	Verdict string `json:"verdict"`
	// MaxDataLossSeconds is the largest data_loss_seconds.
	MaxDataLossSeconds float64 `json:"max_data_loss_seconds"`
	// LaggingPartitions and LaggingTopics count those with records not
	// copied.
	LaggingPartitions int `json:"lagging_partitions"`
	LaggingTopics     int `json:"lagging_topics"`
	// OpenTransactions counts the transactions a failover would abort.
	OpenTransactions int             `json:"open_transactions"`
	Topics           []FailoverTopic `json:"topics"`
}

// ReadinessPartition is one partition of a group's readiness.
type ReadinessPartition struct {
	Partition         int32 `json:"partition"`
	SourceOffset      int64 `json:"source_offset"`
	DestinationOffset int64 `json:"destination_offset"`
	MirrorEndOffset   int64 `json:"mirror_end_offset"`
	SourceEndOffset   int64 `json:"source_end_offset"`
	Lag               int64 `json:"lag"`
}

// ReadinessTopic is one source topic a group has offsets on.
type ReadinessTopic struct {
	SourceTopicName string               `json:"source_topic_name"`
	MirrorTopicName *string              `json:"mirror_topic_name"`
	Lag             int64                `json:"lag"`
	Partitions      []ReadinessPartition `json:"partitions"`
}

// GroupReadiness says whether a consumer group can move to the
// destination now, and if not, why.
type GroupReadiness struct {
	Kind     string `json:"kind"`
	LinkName string `json:"link_name"`
	GroupID  string `json:"group_id"`
	Ready    bool   `json:"ready"`
	// Reasons say what keeps the group from moving; empty when ready.
	Reasons []string         `json:"reasons"`
	Topics  []ReadinessTopic `json:"topics"`
}

// GroupReadinessList is the answer of GET .../groups/{group}/readiness.
type GroupReadinessList struct {
	Kind     string           `json:"kind"`
	Metadata ResourceMetadata `json:"metadata"`
	Data     []GroupReadiness `json:"data"`
}

// SwitchoverRequest is the body of POST .../links/{link}:switchover.
type SwitchoverRequest struct {
	MirrorTopicNames       *[]string `json:"mirror_topic_names"`
	MirrorTopicNamePattern *string   `json:"mirror_topic_name_pattern"`
	// GroupIDs are the consumer groups that move with the topics.
	GroupIDs []string `json:"group_ids"`
	// QuietMs is how long the source topics must take no new offsets;
	// default 5000.
	QuietMs *int64 `json:"quiet_ms"`
	// TimeoutMs bounds the wait for quiet and zero lag; default 60000.
	TimeoutMs *int64 `json:"timeout_ms"`
	// VerifyBytesPerSecond caps the verification's reads from each
	// cluster; default unlimited.
	VerifyBytesPerSecond *int64 `json:"verify_bytes_per_second"`
}

// SwitchoverPartition is one partition switched over.
type SwitchoverPartition struct {
	Partition int32 `json:"partition"`
	// EndOffset is where the source and the mirror both ended.
	EndOffset      int64 `json:"end_offset"`
	VerifiedOffset int64 `json:"verified_offset"`
}

// SwitchoverTopic is one mirror topic switched over.
type SwitchoverTopic struct {
	MirrorTopicName string                `json:"mirror_topic_name"`
	SourceTopicName string                `json:"source_topic_name"`
	MirrorStatus    string                `json:"mirror_status"`
	Partitions      []SwitchoverPartition `json:"partitions"`
	Verified        VerifyStats           `json:"verified"`
}

// SwitchoverGroupOffset is one committed offset moved.
type SwitchoverGroupOffset struct {
	MirrorTopicName string `json:"mirror_topic_name"`
	Partition       int32  `json:"partition"`
	Offset          int64  `json:"offset"`
}

// SwitchoverGroup is one consumer group moved.
type SwitchoverGroup struct {
	GroupID string                  `json:"group_id"`
	Offsets []SwitchoverGroupOffset `json:"offsets"`
}

// SwitchoverReport is the answer of a switchover that happened.
type SwitchoverReport struct {
	Kind     string           `json:"kind"`
	Metadata ResourceMetadata `json:"metadata"`
	LinkName string           `json:"link_name"`
	Summary  string           `json:"summary"`
	// QuietWaitMs is how long the switchover waited for the producers to
	// stop and the mirrors to catch up.
	QuietWaitMs int64             `json:"quiet_wait_ms"`
	TookMs      int64             `json:"took_ms"`
	Topics      []SwitchoverTopic `json:"topics"`
	Groups      []SwitchoverGroup `json:"groups"`
}
