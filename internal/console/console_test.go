package console

import (
	"encoding/json"
	"io"
	"io/fs"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/auth"
)

// newTestServer serves a console over a fake source on a mux whose other
// paths answer 404, as the API does.
func newTestServer(t *testing.T, guard *auth.Holder) (*httptest.Server, *Sampler) {
	t.Helper()
	src := &fakeSource{ok: true, samples: []Sample{{Link: "l", Topic: "t", Records: 9, Seconds: math.NaN()}}}
	s := NewSampler(src.get, time.Second)
	s.Sample()
	c := newConsole(s, guard, nil)
	mux := http.NewServeMux()
	c.Mount(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, `{"error_code":404,"message":"HTTP 404 Not Found"}`, http.StatusNotFound)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, s
}

func get(t *testing.T, url string, creds ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) == 2 {
		req.SetBasicAuth(creds[0], creds[1])
	}
	cl := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestAssetsAndHeaders(t *testing.T) {
	srv, _ := newTestServer(t, nil)
	tests := []struct {
		path, status, ctype, contains string
	}{
		{"/console/", "200", "text/html; charset=utf-8", `<script type="module" src="app.js">`},
		{"/console/index.html", "200", "text/html; charset=utf-8", "<title>Strait console</title>"},
		{"/console/app.js", "200", "text/javascript; charset=utf-8", "import "},
		{"/console/console.css", "200", "text/css; charset=utf-8", "body"},
		{"/console/favicon.svg", "200", "image/svg+xml", "<svg"},
		{"/console/nothing.js", "404", "", ""},
		{"/console/../../etc/passwd", "404", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, srv.URL+tc.path)
			if got := resp.Status[:3]; got != tc.status {
				// ServeMux cleans ".." paths with a redirect first,
				// out of the console.
				loc := resp.Header.Get("Location")
				if tc.status != "404" || resp.StatusCode/100 != 3 || strings.HasPrefix(loc, Path) {
					t.Fatalf("status %s (to %q), want %s", resp.Status, loc, tc.status)
				}
			}
			if tc.ctype != "" && resp.Header.Get("Content-Type") != tc.ctype {
				t.Fatalf("Content-Type %q, want %q", resp.Header.Get("Content-Type"), tc.ctype)
			}
			if !strings.Contains(body, tc.contains) {
				t.Fatalf("body does not contain %q", tc.contains)
			}
			if resp.StatusCode == http.StatusOK {
				csp := resp.Header.Get("Content-Security-Policy")
				for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
					if !strings.Contains(csp, want) {
						t.Fatalf("Content-Security-Policy %q lacks %q", csp, want)
					}
				}
				if strings.Contains(csp, "unsafe") {
					t.Fatalf("Content-Security-Policy %q allows unsafe sources", csp)
				}
				if resp.Header.Get("X-Content-Type-Options") != "nosniff" {
					t.Fatal("no X-Content-Type-Options: nosniff")
				}
			}
		})
	}
}

func TestRootRedirectsOnlyRoot(t *testing.T) {
	srv, _ := newTestServer(t, nil)
	resp, _ := get(t, srv.URL+"/")
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != Path {
		t.Fatalf("GET / answers %s to %q, want 302 to %s", resp.Status, resp.Header.Get("Location"), Path)
	}
	resp, _ = get(t, srv.URL+"/console")
	if resp.StatusCode/100 != 3 || resp.Header.Get("Location") != Path {
		t.Fatalf("GET /console answers %s to %q, want a redirect to %s", resp.Status, resp.Header.Get("Location"), Path)
	}
	for _, p := range []string{"/kafka", "/nothing", "/strait/v1/other"} {
		if resp, _ := get(t, srv.URL+p); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s answers %s, want the API's 404", p, resp.Status)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("POST / answers %s, want the API's 404", resp.Status)
	}
}

func TestLagHistoryEndpoint(t *testing.T) {
	hash, err := auth.HashSecret("reader-secret")
	if err != nil {
		t.Fatal(err)
	}
	g, err := auth.New(auth.Config{
		APIKeys: []auth.APIKey{{Key: "reader", SecretHash: hash}, {Key: "other", SecretHash: hash}},
		Roles:   []auth.Role{{Principal: "User:reader", Role: "viewer", Links: []string{"l"}}, {Principal: "User:other", Role: "operator", Links: []string{"x"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := newTestServer(t, auth.NewHolder(g))
	u := srv.URL + HistoryPath
	tests := []struct {
		name   string
		query  string
		creds  []string
		status int
		code   int
	}{
		{"no credentials", "?link=l&topic=t", nil, 401, 40101},
		{"wrong secret", "?link=l&topic=t", []string{"reader", "nope"}, 401, 40101},
		{"no role on the link", "?link=l&topic=t", []string{"other", "reader-secret"}, 403, 40301},
		{"reader", "?link=l&topic=t", []string{"reader", "reader-secret"}, 200, 0},
		{"unknown mirror", "?link=l&topic=none", []string{"reader", "reader-secret"}, 200, 0},
		{"no topic", "?link=l", []string{"reader", "reader-secret"}, 400, 400},
		{"unknown parameter", "?link=l&topic=t&since=1", []string{"reader", "reader-secret"}, 400, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, u+tc.query, tc.creds...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %s (%s), want %d", resp.Status, body, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Fatalf("Content-Type %q", ct)
			}
			if tc.status == 401 && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
			}
			if tc.code != 0 {
				var e struct {
					ErrorCode int    `json:"error_code"`
					Message   string `json:"message"`
				}
				if err := json.Unmarshal([]byte(body), &e); err != nil || e.ErrorCode != tc.code || e.Message == "" {
					t.Fatalf("error body %s, want error_code %d", body, tc.code)
				}
				return
			}
			var h historyBody
			if err := json.Unmarshal([]byte(body), &h); err != nil {
				t.Fatal(err)
			}
			if h.Kind != "StraitLagHistory" || h.IntervalMs != 1000 || h.Points == nil {
				t.Fatalf("answer %s", body)
			}
			if strings.Contains(tc.query, "topic=t") && (len(h.Points) != 1 || h.Points[0].LagRecords != 9 || h.Points[0].LagSeconds != nil) {
				t.Fatalf("points %s, want one of 9 records and null seconds", body)
			}
		})
	}
}

// TestAssetsPutNoDataIntoMarkup checks the assets for the ways data could
// become markup or leave the tab: the page must build its DOM from text.
func TestAssetsPutNoDataIntoMarkup(t *testing.T) {
	forbidden := regexp.MustCompile(`innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\(|new Function|localStorage|document\.cookie|setAttribute\('style'|javascript:`)
	inline := regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]|\sstyle=|\son[a-z]+=`)
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		if m := forbidden.Find(b); m != nil {
			t.Errorf("%s uses %s", p, m)
		}
		if strings.HasSuffix(p, ".html") {
			if m := inline.Find(b); m != nil {
				t.Errorf("%s has inline script or style: %s", p, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
