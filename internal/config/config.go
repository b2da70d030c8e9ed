// Package config holds the daemon's settings: defaults, a YAML file,
// environment variables and flags, in rising order of precedence.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/netguard"
	"github.com/strait-dev/strait/internal/secret"
)

// Config is the daemon's configuration. Field tags are the YAML keys; the
// environment variable of a key is STRAIT_ + the key upper-cased.
type Config struct {
	// DestinationBootstrap is the destination cluster's bootstrap servers,
	// host:port[,host:port...]. Required.
	DestinationBootstrap string `yaml:"destination_bootstrap"`
	// HTTP is the REST API's listen address. Default 127.0.0.1:8090.
	HTTP string `yaml:"http"`
	// StateTopic is the compacted topic on the destination that holds
	// links and mirrors. Default __strait_state.
	StateTopic string `yaml:"state_topic"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json. Default text.
	LogFormat string `yaml:"log_format"`
	// DestinationSecurityProtocol is PLAINTEXT, SSL, SASL_PLAINTEXT or
	// SASL_SSL. Default PLAINTEXT.
	DestinationSecurityProtocol string `yaml:"destination_security_protocol"`
	// DestinationSASLMechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
	// OAUTHBEARER. With OAUTHBEARER the username and password are the
	// OAuth client id and secret, exchanged at the token endpoint.
	DestinationSASLMechanism string `yaml:"destination_sasl_mechanism"`
	DestinationSASLUsername  string `yaml:"destination_sasl_username"`
	DestinationSASLPassword  string `yaml:"destination_sasl_password"`
	DestinationOAuthTokenURL string `yaml:"destination_sasl_oauthbearer_token_endpoint_url"`
	DestinationOAuthScope    string `yaml:"destination_sasl_oauthbearer_scope"`
	// DestinationCAFile is a PEM file of CAs to trust for the destination.
	DestinationCAFile string `yaml:"destination_ca_file"`
	// DestinationCertFile and DestinationKeyFile are a client certificate
	// (PEM) presented to the destination (SSL with client authentication).
	DestinationCertFile string `yaml:"destination_cert_file"`
	DestinationKeyFile  string `yaml:"destination_key_file"`
	// TLSCertFile and TLSKeyFile serve the REST API over TLS; they are
	// read again when they change. TLSClientCAFile, if set, asks clients
	// for a certificate signed by one of its CAs (mutual TLS).
	TLSCertFile     string `yaml:"tls_cert_file"`
	TLSKeyFile      string `yaml:"tls_key_file"`
	TLSClientCAFile string `yaml:"tls_client_ca_file"`
	// TLS13Only refuses TLS 1.2 clients on the REST listener (TLS 1.2 is
	// accepted with forward-secret AEAD suites only, by default).
	TLS13Only bool `yaml:"tls13_only"`
	// SecretsKey (base64 or hex, 32 bytes) or SecretsKeyFile seals the
	// credentials of links in the state topic. Without one, links cannot
	// be given credentials.
	SecretsKey     string `yaml:"secrets_key"`
	SecretsKeyFile string `yaml:"secrets_key_file"`
	// SecretsPreviousKeys lists, comma-separated, keys the credentials may
	// still be sealed with while the key is changed: they open with them
	// and are sealed again with the current key when the daemon starts.
	SecretsPreviousKeys string `yaml:"secrets_previous_keys"`
	// AllowUnauthenticated lets the API listen on a non-loopback address
	// without authentication.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
	// Group is the group the instances of this destination and state
	// topic join on the destination to decide which one is active.
	// Default strait.<state topic>.
	Group string `yaml:"group"`
	// GroupSessionTimeout is how long the group waits for a silent
	// instance before another takes over (a Go duration). Default 10s.
	GroupSessionTimeout string `yaml:"group_session_timeout"`
	// Standby makes the instance join the group but never become active.
	Standby bool `yaml:"standby"`
	// LinkNetworksAllow and LinkNetworksDeny are comma-separated networks
	// (CIDR or single addresses) the links' connections (bootstrap
	// servers, brokers, OAuth token endpoints) may and may not reach. An
	// empty allow list allows every network not denied; the deny list
	// defaults to link-local networks, where cloud metadata services
	// answer.
	LinkNetworksAllow string `yaml:"link_networks_allow"`
	LinkNetworksDeny  string `yaml:"link_networks_deny"`
	// MetricsPublic serves /metrics without authentication even when the
	// API has it. Off by default: the metrics name every link and topic.
	MetricsPublic bool `yaml:"metrics_public"`
	// MetricsPartitionLabels gives the per-partition metrics a partition
	// label; false sums them per topic (ten times fewer series at ten
	// partitions a topic; docs/metrics.md). Default true.
	MetricsPartitionLabels bool `yaml:"metrics_partition_labels"`
	// AllowTopicDelete lets DELETE /topics/{t} delete destination topics
	// that are not mirror topics. Off by default: Strait holds the
	// destination's credentials for its mirrors, not for every topic.
	AllowTopicDelete bool `yaml:"allow_topic_delete"`
	// AdvertisedURL is the REST API's URL as other instances and clients
	// reach it; default http(s)://<http>.
	AdvertisedURL string `yaml:"advertised_url"`
	// PartitionStallTimeout is how long a mirror partition with offsets to
	// copy may copy nothing before it is reported stalled. Default 60s.
	PartitionStallTimeout string `yaml:"partition_stall_timeout"`
	// VerifyInterval, a Go duration, turns the background verifier on:
	// the active instance verifies every mirror topic against its source
	// that often (docs/verify.md). Empty (the default) turns it off.
	VerifyInterval string `yaml:"verify_interval"`
	// VerifyBytesPerSecond caps what the background verifier reads from
	// each cluster. Default 1048576 (1 MiB/s).
	VerifyBytesPerSecond string `yaml:"verify_bytes_per_second"`
	// Auth configures authentication, authorization and rate limits of
	// the REST API (YAML file only).
	Auth auth.Config `yaml:"auth"`
}

// Defaults returns the built-in defaults.
func Defaults() Config {
	return Config{
		HTTP:       "127.0.0.1:8090",
		StateTopic: "__strait_state",
		LogLevel:   "info",
		LogFormat:  "text",

		GroupSessionTimeout:    "10s",
		PartitionStallTimeout:  "60s",
		VerifyBytesPerSecond:   "1048576",
		LinkNetworksDeny:       strings.Join(netguard.DefaultDeny, ","),
		MetricsPartitionLabels: true,
	}
}

// LinkNetworks is the guard of the links' connections.
func (c *Config) LinkNetworks() (*netguard.Guard, error) {
	g, err := netguard.New(strings.Split(c.LinkNetworksAllow, ","), strings.Split(c.LinkNetworksDeny, ","))
	if err != nil {
		return nil, fmt.Errorf("link_networks: %w", err)
	}
	return g, nil
}

// GroupName is the group the instances join: Group, or one derived from
// the state topic, so that instances sharing a state topic share a group.
func (c *Config) GroupName() string {
	if c.Group != "" {
		return c.Group
	}
	return "strait." + c.StateTopic
}

// SessionTimeout is GroupSessionTimeout parsed (validated by Validate).
func (c *Config) SessionTimeout() time.Duration {
	d, _ := time.ParseDuration(c.GroupSessionTimeout)
	return d
}

// VerifyEvery is VerifyInterval parsed (validated by Validate); zero when
// the background verifier is off.
func (c *Config) VerifyEvery() time.Duration {
	d, _ := time.ParseDuration(c.VerifyInterval)
	return d
}

// VerifyRate is VerifyBytesPerSecond parsed (validated by Validate).
func (c *Config) VerifyRate() int64 {
	n, _ := strconv.ParseInt(c.VerifyBytesPerSecond, 10, 64)
	return n
}

// StallTimeout is PartitionStallTimeout parsed (validated by Validate).
func (c *Config) StallTimeout() time.Duration {
	d, _ := time.ParseDuration(c.PartitionStallTimeout)
	return d
}

// LoadFile overlays the YAML file at path on c. Unknown keys are an error,
// so a misspelled setting is not silently ignored.
func (c *Config) LoadFile(path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) { // an empty file is fine
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// Env lists the environment variables Config reads, by YAML key.
var Env = map[string]string{
	"destination_bootstrap":         "STRAIT_DESTINATION_BOOTSTRAP",
	"http":                          "STRAIT_HTTP",
	"state_topic":                   "STRAIT_STATE_TOPIC",
	"log_level":                     "STRAIT_LOG_LEVEL",
	"log_format":                    "STRAIT_LOG_FORMAT",
	"destination_security_protocol": "STRAIT_DESTINATION_SECURITY_PROTOCOL",
	"destination_sasl_mechanism":    "STRAIT_DESTINATION_SASL_MECHANISM",
	"destination_sasl_username":     "STRAIT_DESTINATION_SASL_USERNAME",
	"destination_sasl_password":     "STRAIT_DESTINATION_SASL_PASSWORD",
	"destination_ca_file":           "STRAIT_DESTINATION_CA_FILE",
	"destination_sasl_oauthbearer_token_endpoint_url": "STRAIT_DESTINATION_SASL_OAUTHBEARER_TOKEN_ENDPOINT_URL",
	"destination_cert_file":                           "STRAIT_DESTINATION_CERT_FILE",
	"destination_key_file":                            "STRAIT_DESTINATION_KEY_FILE",
	"destination_sasl_oauthbearer_scope":              "STRAIT_DESTINATION_SASL_OAUTHBEARER_SCOPE",
	"tls_cert_file":                                   "STRAIT_TLS_CERT_FILE",
	"tls_key_file":                                    "STRAIT_TLS_KEY_FILE",
	"tls_client_ca_file":                              "STRAIT_TLS_CLIENT_CA_FILE",
	"secrets_key":                                     "STRAIT_SECRETS_KEY",
	"secrets_key_file":                                "STRAIT_SECRETS_KEY_FILE",
	"secrets_previous_keys":                           "STRAIT_SECRETS_PREVIOUS_KEYS",
	"group":                                           "STRAIT_GROUP",
	"group_session_timeout":                           "STRAIT_GROUP_SESSION_TIMEOUT",
	"advertised_url":                                  "STRAIT_ADVERTISED_URL",
	"partition_stall_timeout":                         "STRAIT_PARTITION_STALL_TIMEOUT",
	"link_networks_allow":                             "STRAIT_LINK_NETWORKS_ALLOW",
	"link_networks_deny":                              "STRAIT_LINK_NETWORKS_DENY",
	"verify_interval":                                 "STRAIT_VERIFY_INTERVAL",
	"verify_bytes_per_second":                         "STRAIT_VERIFY_BYTES_PER_SECOND",
}

// LoadEnv overlays the STRAIT_* environment variables that are set.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) {
	for key, env := range Env {
		if v, ok := lookup(env); ok {
			*c.field(key) = v
		}
	}
	if v, ok := lookup("STRAIT_ALLOW_UNAUTHENTICATED"); ok {
		c.AllowUnauthenticated = v == "true" || v == "1"
	}
	if v, ok := lookup("STRAIT_STANDBY"); ok {
		c.Standby = v == "true" || v == "1"
	}
	if v, ok := lookup("STRAIT_METRICS_PUBLIC"); ok {
		c.MetricsPublic = v == "true" || v == "1"
	}
	if v, ok := lookup("STRAIT_METRICS_PARTITION_LABELS"); ok {
		c.MetricsPartitionLabels = v == "true" || v == "1"
	}
	if v, ok := lookup("STRAIT_ALLOW_TOPIC_DELETE"); ok {
		c.AllowTopicDelete = v == "true" || v == "1"
	}
}

// Set sets one setting by its YAML key.
func (c *Config) Set(key, value string) error {
	p := c.field(key)
	if p == nil {
		return fmt.Errorf("unknown setting %q", key)
	}
	*p = value
	return nil
}

// Get returns one setting by its YAML key, "" for an unknown key.
func (c *Config) Get(key string) string {
	if p := c.field(key); p != nil {
		return *p
	}
	return ""
}

func (c *Config) field(key string) *string {
	switch key {
	case "destination_bootstrap":
		return &c.DestinationBootstrap
	case "http":
		return &c.HTTP
	case "state_topic":
		return &c.StateTopic
	case "log_level":
		return &c.LogLevel
	case "log_format":
		return &c.LogFormat
	case "destination_security_protocol":
		return &c.DestinationSecurityProtocol
	case "destination_sasl_mechanism":
		return &c.DestinationSASLMechanism
	case "destination_sasl_username":
		return &c.DestinationSASLUsername
	case "destination_sasl_password":
		return &c.DestinationSASLPassword
	case "destination_ca_file":
		return &c.DestinationCAFile
	case "destination_sasl_oauthbearer_token_endpoint_url":
		return &c.DestinationOAuthTokenURL
	case "destination_cert_file":
		return &c.DestinationCertFile
	case "destination_key_file":
		return &c.DestinationKeyFile
	case "destination_sasl_oauthbearer_scope":
		return &c.DestinationOAuthScope
	case "tls_cert_file":
		return &c.TLSCertFile
	case "tls_key_file":
		return &c.TLSKeyFile
	case "tls_client_ca_file":
		return &c.TLSClientCAFile
	case "secrets_key":
		return &c.SecretsKey
	case "secrets_key_file":
		return &c.SecretsKeyFile
	case "secrets_previous_keys":
		return &c.SecretsPreviousKeys
	case "group":
		return &c.Group
	case "group_session_timeout":
		return &c.GroupSessionTimeout
	case "advertised_url":
		return &c.AdvertisedURL
	case "partition_stall_timeout":
		return &c.PartitionStallTimeout
	case "link_networks_allow":
		return &c.LinkNetworksAllow
	case "link_networks_deny":
		return &c.LinkNetworksDeny
	case "verify_interval":
		return &c.VerifyInterval
	case "verify_bytes_per_second":
		return &c.VerifyBytesPerSecond
	}
	return nil
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if strings.TrimSpace(c.DestinationBootstrap) == "" {
		return errors.New("destination bootstrap servers are required (--destination-bootstrap or STRAIT_DESTINATION_BOOTSTRAP)")
	}
	if _, _, err := net.SplitHostPort(c.HTTP); err != nil {
		return fmt.Errorf("http listen address %q: %w", c.HTTP, err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("log level %q: use debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "text", "json":
	default:
		return fmt.Errorf("log format %q: use text or json", c.LogFormat)
	}
	if c.StateTopic == "" {
		return errors.New("state topic must not be empty")
	}
	for key, v := range map[string]string{"group_session_timeout": c.GroupSessionTimeout, "partition_stall_timeout": c.PartitionStallTimeout} {
		if d, err := time.ParseDuration(v); err != nil || d <= 0 {
			return fmt.Errorf("%s %q: give a positive duration such as 10s or 1m", key, v)
		}
	}
	if _, err := c.LinkNetworks(); err != nil {
		return err
	}
	if c.VerifyInterval != "" {
		if d, err := time.ParseDuration(c.VerifyInterval); err != nil || d <= 0 {
			return fmt.Errorf("verify_interval %q: give a positive duration such as 10m, or nothing to turn the background verifier off", c.VerifyInterval)
		}
	}
	if c.VerifyBytesPerSecond != "" {
		if n, err := strconv.ParseInt(c.VerifyBytesPerSecond, 10, 64); err != nil || n < 0 {
			return fmt.Errorf("verify_bytes_per_second %q: give a whole number of bytes, 0 for no cap", c.VerifyBytesPerSecond)
		}
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("tls_cert_file and tls_key_file go together")
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		return errors.New("tls_client_ca_file needs tls_cert_file and tls_key_file")
	}
	if c.Auth.ClientCertificates && c.TLSClientCAFile == "" {
		return errors.New("auth.client_certificates needs tls_client_ca_file")
	}
	if err := c.Auth.Validate(); err != nil {
		return err
	}
	if c.SecretsKey != "" && c.SecretsKeyFile != "" {
		return errors.New("give secrets_key or secrets_key_file, not both")
	}
	if c.SecretsKey != "" {
		if _, err := secret.ParseKey(c.SecretsKey); err != nil {
			return err
		}
	}
	if c.SecretsPreviousKeys != "" {
		if c.SecretsKey == "" && c.SecretsKeyFile == "" {
			return errors.New("secrets_previous_keys needs secrets_key or secrets_key_file: the key the credentials are sealed with from now on")
		}
		if _, err := c.SecretsPreviousKeyBytes(); err != nil {
			return err
		}
	}
	if !c.Loopback() && !c.Auth.Enabled() && !c.AllowUnauthenticated {
		return fmt.Errorf("refusing to serve the API on %s without authentication: configure auth (api_keys, jwt or client_certificates), or listen on 127.0.0.1, or set allow_unauthenticated (--allow-unauthenticated) if something else protects it", c.HTTP)
	}
	_, err := c.Destination()
	return err
}

// CheckListener applies the rule that the API runs without authentication
// only on loopback to the address it is bound to. At a reload it is the
// bound socket that counts, not the http key of the new file: the socket
// does not move, and a file that says 127.0.0.1 must not turn the
// authentication of a wildcard listener off.
func (c *Config) CheckListener(bound string) error {
	host, _, err := net.SplitHostPort(bound)
	if err != nil {
		return fmt.Errorf("listener address %q: %w", bound, err)
	}
	if loopback(host) || c.Auth.Enabled() || c.AllowUnauthenticated {
		return nil
	}
	return fmt.Errorf("refusing to serve the API on %s without authentication: configure auth (api_keys, jwt or client_certificates), or listen on 127.0.0.1, or set allow_unauthenticated (--allow-unauthenticated) if something else protects it", bound)
}

// Loopback reports whether the API listens on loopback only.
func (c *Config) Loopback() bool {
	host, _, _ := net.SplitHostPort(c.HTTP)
	return loopback(host)
}

// loopback reports whether host is a loopback address or name.
func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// SecretsKeyBytes returns the configured secrets key, nil if none.
func (c *Config) SecretsKeyBytes() ([]byte, error) {
	switch {
	case c.SecretsKey != "":
		return secret.ParseKey(c.SecretsKey)
	case c.SecretsKeyFile != "":
		return secret.LoadKey(c.SecretsKeyFile)
	}
	return nil, nil
}

// SecretsPreviousKeyBytes returns the keys of secrets_previous_keys.
func (c *Config) SecretsPreviousKeyBytes() ([][]byte, error) {
	var out [][]byte
	for i, k := range strings.Split(c.SecretsPreviousKeys, ",") {
		if strings.TrimSpace(k) == "" {
			continue
		}
		b, err := secret.ParseKey(k)
		if err != nil {
			return nil, fmt.Errorf("secrets_previous_keys, key %d: %w", i+1, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// Destination returns the connection settings for the destination cluster.
func (c *Config) Destination() (kafkaclient.Settings, error) {
	s := kafkaclient.Settings{
		Protocol:      strings.ToUpper(c.DestinationSecurityProtocol),
		SASLMechanism: strings.ToUpper(c.DestinationSASLMechanism),
		SASLUser:      c.DestinationSASLUsername,
		SASLPassword:  c.DestinationSASLPassword,
		ClientID:      "strait",
	}
	if s.SASLMechanism == "OAUTHBEARER" {
		s.OAuth = &kafkaclient.OAuth{TokenURL: c.DestinationOAuthTokenURL, ClientID: c.DestinationSASLUsername, ClientSecret: c.DestinationSASLPassword, Scope: c.DestinationOAuthScope}
	}
	for _, h := range strings.Split(c.DestinationBootstrap, ",") {
		if h = strings.TrimSpace(h); h != "" {
			s.Bootstrap = append(s.Bootstrap, h)
		}
	}
	if c.DestinationCAFile != "" {
		b, err := os.ReadFile(c.DestinationCAFile)
		if err != nil {
			return s, fmt.Errorf("destination CA file: %w", err)
		}
		s.CAPEM = string(b)
	}
	if (c.DestinationCertFile == "") != (c.DestinationKeyFile == "") {
		return s, errors.New("destination_cert_file and destination_key_file go together")
	}
	if c.DestinationCertFile != "" {
		cert, err := os.ReadFile(c.DestinationCertFile)
		if err != nil {
			return s, fmt.Errorf("destination certificate file: %w", err)
		}
		key, err := os.ReadFile(c.DestinationKeyFile)
		if err != nil {
			return s, fmt.Errorf("destination key file: %w", err)
		}
		s.CertPEM, s.KeyPEM = string(cert), string(key)
	}
	_, err := s.Options(nil)
	return s, err
}
