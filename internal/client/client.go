// Package client is a typed client of Strait's REST API (the Kafka REST v3
// cluster-linking API that `strait serve` serves under /kafka/v3), on the
// wire types of package api. The command line's link and mirror verbs use
// it; it knows nothing of Strait's internals.
//
// A Client is safe for concurrent use. Every call takes a context that
// bounds it; an error answer of the server is returned as an *Error with
// Confluent's error_code and message.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"

	"github.com/strait-dev/strait/api"
)

// DefaultURL is where `strait serve` and `strait demo` listen by default.
const DefaultURL = "http://127.0.0.1:8090"

// Config says how to reach the API.
type Config struct {
	// URL is the server's address, e.g. http://127.0.0.1:8090. A URL that
	// already ends in /kafka/v3, /v3 or /kafka is used as given (with /v3
	// added to /kafka); otherwise /kafka/v3 is added. Empty means
	// DefaultURL.
	URL string
	// APIKey and APISecret are sent as HTTP Basic credentials; Token as a
	// bearer token. At most one of the two kinds.
	APIKey    string
	APISecret string
	Token     string
	// CACert is a PEM file of certificates to trust instead of the
	// system's; ClientCert and ClientKey a PEM pair for mutual TLS.
	CACert     string
	ClientCert string
	ClientKey  string
	// InsecureSkipTLSVerify accepts any server certificate.
	InsecureSkipTLSVerify bool
	// ClusterID is the destination cluster's id; empty means ask the
	// server (GET /clusters) on first use.
	ClusterID string
	// Transport, if set, replaces the HTTP transport the TLS settings
	// build (tests).
	Transport http.RoundTripper
}

// Client calls the API.
type Client struct {
	base string // scheme://host[:port]/prefix, no trailing slash
	hc   *http.Client
	auth func(*http.Request)

	mu        sync.Mutex
	clusterID string
}

// New returns a client for cfg. It reads the TLS files now, and sends no
// request.
func New(cfg Config) (*Client, error) {
	base, err := baseURL(cfg.URL)
	if err != nil {
		return nil, err
	}
	c := &Client{base: base, clusterID: cfg.ClusterID, auth: func(*http.Request) {}}
	switch {
	case cfg.Token != "" && (cfg.APIKey != "" || cfg.APISecret != ""):
		return nil, errors.New("give an API key and secret or a token, not both")
	case cfg.Token != "":
		c.auth = func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+cfg.Token) }
	case cfg.APIKey != "" && cfg.APISecret == "":
		return nil, errors.New("an API key needs its secret")
	case cfg.APIKey == "" && cfg.APISecret != "":
		return nil, errors.New("an API secret needs its key")
	case cfg.APIKey != "":
		c.auth = func(r *http.Request) { r.SetBasicAuth(cfg.APIKey, cfg.APISecret) }
	}
	rt := cfg.Transport
	if rt == nil {
		if rt, err = transport(cfg); err != nil {
			return nil, err
		}
	}
	// No client-wide timeout: the caller's context bounds each call, and
	// promote or reverse answer only when done (the server bounds them).
	c.hc = &http.Client{Transport: rt}
	return c, nil
}

// BaseURL is the API root the client sends to, e.g.
// http://127.0.0.1:8090/kafka/v3.
func (c *Client) BaseURL() string { return c.base }

// baseURL normalises a server address to the API root.
func baseURL(raw string) (string, error) {
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", raw, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("server URL %q: want http://host:port or https://host:port", raw)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", fmt.Errorf("server URL %q: no query, fragment or credentials in it", raw)
	}
	p := strings.TrimSuffix(u.Path, "/")
	switch {
	case strings.HasSuffix(p, "/v3"):
	case strings.HasSuffix(p, "/kafka"):
		p += "/v3"
	default:
		p += "/kafka/v3"
	}
	u.Path = p
	return u.String(), nil
}

func transport(cfg Config) (http.RoundTripper, error) {
	// InsecureSkipVerify only when the operator asks for it.
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.InsecureSkipTLSVerify}
	if cfg.CACert != "" {
		pem, err := os.ReadFile(cfg.CACert)
		if err != nil {
			return nil, fmt.Errorf("CA certificate: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("CA certificate %s: no PEM certificate in it", cfg.CACert)
		}
		tc.RootCAs = pool
	}
	if (cfg.ClientCert == "") != (cfg.ClientKey == "") {
		return nil, errors.New("a client certificate and its key go together")
	}
	if cfg.ClientCert != "" {
		pair, err := tls.LoadX509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{pair}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.TLSClientConfig = tc
	return t, nil
}

// Error is an error answer of the server: its HTTP status and Confluent's
// error body.
type Error struct {
	StatusCode int
	// ErrorCode is the body's error_code (0 when the body was not
	// Confluent's, e.g. a proxy's page).
	ErrorCode int
	Message   string
}

func (e *Error) Error() string {
	if e.ErrorCode == 0 {
		return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
	}
	return fmt.Sprintf("%s (error code %d)", e.Message, e.ErrorCode)
}

// IsNotFound reports whether err is the server saying the resource does
// not exist (HTTP 404).
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.StatusCode == http.StatusNotFound
}

// do sends a request to base+path with query q and body (nil, or a value
// to send as JSON), and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	c.auth(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Answers of this API are small; a huge one is not this API.
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, u, err)
	}
	if resp.StatusCode >= 300 {
		return answerError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the API's JSON: %w", method, u, err)
	}
	return nil
}

// answerError reads an error answer: Confluent's body when it is one,
// else the start of whatever came.
func answerError(status int, data []byte) error {
	var body api.Error
	if json.Unmarshal(data, &body) == nil && body.Message != "" {
		return &Error{StatusCode: status, ErrorCode: body.ErrorCode, Message: body.Message}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &Error{StatusCode: status, Message: msg}
}

// ClusterID returns the destination cluster's id: the configured one, or
// the first (Strait serves one) that GET /clusters lists, asked once.
func (c *Client) ClusterID(ctx context.Context) (string, error) {
	c.mu.Lock()
	id := c.clusterID
	c.mu.Unlock()
	if id != "" {
		return id, nil
	}
	var list api.ClusterDataList
	if err := c.do(ctx, http.MethodGet, "/clusters", nil, nil, &list); err != nil {
		return "", fmt.Errorf("find the destination cluster: %w", err)
	}
	if len(list.Data) == 0 {
		return "", errors.New("find the destination cluster: the server lists no cluster")
	}
	c.mu.Lock()
	c.clusterID = list.Data[0].ClusterID
	id = c.clusterID
	c.mu.Unlock()
	return id, nil
}

// cluster returns the path of the destination cluster, /clusters/{id}.
func (c *Client) cluster(ctx context.Context) (string, error) {
	id, err := c.ClusterID(ctx)
	if err != nil {
		return "", err
	}
	return "/clusters/" + url.PathEscape(id), nil
}

// linkPath returns /clusters/{id}/links/{name}.
func (c *Client) linkPath(ctx context.Context, name string) (string, error) {
	if name == "" {
		return "", errors.New("no link name")
	}
	p, err := c.cluster(ctx)
	if err != nil {
		return "", err
	}
	return p + "/links/" + url.PathEscape(name), nil
}
