package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/auth"
)

// Any instance answers every call. Reads are answered from the state this
// instance holds; a change is made by the active instance (internal/link,
// roles.go), so an instance that is not active authenticates and
// authorizes the request itself, then has the active one serve it through
// the state topic (link.Manager.Request) and answers with what it
// returned. The active instance trusts the principal named in a forwarded
// request because only an instance can write the command: it comes through
// the state topic, not through the network.

// apiKind is the command kind of forwarded API requests.
const apiKind = "api"

// forwarded is a request as the active instance receives it.
type forwarded struct {
	Method      string `json:"method"`
	Path        string `json:"path"`
	RawQuery    string `json:"raw_query,omitempty"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
	// Principal and AuthMethod are who the forwarding instance
	// authenticated; Remote is the client's address, for the audit log.
	Principal  string `json:"principal"`
	AuthMethod string `json:"auth_method"`
	Remote     string `json:"remote"`
	// Base is the API root as the client reached it, for metadata.self.
	Base string `json:"base"`
}

// forwardedReply is the active instance's answer.
type forwardedReply struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
	RetryAfter  string `json:"retry_after,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

type forwardedKey struct{}

// forwardedOf returns the forwarded request r carries, if r is one.
func forwardedOf(r *http.Request) (*forwarded, bool) {
	f, ok := r.Context().Value(forwardedKey{}).(*forwarded)
	return f, ok
}

// forward has the active instance serve r and writes its answer.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, c *call) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: 413, msg: "Request body is too large."}
		}
		return badRequest("Cannot read the request body: %v", err)
	}
	p := principalOf(r)
	f := forwarded{
		Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery,
		ContentType: r.Header.Get("Content-Type"), Body: body,
		Principal: p.Name, AuthMethod: p.Method, Remote: r.RemoteAddr,
		Base: strings.TrimSuffix(c.baseURL(r), c.prefix),
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	out, err := s.m.Request(r.Context(), apiKind, b)
	if err != nil {
		s.log.Warn("forward a change to the active instance", "method", r.Method, "path", r.URL.Path, "err", err)
		return &apiError{status: http.StatusServiceUnavailable, code: 50301, msg: "No active Strait instance answered in time; the change may or may not have been made: read the state and try again."}
	}
	var rep forwardedReply
	if err := json.Unmarshal(out, &rep); err != nil {
		return err
	}
	noteForwardedTopics(r, rep)
	if rep.ContentType != "" {
		w.Header().Set("Content-Type", rep.ContentType)
	}
	if rep.RetryAfter != "" {
		w.Header().Set("Retry-After", rep.RetryAfter)
	}
	w.WriteHeader(rep.Status)
	_, _ = w.Write(rep.Body)
	return nil
}

// serveForwarded serves, on the active instance, a request another
// instance forwarded.
func (s *Server) serveForwarded(ctx context.Context, body []byte) ([]byte, error) {
	var f forwarded
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, err
	}
	target := f.Path
	if f.RawQuery != "" {
		target += "?" + f.RawQuery
	}
	ctx = context.WithValue(ctx, forwardedKey{}, &f)
	r, err := http.NewRequestWithContext(ctx, f.Method, target, bytes.NewReader(f.Body))
	if err != nil {
		return nil, err
	}
	if f.ContentType != "" {
		r.Header.Set("Content-Type", f.ContentType)
	}
	r.RemoteAddr = f.Remote
	rec := &recorder{header: http.Header{}}
	s.mux.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return json.Marshal(forwardedReply{
		Status:      rec.status,
		ContentType: rec.header.Get("Content-Type"),
		RetryAfter:  rec.header.Get("Retry-After"),
		Body:        rec.body.Bytes(),
	})
}

// noteForwardedTopics notes, for this instance's audit line, the result of
// each topic of a mirror alter the active instance answered (which logs
// them too).
func noteForwardedTopics(r *http.Request, rep forwardedReply) {
	if rep.Status != http.StatusOK || !strings.Contains(r.URL.Path, "/mirrors:") {
		return
	}
	var list api.AlterMirrorsDataList
	if json.Unmarshal(rep.Body, &list) != nil {
		return
	}
	for _, res := range list.Data {
		t := auditTopic{name: res.MirrorTopicName}
		if res.ErrorCode != nil {
			t.code = *res.ErrorCode
		}
		if res.ErrorMessage != nil {
			t.msg = *res.ErrorMessage
		}
		noteTopics(r, t)
	}
}

// recorder is a ResponseWriter that keeps the answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// forwardedPrincipal is the principal of a forwarded request.
func forwardedPrincipal(f *forwarded) auth.Principal {
	return auth.Principal{Name: f.Principal, Method: f.AuthMethod}
}

// leading reports whether this instance makes changes itself.
func (s *Server) leading() bool { return s.m == nil || s.m.Leading() }
