package e2e

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// jwtSigner signs test tokens with one key.
type jwtSigner struct {
	kid string
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newRSASigner(t *testing.T, kid string) *jwtSigner {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{kid: kid, rsa: k}
}

func newECSigner(t *testing.T, kid string) *jwtSigner {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &jwtSigner{kid: kid, ec: k}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk is the signer's public key as a JSON Web Key.
func (s *jwtSigner) jwk() map[string]string {
	if s.rsa != nil {
		return map[string]string{"kty": "RSA", "kid": s.kid, "use": "sig", "alg": "RS256",
			"n": b64(s.rsa.N.Bytes()), "e": b64(big.NewInt(int64(s.rsa.E)).Bytes())}
	}
	pad := func(i *big.Int) string { b := make([]byte, 32); i.FillBytes(b); return b64(b) }
	return map[string]string{"kty": "EC", "kid": s.kid, "use": "sig", "alg": "ES256", "crv": "P-256",
		"x": pad(s.ec.X), "y": pad(s.ec.Y)}
}

func jwks(t *testing.T, signers ...*jwtSigner) []byte {
	t.Helper()
	var keys []map[string]string
	for _, s := range signers {
		keys = append(keys, s.jwk())
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// token signs claims; alg overrides the header's alg when set.
func (s *jwtSigner) token(t *testing.T, claims map[string]any, alg string) string {
	t.Helper()
	if alg == "" {
		alg = "RS256"
		if s.ec != nil {
			alg = "ES256"
		}
	}
	h, _ := json.Marshal(map[string]string{"alg": alg, "typ": "JWT", "kid": s.kid})
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	if alg == "none" {
		return signed + "."
	}
	sum := sha256.Sum256([]byte(signed))
	var sig []byte
	var err error
	if s.rsa != nil {
		sig, err = rsa.SignPKCS1v15(rand.Reader, s.rsa, crypto.SHA256, sum[:])
	} else {
		var r, ss *big.Int
		r, ss, err = ecdsa.Sign(rand.Reader, s.ec, sum[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			ss.FillBytes(sig[32:])
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return signed + "." + b64(sig)
}

func claims(sub string, exp time.Time, extra map[string]any) map[string]any {
	c := map[string]any{"sub": sub, "iss": "https://idp.example", "aud": []string{"other", "strait"}, "exp": exp.Unix(), "iat": time.Now().Add(-time.Minute).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

func basic(key, secret string) func(*http.Request) {
	return func(r *http.Request) { r.SetBasicAuth(key, secret) }
}

func bearer(tok string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }
}

func header(v string) func(*http.Request) {
	return func(r *http.Request) { r.Header.Set("Authorization", v) }
}

func hashed(t *testing.T, secret string) string {
	t.Helper()
	h, err := auth.HashSecret(secret)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// as returns a copy of api that sends cred (nil: no credentials).
func as(api *testutil.API, t testing.TB, cred func(*http.Request)) *testutil.API {
	a := api.With(t)
	a.Auth = cred
	return a
}

const (
	unauthenticatedBody = `{"error_code":40101,"message":"Authentication failed"}`
	forbiddenBody       = `{"error_code":40301,"message":"Request is not authorized"}`
)

func assertBody(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body %q: %v", got, err)
	}
	_ = json.Unmarshal([]byte(want), &w)
	gb, _ := json.Marshal(g)
	wb, _ := json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body %s, want %s", got, want)
	}
}

func TestAPIAuthentication(t *testing.T) {
	dir := t.TempDir()
	idp := newRSASigner(t, "idp-1")
	ec := newECSigner(t, "idp-ec")
	impostor := newRSASigner(t, "idp-1") // same key id, different key
	jwksFile := testutil.WriteFile(t, dir, "jwks.json", jwks(t, idp, ec))
	e := newEnvWith(t, &env{configure: func(c *config.Config) {
		c.Auth = auth.Config{
			APIKeys: []auth.APIKey{{Key: "OPSKEY", SecretHash: hashed(t, "right-secret"), Principal: "User:ops"}},
			JWT:     &auth.JWTConfig{JWKSFile: jwksFile, Issuer: "https://idp.example", Audience: "strait", ClockSkew: "30s"},
			Roles:   []auth.Role{{Principal: "User:ops", Role: "viewer"}, {Principal: "User:robot", Role: "viewer"}},
		}
	}})
	now := time.Now()
	good := claims("robot", now.Add(time.Hour), nil)
	cases := []struct {
		name string
		cred func(*http.Request)
		want int
	}{
		{"no credentials", nil, http.StatusUnauthorized},
		{"api key", basic("OPSKEY", "right-secret"), http.StatusOK},
		{"api key, wrong secret", basic("OPSKEY", "wrong-secret"), http.StatusUnauthorized},
		{"api key, empty secret", basic("OPSKEY", ""), http.StatusUnauthorized},
		{"unknown api key", basic("NOSUCHKEY", "right-secret"), http.StatusUnauthorized},
		{"malformed basic", header("Basic !!!not-base64"), http.StatusUnauthorized},
		{"unsupported scheme", header("Digest username=ops"), http.StatusUnauthorized},
		{"token", bearer(idp.token(t, good, "")), http.StatusOK},
		{"token, ES256", bearer(ec.token(t, good, "")), http.StatusOK},
		{"token expired", bearer(idp.token(t, claims("robot", now.Add(-10*time.Minute), nil), "")), http.StatusUnauthorized},
		// Signed when sent: the case is about seconds.
		{"token expired within the clock skew", func(r *http.Request) {
			bearer(idp.token(t, claims("robot", time.Now().Add(-10*time.Second), nil), ""))(r)
		}, http.StatusOK},
		{"token not valid yet", bearer(idp.token(t, claims("robot", now.Add(time.Hour), map[string]any{"nbf": now.Add(10 * time.Minute).Unix()}), "")), http.StatusUnauthorized},
		{"token issued in the future", bearer(idp.token(t, claims("robot", now.Add(time.Hour), map[string]any{"iat": now.Add(10 * time.Minute).Unix()}), "")), http.StatusUnauthorized},
		{"token without exp", bearer(idp.token(t, map[string]any{"sub": "robot", "iss": "https://idp.example", "aud": "strait"}, "")), http.StatusUnauthorized},
		{"token, wrong audience", bearer(idp.token(t, claims("robot", now.Add(time.Hour), map[string]any{"aud": "someone-else"}), "")), http.StatusUnauthorized},
		{"token, wrong issuer", bearer(idp.token(t, claims("robot", now.Add(time.Hour), map[string]any{"iss": "https://evil.example"}), "")), http.StatusUnauthorized},
		{"token, bad signature", bearer(impostor.token(t, good, "")), http.StatusUnauthorized},
		{"token, alg none", bearer(idp.token(t, good, "none")), http.StatusUnauthorized},
		{"token, alg HS256", bearer(idp.token(t, good, "HS256")), http.StatusUnauthorized},
		{"token, truncated", bearer(strings.Join(strings.Split(idp.token(t, good, ""), ".")[:2], ".")), http.StatusUnauthorized},
		{"token, tampered claims", bearer(tamper(t, idp.token(t, claims("robot", now.Add(time.Hour), nil), ""), "admin")), http.StatusUnauthorized},
		{"token, unknown key id", bearer(newRSASigner(t, "idp-9").token(t, good, "")), http.StatusUnauthorized},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := as(e.api, t, c.cred).Do(http.MethodGet, "/links", nil)
			if status != c.want {
				t.Fatalf("status %d, want %d: %s", status, c.want, body)
			}
			if c.want == http.StatusUnauthorized {
				assertBody(t, body, unauthenticatedBody)
			}
		})
	}
	// A 401 names the schemes the server takes.
	req, _ := http.NewRequest(http.MethodGet, e.api.Base+"/links", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ch := resp.Header.Get("WWW-Authenticate"); !strings.Contains(ch, "Basic") || !strings.Contains(ch, "Bearer") {
		t.Fatalf("WWW-Authenticate %q", ch)
	}
	// Health stays open for probes; metrics need credentials (they name
	// every link and topic) unless metrics_public is set.
	for p, want := range map[string]int{"/livez": http.StatusOK, "/readyz": http.StatusOK, "/metrics": http.StatusUnauthorized} {
		resp, err := http.Get(e.api.Root + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("GET %s without credentials: %d, want %d", p, resp.StatusCode, want)
		}
	}
	req, _ = http.NewRequest("GET", e.api.Root+"/metrics", nil)
	req.SetBasicAuth("OPSKEY", "right-secret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics with credentials: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// tamper swaps the token's subject, keeping the original signature.
func tamper(t *testing.T, tok, sub string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = json.Unmarshal(raw, &c)
	c["sub"] = sub
	b, _ := json.Marshal(c)
	parts[1] = b64(b)
	return strings.Join(parts, ".")
}

func TestAPIAuthorization(t *testing.T) {
	keys := []string{"viewer", "operator", "eastadmin", "admin", "nobody"}
	e := newEnvWith(t, &env{configure: func(c *config.Config) {
		for _, k := range keys {
			c.Auth.APIKeys = append(c.Auth.APIKeys, auth.APIKey{Key: k, SecretHash: hashed(t, k+"-secret")})
		}
		c.Auth.Roles = []auth.Role{
			{Principal: "User:viewer", Role: "viewer", Links: []string{"east"}},
			{Principal: "User:operator", Role: "operator", Links: []string{"east"}},
			{Principal: "User:eastadmin", Role: "admin", Links: []string{"east*"}},
			{Principal: "User:admin", Role: "admin"},
		}
	}})
	api := func(t testing.TB, who string) *testutil.API { return as(e.api, t, basic(who, who+"-secret")) }
	e.api.Auth = basic("admin", "admin-secret")
	for _, topic := range []string{"orders", "payments", "refunds"} {
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
	}
	testutil.CreateTopic(t, e.dstCl, "plain", 1, nil)
	e.createLink("east", nil)
	e.createLink("west", nil)
	e.createMirror("west", "payments")
	e.createMirror("east", "refunds")

	bootstrap := []map[string]string{{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}}
	cases := []struct {
		who, method, path string
		body              any
		want              int
	}{
		{"nobody", "GET", "/links/east", nil, http.StatusForbidden},
		{"nobody", "GET", "/links", nil, http.StatusForbidden},
		{"nobody", "GET", "/links/-/mirrors", nil, http.StatusForbidden},
		{"viewer", "GET", "/links/east", nil, http.StatusOK},
		{"viewer", "GET", "/links/east/configs", nil, http.StatusOK},
		{"viewer", "GET", "/links/east/configs/bootstrap.servers", nil, http.StatusOK},
		{"viewer", "GET", "/links/east/mirrors", nil, http.StatusOK},
		{"viewer", "GET", "/links/east/mirrors/refunds", nil, http.StatusOK},
		{"viewer", "GET", "/links/west", nil, http.StatusForbidden},
		{"viewer", "GET", "/links/west/mirrors/payments", nil, http.StatusForbidden},
		{"viewer", "POST", "/links/east/mirrors", map[string]any{"source_topic_name": "orders"}, http.StatusForbidden},
		{"viewer", "POST", "/links/east/mirrors:pause", names("refunds"), http.StatusForbidden},
		{"viewer", "DELETE", "/topics/refunds", nil, http.StatusForbidden},
		{"operator", "POST", "/links/east/mirrors", map[string]any{"source_topic_name": "orders"}, http.StatusNoContent},
		{"operator", "POST", "/links/east/mirrors:pause", names("orders"), http.StatusOK},
		{"operator", "POST", "/links/east/mirrors:resume", names("orders"), http.StatusOK},
		{"operator", "POST", "/links/west/mirrors:pause", names("payments"), http.StatusForbidden},
		{"operator", "DELETE", "/topics/payments", nil, http.StatusForbidden},
		{"operator", "PUT", "/links/east/configs/consumer.offset.sync.enable", map[string]any{"value": "true"}, http.StatusForbidden},
		{"operator", "PUT", "/links/east/configs:alter", map[string]any{"data": []any{}}, http.StatusForbidden},
		{"operator", "DELETE", "/links/east/configs/consumer.offset.sync.enable", nil, http.StatusForbidden},
		{"operator", "DELETE", "/links/east", nil, http.StatusForbidden},
		{"operator", "POST", "/links?link_name=east2", map[string]any{"configs": bootstrap}, http.StatusForbidden},
		{"eastadmin", "POST", "/links?link_name=east2", map[string]any{"configs": bootstrap}, http.StatusNoContent},
		{"eastadmin", "POST", "/links?link_name=north", map[string]any{"configs": bootstrap}, http.StatusForbidden},
		{"eastadmin", "PUT", "/links/east2/configs/consumer.offset.sync.enable", map[string]any{"value": "true"}, http.StatusNoContent},
		{"eastadmin", "DELETE", "/links/west", nil, http.StatusForbidden},
		// A plain destination topic belongs to no link: deleting it
		// through Strait needs the right on every link.
		{"eastadmin", "DELETE", "/topics/plain", nil, http.StatusForbidden},
		{"eastadmin", "DELETE", "/links/east2", nil, http.StatusOK},
		{"operator", "DELETE", "/topics/refunds", nil, http.StatusNoContent},
	}
	for _, c := range cases {
		t.Run(c.who+" "+c.method+" "+c.path, func(t *testing.T) {
			status, body := api(t, c.who).Do(c.method, c.path, c.body)
			if status != c.want {
				t.Fatalf("status %d, want %d: %s", status, c.want, body)
			}
			if c.want == http.StatusForbidden {
				assertBody(t, body, forbiddenBody)
			}
		})
	}

	// Lists show only what the principal may read.
	var links struct {
		Data []struct {
			LinkName string `json:"link_name"`
		} `json:"data"`
	}
	api(t, "viewer").JSON("GET", "/links", nil, http.StatusOK, &links)
	if len(links.Data) != 1 || links.Data[0].LinkName != "east" {
		t.Fatalf("viewer sees links %+v, want only east", links.Data)
	}
	var mirrors struct {
		Data []mirrorView `json:"data"`
	}
	api(t, "viewer").JSON("GET", "/links/-/mirrors", nil, http.StatusOK, &mirrors)
	for _, m := range mirrors.Data {
		if m.LinkName != "east" {
			t.Fatalf("viewer sees mirror %s of link %s", m.MirrorTopicName, m.LinkName)
		}
	}
	if len(mirrors.Data) != 1 {
		t.Fatalf("viewer sees %d mirrors, want 1 (orders)", len(mirrors.Data))
	}
	api(t, "admin").JSON("GET", "/links/-/mirrors", nil, http.StatusOK, &mirrors)
	if len(mirrors.Data) != 2 {
		t.Fatalf("admin sees %d mirrors, want 2 (orders, payments)", len(mirrors.Data))
	}
}

func TestAuditLog(t *testing.T) {
	var logs testutil.SyncBuffer
	e := newEnvWith(t, &env{
		log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		configure: func(c *config.Config) {
			c.Auth.APIKeys = []auth.APIKey{{Key: "admin", SecretHash: hashed(t, "s")}, {Key: "viewer", SecretHash: hashed(t, "v")}}
			c.Auth.Roles = []auth.Role{{Principal: "User:admin", Role: "admin"}, {Principal: "User:viewer", Role: "viewer"}}
		},
	})
	e.api.Auth = basic("admin", "s")
	testutil.CreateTopic(t, e.srcCl, "audited", 1, nil)
	e.createLink("l", nil)
	e.createMirror("l", "audited")
	e.alter("l", "pause", names("audited"), "")
	as(e.api, t, basic("viewer", "v")).Do("POST", "/links/l/mirrors:resume", names("audited"))
	as(e.api, t, basic("viewer", "wrong")).Do("DELETE", "/links/l", nil)
	e.api.Do("POST", "/links/l/mirrors:pause", map[string]any{"mirror_topic_names": []string{"no-such"}})
	e.api.Do("GET", "/links/l", nil)
	e.api.Do("DELETE", "/links/l/no-such-thing", nil) // 404
	e.api.Do("PUT", "/links/l/mirrors", nil)          // 405

	type entry struct {
		Msg       string `json:"msg"`
		Principal string `json:"principal"`
		Operation string `json:"operation"`
		Link      string `json:"link"`
		Status    int    `json:"status"`
		Result    string `json:"result"`
	}
	var got []entry
	for _, line := range strings.Split(logs.String(), "\n") {
		var en entry
		if json.Unmarshal([]byte(line), &en) == nil && en.Msg == "audit" {
			got = append(got, en)
		}
	}
	want := []entry{
		{"audit", "User:admin", "POST /kafka/v3/clusters/{cluster_id}/links", "l", 204, "success"},
		{"audit", "User:admin", "POST /kafka/v3/clusters/{cluster_id}/links/{link_name}/mirrors", "l", 204, "success"},
		{"audit", "User:admin", "POST /kafka/v3/clusters/{cluster_id}/links/{link_name}/mirrors:pause", "l", 200, "success"},
		{"audit", "User:viewer", "POST /kafka/v3/clusters/{cluster_id}/links/{link_name}/mirrors:resume", "l", 403, "denied"},
		{"audit", "User:ANONYMOUS", "DELETE /kafka/v3/clusters/{cluster_id}/links/{link_name}", "l", 401, "denied"},
		// A 200 whose only topic was refused (404: no such mirror) is
		// not a success: every topic refused it.
		{"audit", "User:admin", "POST /kafka/v3/clusters/{cluster_id}/links/{link_name}/mirrors:pause", "l", 200, "rejected"},
		{"audit", "User:ANONYMOUS", "unknown", "", 404, "rejected"},
		{"audit", "User:ANONYMOUS", "unknown", "", 405, "rejected"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("audit log:\n got %v\nwant %v", got, want)
	}
}

func TestAPIRateLimit(t *testing.T) {
	var logs testutil.SyncBuffer
	e := newEnvWith(t, &env{configure: func(c *config.Config) {
		c.Auth.APIKeys = []auth.APIKey{{Key: "a", SecretHash: hashed(t, "a")}, {Key: "b", SecretHash: hashed(t, "b")}, {Key: "c", SecretHash: hashed(t, "c")}}
		c.Auth.Roles = []auth.Role{{Principal: "User:a", Role: "viewer"}, {Principal: "User:b", Role: "viewer"}, {Principal: "User:c", Role: "viewer"}}
		c.Auth.RateLimit = auth.RateLimit{PerSecond: 0.1, Burst: 3}
	}, log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	a := as(e.api, t, basic("a", "a"))
	for i := range 3 {
		if status, body := a.Do("GET", "/links", nil); status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, status, body)
		}
	}
	req, _ := http.NewRequest("GET", e.api.Base+"/links", nil)
	req.SetBasicAuth("a", "a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("fourth request: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	testutil.CheckResponse(t, req, resp.StatusCode, resp.Header, body)
	// The limit is per principal.
	if status, _ := as(e.api, t, basic("b", "b")).Do("GET", "/links", nil); status != http.StatusOK {
		t.Fatalf("another principal: %d", status)
	}
	// Guessing a key's secret is limited per presented key: ten wrong
	// secrets, then 429 without the secret even being hashed (each check
	// is a 100,000-round hash).
	statuses := map[int]int{}
	for range 12 {
		status, _ := as(e.api, t, basic("b", "guess")).Do("GET", "/links", nil)
		statuses[status]++
	}
	if statuses[http.StatusUnauthorized] != 10 || statuses[http.StatusTooManyRequests] != 2 {
		t.Fatalf("wrong secrets answered %v, want 10x401 then 2x429", statuses)
	}
	if n := strings.Count(logs.String(), "unknown API key or wrong secret"); n != 10 {
		t.Fatalf("%d secrets checked for 12 wrong guesses, want 10: the last 2 must be refused before hashing", n)
	}
	// Nobody else is locked out: the guessed key with its right secret,
	// verified a moment ago, and another key from the same address.
	if status, _ := as(e.api, t, basic("b", "b")).Do("GET", "/links", nil); status != http.StatusOK {
		t.Fatalf("the right secret of the guessed key, verified before: %d, want 200", status)
	}
	if status, _ := as(e.api, t, basic("c", "c")).Do("GET", "/links", nil); status != http.StatusOK {
		t.Fatalf("another key from the same address: %d, want 200", status)
	}
	// Unknown keys count against the address, and do not lock out the
	// known keys from it either.
	statuses = map[int]int{}
	for i := range 12 {
		status, _ := as(e.api, t, basic(fmt.Sprintf("nokey%d", i), "x")).Do("GET", "/links", nil)
		statuses[status]++
	}
	if statuses[http.StatusTooManyRequests] != 2 {
		t.Fatalf("unknown keys answered %v, want 2x429 after 10", statuses)
	}
	if status, _ := as(e.api, t, basic("c", "c")).Do("GET", "/links", nil); status != http.StatusOK {
		t.Fatalf("a valid key from an address over its budget for unknown keys: %d, want 200", status)
	}
}

func TestAPITLS(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "strait test CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "strait-1")
	caFile := testutil.WriteFile(t, dir, "clients.pem", ca.PEM)
	e := newEnvWith(t, &env{scheme: "https", configure: func(c *config.Config) {
		c.TLSCertFile, c.TLSKeyFile, c.TLSClientCAFile = certFile, keyFile, caFile
		c.Auth.ClientCertificates = true
		c.Auth.APIKeys = []auth.APIKey{{Key: "k", SecretHash: hashed(t, "s")}}
		c.Auth.Roles = []auth.Role{{Principal: "User:alice", Role: "viewer"}, {Principal: "User:k", Role: "viewer"}}
	}})
	client := func(certs ...tls.Certificate) *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{RootCAs: ca.Pool(), Certificates: certs},
		}}
	}
	// Go's client only offers a certificate the server's CA list accepts;
	// force the stranger's on it to see the server refuse it.
	strangerCert := testutil.NewCA(t, "someone else's CA").KeyPair(t, "alice")
	forced := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		RootCAs:              ca.Pool(),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &strangerCert, nil },
	}}}
	cases := []struct {
		name   string
		client *http.Client
		cred   func(*http.Request)
		want   int // 0: the connection fails
	}{
		{"client certificate", client(ca.KeyPair(t, "alice")), nil, http.StatusOK},
		{"client certificate without a role", client(ca.KeyPair(t, "mallory")), nil, http.StatusForbidden},
		{"no client certificate", client(), nil, http.StatusUnauthorized},
		{"no client certificate, api key over TLS", client(), basic("k", "s"), http.StatusOK},
		{"certificate from another CA", forced, nil, 0},
		{"server not trusted", &http.Client{Timeout: 10 * time.Second}, basic("k", "s"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", e.api.Base+"/links", nil)
			if c.cred != nil {
				c.cred(req)
			}
			resp, err := c.client.Do(req)
			if c.want == 0 {
				if err == nil {
					resp.Body.Close()
					t.Fatalf("connection succeeded: %d", resp.StatusCode)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.want, body)
			}
			testutil.CheckResponse(t, req, resp.StatusCode, resp.Header, body)
		})
	}
	// Plain HTTP to the TLS port is not served.
	if resp, err := http.Get("http://" + strings.TrimPrefix(e.api.Root, "https://") + "/kafka/v3/clusters"); err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS listener: %d", resp.StatusCode)
		}
	}

	// A renewed certificate is served without a restart.
	cert2, key2 := ca.Issue(t, "strait-2")
	testutil.WriteFile(t, dir, "tls.key", key2)
	testutil.WriteFile(t, dir, "tls.crt", cert2)
	later := time.Now().Add(time.Minute)
	_ = os.Chtimes(certFile, later, later)
	c := client(ca.KeyPair(t, "alice"))
	testutil.WaitFor(t, 20*time.Second, "renewed certificate served", func() error {
		resp, err := c.Get(e.api.Base + "/links")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if cn := resp.TLS.PeerCertificates[0].Subject.CommonName; cn != "strait-2" {
			return fmt.Errorf("served %s", cn)
		}
		return nil
	})
}

// TestTLSToKafka mirrors from a source that only speaks TLS into a
// destination that only speaks TLS, each trusting its own CA and each
// requiring a client certificate (mutual TLS).
func TestTLSToKafka(t *testing.T) {
	dir := t.TempDir()
	srcCA, dstCA, clientCA := testutil.NewCA(t, "source CA"), testutil.NewCA(t, "destination CA"), testutil.NewCA(t, "client CA")
	mtls := func(ca *testutil.CA) kfake.Opt {
		return kfake.TLS(&tls.Config{
			Certificates: []tls.Certificate{ca.KeyPair(t, "localhost")},
			ClientCAs:    clientCA.Pool(),
			ClientAuth:   tls.RequireAndVerifyClientCert,
			MinVersion:   tls.VersionTLS12,
		})
	}
	pool := srcCA.Pool()
	pool.AddCert(dstCA.Cert)
	testClient := clientCA.KeyPair(t, "test-client")
	straitCert, straitKey := clientCA.Issue(t, "strait")
	e := newEnvWith(t, &env{
		srcOpts:    []kfake.Opt{mtls(srcCA)},
		dstOpts:    []kfake.Opt{mtls(dstCA)},
		clientOpts: []kgo.Opt{kgo.DialTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{testClient}})},
		configure: func(c *config.Config) {
			c.DestinationSecurityProtocol = "SSL"
			c.DestinationCAFile = testutil.WriteFile(t, dir, "dest-ca.pem", dstCA.PEM)
			c.DestinationCertFile = testutil.WriteFile(t, dir, "strait.crt", straitCert)
			c.DestinationKeyFile = testutil.WriteFile(t, dir, "strait.key", straitKey)
		},
	})
	testutil.CreateTopic(t, e.srcCl, "encrypted", 3, nil)
	produceWith(t, e.srcCl, "encrypted", 500)
	bootstrap := map[string]string{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}
	ssl := map[string]string{"name": "security.protocol", "value": "SSL"}
	pemTrust := map[string]string{"name": "ssl.truststore.type", "value": "PEM"}
	pemKeys := map[string]string{"name": "ssl.keystore.type", "value": "PEM"}
	chain := map[string]string{"name": "ssl.keystore.certificate.chain", "value": string(straitCert)}
	key := map[string]string{"name": "ssl.keystore.key", "value": string(straitKey)}
	trust := func(ca *testutil.CA) map[string]string {
		return map[string]string{"name": "ssl.truststore.certificates", "value": string(ca.PEM)}
	}
	// Each missing piece fails validation with a clear 400.
	for name, configs := range map[string][]map[string]string{
		"plaintext to a TLS source":    {bootstrap},
		"trusting the wrong CA":        {bootstrap, ssl, pemTrust, trust(dstCA), pemKeys, chain, key},
		"without a client certificate": {bootstrap, ssl, pemTrust, trust(srcCA)},
	} {
		status, body := e.api.Do("POST", "/links?link_name=refused", map[string]any{"configs": configs})
		if status != http.StatusBadRequest || !strings.Contains(string(body), "Unable to validate cluster link") {
			t.Fatalf("%s: %d %s", name, status, body)
		}
	}
	e.api.JSON("POST", "/links?link_name=tls", map[string]any{"configs": []map[string]string{bootstrap, ssl, pemTrust, trust(srcCA), pemKeys, chain, key}}, http.StatusNoContent, nil)
	e.createMirror("tls", "encrypted")
	e.waitCaughtUp("encrypted", "encrypted")
	if n := e.assertIdentical("encrypted", "encrypted"); n != 500 {
		t.Fatalf("compared %d records, want 500", n)
	}
	// The private key is a secret like any other.
	_, body := e.api.Do("GET", "/links/tls/configs", nil)
	if strings.Contains(string(body), "PRIVATE KEY") {
		t.Fatalf("configs show the private key: %s", body)
	}
}

