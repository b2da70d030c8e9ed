package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/testutil"
)

func TestBaseURL(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{in: "", want: "http://127.0.0.1:8090/kafka/v3"},
		{in: "http://h:1", want: "http://h:1/kafka/v3"},
		{in: "http://h:1/", want: "http://h:1/kafka/v3"},
		{in: "https://h:1/kafka", want: "https://h:1/kafka/v3"},
		{in: "https://h:1/kafka/v3/", want: "https://h:1/kafka/v3"},
		{in: "http://h:1/v3", want: "http://h:1/v3"},
		{in: "http://h:1/proxy", want: "http://h:1/proxy/kafka/v3"},
		{in: "h:1", wantErr: "http://host:port"},
		{in: "ftp://h:1", wantErr: "http://host:port"},
		{in: "http://h:1/?x=1", wantErr: "no query"},
		{in: "http://u:p@h:1", wantErr: "credentials"},
	}
	for _, tc := range tests {
		got, err := baseURL(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("baseURL(%q) = %q, %v; want an error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("baseURL(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

// TestOpsMatchServer keeps the client's operation names those the server
// routes.
func TestOpsMatchServer(t *testing.T) {
	var server []string
	for _, op := range link.Ops {
		server = append(server, string(op))
	}
	var ours []string
	for _, op := range Ops {
		ours = append(ours, string(op))
	}
	if !slices.Equal(server, ours) {
		t.Fatalf("client ops %v, server ops %v", ours, server)
	}
}

// fakeServer answers GET /kafka/v3/clusters and records the requests.
type fakeServer struct {
	clusterCalls atomic.Int32
	lastAuth     atomic.Value // string
	handler      http.HandlerFunc
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.lastAuth.Store(r.Header.Get("Authorization"))
	if r.URL.Path == "/kafka/v3/clusters" {
		f.clusterCalls.Add(1)
		_ = json.NewEncoder(w).Encode(api.ClusterDataList{Data: []api.ClusterData{{ClusterID: "dst-1"}}})
		return
	}
	f.handler(w, r)
}

func TestCallsAndErrors(t *testing.T) {
	f := &fakeServer{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx := context.Background()

	tests := []struct {
		name      string
		cfg       Config
		handler   http.HandlerFunc
		call      func(c *Client) error
		wantAuth  string
		wantErr   *Error
		wantOther string
	}{
		{
			name: "basic credentials, link list",
			cfg:  Config{APIKey: "k", APISecret: "s"},
			handler: func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/kafka/v3/clusters/dst-1/links" {
					http.Error(w, "wrong path "+r.URL.Path, 500)
					return
				}
				_ = json.NewEncoder(w).Encode(api.LinkDataList{Data: []api.LinkData{{LinkName: "a"}}})
			},
			call: func(c *Client) error {
				ls, err := c.ListLinks(ctx)
				if err == nil && (len(ls) != 1 || ls[0].LinkName != "a") {
					return errors.New("wrong links")
				}
				return err
			},
		},
		{
			name: "bearer token, Confluent error body",
			cfg:  Config{Token: "tok"},
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(404)
				_, _ = w.Write([]byte(`{"error_code":404,"message":"Cluster link 'x' does not exist."}`))
			},
			call:     func(c *Client) error { _, err := c.GetLink(ctx, "x", false); return err },
			wantAuth: "Bearer tok",
			wantErr:  &Error{StatusCode: 404, ErrorCode: 404, Message: "Cluster link 'x' does not exist."},
		},
		{
			name: "an HTML error page",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(429)
				_, _ = w.Write([]byte("<html>slow down</html>"))
			},
			call:    func(c *Client) error { _, err := c.ListMirrors(ctx, "", ""); return err },
			wantErr: &Error{StatusCode: 429, Message: "<html>slow down</html>"},
		},
		{
			name: "an answer that is not JSON",
			handler: func(w http.ResponseWriter, r *http.Request) {
				_, _ = w.Write([]byte("hello"))
			},
			call:      func(c *Client) error { _, err := c.GetMirror(ctx, "l", "t", false); return err },
			wantOther: "not the API's JSON",
		},
		{
			name: "alter sends names and options",
			handler: func(w http.ResponseWriter, r *http.Request) {
				var body map[string]any
				_ = json.NewDecoder(r.Body).Decode(&body)
				want := "/kafka/v3/clusters/dst-1/links/l/mirrors:truncate-and-restore"
				if r.URL.Path != want || r.URL.RawQuery != "include_partition_level_truncation_data=true&validate_only=true" ||
					r.Header.Get("Content-Type") != "application/json" || len(body) != 1 || body["mirror_topic_names"] == nil {
					http.Error(w, "wrong request "+r.URL.String(), 500)
					return
				}
				_ = json.NewEncoder(w).Encode(api.AlterMirrorsDataList{Data: []api.AlterMirrorsData{{MirrorTopicName: "t"}}})
			},
			call: func(c *Client) error {
				_, err := c.AlterMirrors(ctx, "l", OpTruncateRestore, api.AlterMirrorsRequest{MirrorTopicNames: &[]string{"t"}},
					AlterOptions{ValidateOnly: true, IncludePartitionTruncation: true})
				return err
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f.handler = tc.handler
			tc.cfg.URL = srv.URL
			c, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			switch {
			case tc.wantErr != nil:
				var e *Error
				if !errors.As(err, &e) || *e != *tc.wantErr {
					t.Fatalf("error %#v, want %#v", err, tc.wantErr)
				}
			case tc.wantOther != "":
				if err == nil || !strings.Contains(err.Error(), tc.wantOther) {
					t.Fatalf("error %v, want one with %q", err, tc.wantOther)
				}
			case err != nil:
				t.Fatal(err)
			}
			want := tc.wantAuth
			if tc.cfg.APIKey != "" {
				r, _ := http.NewRequest("GET", "/", nil)
				r.SetBasicAuth(tc.cfg.APIKey, tc.cfg.APISecret)
				want = r.Header.Get("Authorization")
			}
			if got, _ := f.lastAuth.Load().(string); got != want {
				t.Fatalf("Authorization %q, want %q", got, want)
			}
		})
	}
}

func TestClusterIDAskedOnce(t *testing.T) {
	f := &fakeServer{handler: func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(api.LinkDataList{})
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c, err := New(Config{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.ListLinks(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.clusterCalls.Load(); n != 1 {
		t.Fatalf("GET /clusters %d times", n)
	}
	given, err := New(Config{URL: srv.URL, ClusterID: "dst-1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := given.ListLinks(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := f.clusterCalls.Load(); n != 1 {
		t.Fatalf("a given cluster id was looked up (%d calls)", n)
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(notPEM, []byte("no"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		cfg     Config
		wantErr string
	}{
		{Config{APIKey: "k"}, "needs its secret"},
		{Config{APISecret: "s"}, "needs its key"},
		{Config{APIKey: "k", APISecret: "s", Token: "t"}, "not both"},
		{Config{CACert: filepath.Join(dir, "none.pem")}, "CA certificate"},
		{Config{CACert: notPEM}, "no PEM certificate"},
		{Config{ClientCert: notPEM}, "go together"},
		{Config{ClientCert: notPEM, ClientKey: notPEM}, "client certificate"},
	}
	for _, tc := range tests {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.wantErr) {
			t.Errorf("New(%+v): %v, want an error with %q", tc.cfg, err, tc.wantErr)
		}
	}
}

// TestTLS reaches a TLS server that wants a client certificate, trusting
// its CA, and fails without the CA.
func TestTLS(t *testing.T) {
	ca := testutil.NewCA(t, "ca")
	srv := httptest.NewUnstartedServer(&fakeServer{})
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.KeyPair(t, "server")}, ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert}
	srv.StartTLS()
	defer srv.Close()
	dir := t.TempDir()
	caFile := testutil.WriteFile(t, dir, "ca.pem", ca.PEM)
	cert, key := ca.IssueFiles(t, dir, "client")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "CA and client certificate", cfg: Config{CACert: caFile, ClientCert: cert, ClientKey: key}},
		{name: "insecure, with client certificate", cfg: Config{InsecureSkipTLSVerify: true, ClientCert: cert, ClientKey: key}},
		{name: "system CAs", cfg: Config{ClientCert: cert, ClientKey: key}, wantErr: "certificate"},
		{name: "no client certificate", cfg: Config{CACert: caFile}, wantErr: "certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.URL = srv.URL
			c, err := New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			id, err := c.ClusterID(context.Background())
			if tc.wantErr == "" {
				if err != nil || id != "dst-1" {
					t.Fatalf("cluster %q, %v", id, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
		})
	}
}
