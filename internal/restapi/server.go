// Package restapi serves the Kafka REST v3 cluster-linking API (the subset
// Confluent's Cluster Linking serves) over net/http, under both /kafka/v3
// (Confluent Server and Cloud) and /v3 (REST Proxy).
//
// Handlers return errors; one adapter writes Confluent's error body
// {"error_code","message"} with the status from errors.go's table.
package restapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
)

// Prefixes the API is served under.
var Prefixes = []string{"/kafka/v3", "/v3"}

// maxBody caps a request body; bodies of this API are small.
const maxBody = 1 << 20

// Server is the REST API over a link.Manager.
type Server struct {
	m   *link.Manager
	log *slog.Logger
	mux *http.ServeMux
	opt Options
}

// New returns the API server for m. extra handlers (metrics, health) are
// mounted by the caller on the returned handler's mux via Handle.
func New(m *link.Manager, log *slog.Logger, opt Options) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opt.Timeout == 0 {
		opt.Timeout = 2 * time.Minute
	}
	s := &Server{m: m, log: log, mux: http.NewServeMux(), opt: opt}
	for _, p := range Prefixes {
		s.routes(p)
	}
	s.straitRoutes()
	s.mux.HandleFunc("/", s.notFoundAudited)
	if m != nil {
		m.HandleCommands(apiKind, s.serveForwarded)
	}
	return s
}

// Handle mounts another handler, for paths outside the API.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// ServeHTTP serves the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// handlerFunc is a handler that returns its error for the adapter to write.
type handlerFunc func(w http.ResponseWriter, r *http.Request, c *call) error

// call carries what every handler needs.
type call struct {
	prefix string
	// external is Options.ExternalURL.
	external string
}

func (s *Server) routes(p string) {
	c := p + "/clusters/{cluster_id}"
	l := c + "/links/{link_name}"
	s.handle("GET "+p+"/clusters", p, access{}, s.listClusters)
	s.handle("GET "+c, p, access{}, s.getCluster)
	s.handle("GET "+c+"/links", p, readAny, s.listLinks)
	s.handle("POST "+c+"/links", p, manageNew, s.createLink)
	s.handle("POST "+c+"/links/{$}", p, manageNew, s.createLink) // kcp posts with a trailing slash
	s.handle("GET "+l, p, readPath, s.getLink)
	s.handle("DELETE "+l, p, manage, s.deleteLink)
	s.handle("GET "+l+"/configs", p, readPath, s.listConfigs)
	s.handle("PUT "+l+"/configs:alter", p, manage, s.alterConfigs)
	s.handle("GET "+l+"/configs/{config_name}", p, readPath, s.getConfig)
	s.handle("PUT "+l+"/configs/{config_name}", p, manage, s.putConfig)
	s.handle("DELETE "+l+"/configs/{config_name}", p, manage, s.deleteConfig)
	s.handle("GET "+c+"/links/-/mirrors", p, readAny, s.listAllMirrors)
	s.handle("GET "+l+"/mirrors", p, readPath, s.listMirrors)
	s.handle("POST "+l+"/mirrors", p, operate, s.createMirror)
	s.handle("GET "+l+"/mirrors/{mirror_topic_name}", p, readPath, s.getMirror)
	s.handle("DELETE "+c+"/topics/{topic_name}", p, dropTopic, s.deleteTopic)
	for _, op := range link.Ops {
		s.handle("POST "+l+"/mirrors:"+string(op), p, operate, s.alterMirrors(op))
	}
}

// handle mounts h at pattern behind authentication, rate limiting and
// the authorization a; state-changing requests are audited.
func (s *Server) handle(pattern, prefix string, a access, h handlerFunc) {
	s.mux.HandleFunc(pattern, s.wrap(pattern, prefix, a, h))
}

// wrap is the handler handle mounts.
func (s *Server) wrap(pattern, prefix string, a access, h handlerFunc) http.HandlerFunc {
	c := &call{prefix: prefix, external: strings.TrimSuffix(s.opt.ExternalURL, "/")}
	changes := !strings.HasPrefix(pattern, http.MethodGet+" ")
	return func(w http.ResponseWriter, r *http.Request) {
		if changes {
			start := time.Now()
			sw := &statusWriter{ResponseWriter: w}
			w = sw
			r = withAuditNote(r)
			defer func() { s.audit(r, pattern, sw.status, time.Since(start)) }()
		}
		r, ok := s.admit(w, r, a)
		if !ok {
			return
		}
		if r.ContentLength > maxBody {
			writeJSON(w, http.StatusRequestEntityTooLarge, api.Error{ErrorCode: 413, Message: fmt.Sprintf("Request body is larger than %d bytes.", maxBody)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		if err := checkQuery(r, a.query); err != nil {
			writeError(w, r, s.log, err)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.opt.Timeout)
		defer cancel()
		r = r.WithContext(ctx)
		if _, fwd := forwardedOf(r); changes && !fwd && !s.leading() {
			h = s.forward
		}
		if err := h(w, r, c); err != nil {
			writeError(w, r, s.log, err)
		}
	}
}

// notFound answers unknown paths with 404 and known paths with a wrong
// method with 405, both in Confluent's error body.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		r2 := r.Clone(r.Context())
		r2.Method = m
		if _, pat := s.mux.Handler(r2); pat != "" && pat != "/" {
			writeJSON(w, http.StatusMethodNotAllowed, api.Error{ErrorCode: 405, Message: "HTTP 405 Method Not Allowed"})
			return
		}
	}
	writeJSON(w, http.StatusNotFound, api.Error{ErrorCode: 404, Message: "HTTP 404 Not Found"})
}

// notFoundAudited is notFound with an audit line for what would have
// changed state: a probe of the API's writes is worth a record too.
func (s *Server) notFoundAudited(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		s.notFound(w, r)
		return
	}
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	s.notFound(sw, r)
	s.audit(r, "unknown", sw.status, time.Since(start))
}

