package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
)

// recorder is a fake API that lists no links and records who asked what.
type recorder struct {
	name string
	mu   sync.Mutex
	auth []string
	path []string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec.mu.Lock()
	rec.auth = append(rec.auth, r.Header.Get("Authorization"))
	rec.path = append(rec.path, r.URL.Path)
	rec.mu.Unlock()
	if r.URL.Path == "/kafka/v3/clusters" {
		_ = json.NewEncoder(w).Encode(api.ClusterDataList{Data: []api.ClusterData{{ClusterID: "c1"}}})
		return
	}
	_ = json.NewEncoder(w).Encode(api.LinkDataList{Data: []api.LinkData{}})
}

func basic(key, secret string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(key, secret)
	return r.Header.Get("Authorization")
}

// TestConnectionSettings checks where link list goes and with which
// credentials: flags over environment over the CLI config file.
func TestConnectionSettings(t *testing.T) {
	servers := map[string]*recorder{}
	urls := map[string]string{}
	for _, name := range []string{"flag", "env", "file"} {
		rec := &recorder{name: name}
		srv := httptest.NewServer(rec)
		t.Cleanup(srv.Close)
		servers[name], urls[name] = rec, srv.URL
	}
	tests := []struct {
		name     string
		file     string // the default ~/.config/strait/cli.yaml
		given    string // a --cli-config file
		env      map[string]string
		args     []string
		server   string // which server is asked
		auth     string
		paths    []string
		wantCode int
		wantErr  string
	}{
		{name: "file", file: "url: " + urls["file"] + "\napi_key: fk\napi_secret: fs\n", server: "file", auth: basic("fk", "fs")},
		{name: "given file", given: "url: " + urls["file"] + "\ntoken: ft\n", server: "file", auth: "Bearer ft"},
		{name: "env over file, credentials whole", file: "url: " + urls["file"] + "\napi_key: fk\napi_secret: fs\n",
			env: map[string]string{envURL: urls["env"], envToken: "et"}, server: "env", auth: "Bearer et"},
		{name: "flags over env", env: map[string]string{envURL: urls["env"], envToken: "et"},
			args: []string{"--url", urls["flag"], "--api-key", "k", "--api-secret", "s"}, server: "flag", auth: basic("k", "s")},
		{name: "cluster given: not looked up", args: []string{"--url", urls["flag"], "--cluster", "given"}, server: "flag",
			paths: []string{"/kafka/v3/clusters/given/links"}},
		{name: "cluster looked up", args: []string{"--url", urls["flag"]}, server: "flag",
			paths: []string{"/kafka/v3/clusters", "/kafka/v3/clusters/c1/links"}},
		{name: "missing given file", args: []string{"--cli-config", filepath.Join(t.TempDir(), "none.yaml")}, wantCode: 1, wantErr: "none.yaml"},
		{name: "unknown key", file: "url: " + urls["file"] + "\napikey: x\n", wantCode: 1, wantErr: "apikey"},
		{name: "relative CA path is the file's", file: "url: https://127.0.0.1:1\nca_cert: certs/ca.pem\n", wantCode: 2, wantErr: filepath.Join("strait", "certs", "ca.pem")},
		{name: "Confluent's flag name", args: []string{"--url", "https://127.0.0.1:1", "--certificate-authority-path", "/no/ca.pem"}, wantCode: 2, wantErr: "/no/ca.pem"},
		{name: "key without secret", args: []string{"--url", urls["flag"], "--api-key", "k"}, wantCode: 2, wantErr: "needs its secret"},
		{name: "key and token", env: map[string]string{envAPIKey: "k", envAPISecret: "s", envToken: "t"}, wantCode: 2, wantErr: "not both"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cliEnv(t)
			home := os.Getenv("XDG_CONFIG_HOME")
			if tc.file != "" {
				p := filepath.Join(home, "strait", "cli.yaml")
				if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(tc.file), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := append([]string{"link", "list"}, tc.args...)
			if tc.given != "" {
				p := filepath.Join(t.TempDir(), "given.yaml")
				if err := os.WriteFile(p, []byte(tc.given), 0o600); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--cli-config", p)
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			for _, rec := range servers {
				rec.mu.Lock()
				rec.auth, rec.path = nil, nil
				rec.mu.Unlock()
			}
			var out, errOut bytes.Buffer
			code := run(args, strings.NewReader(""), &out, &errOut)
			if code != tc.wantCode || !strings.Contains(errOut.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.wantCode, tc.wantErr)
			}
			for name, rec := range servers {
				rec.mu.Lock()
				asked := len(rec.path) > 0
				if asked != (name == tc.server) {
					t.Errorf("server %s asked: %v (%v)", name, asked, rec.path)
				}
				if name == tc.server {
					for _, a := range rec.auth {
						if a != tc.auth {
							t.Errorf("Authorization %q, want %q", a, tc.auth)
						}
					}
					if tc.paths != nil && !reflect.DeepEqual(rec.path, tc.paths) {
						t.Errorf("paths %v, want %v", rec.path, tc.paths)
					}
				}
				rec.mu.Unlock()
			}
		})
	}
}

