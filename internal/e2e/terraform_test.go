package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestTerraformUpdates drives a link the way Confluent's Terraform
// provider does: every update sends the link's whole config map in one
// batch alter, read-only keys included; and after turning a sync feature
// off it reads the configs back and expects its settings unchanged, or
// every plan shows a diff.
func TestTerraformUpdates(t *testing.T) {
	e := newEnv(t)
	e.createLink("tf", map[string]string{
		"cluster.link.prefix":               "west.",
		"consumer.offset.sync.enable":       "true",
		"consumer.offset.sync.ms":           "5000",
		"consumer.offset.group.filters":     `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`,
		"topic.config.sync.ms":              "7000",
		"auto.create.mirror.topics.enable":  "true",
		"auto.create.mirror.topics.filters": `{"topicFilters":[{"name":"orders","patternType":"LITERAL","filterType":"INCLUDE"}]}`,
		"acl.sync.enable":                   "false",
		"acl.sync.ms":                       "9000",
	})
	var list struct {
		Data []configData `json:"data"`
	}
	e.api.JSON(http.MethodGet, "/links/tf/configs", nil, http.StatusOK, &list)
	var whole []any
	for _, c := range list.Data {
		if c.Source == "DYNAMIC_CLUSTER_LINK_CONFIG" || c.IsReadOnly {
			whole = append(whole, map[string]any{"name": c.Name, "value": c.Value})
		}
	}
	whole = append(whole, map[string]any{"name": "consumer.offset.sync.ms", "value": "6000"})
	// The whole map, read-only keys as they are, one real change.
	e.api.JSON(http.MethodPut, "/links/tf/configs:alter", map[string]any{"data": whole}, http.StatusNoContent, nil)
	if v := e.config("tf", "consumer.offset.sync.ms"); v != "6000" {
		t.Fatalf("the change in a whole-map update did not apply: %q", v)
	}
	// A read-only key with another value is refused, and named.
	status, body := e.api.Do(http.MethodPut, "/links/tf/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "cluster.link.prefix", "value": "east."},
	}})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "cluster.link.prefix") || !strings.Contains(string(body), "read-only") {
		t.Fatalf("changing a read-only key: %d %s", status, body)
	}
	if v := e.config("tf", "cluster.link.prefix"); v != "west." {
		t.Fatalf("cluster.link.prefix is %q after a refused change", v)
	}
	// Turning each sync off keeps its settings.
	for _, f := range []struct{ enable, kept, want string }{
		{"consumer.offset.sync.enable", "consumer.offset.group.filters", "groupFilters"},
		{"consumer.offset.sync.enable", "consumer.offset.sync.ms", "6000"},
		{"auto.create.mirror.topics.enable", "auto.create.mirror.topics.filters", "orders"},
		{"acl.sync.enable", "acl.sync.ms", "9000"},
	} {
		e.api.JSON(http.MethodPut, "/links/tf/configs/"+f.enable, map[string]any{"value": "false"}, http.StatusNoContent, nil)
		if v := e.config("tf", f.kept); !strings.Contains(v, f.want) {
			t.Fatalf("after %s=false, %s is %q", f.enable, f.kept, v)
		}
	}
}

// config reads one link config's value.
func (e *env) config(link, name string) string {
	e.t.Helper()
	var c configData
	e.api.JSON(http.MethodGet, "/links/"+link+"/configs/"+name, nil, http.StatusOK, &c)
	return c.Value
}

// TestUnknownFieldsAreRefused: a typo in a request body or its query
// (source_cluster for source_cluster_id, validate_onyl) is refused with 400
// naming it, not silently ignored; every field the contract defines is
// accepted.
func TestUnknownFieldsAreRefused(t *testing.T) {
	e := newEnv(t)
	bootstrap := map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}
	cases := []struct {
		method, path string
		body         any
		want         string
	}{
		{"POST", "/links?link_name=typo", map[string]any{"source_cluster": "source-cluster", "configs": []any{bootstrap}}, "source_cluster"},
		{"POST", "/links?link_name=typo&validate_onyl=true", map[string]any{"configs": []any{bootstrap}}, "validate_onyl"},
		{"POST", "/links?link_name=typo", map[string]any{"configs": []any{map[string]any{"name": "bootstrap.servers", "valeu": "x"}}}, "valeu"},
	}
	for _, tc := range cases {
		status, body := e.api.Do(tc.method, tc.path, tc.body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Fatalf("%s %s: %d %s, want 400 naming %s", tc.method, tc.path, status, body, tc.want)
		}
	}
	e.api.JSON(http.MethodGet, "/links/typo", nil, http.StatusNotFound, nil)
	// Every field of the contract's create body, and its query booleans.
	e.api.JSON("POST", "/links?link_name=full&validate_only=false&validate_link=true", map[string]any{
		"source_cluster_id": "source-cluster", "destination_cluster_id": nil, "remote_cluster_id": nil, "cluster_link_id": nil,
		"configs": []any{bootstrap},
	}, http.StatusNoContent, nil)
}