// baseURL is the absolute URL of the API root the request came through:
// the configured external URL, else the address of the socket the request
// arrived on. Never the Host header, which is the client's to write and
// would be repeated in every metadata.self.
func (c *call) baseURL(r *http.Request) string {
	if f, ok := forwardedOf(r); ok && f.Base != "" {
		return f.Base + c.prefix
	}
	if c.external != "" {
		return c.external + c.prefix
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := "localhost"
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		host = a.String()
	}
	return scheme + "://" + host + c.prefix
}

// decode reads a JSON body into v. An empty body leaves v as it is when
// allowEmpty is set.
// jsonSpace is the white space JSON allows between tokens (RFC 8259).
const jsonSpace = " \t\r\n"

func decode(r *http.Request, v any, allowEmpty bool) error {
	ct := r.Header.Get("Content-Type")
	if ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return &apiError{status: http.StatusUnsupportedMediaType, code: 415, msg: fmt.Sprintf("HTTP 415 Unsupported Media Type: send the body as application/json, not %q.", ct)}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: 413, msg: fmt.Sprintf("Request body is larger than %d bytes.", maxBody)}
		}
		return badRequest("Cannot read the request body: %v", err)
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		if allowEmpty {
			return nil
		}
		return badRequest("The request body is empty; a JSON object is required.")
	}
	if ct == "" {
		// A web page can make a browser send a body without a
		// Content-Type to a daemon on loopback, with no preflight:
		// a body that changes state must say it is JSON.
		return &apiError{status: http.StatusUnsupportedMediaType, code: 415, msg: "HTTP 415 Unsupported Media Type: send the body with Content-Type: application/json."}
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	// A field the contract does not define is most likely a typo
	// (source_cluster for source_cluster_id): refused, never ignored.
	dec.DisallowUnknownFields()
	if !strings.HasPrefix(strings.TrimLeft(string(body), jsonSpace), "{") {
		return badRequest("The request body must be a JSON object.")
	}
	err = dec.Decode(v)
	if err == nil {
		// dec.More is false before a stray '}' or ']', so what follows
		// the document is checked byte by byte: only white space may.
		if rest := strings.Trim(string(body[dec.InputOffset():]), jsonSpace); rest != "" {
			if len(rest) > 32 {
				rest = rest[:32] + "..."
			}
			err = fmt.Errorf("data after the JSON document: %q", rest)
		}
	}
	if f, ok := strings.CutPrefix(fmt.Sprint(err), "json: unknown field "); ok {
		return badRequest("Unknown field %s in the request body.", f)
	}
	if err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return badRequest("Cannot deserialize value of type `%s` from %s at '%s'.", te.Type, te.Value, te.Field)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badRequest("Malformed JSON at byte %d: %v.", se.Offset, err)
		}
		return badRequest("Malformed JSON: %v.", err)
	}
	return nil
}

// boolParam reads a true/false query parameter with a default.
func boolParam(r *http.Request, name string, def bool) (bool, error) {
	v := r.URL.Query().Get(name)
	switch strings.ToLower(v) {
	case "":
		return def, nil
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, badRequest("Invalid value '%s' for query parameter '%s': use true or false.", v, name)
}

// checkCluster fails unless the path's cluster is the destination.
func (s *Server) checkCluster(r *http.Request) error {
	return s.m.CheckCluster(r.PathValue("cluster_id"))
}

// queryParams are the query parameters the contract defines, on any route.
var queryParams = map[string]bool{
	"validate_only": true, "validate_link": true, "force": true, "include_tasks": true,
	"include_state_transition_errors": true, "include_partition_level_truncation_data": true,
	"link_name": true, "mirror_status": true,
}

// checkQuery refuses a query parameter the contract does not define, or
// the route's own (extra): a misspelled validate_only would otherwise
// change state.
func checkQuery(r *http.Request, extra []string) error {
	for k := range r.URL.Query() {
		if !queryParams[k] && !slices.Contains(extra, k) {
			return badRequest("Unknown query parameter '%s'.", k)
		}
	}
	return nil
}
