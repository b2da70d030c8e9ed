package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestBadInput sends every kind of client mistake and checks the status,
// Confluent's error body, and that nothing changed.
func TestBadInput(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", 1, nil)
	testutil.CreateTopic(t, e.dstCl, "plain", 1, nil) // a destination topic that is not a mirror
	e.createLink("l1", nil)
	e.createMirror("l1", "orders")
	bootstrap := map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}
	names := map[string]any{"mirror_topic_names": []string{"orders"}}

	cases := []struct {
		name, method, path string
		body               any
		status, code       int
		msg                string // substring of the message
	}{
		{"unknown cluster", "GET", "/links", nil, 404, 404, "cannot be found"},
		{"unknown link", "GET", "/links/nope", nil, 404, 404, "'nope' does not exist"},
		{"unknown link configs", "GET", "/links/nope/configs", nil, 404, 404, "does not exist"},
		{"unknown link mirrors", "GET", "/links/nope/mirrors", nil, 404, 404, "does not exist"},
		{"unknown link delete", "DELETE", "/links/nope", nil, 404, 404, "does not exist"},
		{"unknown link pause", "POST", "/links/nope/mirrors:pause", names, 404, 404, "does not exist"},
		{"unknown link create mirror", "POST", "/links/nope/mirrors", map[string]any{"source_topic_name": "orders"}, 404, 404, "does not exist"},
		{"unknown mirror", "GET", "/links/l1/mirrors/nope", nil, 404, 40403, "'nope'"},
		{"unknown config", "GET", "/links/l1/configs/no.such.config", nil, 404, 404, "no.such.config"},
		{"malformed json", "POST", "/links/l1/mirrors:pause", `{"mirror_topic_names": [`, 400, 400, "Malformed JSON"},
		{"wrong type", "POST", "/links/l1/mirrors:pause", `{"mirror_topic_names": "orders"}`, 400, 400, "Cannot deserialize"},
		{"empty body", "POST", "/links/l1/mirrors:pause", "", 400, 400, "empty"},
		{"both selectors", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{"orders"}, "mirror_topic_name_pattern": ".*"}, 400, 40002, "exactly one"},
		{"no selector", "POST", "/links/l1/mirrors:resume", map[string]any{}, 400, 40002, "exactly one"},
		{"empty names", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{}}, 400, 40002, "at least one"},
		{"invalid pattern", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_name_pattern": "(["}, 400, 40002, "Invalid mirror_topic_name_pattern"},
		{"bad boolean", "POST", "/links/l1/mirrors:pause?validate_only=maybe", names, 400, 400, "validate_only"},
		{"bad mirror_status", "GET", "/links/-/mirrors?mirror_status=SLEEPING", nil, 400, 40002, "mirror_status"},
		{"duplicate link", "POST", "/links?link_name=l1", map[string]any{"source_cluster_id": "source-cluster", "configs": []any{bootstrap}}, 409, 40902, "already exists"},
		{"duplicate mirror", "POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "orders"}, 400, 40002, "already exists"},
		{"existing destination topic", "POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "orders", "mirror_topic_name": "plain"}, 400, 40002, "Topic 'plain' already exists."},
		{"missing source topic", "POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "ghost"}, 400, 40002, "does not exist on the source"},
		{"missing source_topic_name", "POST", "/links/l1/mirrors", map[string]any{}, 400, 40002, "source_topic_name"},
		{"invalid topic name", "POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "bad/name"}, 400, 40002, "Invalid source topic name"},
		{"locked mirror config", "POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "orders", "mirror_topic_name": "o2", "configs": []any{map[string]any{"name": "compression.type", "value": "gzip"}}}, 400, 40002, "compression.type"},
		{"missing link_name", "POST", "/links", map[string]any{"configs": []any{bootstrap}}, 400, 400, "link_name"},
		{"invalid link name", "POST", "/links?link_name=bad%20name", map[string]any{"configs": []any{bootstrap}}, 400, 40002, "Invalid cluster link name"},
		{"reserved link name", "POST", "/links?link_name=-", map[string]any{"configs": []any{bootstrap}}, 400, 40002, "Invalid cluster link name"},
		{"no bootstrap", "POST", "/links?link_name=l2", map[string]any{"source_cluster_id": "x"}, 400, 40002, "bootstrap.servers"},
		{"unknown link config", "POST", "/links?link_name=l2", map[string]any{"configs": []any{bootstrap, map[string]any{"name": "frobnicate", "value": "1"}}}, 400, 40002, "frobnicate"},
		{"bad link config value", "POST", "/links?link_name=l2", map[string]any{"configs": []any{bootstrap, map[string]any{"name": "cluster.link.paused", "value": "yes"}}}, 400, 40002, "cluster.link.paused"},
		{"bad bootstrap", "POST", "/links?link_name=l2", map[string]any{"configs": []any{map[string]any{"name": "bootstrap.servers", "value": "no-port"}}}, 400, 40002, "host:port"},
		{"sasl without jaas", "POST", "/links?link_name=l2", map[string]any{"configs": []any{bootstrap, map[string]any{"name": "security.protocol", "value": "SASL_PLAINTEXT"}, map[string]any{"name": "sasl.mechanism", "value": "PLAIN"}}}, 400, 40002, "sasl.jaas.config"},
		{"bad jaas", "POST", "/links?link_name=l2", map[string]any{"configs": []any{bootstrap, map[string]any{"name": "sasl.jaas.config", "value": "nonsense"}}}, 400, 40002, "sasl.jaas.config"},
		{"wrong source cluster id", "POST", "/links?link_name=l2", map[string]any{"source_cluster_id": "other", "configs": []any{bootstrap}}, 400, 40002, "does not match"},
		{"link to self", "POST", "/links?link_name=l2&validate_link=false", map[string]any{"source_cluster_id": "destination-cluster", "configs": []any{bootstrap}}, 400, 40002, "to self"},
		{"no id without validation", "POST", "/links?link_name=l2&validate_link=false", map[string]any{"configs": []any{bootstrap}}, 400, 40002, "source_cluster_id"},
		{"remote id on a destination link", "POST", "/links?link_name=l2", map[string]any{"remote_cluster_id": "x", "configs": []any{bootstrap}}, 400, 40002, "remote_cluster_id is for link.mode=BIDIRECTIONAL"},
		{"source-initiated link", "POST", "/links?link_name=l2", map[string]any{"destination_cluster_id": "x", "configs": []any{bootstrap}}, 400, 40002, "Source-initiated links"},
		{"unsupported link mode", "POST", "/links?link_name=l2", map[string]any{"configs": []any{bootstrap, map[string]any{"name": "link.mode", "value": "SOURCE"}}}, 400, 40002, "link.mode"},
		{"source id on a bidirectional link", "POST", "/links?link_name=l2", map[string]any{"source_cluster_id": "x", "configs": []any{bootstrap, map[string]any{"name": "link.mode", "value": "BIDIRECTIONAL"}}}, 400, 40002, "remote_cluster_id"},
		{"bad cluster_link_id", "POST", "/links?link_name=l2&validate_link=false", map[string]any{"remote_cluster_id": "x", "cluster_link_id": "short", "configs": []any{bootstrap, map[string]any{"name": "link.mode", "value": "BIDIRECTIONAL"}}}, 400, 40002, "cluster_link_id"},
		{"put unknown config", "PUT", "/links/l1/configs/frobnicate", map[string]any{"value": "1"}, 400, 40002, "frobnicate"},
		{"put bad value", "PUT", "/links/l1/configs/availability.check.ms", map[string]any{"value": "-5"}, 400, 40002, "availability.check.ms"},
		{"put without value", "PUT", "/links/l1/configs/cluster.link.paused", map[string]any{}, 400, 400, "value"},
		{"put read-only", "PUT", "/links/l1/configs/num.cluster.link.fetchers", map[string]any{"value": "2"}, 400, 40002, "read-only"},
		{"put create-only", "PUT", "/links/l1/configs/cluster.link.prefix", map[string]any{"value": "x."}, 400, 40002, "read-only"},
		{"alter bad operation", "PUT", "/links/l1/configs:alter", map[string]any{"data": []any{map[string]any{"name": "cluster.link.paused", "value": "true", "operation": "FLIP"}}}, 400, 400, "FLIP"},
		{"alter one bad entry", "PUT", "/links/l1/configs:alter", map[string]any{"data": []any{map[string]any{"name": "cluster.link.paused", "value": "true"}, map[string]any{"name": "nope", "value": "1"}}}, 400, 40002, "nope"},
		{"delete link in use", "DELETE", "/links/l1", nil, 403, 403, "in use"},
		{"unknown route", "GET", "/links/l1/whatever", nil, 404, 404, "Not Found"},
		{"wrong method", "PATCH", "/links/l1", nil, 405, 405, "Method Not Allowed"},
		{"too many topics", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": manyNames(10001)}, 400, 40002, "at most 10000"},
		{"pattern too long", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_name_pattern": strings.Repeat("a", 1001)}, 400, 40002, "at most 1000"},
		{"body too large", "POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": manyNames(100000)}, 413, 413, "larger than"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			url := e.api.Base + tc.path
			if tc.name == "unknown cluster" {
				url = e.api.Root + "/kafka/v3/clusters/nope" + tc.path
			}
			var body any = tc.body
			if s, ok := tc.body.(string); ok {
				body = []byte(s)
			}
			status, out := e.api.With(t).DoURL(tc.method, url, body)
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, out)
			}
			var eb struct {
				ErrorCode int    `json:"error_code"`
				Message   string `json:"message"`
			}
			if err := json.Unmarshal(out, &eb); err != nil {
				t.Fatalf("body %q: %v", out, err)
			}
			if eb.ErrorCode != tc.code || !strings.Contains(eb.Message, tc.msg) {
				t.Fatalf("body %s, want error_code %d and a message with %q", out, tc.code, tc.msg)
			}
		})
	}

	// Nothing above changed anything: one link, one mirror, still active,
	// and the alter with one bad entry did not pause the link.
	var links struct {
		Data []struct {
			LinkName  string   `json:"link_name"`
			LinkState string   `json:"link_state"`
			Topics    []string `json:"topic_names"`
		} `json:"data"`
	}
	e.api.JSON("GET", "/links", nil, http.StatusOK, &links)
	if len(links.Data) != 1 || links.Data[0].LinkName != "l1" || links.Data[0].LinkState != "ACTIVE" || len(links.Data[0].Topics) != 1 {
		t.Fatalf("links after bad input: %+v", links)
	}
	if v := e.describe("l1", "orders"); v.MirrorStatus != "ACTIVE" {
		t.Fatalf("mirror status after bad input: %s", v.MirrorStatus)
	}
}

// TestWrongContentType checks the media type check, which the API client
// helper cannot express (it always sends JSON).
func TestWrongContentType(t *testing.T) {
	e := newEnv(t)
	e.createLink("l1", nil)
	req, err := http.NewRequest("POST", e.api.Base+"/links/l1/mirrors:pause", strings.NewReader(`{"mirror_topic_names":["x"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb struct {
		ErrorCode int `json:"error_code"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&eb); err != nil || resp.StatusCode != 415 || eb.ErrorCode != 415 {
		t.Fatalf("status %d, error_code %d, err %v", resp.StatusCode, eb.ErrorCode, err)
	}
}

// TestPerTopicErrors checks that a batch operation answers each topic on
// its own: good topics change, bad ones carry their error.
func TestPerTopicErrors(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "a", 1, nil)
	testutil.CreateTopic(t, e.dstCl, "plain", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "a")
	r := e.alter("l1", "pause", map[string]any{"mirror_topic_names": []string{"a", "plain", "ghost"}}, "")
	want := map[string]struct {
		code int
		msg  string
	}{
		"a":     {0, ""},
		"plain": {400, "Topic 'plain' is not mirrored"},
		"ghost": {404, "Topic 'ghost' not found"},
	}
	if len(r.Data) != 3 {
		t.Fatalf("%d results", len(r.Data))
	}
	for _, d := range r.Data {
		w := want[d.MirrorTopicName]
		code, msg := 0, ""
		if d.ErrorCode != nil {
			code, msg = *d.ErrorCode, *d.ErrorMessage
		}
		if code != w.code || msg != w.msg {
			t.Errorf("%s: %d %q, want %d %q", d.MirrorTopicName, code, msg, w.code, w.msg)
		}
	}
	e.waitStatus("l1", "a", "PAUSED")

	// validate_only checks and changes nothing.
	r = e.alter("l1", "resume", map[string]any{"mirror_topic_name_pattern": ".*"}, "?validate_only=true")
	if len(r.Data) != 1 || r.Data[0].ErrorCode != nil {
		t.Fatalf("validate_only resume: %+v", r)
	}
	if v := e.describe("l1", "a"); v.MirrorStatus != "PAUSED" {
		t.Fatalf("validate_only changed the status to %s", v.MirrorStatus)
	}
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("topic-%06d", i)
	}
	return out
}
