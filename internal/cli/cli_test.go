package cli

import (
	"bytes"
	"errors"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/buildinfo"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/secret"
)

// clearEnv unsets every STRAIT_* variable the config reads, for the
// duration of the test, then sets env.
func clearEnv(t *testing.T, env map[string]string) {
	t.Helper()
	for _, name := range append(slices.Collect(maps.Values(config.Env)), "STRAIT_ALLOW_UNAUTHENTICATED") {
		t.Setenv(name, "") // restores the original value when the test ends
		os.Unsetenv(name)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// writeFile writes a YAML config file and returns its path.
func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "strait.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load parses args the way `strait serve` does and calls loadConfig.
func load(t *testing.T, args []string) (config.Config, error) {
	t.Helper()
	cmd := newServe()
	if err := cmd.ParseFlags(args); err != nil {
		return config.Config{}, err
	}
	file, err := cmd.Flags().GetString("config")
	if err != nil {
		t.Fatal(err)
	}
	return loadConfig(cmd.Flags(), file)
}

// field returns the value of the Config field with YAML key key.
func field(t *testing.T, c config.Config, key string) string {
	t.Helper()
	v := reflect.ValueOf(c)
	for i := 0; i < v.NumField(); i++ {
		if strings.Split(v.Type().Field(i).Tag.Get("yaml"), ",")[0] == key {
			return v.Field(i).String()
		}
	}
	t.Fatalf("no config field with yaml key %q", key)
	return ""
}

func withDefaults(f func(c *config.Config)) config.Config {
	c := config.Defaults()
	f(&c)
	return c
}

func TestLoadConfigPrecedence(t *testing.T) {
	const fullFile = `
destination_bootstrap: file-1:9092,file-2:9092
http: 0.0.0.0:7001
state_topic: __file_state
log_level: debug
log_format: json
destination_security_protocol: SASL_SSL
destination_sasl_mechanism: SCRAM-SHA-512
destination_sasl_username: file-user
destination_sasl_password: file-pass
destination_ca_file: /etc/file-ca.pem
`
	tests := []struct {
		name string
		file *string // YAML; nil means no --config
		env  map[string]string
		args []string
		want config.Config
	}{
		{
			name: "defaults",
			want: config.Defaults(),
		},
		{
			name: "file over defaults",
			file: ptr("destination_bootstrap: f:1\nlog_level: debug\n"),
			want: withDefaults(func(c *config.Config) { c.DestinationBootstrap, c.LogLevel = "f:1", "debug" }),
		},
		{
			name: "every key from the file",
			file: ptr(fullFile),
			want: config.Config{
				DestinationBootstrap: "file-1:9092,file-2:9092", HTTP: "0.0.0.0:7001", StateTopic: "__file_state",
				LogLevel: "debug", LogFormat: "json", DestinationSecurityProtocol: "SASL_SSL",
				DestinationSASLMechanism: "SCRAM-SHA-512", DestinationSASLUsername: "file-user",
				DestinationSASLPassword: "file-pass", DestinationCAFile: "/etc/file-ca.pem",
				GroupSessionTimeout: "10s", PartitionStallTimeout: "60s", LinkNetworksDeny: config.Defaults().LinkNetworksDeny,
				VerifyBytesPerSecond:   config.Defaults().VerifyBytesPerSecond,
				MetricsPartitionLabels: true,
			},
		},
		{
			name: "empty file keeps the defaults",
			file: ptr(""),
			want: config.Defaults(),
		},
		{
			name: "env over defaults",
			env:  map[string]string{"STRAIT_DESTINATION_BOOTSTRAP": "e:1", "STRAIT_STATE_TOPIC": "__env"},
			want: withDefaults(func(c *config.Config) { c.DestinationBootstrap, c.StateTopic = "e:1", "__env" }),
		},
		{
			name: "env over file, file where env is silent",
			file: ptr("destination_bootstrap: f:1\nhttp: 127.0.0.1:7001\nlog_level: debug\n"),
			env:  map[string]string{"STRAIT_HTTP": "127.0.0.1:7002", "STRAIT_LOG_FORMAT": "json"},
			want: withDefaults(func(c *config.Config) {
				c.DestinationBootstrap, c.HTTP, c.LogLevel, c.LogFormat = "f:1", "127.0.0.1:7002", "debug", "json"
			}),
		},
		{
			name: "flags over env over file over defaults",
			file: ptr("destination_bootstrap: f:1\nhttp: 127.0.0.1:7001\nlog_level: debug\nstate_topic: __file\n"),
			env:  map[string]string{"STRAIT_HTTP": "127.0.0.1:7002", "STRAIT_LOG_LEVEL": "warn", "STRAIT_DESTINATION_SASL_PASSWORD": "env-pass"},
			args: []string{"--http", "127.0.0.1:7003", "--destination-sasl-password=flag-pass"},
			want: withDefaults(func(c *config.Config) {
				c.DestinationBootstrap = "f:1"          // file only
				c.StateTopic = "__file"                 // file only
				c.HTTP = "127.0.0.1:7003"               // file, env and flag
				c.LogLevel = "warn"                     // file and env
				c.DestinationSASLPassword = "flag-pass" // env and flag
			}),
		},
		{
			name: "a flag given with the default value still wins",
			file: ptr("http: 127.0.0.1:7001\nlog_format: json\n"),
			env:  map[string]string{"STRAIT_LOG_FORMAT": "json"},
			args: []string{"--http", "127.0.0.1:8090", "--log-format", "text"},
			want: config.Defaults(),
		},
		{
			name: "flags only",
			args: []string{"--destination-bootstrap", "a:1,b:2", "--destination-security-protocol", "SSL", "--destination-ca-file", "/ca.pem"},
			want: withDefaults(func(c *config.Config) {
				c.DestinationBootstrap, c.DestinationSecurityProtocol, c.DestinationCAFile = "a:1,b:2", "SSL", "/ca.pem"
			}),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, tc.env)
			args := tc.args
			if tc.file != nil {
				args = append([]string{"--config", writeFile(t, *tc.file)}, args...)
			}
			got, err := load(t, args)
			if err != nil {
				t.Fatalf("loadConfig: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("config\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// TestLoadConfigEveryKey checks, for every setting, that its environment
// variable beats the file and its flag beats the environment.
func TestLoadConfigEveryKey(t *testing.T) {
	for _, f := range serveFlags {
		t.Run(f.key, func(t *testing.T) {
			env, ok := config.Env[f.key]
			if !ok {
				t.Fatalf("flag --%s has no environment variable", f.flag)
			}
			if want := "STRAIT_" + strings.ToUpper(f.key); env != want {
				t.Errorf("env variable %s, want %s", env, want)
			}
			file := writeFile(t, f.key+": from-file\n")

			clearEnv(t, nil)
			got, err := load(t, []string{"--config", file})
			if err != nil {
				t.Fatal(err)
			}
			if v := field(t, got, f.key); v != "from-file" {
				t.Errorf("file: %s = %q", f.key, v)
			}

			clearEnv(t, map[string]string{env: "from-env"})
			got, err = load(t, []string{"--config", file})
			if err != nil {
				t.Fatal(err)
			}
			if v := field(t, got, f.key); v != "from-env" {
				t.Errorf("env over file: %s = %q", f.key, v)
			}

			got, err = load(t, []string{"--config", file, "--" + f.flag, "from-flag"})
			if err != nil {
				t.Fatal(err)
			}
			if v := field(t, got, f.key); v != "from-flag" {
				t.Errorf("flag over env: %s = %q", f.key, v)
			}
		})
	}
	// Secrets keys themselves are never flags: command lines are visible
	// to every user of the machine.
	envOnly := []string{"secrets_key", "secrets_previous_keys"}
	if len(serveFlags)+len(envOnly) != len(config.Env) {
		t.Errorf("%d serve flags and %d env-only settings for %d settings", len(serveFlags), len(envOnly), len(config.Env))
	}
}

func TestServeFlagDefaults(t *testing.T) {
	def := config.Defaults()
	fs := newServe().Flags()
	for _, f := range serveFlags {
		t.Run(f.flag, func(t *testing.T) {
			fl := fs.Lookup(f.flag)
			if fl == nil {
				t.Fatalf("no flag --%s", f.flag)
			}
			if want := field(t, def, f.key); fl.DefValue != want {
				t.Fatalf("--%s default %q, config default %q", f.flag, fl.DefValue, want)
			}
		})
	}
}

func TestLoadConfigErrors(t *testing.T) {
	tests := []struct {
		name    string
		file    *string
		args    []string
		wantErr string
	}{
		{name: "unknown key", file: ptr("destination_bootstrap: a:1\ndestination_bootstrap_servers: a:1\n"), wantErr: "destination_bootstrap_servers"},
		{name: "misspelled key alone", file: ptr("log-level: debug\n"), wantErr: "log-level"},
		{name: "malformed YAML", file: ptr("http: [unclosed\n"), wantErr: "config file"},
		{name: "not a mapping", file: ptr("- a\n- b\n"), wantErr: "config file"},
		{name: "missing file", args: []string{"--config", filepath.Join(os.TempDir(), "strait-no-such-dir", "none.yaml")}, wantErr: "none.yaml"},
		{name: "unknown flag", args: []string{"--destination-bootstrap-servers", "a:1"}, wantErr: "unknown flag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, nil)
			args := tc.args
			if tc.file != nil {
				args = append([]string{"--config", writeFile(t, *tc.file)}, args...)
			}
			_, err := load(t, args)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %q does not mention %q", err, tc.wantErr)
			}
		})
	}
}

func ptr(s string) *string { return &s }

// testHash is a stored secret hash (of "s"), testKey a secrets key.
var testHash, _ = auth.HashSecret("s")

const testKey = "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="

// noConnection returns an address nothing should dial, and a function that
// fails the test if something did.
func noConnection(t *testing.T) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().String(), func() {
		t.Helper()
		if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(50 * time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		c, err := ln.Accept()
		if err == nil {
			c.Close()
			t.Fatal("the command connected to the destination")
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Fatalf("accept: %v", err)
		}
	}
}

func TestCheckConfig(t *testing.T) {
	dest, assertNoConn := noConnection(t)
	httpAddr, assertNoHTTP := noConnection(t) // also never dialled
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		env     map[string]string
		file    string
		args    []string
		wantErr string // "" means valid
	}{
		{name: "flags", args: []string{"--destination-bootstrap", dest}},
		{name: "env", env: map[string]string{"STRAIT_DESTINATION_BOOTSTRAP": dest, "STRAIT_LOG_FORMAT": "json"}},
		{name: "file", file: "destination_bootstrap: " + dest + "\nhttp: " + httpAddr + "\n"},
		{name: "SASL_SSL", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "sasl_ssl", "--destination-sasl-mechanism", "SCRAM-SHA-256", "--destination-sasl-username", "u", "--destination-sasl-password", "p"}},
		{name: "missing destination bootstrap", wantErr: "--destination-bootstrap"},
		{name: "blank destination bootstrap", args: []string{"--destination-bootstrap", "  "}, wantErr: "--destination-bootstrap"},
		{name: "bad http address", args: []string{"--destination-bootstrap", dest, "--http", "8090"}, wantErr: "8090"},
		{name: "bad log level", args: []string{"--destination-bootstrap", dest, "--log-level", "verbose"}, wantErr: "verbose"},
		{name: "bad log format", env: map[string]string{"STRAIT_LOG_FORMAT": "xml"}, args: []string{"--destination-bootstrap", dest}, wantErr: "xml"},
		{name: "empty state topic", args: []string{"--destination-bootstrap", dest, "--state-topic", ""}, wantErr: "state topic"},
		{name: "bad security protocol", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "KERBEROS"}, wantErr: "KERBEROS"},
		{name: "bad SASL mechanism", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SASL_PLAINTEXT", "--destination-sasl-mechanism", "GSSAPI"}, wantErr: "GSSAPI"},
		{name: "missing CA file", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SSL", "--destination-ca-file", filepath.Join(t.TempDir(), "none.pem")}, wantErr: "CA file"},
		{name: "CA file without certificate", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SSL", "--destination-ca-file", caFile}, wantErr: "certificate"},
		{name: "unknown key in file", file: "destination_bootstrap: " + dest + "\nhttp_addr: x\n", wantErr: "http_addr"},
		{name: "positional argument", args: []string{"--destination-bootstrap", dest, "extra"}, wantErr: "extra"},
		{name: "OAUTHBEARER", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SASL_SSL", "--destination-sasl-mechanism", "OAUTHBEARER", "--destination-sasl-username", "client", "--destination-sasl-password", "secret", "--destination-sasl-oauthbearer-token-endpoint-url", "https://idp.example/token"}},
		{name: "OAUTHBEARER without token endpoint", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SASL_SSL", "--destination-sasl-mechanism", "OAUTHBEARER"}, wantErr: "token endpoint"},
		{name: "OAUTHBEARER token endpoint over plain HTTP", args: []string{"--destination-bootstrap", dest, "--destination-security-protocol", "SASL_SSL", "--destination-sasl-mechanism", "OAUTHBEARER", "--destination-sasl-oauthbearer-token-endpoint-url", "http://idp.example/token"}, wantErr: "https"},
		{name: "non-loopback without auth", args: []string{"--destination-bootstrap", dest, "--http", "0.0.0.0:8090"}, wantErr: "without authentication"},
		{name: "non-loopback without auth, allowed", args: []string{"--destination-bootstrap", dest, "--http", "0.0.0.0:8090", "--allow-unauthenticated"}},
		{name: "non-loopback without auth, allowed by env", env: map[string]string{"STRAIT_ALLOW_UNAUTHENTICATED": "true"}, args: []string{"--destination-bootstrap", dest, "--http", "[::]:8090"}},
		{name: "non-loopback with auth", file: "destination_bootstrap: " + dest + "\nhttp: 0.0.0.0:8090\nauth:\n  api_keys:\n    - key: ops\n      secret_hash: " + testHash + "\n  roles:\n    - principal: User:ops\n      role: admin\n"},
		{name: "loopback name", args: []string{"--destination-bootstrap", dest, "--http", "localhost:8090"}},
		{name: "bad secret hash", file: "destination_bootstrap: " + dest + "\nauth:\n  api_keys:\n    - key: ops\n      secret_hash: plaintext\n", wantErr: "secret_hash"},
		{name: "unknown role", file: "destination_bootstrap: " + dest + "\nauth:\n  api_keys:\n    - key: ops\n      secret_hash: " + testHash + "\n  roles:\n    - principal: User:ops\n      role: root\n", wantErr: "root"},
		{name: "roles without authentication", file: "destination_bootstrap: " + dest + "\nauth:\n  roles:\n    - principal: User:ops\n      role: admin\n", wantErr: "no authentication method"},
		{name: "JWKS over plain HTTP", file: "destination_bootstrap: " + dest + "\nauth:\n  jwt:\n    jwks_url: http://idp.example/jwks\n", wantErr: "jwks_url"},
		{name: "clock skew too large", file: "destination_bootstrap: " + dest + "\nauth:\n  jwt:\n    jwks_url: https://idp.example/jwks\n    clock_skew: 1h\n", wantErr: "clock_skew"},
		{name: "TLS certificate without key", args: []string{"--destination-bootstrap", dest, "--tls-cert-file", caFile}, wantErr: "go together"},
		{name: "client CA without TLS", args: []string{"--destination-bootstrap", dest, "--tls-client-ca-file", caFile}, wantErr: "tls_client_ca_file"},
		{name: "bad secrets key", env: map[string]string{"STRAIT_SECRETS_KEY": "too-short"}, args: []string{"--destination-bootstrap", dest}, wantErr: "secrets key"},
		{name: "secrets key twice", env: map[string]string{"STRAIT_SECRETS_KEY": testKey}, args: []string{"--destination-bootstrap", dest, "--secrets-key-file", caFile}, wantErr: "not both"},
		{name: "secrets key", env: map[string]string{"STRAIT_SECRETS_KEY": testKey}, args: []string{"--destination-bootstrap", dest}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t, tc.env)
			args := append([]string{"serve", "--check-config"}, tc.args...)
			if tc.file != "" {
				args = append(args, "--config", writeFile(t, tc.file))
			}
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(args)
			done := make(chan error, 1)
			go func() { done <- root.Execute() }()
			var err error
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("--check-config did not return: it is running the daemon")
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Execute: %v (stderr %q)", err, errOut.String())
				}
				if got := out.String(); got != "configuration is valid\n" {
					t.Fatalf("stdout %q, want \"configuration is valid\\n\"", got)
				}
			} else {
				if err == nil {
					t.Fatalf("no error; stdout %q", out.String())
				}
				if !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %q does not mention %q", err, tc.wantErr)
				}
				if strings.Contains(out.String(), "configuration is valid") {
					t.Fatalf("printed %q for an invalid configuration", out.String())
				}
			}
			assertNoConn()
			assertNoHTTP()
		})
	}
}

func TestRootCommands(t *testing.T) {
	tests := []struct {
		args    []string
		wantOut string
		wantErr string
	}{
		{args: []string{"--help"}, wantOut: "serve"},
		{args: []string{"serve", "--help"}, wantOut: "--check-config"},
		{args: []string{"devcluster", "--help"}, wantOut: "--data-dir"},
		{args: []string{"demo", "--help"}, wantOut: "--source-listen"},
		{args: []string{"--version"}, wantOut: "strait version " + buildinfo.Get().String()},
		{args: []string{"version"}, wantOut: "| Go version | " + runtime.Version()},
		{args: []string{"version", "-o", "json"}, wantOut: `"go_version": "` + runtime.Version() + `"`},
		{args: []string{"version", "-o", "yaml"}, wantOut: "go_version: " + runtime.Version()},
		{args: []string{"version", "-o", "xml"}, wantErr: "invalid --output"},
		{args: []string{"nosuchcommand"}, wantErr: "nosuchcommand"},
		{args: []string{"devcluster", "--listen", "no-port"}, wantErr: "no-port"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			clearEnv(t, nil)
			var out, errOut bytes.Buffer
			root := newRoot(&out, &errOut)
			root.SetArgs(tc.args)
			err := root.Execute()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Execute: %v", err)
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("output does not mention %q:\n%s", tc.wantOut, out.String())
			}
		})
	}
}