// TestBidirectionalCreateBodies creates links with the bodies Confluent's
// Terraform provider and CLI send for bidirectional links: local.* keys
// and the peer's connection mode are accepted, stored, read back with the
// credential hidden; a config Confluent does not know is refused, named;
// a source-initiated link is refused saying so.
func TestBidirectionalCreateBodies(t *testing.T) {
	e := newEnv(t)
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required username="local-key" password="local-secret";`
	bootstrap := map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}
	cfg := func(n, v string) map[string]any { return map[string]any{"name": n, "value": v} }
	for _, tc := range []struct {
		name    string
		configs []any
	}{
		{"terraform", []any{bootstrap, cfg("link.mode", "BIDIRECTIONAL"), cfg("connection.mode", "OUTBOUND"),
			cfg("remote.link.connection.mode", "OUTBOUND"), cfg("local.security.protocol", "SASL_SSL"),
			cfg("local.sasl.mechanism", "PLAIN"), cfg("local.sasl.jaas.config", jaas)}},
		{"cli", []any{bootstrap, cfg("link.mode", "BIDIRECTIONAL"), cfg("local.listener", "BROKER"),
			cfg("local.security.protocol", "SASL_SSL"), cfg("local.sasl.mechanism", "PLAIN"), cfg("local.sasl.jaas.config", jaas),
			cfg("client.dns.lookup", "use_all_dns_ips"), cfg("metadata.max.age.ms", "300000")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e.api.JSON("POST", "/links?link_name=bidi-"+tc.name+"&validate_link=false", map[string]any{"remote_cluster_id": "source-cluster", "configs": tc.configs}, http.StatusNoContent, nil)
			var c configData
			e.api.JSON(http.MethodGet, "/links/bidi-"+tc.name+"/configs/local.sasl.jaas.config", nil, http.StatusOK, &c)
			if !c.IsSensitive || c.Value != "" || c.Source != "DYNAMIC_CLUSTER_LINK_CONFIG" {
				t.Fatalf("local.sasl.jaas.config reads back as %+v", c)
			}
			if v := e.config("bidi-"+tc.name, "local.security.protocol"); v != "SASL_SSL" {
				t.Fatalf("local.security.protocol reads back %q", v)
			}
		})
	}
	for _, tc := range []struct {
		configs []any
		want    string
	}{
		{[]any{bootstrap, cfg("local.made.up", "x")}, "local.made.up"},
		{[]any{bootstrap, cfg("local.security.protocol", "CARRIER_PIGEON")}, "local.security.protocol"},
		{[]any{bootstrap, cfg("connection.mode", "INBOUND")}, "source-initiated"},
		{[]any{bootstrap, cfg("link.mode", "SOURCE")}, "source-initiated"},
	} {
		status, body := e.api.Do("POST", "/links?link_name=bad&validate_link=false", map[string]any{"source_cluster_id": "source-cluster", "configs": tc.configs})
		if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
			t.Fatalf("%v: %d %s, want 400 naming %s", tc.configs, status, body, tc.want)
		}
	}
}

// TestUnreachableSourceShowsAtOnce: a link created with validate_link=false
// to a source nothing answers at is UNAVAILABLE, with the reason in its
// description and its tasks, within seconds rather than after the
// availability threshold (minutes by default), which is for outages of a
// source that was reachable.
func TestUnreachableSourceShowsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.api.JSON("POST", "/links?link_name=nowhere&validate_link=false", map[string]any{"source_cluster_id": "x", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": testutil.FreeAddr(t)},
	}}, http.StatusNoContent, nil)
	testutil.WaitFor(t, 10*time.Second, "the link unavailable", func() error {
		l := getLinkState(t, e.api, "nowhere")
		if l.LinkState != "UNAVAILABLE" || l.LinkError == "NO_ERROR" {
			return fmt.Errorf("link %+v", l)
		}
		return nil
	})
	var lt linkTasks
	e.api.JSON(http.MethodGet, "/links/nowhere?include_tasks=true", nil, http.StatusOK, &lt)
	for _, task := range lt.Tasks {
		if task.State != "LINK_UNAVAILABLE" && task.State != "NOT_CONFIGURED" {
			t.Fatalf("task %s is %s on an unreachable link", task.TaskName, task.State)
		}
	}
}
