package testutil

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/strait-dev/strait/api"
)

// specs are loaded once per test binary: the Cloud spec is about 1 MB.
var (
	specOnce        sync.Once
	cloudDoc, cpDoc *openapi3.T
	specErr         error
)

func loadSpecs() {
	load := func(b []byte) (*openapi3.T, error) {
		l := openapi3.NewLoader()
		// The specs are Confluent's, used as they are: not validated as
		// documents (the Platform one has small defects), only used.
		return l.LoadFromData(b)
	}
	if cloudDoc, specErr = load(api.CloudSpec); specErr != nil {
		specErr = fmt.Errorf("cloud spec: %w", specErr)
		return
	}
	if cpDoc, specErr = load(api.PlatformSpec); specErr != nil {
		specErr = fmt.Errorf("platform spec: %w", specErr)
	}
}

// route finds the spec operation for a request path: Strait's /v3 and
// /kafka/v3 paths against the Cloud spec (which is rooted at /kafka/v3),
// and GET /clusters against the Platform spec. Literal segments win over
// {parameters}, as they do in Strait's router.
func route(method, path string) (*routers.Route, map[string]string) {
	p := path
	if strings.HasPrefix(p, "/v3/") {
		p = "/kafka" + p
	}
	if p == "/kafka/v3/clusters" {
		return match(cpDoc, method, "/clusters")
	}
	return match(cloudDoc, method, p)
}

func match(doc *openapi3.T, method, path string) (*routers.Route, map[string]string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var best *routers.Route
	var bestParams map[string]string
	bestScore := -1
	for tmpl, item := range doc.Paths.Map() {
		op := item.GetOperation(method)
		if op == nil {
			continue
		}
		ts := strings.Split(strings.Trim(tmpl, "/"), "/")
		if len(ts) != len(segs) {
			continue
		}
		params := map[string]string{}
		score := 0
		ok := true
		for i, t := range ts {
			if strings.HasPrefix(t, "{") && strings.HasSuffix(t, "}") {
				params[t[1:len(t)-1]] = segs[i]
				continue
			}
			if t != segs[i] {
				ok = false
				break
			}
			score++
		}
		if ok && score > bestScore {
			bestScore = score
			best = &routers.Route{Spec: doc, Path: tmpl, PathItem: item, Method: method, Operation: op}
			bestParams = params
		}
	}
	return best, bestParams
}

// CheckResponse validates a response against Confluent's spec: a 2xx body
// against the operation's schema, an error body against the Error schema.
// It fails the test for an operation the spec does not have.
func CheckResponse(t testing.TB, req *http.Request, status int, header http.Header, body []byte) {
	t.Helper()
	specOnce.Do(loadSpecs)
	if specErr != nil {
		t.Fatalf("load OpenAPI spec: %v", specErr)
	}
	rt, params := route(req.Method, req.URL.Path)
	if status == http.StatusTooManyRequests {
		// The spec's 429 is Jetty's HTML page, not an error body.
		if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
			t.Fatalf("%s %s: 429 with Content-Type %q, the spec says text/html", req.Method, req.URL.Path, ct)
		}
		if !bytes.Contains(body, []byte("429 Too Many Requests")) {
			t.Fatalf("%s %s: 429 page does not say so: %q", req.Method, req.URL.Path, body)
		}
		return
	}
	if status >= 400 {
		// Errors, also for paths the spec does not have, must be
		// Confluent's error body.
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("%s %s: %d error body is not JSON: %q", req.Method, req.URL.Path, status, body)
		}
		schema := cloudDoc.Components.Schemas["Error"].Value
		if err := schema.VisitJSON(v); err != nil {
			t.Fatalf("%s %s: %d error body does not match the Error schema: %v\n%s", req.Method, req.URL.Path, status, err, body)
		}
		m := v.(map[string]any)
		if _, ok := m["error_code"]; !ok {
			t.Fatalf("%s %s: error body without error_code: %s", req.Method, req.URL.Path, body)
		}
		if _, ok := m["message"]; !ok {
			t.Fatalf("%s %s: error body without message: %s", req.Method, req.URL.Path, body)
		}
		return
	}
	if rt == nil {
		t.Fatalf("%s %s: no such operation in Confluent's spec", req.Method, req.URL.Path)
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{
			Request:    req,
			PathParams: params,
			Route:      rt,
			Options:    &openapi3filter.Options{ExcludeRequestBody: true, ExcludeRequestQueryParams: true},
		},
		Status:  status,
		Header:  header,
		Body:    io.NopCloser(bytes.NewReader(body)),
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(context.Background(), in); err != nil {
		t.Fatalf("%s %s: %d response does not validate against Confluent's spec (%s): %v\n%s", req.Method, req.URL.Path, status, rt.Path, err, body)
	}
}
