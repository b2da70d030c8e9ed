// Package console serves Strait's web console at /console/: a page of
// plain HTML, CSS and JavaScript modules embedded in the binary (no build
// step), which reads and drives Strait through the same REST API as any
// other client, with the caller's own credentials.
//
// The one thing the API does not have is the past: the console charts each
// mirror's lag over the last hour, and a console opened now must show that
// hour. So the daemon side of this package samples every mirror's lag in
// memory (history.go) and serves it as JSON at /strait/v1/lag-history,
// behind the API's authentication and roles.
package console

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/restapi"
)

//go:embed assets
var assets embed.FS

// Paths the console is served at.
const (
	// Path is the console's page and assets.
	Path = "/console/"
	// HistoryPath answers a mirror's lag history (see Sampler).
	HistoryPath = "/strait/v1/lag-history"
)

// securityHeaders go on every console response. The policy lets the page
// load its own scripts, styles and images and talk to its own origin, and
// nothing else: no inline script or style, no framing, no form posts.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
		"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	"X-Content-Type-Options":     "nosniff",
	"X-Frame-Options":            "DENY",
	"Referrer-Policy":            "no-referrer",
	"Cross-Origin-Opener-Policy": "same-origin",
}

// contentTypes are the types of the assets, fixed here rather than read
// from the system's MIME tables, which differ between machines.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Config is what a Console needs.
type Config struct {
	// Manager returns the link manager; nil while the instance has none
	// (until the state is loaded).
	Manager func() *link.Manager
	// Guard authenticates and authorizes the lag history's callers, as
	// the API does; nil lets everyone in.
	Guard *auth.Holder
	// Log receives refusals; nil discards.
	Log *slog.Logger
	// Interval is the time between two lag samples; zero means
	// DefaultInterval.
	Interval time.Duration
}

// Console is the web console and its lag sampler.
type Console struct {
	sampler *Sampler
	history http.Handler
	files   map[string]file
}

// file is an embedded asset, ready to serve.
type file struct {
	body  []byte
	ctype string
	etag  string
}

// New returns the console; Run must run for the lag history to fill.
func New(cfg Config) *Console {
	s := NewSampler(ManagerSource(cfg.Manager), cfg.Interval)
	return newConsole(s, cfg.Guard, cfg.Log)
}

func newConsole(s *Sampler, guard *auth.Holder, log *slog.Logger) *Console {
	linkOf := func(r *http.Request) string { return r.URL.Query().Get("link") }
	return &Console{
		sampler: s,
		history: restapi.Guarded(guard, log, auth.ActionRead, linkOf, http.HandlerFunc(s.serveHistory)),
		files:   loadAssets(),
	}
}

// loadAssets reads the embedded assets once; a missing or unreadable one
// is a build fault.
func loadAssets() map[string]file {
	files := map[string]file{}
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ctype, ok := contentTypes[path.Ext(p)]
		if !ok {
			return fmt.Errorf("%s: no content type for its extension", p)
		}
		files[strings.TrimPrefix(p, "assets/")] = file{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	if err != nil {
		panic("console: embedded assets: " + err.Error())
	}
	return files
}

// Mount serves the console on mux: its page and assets under Path, the
// lag history at HistoryPath, and a redirect from / to the console. Other
// paths stay the mux's (the API answers its own 404s).
func (c *Console) Mount(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Path, c.serveAsset)
	mux.Handle("GET "+HistoryPath, c.history)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Path, http.StatusFound)
	})
}

// Run samples the lag of every mirror until ctx ends.
func (c *Console) Run(ctx context.Context) { c.sampler.Run(ctx) }

// Sampler is the console's lag sampler.
func (c *Console) Sampler() *Sampler { return c.sampler }

// serveAsset serves one embedded file; the page itself for Path.
func (c *Console) serveAsset(w http.ResponseWriter, r *http.Request) {
	for k, v := range securityHeaders {
		w.Header().Set(k, v)
	}
	name := strings.TrimPrefix(r.URL.Path, Path)
	if name == "" {
		name = "index.html"
	}
	f, ok := c.files[name]
	if !ok {
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", f.ctype)
	// Revalidated on every load, so an upgraded daemon's console is
	// never mixed with cached scripts of the old one.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", f.etag)
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.body))
}
