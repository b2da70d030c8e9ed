package e2e

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/strait-dev/strait/internal/testutil"
)

type configData struct {
	Name        string   `json:"name"`
	Value       string   `json:"value"`
	IsDefault   bool     `json:"is_default"`
	IsReadOnly  bool     `json:"is_read_only"`
	IsSensitive bool     `json:"is_sensitive"`
	Source      string   `json:"source"`
	Synonyms    []string `json:"synonyms"`
	LinkName    string   `json:"link_name"`
}

// TestLinkConfigs covers list, get, put, delete and configs:alter, and
// that changes take effect without a restart.
func TestLinkConfigs(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "t", 1, nil)
	e.createLink("l1", map[string]string{"availability.check.ms": "5000"})
	e.createMirror("l1", "t")
	e.waitStatus("l1", "t", "ACTIVE")

	var list struct {
		Data []configData `json:"data"`
	}
	e.api.JSON("GET", "/links/l1/configs", nil, http.StatusOK, &list)
	byName := map[string]configData{}
	for _, c := range list.Data {
		byName[c.Name] = c
	}
	if c := byName["availability.check.ms"]; c.Value != "5000" || c.IsDefault || c.Source != "DYNAMIC_CLUSTER_LINK_CONFIG" {
		t.Fatalf("availability.check.ms: %+v", c)
	}
	if c := byName["mirror.start.offset.spec"]; c.Value != "earliest" || !c.IsDefault || c.Source != "DEFAULT_CONFIG" {
		t.Fatalf("mirror.start.offset.spec: %+v", c)
	}

	// PUT pauses the whole link; its mirrors report LINK_PAUSED.
	e.api.JSON("PUT", "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	var one configData
	e.api.JSON("GET", "/links/l1/configs/cluster.link.paused", nil, http.StatusOK, &one)
	if one.Value != "true" || one.IsDefault {
		t.Fatalf("after PUT: %+v", one)
	}
	e.waitStatus("l1", "t", "LINK_PAUSED")
	var link struct {
		LinkState string `json:"link_state"`
	}
	e.api.JSON("GET", "/links/l1", nil, http.StatusOK, &link)
	if link.LinkState != "PAUSED" {
		t.Fatalf("link state %s", link.LinkState)
	}
	_, before := testutil.Offsets(t, e.dstCl, "t")
	produceMixed(t, e.src.ListenAddrs(), "t", 10)
	testutil.WaitFor(t, 10*time.Second, "lag while the link is paused", func() error {
		if lag := e.describe("l1", "t").totalLag(); lag != 50 {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})
	if _, after := testutil.Offsets(t, e.dstCl, "t"); after[0] != before[0] {
		t.Fatalf("paused link copied: %d -> %d", before[0], after[0])
	}

	// DELETE resets to the default and the link resumes.
	e.api.JSON("DELETE", "/links/l1/configs/cluster.link.paused", nil, http.StatusNoContent, nil)
	e.waitStatus("l1", "t", "ACTIVE")
	e.waitCaughtUp("t", "t")

	// configs:alter applies all entries, or none.
	e.api.JSON("PUT", "/links/l1/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "availability.check.ms", "value": "7000"},
		map[string]any{"name": "consumer.offset.sync.ms", "value": "10000"},
	}}, http.StatusNoContent, nil)
	e.api.JSON("PUT", "/links/l1/configs:alter?validate_only=true", map[string]any{"data": []any{
		map[string]any{"name": "availability.check.ms", "operation": "DELETE"},
	}}, http.StatusNoContent, nil)
	e.api.JSON("GET", "/links/l1/configs/availability.check.ms", nil, http.StatusOK, &one)
	if one.Value != "7000" {
		t.Fatalf("validate_only changed the value: %+v", one)
	}
	e.api.JSON("PUT", "/links/l1/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "availability.check.ms", "operation": "DELETE"},
	}}, http.StatusNoContent, nil)
	e.api.JSON("GET", "/links/l1/configs/availability.check.ms", nil, http.StatusOK, &one)
	if one.Value != "60000" || !one.IsDefault {
		t.Fatalf("after DELETE: %+v", one)
	}
	e.waitStatus("l1", "t", "ACTIVE")
}

// TestSASLSourceAndSecrets mirrors from a source that requires SCRAM, and
// checks the JAAS secret is never returned by the API.
func TestSASLSourceAndSecrets(t *testing.T) {
	const secret = "s3cr3t-pass-word"
	e := newEnv(t, kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pass"), kfake.User("SCRAM-SHA-512", "linker", secret))
	admin := testutil.Client(t, e.src.ListenAddrs(), saslOpt("SCRAM-SHA-256", "admin", "admin-pass"))
	testutil.CreateTopic(t, admin, "secure", 2, nil)
	producer := testutil.Client(t, e.src.ListenAddrs(), saslOpt("SCRAM-SHA-256", "admin", "admin-pass"))
	e.srcCl = admin
	produceWith(t, producer, "secure", 300)

	jaas := `org.apache.kafka.common.security.scram.ScramLoginModule required username="linker" password="` + secret + `";`
	e.createLink("sec", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas})
	e.createMirror("sec", "secure")
	e.waitCaughtUp("secure", "secure")

	for _, path := range []string{"/links/sec/configs", "/links/sec/configs/sasl.jaas.config", "/links/sec", "/links"} {
		_, body := e.api.Do("GET", path, nil)
		if strings.Contains(string(body), secret) || strings.Contains(string(body), "linker") {
			t.Fatalf("GET %s returns the credentials: %s", path, body)
		}
	}
	var c configData
	e.api.JSON("GET", "/links/sec/configs/sasl.jaas.config", nil, http.StatusOK, &c)
	if !c.IsSensitive || c.Value != "" || c.IsDefault {
		t.Fatalf("sasl.jaas.config: %+v", c)
	}

	// A wrong password fails validation with a clear 400. (Kafka answers
	// SASL_AUTHENTICATION_FAILED; kfake closes the connection instead, so
	// the reason shown here is the closed connection.)
	bad := strings.Replace(jaas, secret, "wrong", 1)
	status, body := e.api.Do("POST", "/links?link_name=bad", map[string]any{"configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]},
		map[string]any{"name": "security.protocol", "value": "SASL_PLAINTEXT"},
		map[string]any{"name": "sasl.mechanism", "value": "SCRAM-SHA-512"},
		map[string]any{"name": "sasl.jaas.config", "value": bad},
	}})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "Unable to validate cluster link") || strings.Contains(string(body), "wrong") {
		t.Fatalf("link with a wrong password: %d %s", status, body)
	}
}
