package e2e

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/testutil"
)

// oauthBroker makes a kfake cluster speak SASL/OAUTHBEARER (RFC 7628),
// which kfake itself does not: its SaslHandshake offers only OAUTHBEARER
// and its SaslAuthenticate accepts exactly the tokens the test's token
// endpoint issued. It records what it saw.
type oauthBroker struct {
	mu       sync.Mutex
	issued   map[string]bool
	accepted int
	refused  []string
}

// tokenEndpoint issues a fresh token for client id and secret by client
// credentials, as an OAuth server would.
func (b *oauthBroker) tokenEndpoint(t *testing.T, id, secret string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID, gotSecret, ok := r.BasicAuth()
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("grant_type") != "client_credentials" || !ok || gotID != id || gotSecret != secret {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		b.mu.Lock()
		tok := "tok-" + r.FormValue("scope") + "-" + string(rune('a'+len(b.issued)))
		b.issued[tok] = true
		b.mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func (b *oauthBroker) install(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.SASLHandshake), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.SASLHandshakeRequest)
		resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
		resp.SupportedMechanisms = []string{"OAUTHBEARER"}
		if req.Mechanism != "OAUTHBEARER" {
			resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kreq.(*kmsg.SASLAuthenticateRequest)
		resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
		// "n,,\x01auth=Bearer <token>\x01[key=value\x01]*\x01"
		msg := string(req.SASLAuthBytes)
		var tok string
		for _, kv := range strings.Split(msg, "\x01") {
			if v, ok := strings.CutPrefix(kv, "auth=Bearer "); ok {
				tok = v
			}
		}
		b.mu.Lock()
		defer b.mu.Unlock()
		if !strings.HasPrefix(msg, "n,,\x01") || !strings.HasSuffix(msg, "\x01\x01") || !b.issued[tok] {
			b.refused = append(b.refused, msg)
			resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
			m := "invalid token"
			resp.ErrorMessage = &m
			return resp, nil, true
		}
		b.accepted++
		return resp, nil, true
	})
}

// checkSessions fails t unless the cluster (the source or the
// destination) took OAUTHBEARER sessions and refused none.
func (b *oauthBroker) checkSessions(t *testing.T, cluster string) {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.accepted == 0 || len(b.refused) > 0 {
		t.Fatalf("%s accepted %d OAUTHBEARER sessions and refused %q", cluster, b.accepted, b.refused)
	}
}

// TestOAuthBearerToKafka links to a source that takes only OAUTHBEARER:
// Strait fetches a token from the token endpoint with the link's client
// credentials, authenticates every connection with it, and mirrors. A
// link with a wrong client secret gets no token and is refused at
// creation, with the reason.
func TestOAuthBearerToKafka(t *testing.T) {
	e := newEnv(t)
	b := &oauthBroker{issued: map[string]bool{}}
	srv := b.tokenEndpoint(t, "strait-link", "link-s3cret")
	// Filled before the broker takes only OAUTHBEARER: the test's own
	// clients do not authenticate.
	testutil.CreateTopic(t, e.srcCl, "secured", 2, nil)
	produceWith(t, e.srcCl, "secured", 200)
	b.install(e.src)

	jaas := func(secret string) string {
		return `org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required clientId="strait-link" clientSecret="` + secret + `" scope="kafka";`
	}
	configs := func(secret string) map[string]string {
		return map[string]string{
			"security.protocol":                   "SASL_PLAINTEXT",
			"sasl.mechanism":                      "OAUTHBEARER",
			"sasl.oauthbearer.token.endpoint.url": srv.URL + "/token",
			"sasl.jaas.config":                    jaas(secret),
		}
	}

	// The wrong secret: the token endpoint refuses, so does the link.
	cs := []map[string]string{{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}}
	for k, v := range configs("wrong") {
		cs = append(cs, map[string]string{"name": k, "value": v})
	}
	status, body := e.api.Do(http.MethodPost, "/links?link_name=bad", map[string]any{"source_cluster_id": "source-cluster", "configs": cs})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "invalid_client") || strings.Contains(string(body), "wrong") {
		t.Fatalf("link with a wrong client secret: %d %s", status, body)
	}

	e.createLink("oauth", configs("link-s3cret"))
	e.createMirror("oauth", "secured")
	e.waitCaughtUp("secured", "secured")
	if n := e.assertIdentical("secured", "secured"); n != 200 {
		t.Fatalf("%d records mirrored, want 200", n)
	}
	b.checkSessions(t, "source")
	b.mu.Lock()
	defer b.mu.Unlock()
	for tok := range b.issued {
		if !strings.HasPrefix(tok, "tok-kafka-") {
			t.Fatalf("token %q was not asked for with the link's scope", tok)
		}
	}
}

// TestOAuthBearerToDestination runs the daemon against a destination that
// takes only OAUTHBEARER: its state topic, admin calls and the mirror's
// produce requests (on the sink's own client, cloned from the destination
// client's options) all authenticate with fetched tokens.
func TestOAuthBearerToDestination(t *testing.T) {
	b := &oauthBroker{issued: map[string]bool{}}
	srv := b.tokenEndpoint(t, "strait-daemon", "daemon-s3cret")
	e0 := &env{}
	e0.configure = func(c *config.Config) {
		b.install(e0.dst) // before the daemon first connects
		c.DestinationSecurityProtocol = "SASL_PLAINTEXT"
		c.DestinationSASLMechanism = "OAUTHBEARER"
		c.DestinationSASLUsername = "strait-daemon"
		c.DestinationSASLPassword = "daemon-s3cret"
		c.DestinationOAuthTokenURL = srv.URL + "/token"
		c.DestinationOAuthScope = "kafka"
	}
	e := newEnvWith(t, e0)
	testutil.CreateTopic(t, e.srcCl, "orders", 3, nil)
	produceWith(t, e.srcCl, "orders", 300)
	e.createLink("l1", nil)
	e.createMirror("l1", "orders")
	e.waitCaughtUp("orders", "orders")
	if n := e.assertIdentical("orders", "orders"); n != 300 {
		t.Fatalf("%d records mirrored, want 300", n)
	}
	b.checkSessions(t, "destination")
}
