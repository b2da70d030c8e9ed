package restapi

import (
	"context"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/strait-dev/strait/internal/auth"
)

// Options tune the API server; zero values are fine.
type Options struct {
	// Guard authenticates, authorizes and rate-limits requests; nil lets
	// every request in as User:ANONYMOUS.
	Guard *auth.Holder
	// Timeout bounds one request's work; zero means two minutes (a
	// promote waits up to a minute for its mirrors to catch up).
	Timeout time.Duration
	// ExternalURL is the API's URL as clients reach it (scheme and host,
	// no path), used in metadata.self; empty means the address of the
	// socket a request came in on.
	ExternalURL string
}

// What a route needs: one of auth's actions, and where the link it acts
// on is named.
type access struct {
	action string
	// link returns the link the request acts on; "" means every link
	// (the action must be granted on all of them).
	link func(s *Server, r *http.Request) string
	// anyLink lets in a principal with the action on at least one link;
	// the handler shows only what the principal may read.
	anyLink bool
	// query lists the route's own query parameters, beyond those of the
	// contract (Strait's endpoints).
	query []string
}

var (
	pathLink  = func(_ *Server, r *http.Request) string { return r.PathValue("link_name") }
	queryLink = func(_ *Server, r *http.Request) string { return r.URL.Query().Get("link_name") }
	// topicLink is the link of the mirror topic being deleted; deleting a
	// plain topic through Strait needs the action on every link.
	topicLink = func(s *Server, r *http.Request) string {
		l, _ := s.m.MirrorLink(r.PathValue("topic_name"))
		return l
	}
	readPath  = access{action: auth.ActionRead, link: pathLink}
	readAny   = access{action: auth.ActionRead, anyLink: true}
	operate   = access{action: auth.ActionOperate, link: pathLink}
	manage    = access{action: auth.ActionManage, link: pathLink}
	manageNew = access{action: auth.ActionManage, link: queryLink}
	dropTopic = access{action: auth.ActionOperate, link: topicLink}
)

var (
	errUnauthenticated = &apiError{status: http.StatusUnauthorized, code: 40101, msg: "Authentication failed"}
	errForbidden       = &apiError{status: http.StatusForbidden, code: 40301, msg: "Request is not authorized"}
)

type principalKey struct{}

// principalOf is the request's authenticated principal.
func principalOf(r *http.Request) auth.Principal {
	if p, ok := r.Context().Value(principalKey{}).(auth.Principal); ok {
		return p
	}
	return auth.Anonymous
}

// guard returns the current guard; an open one when none is configured.
func (s *Server) guard() *auth.Guard {
	if s.opt.Guard != nil {
		if g := s.opt.Guard.Get(); g != nil {
			return g
		}
	}
	return openGuard
}

var openGuard, _ = auth.New(auth.Config{})

// admit authenticates, rate-limits and authorizes a request. It returns
// the request, carrying its principal once authenticated, and whether to
// serve it; when not, the refusal is written.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, a access) (*http.Request, bool) {
	g := s.guard()
	if f, ok := forwardedOf(r); ok {
		// Authenticated and rate-limited by the instance that forwarded
		// it; authorized again here, with this instance's roles.
		p := forwardedPrincipal(f)
		r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		return r, s.authorize(w, r, g, p, a)
	}
	// Failed authentications have a budget, per presented key or per
	// address (see auth.Guard.Admit).
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	p, wait, err := g.Admit(r, host)
	if err != nil {
		// Why is logged, not answered: a caller probing keys learns
		// nothing from the body.
		s.log.Warn("request refused: authentication failed", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err)
		if wait > 0 {
			tooManyRequests(w, r, wait)
			return r, false
		}
		if errors.Is(err, auth.ErrNoCredentials) || errors.Is(err, auth.ErrBadCredentials) {
			w.Header().Set("WWW-Authenticate", g.Challenge())
		}
		writeError(w, r, s.log, errUnauthenticated)
		return r, false
	}
	r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
	if ok, wait := g.Allow(p); !ok {
		tooManyRequests(w, r, wait)
		return r, false
	}
	return r, s.authorize(w, r, g, p, a)
}

// authorize checks that p may do a; when not, the refusal is written.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, g *auth.Guard, p auth.Principal, a access) bool {
	allowed := false
	switch {
	case a.action == "":
		allowed = true
	case a.anyLink:
		allowed = g.CanAny(p, a.action)
	default:
		allowed = g.Allowed(p, a.action, a.link(s, r))
	}
	if !allowed {
		s.log.Warn("request refused: not authorized", "principal", p.Name, "method", r.Method, "path", r.URL.Path, "action", a.action)
		writeError(w, r, s.log, errForbidden)
	}
	return allowed
}