// TestCredentialRotation rotates API keys (config file) and JWT signing
// keys (JWKS file) while the daemon runs.
func TestCredentialRotation(t *testing.T) {
	dir := t.TempDir()
	dst := testutil.NewCluster(t, kfake.ClusterID("rotation"))
	oldKey, newKey := newRSASigner(t, "2025"), newRSASigner(t, "2026")
	jwksFile := testutil.WriteFile(t, dir, "jwks.json", jwks(t, oldKey))
	file := dir + "/strait.yaml"
	write := func(keys ...string) {
		var b strings.Builder
		fmt.Fprintf(&b, "destination_bootstrap: %s\nhttp: 127.0.0.1:0\nauth:\n  jwt:\n    jwks_file: %s\n  api_keys:\n", dst.ListenAddrs()[0], jwksFile)
		for _, k := range keys {
			fmt.Fprintf(&b, "    - key: %s\n      secret_hash: %s\n      principal: User:ops\n", k, hashed(t, k+"-secret"))
		}
		b.WriteString("  roles:\n    - principal: User:ops\n      role: viewer\n    - principal: User:robot\n      role: viewer\n")
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
		// Make the change visible to a watcher comparing modification
		// times, however coarse the file system's clock.
		later := time.Now().Add(time.Duration(len(keys)) * time.Minute)
		_ = os.Chtimes(file, later, later)
	}
	write("KEY2025")
	reload := func() (config.Config, error) {
		c := config.Defaults()
		err := c.LoadFile(file)
		return c, err
	}
	cfg, err := reload()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, logger(), daemon.Options{ConfigFile: file, Reload: reload, ReloadInterval: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	api := testutil.NewAPI(t, "http://"+d.Addr(), "/kafka/v3", d.Manager().ClusterID())
	status := func(cred func(*http.Request)) int {
		s, _ := as(api, t, cred).Do("GET", "/links", nil)
		return s
	}
	waitStatus := func(what string, cred func(*http.Request), want int) {
		t.Helper()
		testutil.WaitFor(t, 10*time.Second, what, func() error {
			if s := status(cred); s != want {
				return fmt.Errorf("status %d, want %d", s, want)
			}
			return nil
		})
	}
	tok := func(s *jwtSigner) func(*http.Request) {
		return bearer(s.token(t, claims("robot", time.Now().Add(time.Hour), map[string]any{"aud": nil, "iss": nil}), ""))
	}
	if s := status(basic("KEY2025", "KEY2025-secret")); s != http.StatusOK {
		t.Fatalf("old key before rotation: %d", s)
	}
	if s := status(tok(oldKey)); s != http.StatusOK {
		t.Fatalf("old signing key: %d", s)
	}
	if s := status(tok(newKey)); s != http.StatusUnauthorized {
		t.Fatalf("new signing key before it is published: %d", s)
	}

	// API keys: add the new one, move clients over, retire the old one.
	write("KEY2025", "KEY2026")
	waitStatus("new API key accepted", basic("KEY2026", "KEY2026-secret"), http.StatusOK)
	if s := status(basic("KEY2025", "KEY2025-secret")); s != http.StatusOK {
		t.Fatalf("old key during the overlap: %d", s)
	}
	write("KEY2026")
	waitStatus("old API key refused", basic("KEY2025", "KEY2025-secret"), http.StatusUnauthorized)

	// A config that does not validate leaves the running settings alone.
	if err := os.WriteFile(file, []byte("auth:\n  roles:\n    - principal: User:x\n      role: god\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Hour)
	_ = os.Chtimes(file, later, later)
	time.Sleep(300 * time.Millisecond) // several reload intervals; nothing to poll for
	if s := status(basic("KEY2026", "KEY2026-secret")); s != http.StatusOK {
		t.Fatalf("after a bad config: %d", s)
	}

	// Signing keys: publish the new key beside the old one.
	if err := os.WriteFile(jwksFile, jwks(t, oldKey, newKey), 0o600); err != nil {
		t.Fatal(err)
	}
	waitStatus("token of the new signing key", tok(newKey), http.StatusOK)
}

// TestSecretsNeverShown gives a link credentials and looks for them in
// every API answer, the daemon's log (at debug level, with the audit
// lines) and the raw state topic.
func TestSecretsNeverShown(t *testing.T) {
	const password = "pw-5f1c-9a7e-never-shown"
	const keyPassword = "kp-03b9-never-shown"
	var logs testutil.SyncBuffer
	e := newEnvWith(t, &env{
		srcOpts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pass"), kfake.User("SCRAM-SHA-512", "linker", password)},
		log:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	admin := testutil.Client(t, e.src.ListenAddrs(), saslOpt("SCRAM-SHA-256", "admin", "admin-pass"))
	e.srcCl = admin
	testutil.CreateTopic(t, admin, "secret-topic", 1, nil)
	produceWith(t, admin, "secret-topic", 50)
	jaas := `org.apache.kafka.common.security.scram.ScramLoginModule required username="linker" password="` + password + `";`
	e.createLink("sec", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas, "ssl.key.password": keyPassword})
	e.createMirror("sec", "secret-topic")
	e.waitCaughtUp("secret-topic", "secret-topic")
	// Change it through each write path, and fail one on purpose.
	e.api.JSON("PUT", "/links/sec/configs/ssl.key.password", map[string]any{"value": keyPassword + "-2"}, http.StatusNoContent, nil)
	e.api.JSON("PUT", "/links/sec/configs:alter", map[string]any{"data": []any{map[string]any{"name": "sasl.jaas.config", "value": jaas}}}, http.StatusNoContent, nil)
	_, refusedAlter := e.api.Do("PUT", "/links/sec/configs:alter", map[string]any{"data": []any{map[string]any{"name": "sasl.jaas.config", "value": "broken " + password}}})
	_, refusedQuoted := e.api.Do("PUT", "/links/sec/configs/sasl.jaas.config", map[string]any{"value": `org.apache.kafka.common.security.scram.ScramLoginModule required username="linker" password="` + password})
	_, refusedCreate := e.api.Do("POST", "/links?link_name=bad", map[string]any{"configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]},
		map[string]any{"name": "sasl.jaas.config", "value": strings.Replace(jaas, "linker", "nobody", 1)},
		map[string]any{"name": "security.protocol", "value": "SASL_PLAINTEXT"},
		map[string]any{"name": "sasl.mechanism", "value": "SCRAM-SHA-512"},
	}})

	secrets := []string{password, keyPassword}
	check := func(where, text string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Fatalf("%s contains a secret", where)
			}
		}
	}
	for i, refused := range [][]byte{refusedAlter, refusedQuoted, refusedCreate} {
		check(fmt.Sprintf("refusal %d (%s)", i, refused), string(refused))
	}
	for _, path := range []string{"", "/links", "/links/sec", "/links/sec?include_tasks=true", "/links/sec/configs", "/links/sec/configs/sasl.jaas.config", "/links/sec/configs/ssl.key.password", "/links/-/mirrors", "/links/sec/mirrors", "/links/sec/mirrors/secret-topic?include_state_transition_errors=true"} {
		_, body := e.api.Do("GET", path, nil)
		check("GET "+path, string(body))
	}

	// The state topic holds the credentials sealed, and the daemon can
	// open them again after a restart.
	state := testutil.ReadAll(t, e.dst.ListenAddrs(), config.Defaults().StateTopic)
	var raw strings.Builder
	for _, rs := range state {
		for _, r := range rs {
			raw.Write(r.Key)
			raw.Write(r.Value)
		}
	}
	check("the state topic", raw.String())
	if !strings.Contains(raw.String(), "sealed:v2:") {
		t.Fatal("no sealed value in the state topic")
	}
	e.stopDaemon()
	e.startDaemon()
	e.api.JSON("POST", "/links/sec/mirrors:pause", names("secret-topic"), http.StatusOK, nil)
	e.api.JSON("POST", "/links/sec/mirrors:resume", names("secret-topic"), http.StatusOK, nil)
	produceWith(t, admin, "secret-topic", 50)
	e.waitCaughtUp("secret-topic", "secret-topic") // the source still authenticates
	check("the daemon's log", logs.String())
	if !strings.Contains(logs.String(), "msg=audit") {
		t.Fatal("the log capture holds no audit lines: it is not the daemon's log")
	}

	// Under another key a daemon refuses to start, says why, and leaks
	// nothing either.
	e.stopDaemon()
	wrong, _ := secret.NewKey()
	cfg := daemontest.Config(e.dst)
	cfg.SecretsKey = wrong
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, e.log, daemon.Options{})
	if err == nil {
		d.Manager().Close()
		t.Fatal("a daemon started with the wrong secrets key")
	}
	if !strings.Contains(err.Error(), "secrets key") {
		t.Fatalf("start with the wrong key: %v", err)
	}
	check("the start error", err.Error())
	check("the daemon's log", logs.String())
}

