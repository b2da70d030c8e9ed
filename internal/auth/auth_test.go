package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestSecretHashes(t *testing.T) {
	stored, err := HashSecret("correct horse")
	if err != nil {
		t.Fatal(err)
	}
	again, _ := HashSecret("correct horse")
	if stored == again {
		t.Fatal("two hashes of one secret are equal: no salt")
	}
	if strings.Contains(stored, "correct horse") {
		t.Fatal("the hash holds the secret")
	}
	tests := []struct {
		name, stored, secret string
		want                 bool
	}{
		{"right secret", stored, "correct horse", true},
		{"second hash, right secret", again, "correct horse", true},
		{"wrong secret", stored, "correct horsE", false},
		{"empty secret", stored, "", false},
		{"no stored hash", "", "correct horse", false},
		{"malformed stored hash", "pbkdf2-sha256$1$x$y", "correct horse", false},
		{"plaintext stored", "correct horse", "correct horse", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := verifySecret(tc.stored, tc.secret); got != tc.want {
				t.Fatalf("verifySecret = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseHashRefuses(t *testing.T) {
	for _, s := range []string{
		"",
		"md5$1$abc$def",
		"pbkdf2-sha256$100$c2FsdHNhbHQ$" + strings.Repeat("A", 43), // too few iterations
		"pbkdf2-sha256$100000$c2Fs$" + strings.Repeat("A", 43),     // salt too short
		"pbkdf2-sha256$100000$c2FsdHNhbHQ$QUJD",                    // hash too short
		"pbkdf2-sha256$lots$c2FsdHNhbHQ$" + strings.Repeat("A", 43),
	} {
		if _, err := parseHash(s); err == nil {
			t.Errorf("parseHash(%q) accepted", s)
		}
	}
}

func TestAllowed(t *testing.T) {
	g, err := New(Config{
		APIKeys: []APIKey{{Key: "k", SecretHash: mustHash(t, "s")}},
		Roles: []Role{
			{Principal: "User:viewer", Role: "viewer", Links: []string{"east"}},
			{Principal: "User:op", Role: "operator", Links: []string{"dr-*"}},
			{Principal: "User:admin", Role: "admin"},
			{Principal: "User:split", Role: "viewer"},
			{Principal: "User:split", Role: "admin", Links: []string{"sandbox"}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		who, action, link string
		want              bool
	}{
		{"User:viewer", ActionRead, "east", true},
		{"User:viewer", ActionRead, "west", false},
		{"User:viewer", ActionRead, "", false}, // every link: only east is granted
		{"User:viewer", ActionOperate, "east", false},
		{"User:op", ActionOperate, "dr-eu", true},
		{"User:op", ActionRead, "dr-eu", true},
		{"User:op", ActionOperate, "dr", false},
		{"User:op", ActionManage, "dr-eu", false},
		{"User:admin", ActionManage, "anything", true},
		{"User:admin", ActionManage, "", true},
		{"User:split", ActionRead, "prod", true},
		{"User:split", ActionManage, "prod", false},
		{"User:split", ActionManage, "sandbox", true},
		{"User:nobody", ActionRead, "east", false},
		{"User:VIEWER", ActionRead, "east", false}, // principals are case-sensitive, as in Kafka
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s %q", tc.who, tc.action, tc.link), func(t *testing.T) {
			if got := g.Allowed(Principal{Name: tc.who}, tc.action, tc.link); got != tc.want {
				t.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
		})
	}
	if !g.CanAny(Principal{Name: "User:viewer"}, ActionRead) || g.CanAny(Principal{Name: "User:viewer"}, ActionOperate) {
		t.Fatal("CanAny")
	}
	open, _ := New(Config{})
	if !open.Allowed(Anonymous, ActionManage, "x") {
		t.Fatal("without authentication everything is allowed")
	}
}

func mustHash(t *testing.T, s string) string {
	t.Helper()
	h, err := HashSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestAuthenticateCachesOnlySuccess(t *testing.T) {
	g, err := New(Config{APIKeys: []APIKey{{Key: "k", SecretHash: mustHash(t, "s")}}})
	if err != nil {
		t.Fatal(err)
	}
	req := func(secret string) *http.Request {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth("k", secret)
		return r
	}
	for i, tc := range []struct {
		secret string
		ok     bool
	}{{"s", true}, {"s", true}, {"x", false}, {"x", false}, {"s", true}} {
		_, err := g.Authenticate(req(tc.secret))
		if (err == nil) != tc.ok {
			t.Fatalf("attempt %d with %q: err %v", i, tc.secret, err)
		}
	}
	// A rotated key set starts with nothing remembered.
	g2, _ := New(Config{APIKeys: []APIKey{{Key: "k", SecretHash: mustHash(t, "new")}}})
	if _, err := g2.Authenticate(req("s")); err == nil {
		t.Fatal("the old secret works after rotation")
	}
}

func TestLimiter(t *testing.T) {
	l := newLimiter(2, 3) // 2 per second, bursts of 3
	t0 := time.Unix(1000, 0)
	var got []bool
	for _, at := range []time.Duration{0, 0, 0, 0, 400 * time.Millisecond, 500 * time.Millisecond, 500 * time.Millisecond, 10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second} {
		ok, wait := l.take("a", t0.Add(at))
		if !ok && wait <= 0 {
			t.Fatalf("refused at %v without a wait", at)
		}
		got = append(got, ok)
	}
	want := []bool{true, true, true, false, false, true, false, true, true, true, false}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if ok, _ := l.take("b", t0); !ok {
		t.Fatal("another principal shares the bucket")
	}
	// Memory stays bounded however many addresses fail.
	for i := range 3 * maxBuckets {
		l.take(fmt.Sprint("address:", i), t0.Add(time.Duration(i)*time.Millisecond))
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets", n)
	}
}

func TestJWTClaims(t *testing.T) {
	v, err := newJWTVerifier(JWTConfig{JWKSURL: "https://idp.example/jwks", Issuer: "iss", Audience: "aud", ClockSkew: "1m"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	at := func(d time.Duration) float64 { return float64(now.Add(d).Unix()) }
	base := func() map[string]any {
		return map[string]any{"sub": "svc", "iss": "iss", "aud": "aud", "exp": at(time.Hour)}
	}
	tests := []struct {
		name    string
		change  func(map[string]any)
		wantErr string
	}{
		{"valid", func(map[string]any) {}, ""},
		{"audience list", func(c map[string]any) { c["aud"] = []any{"x", "aud"} }, ""},
		{"expired beyond skew", func(c map[string]any) { c["exp"] = at(-61 * time.Second) }, "expired"},
		{"expired within skew", func(c map[string]any) { c["exp"] = at(-59 * time.Second) }, ""},
		{"nbf beyond skew", func(c map[string]any) { c["nbf"] = at(61 * time.Second) }, "nbf"},
		{"nbf within skew", func(c map[string]any) { c["nbf"] = at(59 * time.Second) }, ""},
		{"iat in the future", func(c map[string]any) { c["iat"] = at(10 * time.Minute) }, "iat"},
		{"nbf not a number", func(c map[string]any) { c["nbf"] = "now" }, "nbf"},
		{"no exp", func(c map[string]any) { delete(c, "exp") }, "exp"},
		{"exp not a number", func(c map[string]any) { c["exp"] = "tomorrow" }, "exp"},
		{"wrong issuer", func(c map[string]any) { c["iss"] = "other" }, "issuer"},
		{"no audience", func(c map[string]any) { delete(c, "aud") }, "audience"},
		{"wrong audience list", func(c map[string]any) { c["aud"] = []any{"x", 1} }, "audience"},
		{"no subject", func(c map[string]any) { delete(c, "sub") }, "sub"},
		{"subject not a string", func(c map[string]any) { c["sub"] = 7 }, "sub"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.change(c)
			sub, err := v.checkClaims(c, now)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.wantErr == "" && sub != "svc":
				t.Fatalf("principal %q", sub)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("error %v, want one about %q", err, tc.wantErr)
			}
		})
	}
}

// es256 signs claims with key under kid.
func es256(t *testing.T, key *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	t.Helper()
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	signed := enc(map[string]string{"alg": "ES256", "kid": kid}) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func ecJWK(key *ecdsa.PrivateKey, kid string) map[string]string {
	pad := func(i *big.Int) string {
		b := make([]byte, 32)
		i.FillBytes(b)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "x": pad(key.X), "y": pad(key.Y)}
}

// TestJWKSURL: keys come from the URL, a new key id makes Strait look
// again (not more than every 30 s), and a failing URL refuses tokens.
func TestJWKSURL(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	k2, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var mu sync.Mutex
	keys := []map[string]string{ecJWK(k1, "k1")}
	down := false
	fetches := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		fetches++
		if down {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	defer srv.Close()
	v, err := newJWTVerifier(JWTConfig{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"sub": "svc", "exp": now.Add(time.Hour).Unix()}
	verify := func(key *ecdsa.PrivateKey, kid string) error {
		_, err := v.verify(context.Background(), es256(t, key, kid, claims), now)
		return err
	}
	if err := verify(k1, "k1"); err != nil {
		t.Fatalf("first key: %v", err)
	}
	mu.Lock()
	keys = append(keys, ecJWK(k2, "k2"))
	mu.Unlock()
	if err := verify(k2, "k2"); err == nil {
		t.Fatal("a key published seconds after the last fetch was used without the 30 s pause")
	}
	v.mu.Lock()
	v.nextTry = time.Time{} // 30 s later
	v.mu.Unlock()
	if err := verify(k2, "k2"); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if err := verify(k1, "k1"); err != nil {
		t.Fatalf("old key still published: %v", err)
	}
	mu.Lock()
	down = true
	n := fetches
	mu.Unlock()
	v.mu.Lock()
	v.nextTry = time.Time{} // 30 s later
	v.mu.Unlock()
	if err := verify(k2, "k9"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unknown key with the URL down: %v", err)
	}
	if err := verify(k1, "k1"); err != nil {
		t.Fatalf("known key while the URL is down: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fetches != n+1 {
		t.Fatalf("%d fetches for one unknown key", fetches-n)
	}
}

// TestFailureBudgetWithoutRateLimit: with no rate limit configured, wrong
// API secrets still have a budget, so nobody can make the daemon hash
// secrets at will; the budget is per key, and another key's owner is not
// refused.
func TestFailureBudgetWithoutRateLimit(t *testing.T) {
	hashA, _ := HashSecret("a-secret")
	hashB, _ := HashSecret("b-secret")
	g, err := New(Config{APIKeys: []APIKey{{Key: "a", SecretHash: hashA}, {Key: "b", SecretHash: hashB}}})
	if err != nil {
		t.Fatal(err)
	}
	// The budget's clock stands still: a slow machine hashing the
	// guesses must not refill it while the test runs.
	at := time.Now()
	g.now = func() time.Time { return at }
	req := func(key, secret string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.SetBasicAuth(key, secret)
		return r
	}
	refused := 0
	for range failedBurst + 3 {
		_, wait, err := g.Admit(req("a", "guess"), "10.0.0.1")
		if err == nil {
			t.Fatal("a wrong secret was accepted")
		}
		if wait > 0 {
			refused++
		}
	}
	if refused != 3 {
		t.Fatalf("%d of %d wrong secrets refused for the budget, want 3", refused, failedBurst+3)
	}
	if p, wait, err := g.Admit(req("b", "b-secret"), "10.0.0.1"); err != nil || wait > 0 || p.Name != "User:b" {
		t.Fatalf("another key from the same address: %v %v %v", p, wait, err)
	}
}

// TestJWKSRefreshOffTheRequestPath: while the key set is being fetched
// (slowly) for an unknown key id, tokens with known keys are verified at
// once; and a fetch that failed is tried again within seconds, not after
// the 30 s that follow a successful one.
func TestJWKSRefreshOffTheRequestPath(t *testing.T) {
	k1, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	release := make(chan struct{})
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		switch calls.Add(1) {
		case 1:
		case 2:
			<-release // a slow identity provider
		default:
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{ecJWK(k1, "k1")}})
	}))
	defer srv.Close()
	defer close(release)
	v, err := newJWTVerifier(JWTConfig{JWKSURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	claims := map[string]any{"sub": "svc", "exp": now.Add(time.Hour).Unix()}
	if _, err := v.verify(context.Background(), es256(t, k1, "k1", claims), now); err != nil {
		t.Fatal(err)
	}
	v.mu.Lock()
	v.nextTry = time.Time{}
	v.mu.Unlock()
	slow := make(chan error, 1)
	go func() {
		_, err := v.verify(context.Background(), es256(t, k1, "unknown", claims), now)
		slow <- err
	}()
	for calls.Load() < 2 {
		time.Sleep(10 * time.Millisecond) // polling for the slow fetch to start
	}
	known := make(chan error, 1)
	go func() {
		_, err := v.verify(context.Background(), es256(t, k1, "k1", claims), now)
		known <- err
	}()
	select {
	case err := <-known:
		if err != nil {
			t.Fatal(err)
		}
	case <-slow:
		t.Fatal("the unknown key's fetch ended first")
	case <-time.After(5 * time.Second):
		t.Fatal("a token with a known key waited for the key set's fetch")
	}
	release <- struct{}{}
	<-slow
	v.mu.Lock()
	v.nextTry = time.Time{}
	v.mu.Unlock()
	if _, err := v.verify(context.Background(), es256(t, k1, "k9", claims), now); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unknown key with the URL down: %v", err)
	}
	v.mu.Lock()
	retryIn := time.Until(v.nextTry)
	v.mu.Unlock()
	if retryIn > 2*time.Second {
		t.Fatalf("after a failed fetch the next one waits %v", retryIn)
	}
}

// TestJWTCriticalHeaderRefused: a token whose header lists critical
// extensions (crit) is refused, signature valid or not: Strait
// understands none of them (RFC 7515 4.1.11).
func TestJWTCriticalHeaderRefused(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	file := filepath.Join(t.TempDir(), "jwks.json")
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{ecJWK(k, "k1")}})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := newJWTVerifier(JWTConfig{JWKSFile: file})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	signed := enc(map[string]any{"alg": "ES256", "kid": "k1", "crit": []string{"exp-ext"}, "exp-ext": 1}) + "." + enc(map[string]any{"sub": "svc", "exp": now.Add(time.Hour).Unix()})
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	tok := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	if _, err := v.verify(context.Background(), tok, now); err == nil || !strings.Contains(err.Error(), "crit") {
		t.Fatalf("token with crit: %v", err)
	}
	if _, err := v.verify(context.Background(), es256(t, k, "k1", map[string]any{"sub": "svc", "exp": now.Add(time.Hour).Unix()}), now); err != nil {
		t.Fatalf("the same key without crit: %v", err)
	}
}

// TestPrincipalsDoNotCollide is the attack: someone who can get a token (or
// a certificate) issued with a chosen subject picks the name of an API
// key's principal, or of a principal another method grants roles to.
func TestPrincipalsDoNotCollide(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	file := filepath.Join(t.TempDir(), "jwks.json")
	b, _ := json.Marshal(map[string]any{"keys": []map[string]string{ecJWK(k, "k1")}})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	hash, _ := HashSecret("s")
	base := Config{
		APIKeys: []APIKey{{Key: "ops", SecretHash: hash}},
		JWT:     &JWTConfig{JWKSFile: file},
		Roles:   []Role{{Principal: "User:ops", Role: "admin"}, {Principal: "User:svc", Role: "viewer", Method: "bearer"}},
	}
	g, err := New(base)
	if err != nil {
		t.Fatal(err)
	}
	bearer := func(sub string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", "Bearer "+es256(t, k, "k1", map[string]any{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()}))
		return r
	}
	if _, err := g.Authenticate(bearer("ops")); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Fatalf("a token naming an API key's principal: %v", err)
	}
	p, err := g.Authenticate(bearer("svc"))
	if err != nil || !g.Allowed(p, ActionRead, "l") {
		t.Fatalf("a token of its own principal: %v %v", p, err)
	}
	if g.Allowed(Principal{Name: "User:svc", Method: "certificate"}, ActionRead, "l") {
		t.Fatal("a certificate named like a bearer-only role's principal got its role")
	}
	withCerts := base
	withCerts.ClientCertificates = true
	withCerts.Roles = append(withCerts.Roles, Role{Principal: "User:either", Role: "viewer"})
	if err := withCerts.Validate(); err == nil || !strings.Contains(err.Error(), "method") {
		t.Fatalf("jwt and certificates with a role that does not say its method: %v", err)
	}
}