// canRead reports whether the request's principal may read link; list
// handlers show only such links and their mirrors.
func (s *Server) canRead(r *http.Request, link string) bool {
	return s.guard().Allowed(principalOf(r), auth.ActionRead, link)
}

// tooManyRequests answers 429 as Confluent's REST front end does: an HTML
// page, not JSON, with Retry-After.
func tooManyRequests(w http.ResponseWriter, r *http.Request, wait time.Duration) {
	w.Header().Set("Content-Type", "text/html;charset=utf-8")
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int((wait+time.Second-1)/time.Second))))
	w.WriteHeader(http.StatusTooManyRequests)
	fmt.Fprintf(w, `<html> <head> <meta http-equiv="Content-Type" content="text/html;charset=utf-8"/> <title>Error 429 Too Many Requests</title> </head> <body> <h2>HTTP ERROR 429 Too Many Requests</h2> <table> <tr> <th>URI:</th> <td>%s</td> </tr> <tr> <th>STATUS:</th> <td>429</td> </tr> <tr> <th>MESSAGE:</th> <td>Too Many Requests</td> </tr> </table> </body> </html>`+"\n", html.EscapeString(r.URL.Path))
}

// statusWriter remembers the status written, for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// auditNote is what a handler tells the audit log beyond the request
// itself: the topics it acted on, each with its own result (a mirror
// alter answers 200 with a refusal for some topics).
type auditNote struct {
	mu     sync.Mutex
	topics []auditTopic
}

// auditTopic is one topic's outcome; a zero code is success.
type auditTopic struct {
	name string
	code int
	msg  string
}

type auditKey struct{}

// withAuditNote gives r a note its handler can fill (noteTopics).
func withAuditNote(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), auditKey{}, &auditNote{}))
}

// noteTopics records the topics a request acted on, for its audit lines.
func noteTopics(r *http.Request, ts ...auditTopic) {
	n, _ := r.Context().Value(auditKey{}).(*auditNote)
	if n == nil {
		return
	}
	n.mu.Lock()
	n.topics = append(n.topics, ts...)
	n.mu.Unlock()
}

func notedTopics(r *http.Request) []auditTopic {
	n, _ := r.Context().Value(auditKey{}).(*auditNote)
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]auditTopic(nil), n.topics...)
}

// audit logs a state-changing request: who, what, on what, and how it
// ended; then, for a request that acted on topics one by one, a line per
// topic with that topic's result. Bodies are not logged: they may hold
// credentials.
func (s *Server) audit(r *http.Request, route string, status int, took time.Duration) {
	p := principalOf(r)
	target := r.PathValue("link_name")
	if target == "" {
		target = r.URL.Query().Get("link_name")
	}
	topics := notedTopics(r)
	res := result(status)
	refused := 0
	for _, t := range topics {
		if t.code != 0 {
			refused++
		}
	}
	switch {
	case status >= 300 || refused == 0:
	case refused == len(topics):
		res = "rejected" // every topic refused, in a 200
	default:
		res = "partial"
	}
	attrs := []any{
		"principal", p.Name,
		"auth", p.Method,
		"remote", r.RemoteAddr,
		"operation", route,
		"path", r.URL.Path,
		"link", target,
		"status", status,
		"result", res,
		"took_ms", took.Milliseconds(),
	}
	if len(topics) > 0 {
		attrs = append(attrs, "topics", len(topics), "topics_refused", refused)
	}
	for _, k := range []string{"mirror_topic_name", "topic_name", "config_name"} {
		if v := r.PathValue(k); v != "" {
			attrs = append(attrs, k, v)
		}
	}
	if q := r.URL.RawQuery; q != "" {
		attrs = append(attrs, "query", q)
	}
	if _, ok := forwardedOf(r); ok {
		attrs = append(attrs, "forwarded", true)
	}
	s.log.Info("audit", attrs...)
	if status >= 300 {
		return // the request failed whole: no topic took it
	}
	validateOnly := r.URL.Query().Get("validate_only") == "true"
	for _, t := range topics {
		ta := []any{"principal", p.Name, "operation", route, "link", target, "topic", t.name}
		if validateOnly {
			ta = append(ta, "validate_only", true)
		}
		if t.code == 0 {
			ta = append(ta, "result", "success")
		} else {
			ta = append(ta, "result", "refused", "error_code", t.code, "error", t.msg)
		}
		s.log.Info("audit topic", ta...)
	}
}

func result(status int) string {
	switch {
	case status < 300:
		return "success"
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return "denied"
	case status < 500:
		return "rejected"
	}
	return "failed"
}