// TestPatternWorkIsBounded: a pattern that matches more mirror topics than
// one request may touch is refused whole, before anything changes.
func TestPatternWorkIsBounded(t *testing.T) {
	e := newEnvWith(t, &env{maxTopics: 3})
	e.createLink("l", nil)
	for i := range 4 {
		topic := fmt.Sprintf("bulk-%d", i)
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
		e.createMirror("l", topic)
	}
	status, body := e.api.Do("POST", "/links/l/mirrors:pause", map[string]any{"mirror_topic_name_pattern": "bulk-.*"})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "selects 4 mirror topics; at most 3") {
		t.Fatalf("pattern over the cap: %d %s", status, body)
	}
	for i := range 4 {
		if v := e.describe("l", fmt.Sprintf("bulk-%d", i)); v.MirrorStatus == "PAUSED" {
			t.Fatalf("bulk-%d paused by a refused request", i)
		}
	}
	// Within the cap the same pattern works.
	var res alterResults
	e.api.JSON("POST", "/links/l/mirrors:pause", map[string]any{"mirror_topic_name_pattern": "bulk-[0-2]"}, http.StatusOK, &res)
	if len(res.Data) != 3 {
		t.Fatalf("%d results, want 3", len(res.Data))
	}
}

// TestSecretsKeyRotation changes the secrets key without losing a link's
// credentials: the daemon starts with the new key and the old one in
// secrets_previous_keys, opens the credentials, seals them again with the
// new key, and from then on starts with the new key alone. A key that is
// neither refuses to start, saying why.
func TestSecretsKeyRotation(t *testing.T) {
	const password = "rotated-pw-41d2"
	e := newEnvWith(t, &env{
		srcOpts: []kfake.Opt{kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-256", "admin", "admin-pass"), kfake.User("SCRAM-SHA-512", "linker", password)},
	})
	admin := testutil.Client(t, e.src.ListenAddrs(), saslOpt("SCRAM-SHA-256", "admin", "admin-pass"))
	e.srcCl = admin
	testutil.CreateTopic(t, admin, "rot", 1, nil)
	produceWith(t, admin, "rot", 20)
	jaas := `org.apache.kafka.common.security.scram.ScramLoginModule required username="linker" password="` + password + `";`
	e.createLink("rot", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512", "sasl.jaas.config": jaas})
	e.createMirror("rot", "rot")
	e.waitCaughtUp("rot", "rot")

	// sealed returns the sealed values of the link's latest record in the
	// state topic, and the raw state topic.
	sealedRe := regexp.MustCompile(`sealed:v[12]:[A-Za-z0-9+/=]+`)
	sealed := func() ([]string, string) {
		t.Helper()
		var last []byte
		var raw strings.Builder
		for _, rs := range testutil.ReadAll(t, e.dst.ListenAddrs(), config.Defaults().StateTopic) {
			for _, r := range rs {
				raw.Write(r.Key)
				raw.Write(r.Value)
				if strings.HasSuffix(string(r.Key), "rot") && strings.Contains(string(r.Key), "link") && !strings.Contains(string(r.Key), "mirror") {
					last = r.Value
				}
			}
		}
		return sealedRe.FindAllString(string(last), -1), raw.String()
	}
	var rot struct {
		LinkID string `json:"link_id"`
	}
	e.api.JSON("GET", "/links/rot", nil, http.StatusOK, &rot)
	linkID := strings.ReplaceAll(rot.LinkID, "-", "") // the stored id is hex without dashes
	oldKey := e.secretsKey
	newKey, err := secret.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	oldSealer := mustSealer(t, oldKey)
	newSealer := mustSealer(t, newKey)
	opensWith := func(s *secret.Sealer) bool {
		t.Helper()
		vs, _ := sealed()
		if len(vs) == 0 {
			t.Fatal("no sealed value in the link's record")
		}
		for _, v := range vs {
			if got, err := s.Open(v, secret.Binding("strait link config", linkID, "sasl.jaas.config")); err == nil && got == jaas {
				return true
			}
		}
		return false
	}
	if !opensWith(oldSealer) {
		t.Fatal("the credentials are not sealed with the first key")
	}

	// A key that is neither: refused, with the reason.
	e.stopDaemon()
	e.secretsKey = newKey
	cfg := daemontest.Config(e.dst)
	cfg.SecretsKey = newKey
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := daemon.New(ctx, cfg, logger(), daemon.Options{}); err == nil || !strings.Contains(err.Error(), "does not open with this secrets key") {
		t.Fatalf("start with a key that opens nothing: %v", err)
	}

	// The new key with the old one as previous: starts, seals again.
	e.configure = func(c *config.Config) { c.SecretsPreviousKeys = oldKey }
	e.startDaemon()
	if !opensWith(newSealer) {
		t.Fatal("the credentials were not sealed again with the new key")
	}
	produceWith(t, admin, "rot", 20)
	e.waitCaughtUp("rot", "rot")

	// The new key alone from now on.
	e.stopDaemon()
	e.configure = nil
	e.startDaemon()
	produceWith(t, admin, "rot", 20)
	e.waitCaughtUp("rot", "rot")
	src := testutil.ReadAll(t, e.src.ListenAddrs(), "rot", saslOpt("SCRAM-SHA-256", "admin", "admin-pass"))
	if diff := testutil.DiffRecords(src, testutil.ReadAll(t, e.dst.ListenAddrs(), "rot")); diff != "" || testutil.Count(src) != 60 {
		t.Fatalf("%d source records; mirror differs: %s", testutil.Count(src), diff)
	}
	if _, raw := sealed(); strings.Contains(raw, password) {
		t.Fatal("the state topic holds the password in the clear")
	}
}

func mustSealer(t *testing.T, key string) *secret.Sealer {
	t.Helper()
	k, err := secret.ParseKey(key)
	if err != nil {
		t.Fatal(err)
	}
	s, err := secret.New(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
