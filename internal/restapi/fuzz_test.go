package restapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/strait-dev/strait/api"
)

// Fuzz targets for what a client sends: request bodies (decode, for every
// request body type) and boolean query parameters (boolParam). The seed
// corpus is in testdata/fuzz/<FuzzName>/; docs/security.md says how to run
// them.

// bodyKinds are the request bodies the API decodes, each with the
// allowEmpty its handler passes to decode.
var bodyKinds = []struct {
	name       string
	new        func() any
	allowEmpty bool
}{
	{"createLinkRequest", func() any { return new(api.CreateLinkRequest) }, true},
	{"updateConfigRequest", func() any { return new(api.UpdateConfigRequest) }, false},
	{"alterConfigsRequest", func() any { return new(api.AlterConfigsRequest) }, false},
	{"createMirrorRequest", func() any { return new(api.CreateMirrorRequest) }, false},
	{"alterMirrorsRequest", func() any { return new(api.AlterMirrorsRequest) }, false},
}

// countingHandler counts the records logged at error level.
type countingHandler struct{ errors atomic.Int64 }

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelError {
		h.errors.Add(1)
	}
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

// FuzzDecode decodes a fuzzed body with a fuzzed Content-Type into each
// request body type, as the handlers do (the body behind
// http.MaxBytesReader). decode must never panic, and every error it
// returns must be a client error (400, 413 or 415) that writeError answers
// with that status and a Confluent error body, without logging it as a
// server fault. A body it accepts must be JSON (or empty where allowed),
// and the value it fills must survive a round trip through JSON. With
// oversize the body is padded past maxBody and sent without a length, as
// a chunked upload would be.
func FuzzDecode(f *testing.F) {
	seeds := []struct {
		kind        uint8
		contentType string
		body        string
	}{
		{0, "application/json", `{"source_cluster_id":"src-1","configs":[{"name":"bootstrap.servers","value":"kafka:9092"},{"name":"acl.sync.enable","value":null}]}`},
		{0, "", ""},
		{0, "application/json; charset=utf-8", " \r\n\t"},
		{0, "application/vnd.api+json", `{"destination_cluster_id":"d","remote_cluster_id":"r","cluster_link_id":"c"}`},
		{1, "application/json", `{"value":"60000"}`},
		{1, "application/json", `{"value":null}`},
		{1, "application/json", ``},
		{2, "application/json", `{"data":[{"name":"cluster.link.paused","value":"true"},{"name":"acl.filters","operation":"DELETE"}],"validate_only":true}`},
		{2, "application/json", `{"data":{"name":"x"}}`},
		{3, "application/json", `{"source_topic_name":"orders","mirror_topic_name":"dc1.orders","replication_factor":3,"configs":[{"name":"retention.ms","value":"1000"}]}`},
		{3, "application/json", `{"replication_factor":"3"}`},
		{3, "application/json", `{"replication_factor":1e400}`},
		{4, "application/json", `{"mirror_topic_names":["orders","payments"]}`},
		{4, "application/json", `{"mirror_topic_name_pattern":"orders-.*"}`},
		{4, "application/json", `{"mirror_topic_names":null}`},
		{4, "text/plain", `{"mirror_topic_names":["orders"]}`},
		{4, "application/x-www-form-urlencoded", `mirror_topic_names=orders`},
		{4, "application/json; charset", `{}`},
		{4, "application/json", `{"mirror_topic_names":["orders"]`},
		{4, "application/json", `{"mirror_topic_names":["orders"]} {}`},
		{4, "application/json", "{\"mirror_topic_names\":[\"\xff\xfe\"]}"},
		{4, "application/json", `[]`},
		{4, "application/json", `null`},
		{4, "application/json", `null}`},
		{4, "application/json", `{"mirror_topic_names":["orders"]}]`},
		{4, "application/json", "{\"mirror_topic_names\":[\"orders\"]}\u00a0"},
	}
	for _, s := range seeds {
		f.Add(s.kind, s.contentType, []byte(s.body), false)
	}
	f.Add(uint8(3), "application/json", []byte(`{"source_topic_name":"orders"}`), true)
	f.Add(uint8(3), "text/plain", []byte(`{"source_topic_name":"orders"}`), true)
	f.Fuzz(func(t *testing.T, kind uint8, contentType string, body []byte, oversize bool) {
		k := bodyKinds[int(kind)%len(bodyKinds)]
		if oversize {
			body = append(bytes.Clone(body), bytes.Repeat([]byte{' '}, maxBody+1)...)
		}
		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		if oversize {
			r.ContentLength = -1
		}
		if contentType != "" {
			r.Header.Set("Content-Type", contentType)
		}
		w := httptest.NewRecorder()
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		v := k.new()
		err := decode(r, v, k.allowEmpty)
		if err == nil {
			if oversize {
				t.Fatalf("%s: accepted a body of %d bytes", k.name, len(body))
			}
			if len(bytes.TrimSpace(body)) == 0 && k.allowEmpty { // Unicode white space too
				if !reflect.ValueOf(v).Elem().IsZero() {
					t.Fatalf("%s: an empty body filled %+v", k.name, v)
				}
				return
			}
			if !json.Valid(body) {
				t.Fatalf("%s: accepted %q, which is not JSON", k.name, body)
			}
			again, err := json.Marshal(v)
			if err != nil {
				t.Fatalf("%s: %+v does not marshal: %v", k.name, v, err)
			}
			v2 := k.new()
			r2 := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(again))
			r2.Header.Set("Content-Type", "application/json")
			if err := decode(r2, v2, k.allowEmpty); err != nil || !reflect.DeepEqual(v, v2) {
				t.Fatalf("%s: round trip of %+v through %s: %+v, %v", k.name, v, again, v2, err)
			}
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) {
			t.Fatalf("%s: error %T %v is not an *apiError: it would be answered 500", k.name, err, err)
		}
		switch {
		case ae.status != http.StatusBadRequest && ae.status != http.StatusRequestEntityTooLarge && ae.status != http.StatusUnsupportedMediaType:
			t.Fatalf("%s: status %d (%v)", k.name, ae.status, err)
		case ae.code != ae.status:
			t.Fatalf("%s: status %d with error_code %d", k.name, ae.status, ae.code)
		case ae.status == http.StatusUnsupportedMediaType && contentType == "" && len(bytes.TrimSpace(body)) == 0:
			t.Fatalf("%s: 415 for an empty body without a Content-Type", k.name)
		case oversize && ae.status != http.StatusRequestEntityTooLarge && ae.status != http.StatusUnsupportedMediaType:
			t.Fatalf("%s: oversized body answered %d (%v)", k.name, ae.status, err)
		case !oversize && ae.status == http.StatusRequestEntityTooLarge:
			t.Fatalf("%s: a body of %d bytes answered 413", k.name, len(body))
		}
		// The answer the adapter writes for it.
		h := &countingHandler{}
		writeError(w, r, slog.New(h), err)
		var eb api.Error
		if w.Code != ae.status || json.Unmarshal(w.Body.Bytes(), &eb) != nil || eb.ErrorCode != ae.code || eb.Message == "" {
			t.Fatalf("%s: %v answered %d %q", k.name, err, w.Code, w.Body.String())
		}
		if h.errors.Load() != 0 {
			t.Fatalf("%s: client error %v logged as a server fault", k.name, err)
		}
	})
}

