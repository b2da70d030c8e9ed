package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/internal/client"
)

// Environment variables the link and mirror commands read.
const (
	envURL       = "STRAIT_URL"
	envAPIKey    = "STRAIT_API_KEY"
	envAPISecret = "STRAIT_API_SECRET"
	envToken     = "STRAIT_TOKEN"
)

// connOptions say how to reach the REST API: flags, then environment, then
// the CLI config file, then defaults. The link and mirror commands share
// them as persistent flags.
type connOptions struct {
	url, apiKey, apiSecret, token string
	cliConfig                     string
	caCert, clientCert, clientKey string
	insecure                      bool
	cluster                       string
}

// cliFile is the CLI config file (~/.config/strait/cli.yaml).
type cliFile struct {
	URL                   string `yaml:"url"`
	APIKey                string `yaml:"api_key"`
	APISecret             string `yaml:"api_secret"`
	Token                 string `yaml:"token"`
	CACert                string `yaml:"ca_cert"`
	ClientCert            string `yaml:"client_cert"`
	ClientKey             string `yaml:"client_key"`
	InsecureSkipTLSVerify bool   `yaml:"insecure_skip_tls_verify"`
	Cluster               string `yaml:"cluster"`
}

// confluentFlagNames maps the Confluent CLI's spellings of the connection
// flags to Strait's, so a command line written for one works with the
// other.
var confluentFlagNames = map[string]string{
	"certificate-authority-path":              "ca-cert",
	"client-cert-path":                        "client-cert",
	"client-key-path":                         "client-key",
	"include-partition-level-truncation-data": "include-partitions",
}

func normalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if n, ok := confluentFlagNames[name]; ok {
		name = n
	}
	return pflag.NormalizedName(name)
}

func (o *connOptions) register(cmd *cobra.Command) {
	fs := cmd.PersistentFlags()
	fs.StringVar(&o.url, "url", "", "Strait's REST API address (env "+envURL+"; default "+client.DefaultURL+"); /kafka/v3 is added unless the URL ends in /v3")
	fs.StringVar(&o.apiKey, "api-key", "", "API key, sent as HTTP Basic user (env "+envAPIKey+")")
	fs.StringVar(&o.apiSecret, "api-secret", "", "API secret, sent as HTTP Basic password (env "+envAPISecret+", safer: a command line is visible to other users)")
	fs.StringVar(&o.token, "token", "", "bearer token (JWT) instead of an API key (env "+envToken+")")
	fs.StringVar(&o.cliConfig, "cli-config", "", "CLI config file (default ~/.config/strait/cli.yaml, if it exists)")
	fs.StringVar(&o.caCert, "ca-cert", "", "PEM file of the CA certificates to trust for an https URL")
	fs.StringVar(&o.clientCert, "client-cert", "", "PEM client certificate for mutual TLS")
	fs.StringVar(&o.clientKey, "client-key", "", "PEM key of --client-cert")
	fs.BoolVar(&o.insecure, "insecure-skip-tls-verify", false, "accept any server certificate (testing only)")
	fs.StringVar(&o.cluster, "cluster", "", "destination cluster id (default: the one the server lists)")
	cmd.SetGlobalNormalizationFunc(normalizeFlag)
}

// config resolves the options of the command line cmd into a client
// configuration.
func (o *connOptions) config(flags *pflag.FlagSet) (client.Config, error) {
	file, err := o.readFile(flags.Changed("cli-config"))
	if err != nil {
		return client.Config{}, err
	}
	pick := func(flag, flagValue, env, fileValue string) string {
		if flags.Changed(flag) {
			return flagValue
		}
		if env != "" {
			if v := os.Getenv(env); v != "" {
				return v
			}
		}
		return fileValue
	}
	cfg := client.Config{
		URL:                   pick("url", o.url, envURL, file.URL),
		CACert:                pick("ca-cert", o.caCert, "", file.CACert),
		ClientCert:            pick("client-cert", o.clientCert, "", file.ClientCert),
		ClientKey:             pick("client-key", o.clientKey, "", file.ClientKey),
		ClusterID:             pick("cluster", o.cluster, "", file.Cluster),
		InsecureSkipTLSVerify: file.InsecureSkipTLSVerify,
	}
	if flags.Changed("insecure-skip-tls-verify") {
		cfg.InsecureSkipTLSVerify = o.insecure
	}
	// Credentials come whole from the first place that has any, so that a
	// token on the command line is not mixed with a key from the file.
	switch {
	case flags.Changed("api-key") || flags.Changed("api-secret") || flags.Changed("token"):
		cfg.APIKey, cfg.APISecret, cfg.Token = o.apiKey, o.apiSecret, o.token
	case os.Getenv(envAPIKey) != "" || os.Getenv(envAPISecret) != "" || os.Getenv(envToken) != "":
		cfg.APIKey, cfg.APISecret, cfg.Token = os.Getenv(envAPIKey), os.Getenv(envAPISecret), os.Getenv(envToken)
	default:
		cfg.APIKey, cfg.APISecret, cfg.Token = file.APIKey, file.APISecret, file.Token
	}
	return cfg, nil
}

// client builds the API client for the command line cmd.
func (o *connOptions) client(cmd *cobra.Command) (*client.Client, error) {
	cfg, err := o.config(cmd.Flags())
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg)
	if err != nil {
		return nil, usageError{err}
	}
	return c, nil
}

// request calls the server: it builds the API client of the command line
// cmd and runs f with it, under a context that SIGINT or SIGTERM cancels.
// It is the start every command that talks to the server shares.
func request[T any](cmd *cobra.Command, o *connOptions, f func(context.Context, *client.Client) (T, error)) (T, error) {
	cl, err := o.client(cmd)
	if err != nil {
		var zero T
		return zero, err
	}
	ctx, stop := signalContext()
	defer stop()
	return f(ctx, cl)
}

// fetch is request for the commands that print what the server answers:
// it checks --output (format) first, and returns the printer with the
// answer.
func fetch[T any](cmd *cobra.Command, o *connOptions, format string, f func(context.Context, *client.Client) (T, error)) (printer, T, error) {
	p, err := newPrinter(cmd, format)
	if err != nil {
		var zero T
		return p, zero, err
	}
	v, err := request(cmd, o, f)
	return p, v, err
}

// send is request for calls that return nothing but an error.
func send(cmd *cobra.Command, o *connOptions, f func(context.Context, *client.Client) error) error {
	_, err := request(cmd, o, func(ctx context.Context, cl *client.Client) (struct{}, error) { return struct{}{}, f(ctx, cl) })
	return err
}

// readFile reads the CLI config file: --cli-config (which must exist), or
// the default one if there is one. Relative paths in it are relative to
// the file.
func (o *connOptions) readFile(given bool) (cliFile, error) {
	var f cliFile
	path := o.cliConfig
	if !given {
		dir, err := os.UserConfigDir()
		if err != nil {
			return f, nil // no home: no default file
		}
		path = filepath.Join(dir, "strait", "cli.yaml")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if !given && errors.Is(err, fs.ErrNotExist) {
			return f, nil
		}
		return f, fmt.Errorf("CLI config file: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true) // a misspelled key would be ignored otherwise
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return f, fmt.Errorf("CLI config file %s: %w", path, err)
	}
	base := filepath.Dir(path)
	for _, p := range []*string{&f.CACert, &f.ClientCert, &f.ClientKey} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
	return f, nil
}
