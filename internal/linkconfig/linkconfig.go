// Package linkconfig is the catalog of cluster link configs: their names,
// defaults, validation and sensitivity, and typed access to a link's
// effective settings.
//
// A link stores only the configs a user set; everything else takes the
// default from this catalog. Names and defaults follow Confluent's Cluster
// Linking (see docs/api.md for the differences).
package linkconfig

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/strait-dev/strait/internal/kafkaclient"
)

// Names of the configs Strait acts on.
const (
	BootstrapServers         = "bootstrap.servers"
	LinkMode                 = "link.mode"
	ConnectionMode           = "connection.mode"
	SecurityProtocol         = "security.protocol"
	SASLMechanism            = "sasl.mechanism"
	SASLJAASConfig           = "sasl.jaas.config"
	SASLOAuthTokenURL        = "sasl.oauthbearer.token.endpoint.url"
	SASLLoginCallbackHandler = "sasl.login.callback.handler.class"
	SSLTruststoreType        = "ssl.truststore.type"
	SSLTruststoreCerts       = "ssl.truststore.certificates"
	SSLKeystoreType          = "ssl.keystore.type"
	SSLKeystoreChain         = "ssl.keystore.certificate.chain"
	SSLKeystoreKey           = "ssl.keystore.key"
	SSLKeyPassword           = "ssl.key.password"
	SSLEndpointAlgorithm     = "ssl.endpoint.identification.algorithm"
	MirrorStartOffsetSpec    = "mirror.start.offset.spec"
	ClusterLinkPaused        = "cluster.link.paused"
	ClusterLinkPrefix        = "cluster.link.prefix"
	AvailabilityCheckMs      = "availability.check.ms"
	AvailabilityThreshold    = "availability.check.consecutive.failure.threshold"
	RequestTimeoutMs         = "request.timeout.ms"
	ReplicaFetchMaxBytes     = "replica.fetch.max.bytes"
	ReplicaFetchWaitMaxMs    = "replica.fetch.wait.max.ms"
	ReplicaFetchResponseMax  = "replica.fetch.response.max.bytes"
	ConsumerOffsetSyncEnable = "consumer.offset.sync.enable"
	ConsumerOffsetFilters    = "consumer.offset.group.filters"
	ConsumerOffsetSyncMs     = "consumer.offset.sync.ms"
	ConsumerGroupPrefix      = "consumer.group.prefix.enable"
	ACLSyncEnable            = "acl.sync.enable"
	ACLFilters               = "acl.filters"
	ACLSyncMs                = "acl.sync.ms"
	AutoCreateEnable         = "auto.create.mirror.topics.enable"
	AutoCreateFilters        = "auto.create.mirror.topics.filters"
	TopicConfigSyncMs        = "topic.config.sync.ms"
	TopicConfigSyncInclude   = "topic.config.sync.include"
	// RemoteStateTopic is Strait's own: the state topic of the Strait
	// managing the other side of a bidirectional link.
	RemoteStateTopic = "strait.remote.state.topic"
	// MirrorWriteProtection is Strait's own: deny WRITE on mirror topics,
	// with ACLs, to the principals the destination allows to write them,
	// while they are mirrors.
	MirrorWriteProtection = "strait.mirror.write.protection.enable"
)

// Link modes.
const (
	ModeDestination   = "DESTINATION"
	ModeBidirectional = "BIDIRECTIONAL"
)

// Def describes one link config.
type Def struct {
	Name string
	// Default is the value reported when the config is not set; "" means
	// no default.
	Default string
	// Sensitive values are never returned by the API nor logged.
	Sensitive bool
	// ReadOnly configs are reported but cannot be set.
	ReadOnly bool
	// CreateOnly configs can be set when the link is created and never
	// changed afterwards.
	CreateOnly bool
	// Validate checks a value; nil accepts anything.
	Validate func(string) error
}

// ErrUnknown is returned for a config name the catalog does not know.
var ErrUnknown = errors.New("unknown cluster link config")

// ErrReadOnly is returned when a read-only or create-only config is changed.
var ErrReadOnly = errors.New("cluster link config cannot be changed")

var catalog = map[string]Def{}

func def(d Def) { catalog[d.Name] = d }