func TestAuthCommands(t *testing.T) {
	run := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		root := newRoot(&out, &errOut)
		root.SetIn(strings.NewReader(stdin))
		root.SetArgs(args)
		err := root.Execute()
		return strings.TrimSpace(out.String()), err
	}
	hash, err := run("p4ss word\n", "auth", "hash-secret")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(hash, "p4ss") {
		t.Fatalf("the hash shows the secret: %s", hash)
	}
	g, err := auth.New(auth.Config{APIKeys: []auth.APIKey{{Key: "k", SecretHash: hash}}})
	if err != nil {
		t.Fatalf("the printed hash does not configure: %v", err)
	}
	for secret, ok := range map[string]bool{"p4ss word": true, "p4ss word\n": false, "p4ss": false} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("k", secret)
		if _, err := g.Authenticate(r); (err == nil) != ok {
			t.Errorf("secret %q: %v", secret, err)
		}
	}
	if _, err := run("", "auth", "hash-secret"); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("empty stdin: %v", err)
	}
	key, err := run("", "auth", "new-secrets-key")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := secret.ParseKey(key); err != nil {
		t.Fatalf("printed key %q does not parse: %v", key, err)
	}
	if other, _ := run("", "auth", "new-secrets-key"); other == key {
		t.Fatal("two new keys are the same")
	}
}