func TestReadProperties(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "link.properties")
	body := "# a comment\n! another\n\nbootstrap.servers = a:1,b:2\nsasl.jaas.config=x \\\n  y;\nempty=\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.properties")
	if err := os.WriteFile(bad, []byte("a=1\nnot a pair\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		in      []string
		want    map[string]string
		wantErr string
	}{
		{in: nil, want: map[string]string{}},
		{in: []string{"a=1", "b=x=y"}, want: map[string]string{"a": "1", "b": "x=y"}},
		{in: []string{file}, want: map[string]string{"bootstrap.servers": "a:1,b:2", "sasl.jaas.config": "x y;", "empty": ""}},
		{in: []string{bad}, wantErr: "line 2"},
		{in: []string{filepath.Join(dir, "none")}, wantErr: "no such file"},
		{in: []string{"a=1", "b"}, wantErr: "want key=value"},
		{in: []string{"=1"}, wantErr: "want key=value"},
	}
	for _, tc := range tests {
		got, err := readProperties(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !isUsage(err) {
				t.Errorf("%v: %v, want a usage error with %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// scripted is a fake API whose mirror answers follow a script: one
// status per GET (404 for ""), the last one repeated.
type scripted struct {
	mu     sync.Mutex
	script []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/kafka/v3/clusters" {
		_ = json.NewEncoder(w).Encode(api.ClusterDataList{Data: []api.ClusterData{{ClusterID: "c1"}}})
		return
	}
	s.mu.Lock()
	status := s.script[0]
	if len(s.script) > 1 {
		s.script = s.script[1:]
	}
	s.mu.Unlock()
	if status == "" {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error_code":40403,"message":"Topic 't' is not a mirror topic"}`))
		return
	}
	_ = json.NewEncoder(w).Encode(api.MirrorData{MirrorTopicName: "t", MirrorStatus: status, MirrorLags: []api.MirrorLag{{Lag: 2}}})
}

// TestAwait checks how waiting ends for each kind of operation.
func TestAwait(t *testing.T) {
	old := pollInterval
	pollInterval = 10 * time.Millisecond
	defer func() { pollInterval = old }()
	verb := func(use string) alterVerb {
		for _, v := range alterVerbs {
			if v.use == use {
				return v
			}
		}
		t.Fatalf("no verb %s", use)
		return alterVerb{}
	}
	tests := []struct {
		name    string
		verb    string
		script  []string
		timeout time.Duration
		wantErr string
		wantOut string
	}{
		{name: "promote done", verb: "promote", script: []string{"PENDING_STOPPED", "PENDING_STOPPED", "STOPPED"},
			wantOut: "t: PENDING_STOPPED, lag 2\nt: STOPPED, lag 2\n"},
		{name: "promote put back", verb: "promote", script: []string{"PENDING_STOPPED", "ACTIVE"}, wantErr: "promote did not complete: t is ACTIVE, lag 2"},
		{name: "promote times out", verb: "promote", script: []string{"PENDING_STOPPED"}, timeout: 100 * time.Millisecond,
			wantErr: "t is still PENDING_STOPPED, lag 2 after 100ms (--timeout)"},
		{name: "failover gone", verb: "failover", script: []string{""}, wantErr: "t is no longer a mirror topic"},
		{name: "reverse done", verb: "reverse-and-start", script: []string{"PENDING_SYNCHRONIZE", ""},
			wantOut: "t: PENDING_SYNCHRONIZE, lag 2\nt: reversed: a writable topic here now, mirrored by the remote cluster\n"},
		{name: "reverse put back", verb: "reverse-and-pause", script: []string{"PENDING_SYNCHRONIZE", "PAUSED"}, wantErr: "t is PAUSED"},
		{name: "restore done", verb: "truncate-and-restore", script: []string{"", "PENDING_SETUP_FOR_RESTORE", "PENDING_RESTORE", "ACTIVE"},
			wantOut: "t: not a mirror topic (now)\nt: PENDING_SETUP_FOR_RESTORE, lag 2\nt: PENDING_RESTORE, lag 2\nt: ACTIVE, lag 2\n"},
		{name: "restore failed", verb: "truncate-and-restore", script: []string{"PENDING_RESTORE", "FAILED"}, wantErr: "t is FAILED"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(&scripted{script: tc.script})
			defer srv.Close()
			cl, err := client.New(client.Config{URL: srv.URL})
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			w := &progress{out: &out, last: map[string]string{}}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			err = w.await(context.Background(), cl, "l", verb(tc.verb), []string{"t"}, time.Now(), timeout)
			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("await: %v, want %q", err, tc.wantErr)
			}
			if tc.wantOut != "" && out.String() != tc.wantOut {
				t.Fatalf("progress\n%s\nwant\n%s", out.String(), tc.wantOut)
			}
		})
	}
}

func TestCompletionScripts(t *testing.T) {
	cliEnv(t)
	for shell, want := range map[string]string{"bash": "__start_strait", "zsh": "#compdef strait", "fish": "complete -c strait"} {
		var out, errOut bytes.Buffer
		if code := run([]string{"completion", shell}, strings.NewReader(""), &out, &errOut); code != 0 || !strings.Contains(out.String(), want) {
			t.Errorf("completion %s: exit %d, %d bytes without %q; stderr %q", shell, code, out.Len(), want, errOut.String())
		}
	}
}

// FuzzParseProperties checks --config files: parsing never panics, and
// whatever it accepts is a non-empty trimmed key on one line, whose
// key=value line parses back to the same pair.
func FuzzParseProperties(f *testing.F) {
	f.Add("a=1\n# c\nb = x \\\n y\n")
	f.Add("=\n")
	f.Add("k=v=w\r\n!x\n\\")
	f.Fuzz(func(t *testing.T, text string) {
		got, err := parseProperties(text, "f")
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("%q: %v is not a usage error", text, err)
			}
			return
		}
		for k, v := range got {
			if k == "" || k != strings.TrimSpace(k) || strings.ContainsAny(k+v, "\n") || strings.Contains(k, "=") {
				t.Fatalf("%q: accepted key %q value %q", text, k, v)
			}
			if k[0] == '#' || k[0] == '!' {
				t.Fatalf("%q: a comment became key %q", text, k)
			}
			again, err := parseProperties(k+"="+v, "f")
			if err != nil || len(again) != 1 || again[k] != strings.TrimSpace(v) {
				t.Fatalf("%q: %q=%q parses back as %v, %v", text, k, v, again, err)
			}
		}
	})
}