func init() {
	def(Def{Name: BootstrapServers, Validate: validBootstrap})
	def(Def{Name: LinkMode, Default: ModeDestination, CreateOnly: true, Validate: validLinkMode})
	def(Def{Name: RemoteStateTopic, Default: "__strait_state", Validate: validTopic})
	def(Def{Name: MirrorWriteProtection, Default: "false", Validate: validBool})
	def(Def{Name: ConnectionMode, Default: "OUTBOUND", CreateOnly: true, Validate: validConnectionMode})
	def(Def{Name: SecurityProtocol, Default: "PLAINTEXT", Validate: oneOf("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")})
	def(Def{Name: SASLMechanism, Default: "GSSAPI", Validate: oneOf("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER")})
	def(Def{Name: SASLOAuthTokenURL, Validate: kafkaclient.ValidTokenURL})
	// Accepted for configs written for Kafka's Java clients; Strait has
	// the client credentials flow built in.
	def(Def{Name: SASLLoginCallbackHandler, Validate: oneOf(
		"org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
		"org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler")})
	def(Def{Name: SASLJAASConfig, Sensitive: true, Validate: func(v string) error { _, err := ParseJAAS(v); return err }})
	def(Def{Name: SSLTruststoreType, Default: "JKS", Validate: oneOf("PEM")})
	def(Def{Name: SSLTruststoreCerts, Validate: validPEM})
	def(Def{Name: SSLKeystoreType, Default: "JKS", Validate: oneOf("PEM")})
	def(Def{Name: SSLKeystoreChain, Validate: validPEM})
	def(Def{Name: SSLKeystoreKey, Sensitive: true, Validate: validPEM})
	def(Def{Name: SSLKeyPassword, Sensitive: true})
	def(Def{Name: SSLEndpointAlgorithm, Default: "https", Validate: oneOf("https", "")})
	def(Def{Name: MirrorStartOffsetSpec, Default: "earliest", Validate: validStartSpec})
	def(Def{Name: ClusterLinkPaused, Default: "false", Validate: validBool})
	def(Def{Name: ClusterLinkPrefix, CreateOnly: true, Validate: validPrefix})
	def(Def{Name: AvailabilityCheckMs, Default: "60000", Validate: intRange(100, 3_600_000)})
	def(Def{Name: AvailabilityThreshold, Default: "5", Validate: intRange(1, 1000)})
	def(Def{Name: RequestTimeoutMs, Default: "30000", Validate: intRange(1000, 600_000)})
	def(Def{Name: ReplicaFetchMaxBytes, Default: "5242880", Validate: intRange(1024, 1<<30)})
	def(Def{Name: ReplicaFetchWaitMaxMs, Default: "500", Validate: intRange(0, 30_000)})
	def(Def{Name: ReplicaFetchResponseMax, Default: "10485760", Validate: intRange(1024, 1<<30)})
	def(Def{Name: ConsumerOffsetSyncEnable, Default: "false", Validate: validBool})
	def(Def{Name: ConsumerOffsetFilters, Validate: func(v string) error { _, err := ParseGroupFilters(v); return err }})
	def(Def{Name: ConsumerOffsetSyncMs, Default: "30000", Validate: intRange(1000, 86_400_000)})
	def(Def{Name: ConsumerGroupPrefix, Default: "false", Validate: validBool})
	def(Def{Name: ACLSyncEnable, Default: "false", Validate: validBool})
	def(Def{Name: ACLFilters, Validate: func(v string) error { _, err := ParseACLFilters(v); return err }})
	def(Def{Name: ACLSyncMs, Default: "5000", Validate: intRange(1000, 86_400_000)})
	def(Def{Name: AutoCreateEnable, Default: "false", Validate: validBool})
	def(Def{Name: AutoCreateFilters, Validate: func(v string) error { _, err := ParseTopicFilters(v); return err }})
	def(Def{Name: TopicConfigSyncMs, Default: "5000", Validate: intRange(1000, 86_400_000)})
	def(Def{Name: TopicConfigSyncInclude, Validate: validConfigList})
	def(Def{Name: "cluster.link.retry.timeout.ms", Default: "300000", ReadOnly: true})
	def(Def{Name: "num.cluster.link.fetchers", Default: "1", ReadOnly: true})
}

// Lookup returns the definition of name.
func Lookup(name string) (Def, bool) {
	d, ok := catalog[name]
	return d, ok
}

