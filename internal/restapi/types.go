package restapi

// The JSON shapes of the API, named as in Confluent's OpenAPI spec.

type resourceMeta struct {
	Self         string  `json:"self"`
	ResourceName *string `json:"resource_name,omitempty"`
}

type collectionMeta struct {
	Self string  `json:"self"`
	Next *string `json:"next"`
}

type relationship struct {
	Related string `json:"related"`
}

type clusterData struct {
	Kind                   string       `json:"kind"`
	Metadata               resourceMeta `json:"metadata"`
	ClusterID              string       `json:"cluster_id"`
	ACLs                   relationship `json:"acls"`
	Brokers                relationship `json:"brokers"`
	BrokerConfigs          relationship `json:"broker_configs"`
	ConsumerGroups         relationship `json:"consumer_groups"`
	Topics                 relationship `json:"topics"`
	PartitionReassignments relationship `json:"partition_reassignments"`
}

type clusterList struct {
	Kind     string         `json:"kind"`
	Metadata collectionMeta `json:"metadata"`
	Data     []clusterData  `json:"data"`
}

type linkTaskError struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

type linkTask struct {
	TaskName string          `json:"task_name"`
	State    string          `json:"state"`
	Errors   []linkTaskError `json:"errors"`
}

type linkCategory struct {
	StateCategory string `json:"state_category"`
	Count         int    `json:"count"`
}

type linkData struct {
	Kind                 string         `json:"kind"`
	Metadata             resourceMeta   `json:"metadata"`
	SourceClusterID      *string        `json:"source_cluster_id"`
	DestinationClusterID *string        `json:"destination_cluster_id"`
	RemoteClusterID      *string        `json:"remote_cluster_id"`
	LinkName             string         `json:"link_name"`
	LinkID               string         `json:"link_id"`
	ClusterLinkID        string         `json:"cluster_link_id"`
	TopicNames           []string       `json:"topic_names"`
	LinkState            string         `json:"link_state"`
	LinkError            string         `json:"link_error"`
	LinkErrorMessage     *string        `json:"link_error_message"`
	Tasks                []linkTask     `json:"tasks,omitempty"`
	CategoryCounts       []linkCategory `json:"category_counts"`
}

type linkList struct {
	Kind     string         `json:"kind"`
	Metadata collectionMeta `json:"metadata"`
	Data     []linkData     `json:"data"`
}

// linkConfigData carries both the Cloud flag names (is_*) and the Platform
// ones (read_only, sensitive, default): the Confluent CLI on-prem reads the
// latter.
type linkConfigData struct {
	Kind        string       `json:"kind"`
	Metadata    resourceMeta `json:"metadata"`
	ClusterID   string       `json:"cluster_id"`
	LinkName    string       `json:"link_name"`
	Name        string       `json:"name"`
	Value       string       `json:"value"`
	IsDefault   bool         `json:"is_default"`
	IsReadOnly  bool         `json:"is_read_only"`
	IsSensitive bool         `json:"is_sensitive"`
	Default     bool         `json:"default"`
	ReadOnly    bool         `json:"read_only"`
	Sensitive   bool         `json:"sensitive"`
	Source      string       `json:"source"`
	Synonyms    []string     `json:"synonyms"`
}

type linkConfigList struct {
	Kind     string           `json:"kind"`
	Metadata collectionMeta   `json:"metadata"`
	Data     []linkConfigData `json:"data"`
}

type mirrorLag struct {
	Partition             int32 `json:"partition"`
	Lag                   int64 `json:"lag"`
	LastSourceFetchOffset int64 `json:"last_source_fetch_offset"`
	// StraitInstance is Strait's own: the instance that copies the
	// partition when several share the work (docs/scale-out.md).
	StraitInstance string `json:"strait_instance,omitempty"`
}

type transitionError struct {
	ErrorCode    string `json:"error_code"`
	ErrorMessage string `json:"error_message"`
}

type mirrorData struct {
	Kind             string             `json:"kind"`
	Metadata         resourceMeta       `json:"metadata"`
	LinkName         string             `json:"link_name"`
	MirrorTopicName  string             `json:"mirror_topic_name"`
	SourceTopicName  string             `json:"source_topic_name"`
	NumPartitions    int32              `json:"num_partitions"`
	MirrorLags       []mirrorLag        `json:"mirror_lags"`
	MirrorStatus     string             `json:"mirror_status"`
	MirrorTopicError string             `json:"mirror_topic_error"`
	StateTimeMs      int64              `json:"state_time_ms"`
	TransitionErrors *[]transitionError `json:"mirror_state_transition_errors,omitempty"`
}

type mirrorList struct {
	Kind     string         `json:"kind"`
	Metadata collectionMeta `json:"metadata"`
	Data     []mirrorData   `json:"data"`
}

type truncationData struct {
	PartitionID       int32 `json:"partition_id"`
	OffsetTruncatedTo int64 `json:"offset_truncated_to"`
	MessagesTruncated int64 `json:"messages_truncated"`
}

type alterResult struct {
	Kind                         string           `json:"kind"`
	Metadata                     resourceMeta     `json:"metadata"`
	MirrorTopicName              string           `json:"mirror_topic_name"`
	ErrorCode                    *int             `json:"error_code"`
	ErrorMessage                 *string          `json:"error_message"`
	MirrorLags                   []mirrorLag      `json:"mirror_lags"`
	MessagesTruncated            *int64           `json:"messages_truncated"`
	PartitionLevelTruncationData []truncationData `json:"partition_level_truncation_data"`
}

type alterResultList struct {
	Kind     string         `json:"kind"`
	Metadata collectionMeta `json:"metadata"`
	Data     []alterResult  `json:"data"`
}

// Request bodies.

type configValue struct {
	Name  string  `json:"name"`
	Value *string `json:"value"`
}

type createLinkRequest struct {
	SourceClusterID      string        `json:"source_cluster_id"`
	DestinationClusterID string        `json:"destination_cluster_id"`
	RemoteClusterID      string        `json:"remote_cluster_id"`
	ClusterLinkID        string        `json:"cluster_link_id"`
	Configs              []configValue `json:"configs"`
}

type updateConfigRequest struct {
	Value *string `json:"value"`
}

type alterConfigEntry struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Operation string  `json:"operation"`
}

type alterConfigsRequest struct {
	Data         []alterConfigEntry `json:"data"`
	ValidateOnly *bool              `json:"validate_only"`
}

type createMirrorRequest struct {
	SourceTopicName   string        `json:"source_topic_name"`
	MirrorTopicName   string        `json:"mirror_topic_name"`
	ReplicationFactor int           `json:"replication_factor"`
	Configs           []configValue `json:"configs"`
}

type alterMirrorsRequest struct {
	MirrorTopicNames       *[]string `json:"mirror_topic_names"`
	MirrorTopicNamePattern *string   `json:"mirror_topic_name_pattern"`
}
