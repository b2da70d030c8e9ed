// Package config holds the daemon's settings: defaults, a YAML file,
// environment variables and flags, in rising order of precedence.
package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/internal/kafkaclient"
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
	// DestinationSASLMechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	DestinationSASLMechanism string `yaml:"destination_sasl_mechanism"`
	DestinationSASLUsername  string `yaml:"destination_sasl_username"`
	DestinationSASLPassword  string `yaml:"destination_sasl_password"`
	// DestinationCAFile is a PEM file of CAs to trust for the destination.
	DestinationCAFile string `yaml:"destination_ca_file"`
}

// Defaults returns the built-in defaults.
func Defaults() Config {
	return Config{
		HTTP:       "127.0.0.1:8090",
		StateTopic: "__strait_state",
		LogLevel:   "info",
		LogFormat:  "text",
	}
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
}

// LoadEnv overlays the STRAIT_* environment variables that are set.
func (c *Config) LoadEnv(lookup func(string) (string, bool)) {
	for key, env := range Env {
		if v, ok := lookup(env); ok {
			*c.field(key) = v
		}
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
	_, err := c.Destination()
	return err
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
	_, err := s.Options(nil)
	return s, err
}
