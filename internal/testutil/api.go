package testutil

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"
)

// API is an HTTP client for Strait's REST API that validates every
// response against Confluent's OpenAPI spec.
type API struct {
	t    testing.TB
	Base string // e.g. http://127.0.0.1:8090/kafka/v3/clusters/<id>
	// Root is the server root, e.g. http://127.0.0.1:8090.
	Root string
	// Client sends the requests; replace it for TLS.
	Client *http.Client
	// Auth, if set, adds credentials to every request.
	Auth func(*http.Request)
}

// NewAPI returns a client for the API served at root (scheme://host:port),
// with Base set to root + prefix + "/clusters/" + clusterID.
func NewAPI(t testing.TB, root, prefix, clusterID string) *API {
	return &API{t: t, Root: root, Base: root + prefix + "/clusters/" + clusterID, Client: &http.Client{Timeout: 60 * time.Second}}
}

// With returns a copy of a that reports to t, for use in subtests.
func (a *API) With(t testing.TB) *API {
	c := *a
	c.t = t
	return &c
}

// Do sends a request to Base+path with body (nil, a []byte or a value to
// encode as JSON), validates the response against the spec and returns its
// status and body.
func (a *API) Do(method, path string, body any) (int, []byte) {
	a.t.Helper()
	return a.DoURL(method, a.Base+path, body)
}

// DoURL is Do with a full URL.
func (a *API) DoURL(method, url string, body any) (int, []byte) {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.Auth != nil {
		a.Auth(req)
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatal(err)
	}
	if len(out) > 0 || resp.StatusCode >= 400 {
		CheckResponse(a.t, req, resp.StatusCode, resp.Header, out)
	}
	return resp.StatusCode, out
}

// JSON sends a request like Do, requires status want, and decodes the
// response into v (if not nil).
func (a *API) JSON(method, path string, body any, want int, v any) {
	a.t.Helper()
	status, out := a.Do(method, path, body)
	if status != want {
		a.t.Fatalf("%s %s: status %d, want %d: %s", method, path, status, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			a.t.Fatalf("%s %s: decode %s: %v", method, path, out, err)
		}
	}
}
