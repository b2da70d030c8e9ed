package api

// The JSON shapes of Strait's REST API, named after the schemas of
// Confluent's OpenAPI spec. The server (internal/restapi) writes them and
// the client (internal/client) reads them, so both share one definition.
// Field order is the order of the JSON the server writes: keep it.

// ResourceMetadata is a resource's metadata.
type ResourceMetadata struct {
	Self         string  `json:"self"`
	ResourceName *string `json:"resource_name,omitempty"`
}

// CollectionMetadata is a list's metadata.
type CollectionMetadata struct {
	Self string  `json:"self"`
	Next *string `json:"next"`
}

// Relationship points to a related resource.
type Relationship struct {
	Related string `json:"related"`
}

// ClusterData is a KafkaCluster: the destination cluster Strait serves.
type ClusterData struct {
	Kind                   string           `json:"kind"`
	Metadata               ResourceMetadata `json:"metadata"`
	ClusterID              string           `json:"cluster_id"`
	ACLs                   Relationship     `json:"acls"`
	Brokers                Relationship     `json:"brokers"`
	BrokerConfigs          Relationship     `json:"broker_configs"`
	ConsumerGroups         Relationship     `json:"consumer_groups"`
	Topics                 Relationship     `json:"topics"`
	PartitionReassignments Relationship     `json:"partition_reassignments"`
}

// ClusterDataList is a KafkaClusterList.
type ClusterDataList struct {
	Kind     string             `json:"kind"`
	Metadata CollectionMetadata `json:"metadata"`
	Data     []ClusterData      `json:"data"`
}

// LinkTaskError is one error of a link task.
type LinkTaskError struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// LinkTask is one of a link's tasks (include_tasks=true).
type LinkTask struct {
	TaskName string          `json:"task_name"`
	State    string          `json:"state"`
	Errors   []LinkTaskError `json:"errors"`
}

// LinkCategoryCount counts a link's mirror partitions in one state
// category.
type LinkCategoryCount struct {
	StateCategory string `json:"state_category"`
	Count         int    `json:"count"`
}

// LinkData is a KafkaLinkData: one cluster link.
type LinkData struct {
	Kind                 string              `json:"kind"`
	Metadata             ResourceMetadata    `json:"metadata"`
	SourceClusterID      *string             `json:"source_cluster_id"`
	DestinationClusterID *string             `json:"destination_cluster_id"`
	RemoteClusterID      *string             `json:"remote_cluster_id"`
	LinkName             string              `json:"link_name"`
	LinkID               string              `json:"link_id"`
	ClusterLinkID        string              `json:"cluster_link_id"`
	TopicNames           []string            `json:"topic_names"`
	LinkState            string              `json:"link_state"`
	LinkError            string              `json:"link_error"`
	LinkErrorMessage     *string             `json:"link_error_message"`
	Tasks                []LinkTask          `json:"tasks,omitempty"`
	CategoryCounts       []LinkCategoryCount `json:"category_counts"`
}

// LinkDataList is a KafkaLinkDataList.
type LinkDataList struct {
	Kind     string             `json:"kind"`
	Metadata CollectionMetadata `json:"metadata"`
	Data     []LinkData         `json:"data"`
}

// LinkConfigData is a KafkaLinkConfigData. It carries both the Cloud flag
// names (is_*) and the Platform ones (read_only, sensitive, default): the
// Confluent CLI on-prem reads the latter.
type LinkConfigData struct {
	Kind        string           `json:"kind"`
	Metadata    ResourceMetadata `json:"metadata"`
	ClusterID   string           `json:"cluster_id"`
	LinkName    string           `json:"link_name"`
	Name        string           `json:"name"`
	Value       string           `json:"value"`
	IsDefault   bool             `json:"is_default"`
	IsReadOnly  bool             `json:"is_read_only"`
	IsSensitive bool             `json:"is_sensitive"`
	Default     bool             `json:"default"`
	ReadOnly    bool             `json:"read_only"`
	Sensitive   bool             `json:"sensitive"`
	Source      string           `json:"source"`
	Synonyms    []string         `json:"synonyms"`
}

// LinkConfigDataList is a KafkaLinkConfigDataList.
type LinkConfigDataList struct {
	Kind     string             `json:"kind"`
	Metadata CollectionMetadata `json:"metadata"`
	Data     []LinkConfigData   `json:"data"`
}

// MirrorLag is one mirror partition's lag.
type MirrorLag struct {
	Partition             int32 `json:"partition"`
	Lag                   int64 `json:"lag"`
	LastSourceFetchOffset int64 `json:"last_source_fetch_offset"`
	// StraitInstance is Strait's own: the instance that copies the
	// partition when several share the work (docs/scale-out.md).
	StraitInstance string `json:"strait_instance,omitempty"`
}