// FuzzBoolParam checks boolParam on any query string: it takes true and
// false in any case and the default for a missing or empty parameter, and
// refuses anything else with a 400 that names the parameter.
func FuzzBoolParam(f *testing.F) {
	for _, s := range []struct {
		query, name string
		def         bool
	}{
		{"validate_only=true", "validate_only", false},
		{"validate_only=FALSE&force=True", "force", false},
		{"validate_link=", "validate_link", true},
		{"", "validate_link", true},
		{"validate_only=yes", "validate_only", false},
		{"validate_only=1", "validate_only", false},
		{"validate_only=true&validate_only=false", "validate_only", true},
		{"validate_only=%74rue", "validate_only", false},
		{"validate_only=%zz&force=true", "force", false},
		{"validate_only=tr%00ue", "validate_only", false},
		{"a;b=true", "b", false},
		{"include_tasks=true", "", false},
	} {
		f.Add(s.query, s.name, s.def)
	}
	f.Fuzz(func(t *testing.T, query, name string, def bool) {
		r := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: "/", RawQuery: query}}
		got, err := boolParam(r, name, def)
		raw := r.URL.Query().Get(name)
		if err == nil {
			switch strings.ToLower(raw) {
			case "":
				if got != def {
					t.Fatalf("%q=%q: %v, want the default %v", name, raw, got, def)
				}
			case "true", "false":
				if got != (strings.ToLower(raw) == "true") {
					t.Fatalf("%q=%q: %v", name, raw, got)
				}
			default:
				t.Fatalf("%q=%q accepted as %v", name, raw, got)
			}
			return
		}
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest || ae.code != 400 {
			t.Fatalf("%q=%q: %T %v, want a 400", name, raw, err, err)
		}
		if lower := strings.ToLower(raw); lower == "true" || lower == "false" || raw == "" {
			t.Fatalf("%q=%q refused: %v", name, raw, err)
		}
		if !strings.Contains(ae.msg, "'"+name+"'") {
			t.Fatalf("%q=%q: the message %q does not name the parameter", name, raw, ae.msg)
		}
	})
}
