package cli

import (
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/strait-dev/strait/internal/buildinfo"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
)

// serveFlags maps flag names to config keys.
var serveFlags = []struct{ flag, key, usage string }{
	{"destination-bootstrap", "destination_bootstrap", "destination cluster bootstrap servers, host:port[,host:port...] (required)"},
	{"http", "http", "REST API listen address"},
	{"state-topic", "state_topic", "compacted topic on the destination that holds links and mirrors"},
	{"log-level", "log_level", "log level: debug, info, warn or error"},
	{"log-format", "log_format", "log format: text or json"},
	{"destination-security-protocol", "destination_security_protocol", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL"},
	{"destination-sasl-mechanism", "destination_sasl_mechanism", "PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER"},
	{"destination-sasl-username", "destination_sasl_username", "SASL username (OAUTHBEARER: OAuth client id) for the destination"},
	{"destination-sasl-password", "destination_sasl_password", "SASL password (OAUTHBEARER: OAuth client secret) for the destination (prefer the env variable)"},
	{"destination-sasl-oauthbearer-token-endpoint-url", "destination_sasl_oauthbearer_token_endpoint_url", "OAUTHBEARER: the OAuth token endpoint (client credentials grant)"},
	{"destination-sasl-oauthbearer-scope", "destination_sasl_oauthbearer_scope", "OAUTHBEARER: the scope to ask for"},
	{"destination-ca-file", "destination_ca_file", "PEM file of CAs to trust for the destination"},
	{"destination-cert-file", "destination_cert_file", "PEM client certificate to present to the destination"},
	{"destination-key-file", "destination_key_file", "PEM private key of the destination client certificate"},
	{"tls-cert-file", "tls_cert_file", "serve the REST API over TLS with this certificate (PEM; reloaded when it changes)"},
	{"tls-key-file", "tls_key_file", "the TLS certificate's private key (PEM)"},
	{"tls-client-ca-file", "tls_client_ca_file", "ask REST clients for a certificate signed by these CAs (mutual TLS)"},
	{"secrets-key-file", "secrets_key_file", "file with the 32-byte key that seals link credentials in the state topic"},
	{"group", "group", "group the instances of one destination and state topic join to share the work (default strait.<state topic>)"},
	{"group-session-timeout", "group_session_timeout", "how long the group waits for a silent instance before others take its partitions over"},
	{"advertised-url", "advertised_url", "the REST API's URL as clients and other instances reach it (default from --http)"},
	{"link-networks-allow", "link_networks_allow", "comma-separated networks (CIDR) links may connect to; empty: all not denied"},
	{"link-networks-deny", "link_networks_deny", "comma-separated networks (CIDR) links may not connect to"},
	{"partition-stall-timeout", "partition_stall_timeout", "how long a mirror partition with records to copy may copy none before it is reported stalled"},
	{"verify-interval", "verify_interval", "verify every mirror topic against its source this often, in the background (empty: off)"},
	{"verify-bytes-per-second", "verify_bytes_per_second", "what the background verifier reads at most from each cluster"},
}

func newServe() *cobra.Command {
	var configFile string
	var checkOnly bool
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Strait daemon: mirror topics and serve the REST API",
		Long: `Run the Strait daemon. It connects to the destination cluster, keeps its
state in a compacted topic there, mirrors topics from the links' source
clusters and serves the cluster-linking REST API under /kafka/v3 and /v3.

Settings come from flags, then STRAIT_* environment variables, then the
YAML file given with --config, then defaults. The secrets keys are never
flags: STRAIT_SECRETS_KEY (or --secrets-key-file), and while changing it
STRAIT_SECRETS_PREVIOUS_KEYS (see docs/security.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Flags(), configFile)
			if err != nil {
				return err
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			if checkOnly {
				cmd.Println("configuration is valid")
				return nil
			}
			stopProfiles, err := startProfiles()
			if err != nil {
				return err
			}
			defer stopProfiles()
			log := newLogger(cmd.ErrOrStderr(), cfg.LogLevel, cfg.LogFormat)
			ctx, stop := signalContext()
			defer stop()
			reload := func() (config.Config, error) { return loadConfig(cmd.Flags(), configFile) }
			d, err := daemon.New(ctx, cfg, log, daemon.Options{ConfigFile: configFile, Reload: reload, Version: buildinfo.Get().Version})
			if err != nil {
				return err
			}
			return d.Run(ctx)
		},
	}
	def := config.Defaults()
	for _, f := range serveFlags {
		cmd.Flags().String(f.flag, def.Get(f.key), f.usage)
	}
	cmd.Flags().StringVar(&configFile, "config", "", "YAML configuration file (auth settings are read from it again when it changes)")
	cmd.Flags().Bool("allow-unauthenticated", false, "serve the API on a non-loopback address without authentication")
	cmd.Flags().Bool("standby", false, "join the group of instances and answer the API, but copy nothing and never become the active one")
	cmd.Flags().Bool("metrics-partition-labels", def.MetricsPartitionLabels, "give per-partition metrics a partition label; false sums them per topic (docs/metrics.md)")
	cmd.Flags().BoolVar(&checkOnly, "check-config", false, "validate the configuration and exit")
	return cmd
}

// loadConfig applies defaults, then the file, then the environment, then
// the flags that were given.
func loadConfig(fs *pflag.FlagSet, file string) (config.Config, error) {
	cfg := config.Defaults()
	if file != "" {
		if err := cfg.LoadFile(file); err != nil {
			return cfg, err
		}
	}
	cfg.LoadEnv(os.LookupEnv)
	if fs.Changed("allow-unauthenticated") {
		cfg.AllowUnauthenticated, _ = fs.GetBool("allow-unauthenticated")
	}
	if fs.Changed("standby") {
		cfg.Standby, _ = fs.GetBool("standby")
	}
	if fs.Changed("metrics-partition-labels") {
		cfg.MetricsPartitionLabels, _ = fs.GetBool("metrics-partition-labels")
	}
	for _, f := range serveFlags {
		if fs.Changed(f.flag) {
			v, _ := fs.GetString(f.flag)
			if err := cfg.Set(f.key, v); err != nil {
				return cfg, err
			}
		}
	}
	return cfg, nil
}

// startProfiles starts the profiles the environment asks for, for
// strait bench: STRAIT_CPUPROFILE, a CPU profile written when the daemon
// stops; STRAIT_MEMPROFILE, the allocations (go tool pprof
// -sample_index=alloc_space), written then too. With STRAIT_PROFILE_AFTER
// (a duration) the CPU profile starts that long after the start, and the
// allocations made until then are written to STRAIT_MEMPROFILE.base, to
// compare with (-diff_base): the profiles of what a settled daemon does.
func startProfiles() (stop func(), err error) {
	cpu, mem := os.Getenv("STRAIT_CPUPROFILE"), os.Getenv("STRAIT_MEMPROFILE")
	var after time.Duration
	if v := os.Getenv("STRAIT_PROFILE_AFTER"); v != "" {
		if after, err = time.ParseDuration(v); err != nil {
			return nil, fmt.Errorf("STRAIT_PROFILE_AFTER: %w", err)
		}
	}
	var f *os.File
	if cpu != "" {
		if f, err = os.Create(cpu); err != nil {
			return nil, err
		}
	}
	var mu sync.Mutex
	started, stopped := false, false
	start := func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if mem != "" && after > 0 {
			writeAllocProfile(mem + ".base")
		}
		if f != nil {
			started = pprof.StartCPUProfile(f) == nil
		}
	}
	var timer *time.Timer
	if after > 0 {
		timer = time.AfterFunc(after, start)
	} else {
		start()
	}
	return func() {
		if timer != nil {
			timer.Stop()
		}
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		if started {
			pprof.StopCPUProfile()
		}
		if f != nil {
			f.Close()
		}
		if mem != "" {
			writeAllocProfile(mem)
		}
	}, nil
}

// writeAllocProfile writes the allocations made since the start (the
// "allocs" profile) to path.
func writeAllocProfile(path string) {
	f, err := os.Create(path)
	if err != nil {
		return
	}
	defer f.Close()
	_ = pprof.Lookup("allocs").WriteTo(f, 0)
}