// StateTransitionError is one of a mirror's state transition errors.
type StateTransitionError struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

// MirrorData is a KafkaMirrorData: one mirror topic.
type MirrorData struct {
	Kind             string           `json:"kind"`
	Metadata         ResourceMetadata `json:"metadata"`
	LinkName         string           `json:"link_name"`
	MirrorTopicName  string           `json:"mirror_topic_name"`
	SourceTopicName  string           `json:"source_topic_name"`
	NumPartitions    int32            `json:"num_partitions"`
	MirrorLags       []MirrorLag      `json:"mirror_lags"`
	MirrorStatus     string           `json:"mirror_status"`
	MirrorTopicError string           `json:"mirror_topic_error"`
	StateTimeMs      int64            `json:"state_time_ms"`
	// TransitionErrors is set only with include_state_transition_errors.
	TransitionErrors *[]StateTransitionError `json:"mirror_state_transition_errors,omitempty"`
}

// MirrorDataList is a KafkaMirrorDataList.
type MirrorDataList struct {
	Kind     string             `json:"kind"`
	Metadata CollectionMetadata `json:"metadata"`
	Data     []MirrorData       `json:"data"`
}

// PartitionTruncation is what truncate-and-restore removed from one
// partition.
type PartitionTruncation struct {
	PartitionID       int32 `json:"partition_id"`
	OffsetTruncatedTo int64 `json:"offset_truncated_to"`
	MessagesTruncated int64 `json:"messages_truncated"`
}

// AlterMirrorsData is one topic's result of an alter-mirrors operation;
// ErrorCode is nil when the topic took it.
type AlterMirrorsData struct {
	Kind                         string                `json:"kind"`
	Metadata                     ResourceMetadata      `json:"metadata"`
	MirrorTopicName              string                `json:"mirror_topic_name"`
	ErrorCode                    *int                  `json:"error_code"`
	ErrorMessage                 *string               `json:"error_message"`
	MirrorLags                   []MirrorLag           `json:"mirror_lags"`
	MessagesTruncated            *int64                `json:"messages_truncated"`
	PartitionLevelTruncationData []PartitionTruncation `json:"partition_level_truncation_data"`
	// StraitFailoverReport is Strait's own: what the failover of a
	// validate_only=true call would lose (the schema allows extra fields).
	StraitFailoverReport *FailoverTopic `json:"strait_failover_report,omitempty"`
}

// AlterMirrorsDataList is an AlterMirrorsDataList.
type AlterMirrorsDataList struct {
	Kind     string             `json:"kind"`
	Metadata CollectionMetadata `json:"metadata"`
	Data     []AlterMirrorsData `json:"data"`
}

// Error is Confluent's error body.
type Error struct {
	ErrorCode int    `json:"error_code"`
	Message   string `json:"message"`
}

// Request bodies. Empty scalars are left out when sent; the server reads a
// missing field and an empty one alike.

// ConfigValue is a name and value in a create request; a nil Value
// reads as unset.
type ConfigValue struct {
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

// CreateLinkRequest is the body of POST /links.
type CreateLinkRequest struct {
	SourceClusterID      string        `json:"source_cluster_id,omitempty"`
	DestinationClusterID string        `json:"destination_cluster_id,omitempty"`
	RemoteClusterID      string        `json:"remote_cluster_id,omitempty"`
	ClusterLinkID        string        `json:"cluster_link_id,omitempty"`
	Configs              []ConfigValue `json:"configs"`
}

// UpdateConfigRequest is the body of PUT /links/{l}/configs/{name}.
type UpdateConfigRequest struct {
	Value *string `json:"value"`
}

// AlterConfigEntry is one change of PUT /links/{l}/configs:alter;
// Operation is SET (the default) or DELETE.
type AlterConfigEntry struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Operation string  `json:"operation,omitempty"`
}

// AlterConfigsRequest is the body of PUT /links/{l}/configs:alter.
type AlterConfigsRequest struct {
	Data         []AlterConfigEntry `json:"data"`
	ValidateOnly *bool              `json:"validate_only"`
}

// CreateMirrorRequest is the body of POST /links/{l}/mirrors.
type CreateMirrorRequest struct {
	SourceTopicName   string        `json:"source_topic_name"`
	MirrorTopicName   string        `json:"mirror_topic_name,omitempty"`
	ReplicationFactor int           `json:"replication_factor,omitempty"`
	Configs           []ConfigValue `json:"configs"`
}

// AlterMirrorsRequest is the body of POST /links/{l}/mirrors:<op>: names
// or a pattern (a regular expression matching whole names), not both.
type AlterMirrorsRequest struct {
	MirrorTopicNames       *[]string `json:"mirror_topic_names,omitempty"`
	MirrorTopicNamePattern *string   `json:"mirror_topic_name_pattern,omitempty"`
}