// Names lists every known config name, sorted.
func Names() []string {
	out := make([]string, 0, len(catalog))
	for n := range catalog {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Check validates setting name to value on a link. creating is true while
// the link is being created, when create-only configs may still be set.
func Check(name, value string, creating bool) error {
	d, ok := catalog[name]
	if !ok {
		return fmt.Errorf("%w '%s'", ErrUnknown, name)
	}
	if d.ReadOnly || (d.CreateOnly && !creating) {
		return fmt.Errorf("%w: '%s' is read-only", ErrReadOnly, name)
	}
	if d.Validate != nil {
		if err := d.Validate(value); err != nil {
			return fmt.Errorf("invalid value for config '%s': %w", name, err)
		}
	}
	return nil
}

// CheckSet validates a whole set of values taken together, after each value
// passed Check: settings that only make sense in pairs.
func CheckSet(s Set) error {
	if s.Get(BootstrapServers) == "" {
		return fmt.Errorf("config '%s' is required", BootstrapServers)
	}
	if s.Prefix() != "" && s.Bool(ACLSyncEnable) {
		return fmt.Errorf("'%s' cannot be used with '%s': synced ACLs would name the source's topics, not the prefixed mirrors", ACLSyncEnable, ClusterLinkPrefix)
	}
	proto := s.Get(SecurityProtocol)
	if strings.HasPrefix(proto, "SASL_") {
		if _, err := s.SASL(); err != nil {
			return err
		}
	}
	return nil
}

// Set is a link's explicitly set configs. The zero value is empty.
type Set map[string]string

// Clone returns a copy of s.
func (s Set) Clone() Set {
	out := make(Set, len(s))
	for k, v := range s {
		out[k] = v
	}
	return out
}

// IsSet reports whether name was set on the link.
func (s Set) IsSet(name string) bool { _, ok := s[name]; return ok }

// Get returns the effective value of name: the set value or the default.
func (s Set) Get(name string) string {
	if v, ok := s[name]; ok {
		return v
	}
	return catalog[name].Default
}

// Bool returns the effective value of a boolean config.
func (s Set) Bool(name string) bool {
	b, _ := strconv.ParseBool(s.Get(name))
	return b
}

// Int returns the effective value of an integer config.
func (s Set) Int(name string) int64 {
	n, _ := strconv.ParseInt(s.Get(name), 10, 64)
	return n
}

// Duration returns the effective value of a config in milliseconds.
func (s Set) Duration(name string) time.Duration {
	return time.Duration(s.Int(name)) * time.Millisecond
}

// Bootstrap returns the bootstrap servers as a list.
func (s Set) Bootstrap() []string {
	var out []string
	for _, h := range strings.Split(s.Get(BootstrapServers), ",") {
		if h = strings.TrimSpace(h); h != "" {
			out = append(out, h)
		}
	}
	return out
}

// Paused reports whether the whole link is paused.
func (s Set) Paused() bool { return s.Bool(ClusterLinkPaused) }

// Bidirectional reports whether the link is one side of a bidirectional
// link.
func (s Set) Bidirectional() bool { return s.Get(LinkMode) == ModeBidirectional }

// Prefix is the link's mirror topic prefix, "" for none.
func (s Set) Prefix() string { return s.Get(ClusterLinkPrefix) }

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(quoteAll(vals), ", "))
	}
}

func quoteAll(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = strconv.Quote(v)
	}
	return out
}

func validBool(v string) error {
	if v != "true" && v != "false" {
		return errors.New("must be true or false")
	}
	return nil
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return errors.New("must be an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be between %d and %d", lo, hi)
		}
		return nil
	}
}

var hostPort = regexp.MustCompile(`^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.\-_]+):[0-9]{1,5}$`)

func validBootstrap(v string) error {
	hosts := strings.Split(v, ",")
	n := 0
	for _, h := range hosts {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		// Kafka clients accept listener-style "SASL_SSL://host:port".
		if i := strings.Index(h, "://"); i >= 0 {
			h = h[i+3:]
		}
		if !hostPort.MatchString(h) {
			return fmt.Errorf("'%s' is not host:port", h)
		}
		if port, _ := strconv.Atoi(h[strings.LastIndex(h, ":")+1:]); port < 1 || port > 65535 {
			return fmt.Errorf("'%s' has a port outside 1-65535", h)
		}
		n++
	}
	if n == 0 {
		return errors.New("must list at least one host:port")
	}
	return nil
}

var configName = regexp.MustCompile(`^[a-z0-9.]+$`)

// validConfigList checks a comma-separated list of topic config names.
func validConfigList(v string) error {
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" && !configName.MatchString(n) {
			return fmt.Errorf("'%s' is not a topic config name", n)
		}
	}
	return nil
}

var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

func validTopic(v string) error {
	if !topicChars.MatchString(v) || v == "." || v == ".." {
		return errors.New("must be a topic name: 1 to 249 characters of [a-zA-Z0-9._-]")
	}
	return nil
}

var prefixChars = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,12}$`)

func validPrefix(v string) error {
	if !prefixChars.MatchString(v) {
		return errors.New("must be 1 to 12 characters of [a-zA-Z0-9._-]")
	}
	return nil
}

func validStartSpec(v string) error {
	if v == "earliest" || v == "latest" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return nil
	}
	return errors.New("must be earliest, latest or an ISO-8601 timestamp such as 2024-01-02T15:04:05Z")
}
