package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/big"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

// JWTConfig verifies Bearer tokens: JWS-signed JWTs whose key is in a JSON
// Web Key Set, with issuer, audience and time checks.
type JWTConfig struct {
	// JWKSURL is fetched (with a timeout) when a token names a key not
	// yet known, at most every 30 s; JWKSFile is read at start. One of
	// them is required.
	JWKSURL  string `yaml:"jwks_url"`
	JWKSFile string `yaml:"jwks_file"`
	// Issuer, if set, must equal the token's iss.
	Issuer string `yaml:"issuer"`
	// Audience, if set, must be in the token's aud.
	Audience string `yaml:"audience"`
	// ClockSkew is the leeway on exp, nbf and iat, e.g. "30s"; at most
	// 5m. Default 30s.
	ClockSkew string `yaml:"clock_skew"`
	// PrincipalClaim names the claim that is the principal (User:<value>);
	// default sub.
	PrincipalClaim string `yaml:"principal_claim"`
}

const maxClockSkew = 5 * time.Minute

func (c *JWTConfig) validate() error {
	if (c.JWKSURL == "") == (c.JWKSFile == "") {
		return errors.New("exactly one of jwks_url and jwks_file is required")
	}
	if c.JWKSURL != "" && !strings.HasPrefix(c.JWKSURL, "https://") && !strings.HasPrefix(c.JWKSURL, "http://127.0.0.1") && !strings.HasPrefix(c.JWKSURL, "http://localhost") {
		return errors.New("jwks_url must be https (or http on loopback)")
	}
	if _, err := c.skew(); err != nil {
		return err
	}
	return nil
}

func (c *JWTConfig) skew() (time.Duration, error) {
	if c.ClockSkew == "" {
		return 30 * time.Second, nil
	}
	d, err := time.ParseDuration(c.ClockSkew)
	if err != nil || d < 0 || d > maxClockSkew {
		return 0, fmt.Errorf("clock_skew '%s' must be a duration between 0 and %v", c.ClockSkew, maxClockSkew)
	}
	return d, nil
}

// jwtVerifier verifies tokens against one configuration and key set.
//
// The key set is refreshed off the request path: a token with a key id not
// yet known starts a refresh (at most one at a time, and for an unknown id
// at most one per refresh interval after one that succeeded; one that
// failed is tried again sooner, backing off), and waits for it at most as
// long as its own request may wait. Tokens with known keys never wait: no
// lock is held while the key set is fetched.
type jwtVerifier struct {
	cfg  JWTConfig
	skew time.Duration
	http *http.Client

	mu       sync.Mutex
	keys     map[string]crypto.PublicKey // by kid
	nextTry  time.Time                   // no refresh before this
	fails    int                         // refreshes failed in a row
	lastErr  error                       // of the last refresh, nil if it succeeded
	inflight chan struct{}               // closed when the refresh under way ends
}

func newJWTVerifier(cfg JWTConfig) (*jwtVerifier, error) {
	skew, err := cfg.skew()
	if err != nil {
		return nil, err
	}
	v := &jwtVerifier{cfg: cfg, skew: skew, http: &http.Client{Timeout: 10 * time.Second}, keys: map[string]crypto.PublicKey{}}
	if cfg.JWKSFile != "" {
		b, err := os.ReadFile(cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		if v.keys, err = parseJWKS(b); err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
	}
	return v, nil
}

// key returns the key kid names, refreshing the key set when kid is not in
// it (see jwtVerifier).
func (v *jwtVerifier) key(ctx context.Context, kid string) (crypto.PublicKey, error) {
	v.mu.Lock()
	if k, ok := v.pick(kid); ok {
		v.mu.Unlock()
		return k, nil
	}
	if v.inflight == nil && !time.Now().Before(v.nextTry) {
		v.inflight = make(chan struct{})
		go v.refresh(v.inflight)
	}
	wait := v.inflight
	v.mu.Unlock()
	if wait == nil {
		return nil, fmt.Errorf("unknown key id '%s'", kid)
	}
	select {
	case <-wait:
	case <-ctx.Done():
		return nil, fmt.Errorf("unknown key id '%s' (the key set is being fetched): %w", kid, ctx.Err())
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if k, ok := v.pick(kid); ok {
		return k, nil
	}
	if v.lastErr != nil {
		return nil, fmt.Errorf("unknown key id '%s' (the key set could not be fetched: %w)", kid, v.lastErr)
	}
	return nil, fmt.Errorf("unknown key id '%s'", kid)
}

// pick finds kid's key (the only key for a token without kid). Callers
// hold mu.
func (v *jwtVerifier) pick(kid string) (crypto.PublicKey, bool) {
	if kid == "" && len(v.keys) == 1 {
		for _, k := range v.keys {
			return k, true
		}
	}
	k, ok := v.keys[kid]
	return k, ok
}

// refresh fetches the key set once and closes done. A key set rotates by
// adding a key before tokens use it: after a fetch that succeeded, the URL
// is asked again at most every 30 s (the file every second); after a
// failure, sooner, doubling from one second.
func (v *jwtVerifier) refresh(done chan struct{}) {
	every := 30 * time.Second
	if v.cfg.JWKSFile != "" {
		every = time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	b, err := v.readJWKS(ctx)
	var keys map[string]crypto.PublicKey
	if err == nil {
		if keys, err = parseJWKS(b); err != nil {
			err = fmt.Errorf("JWKS: %w", err)
		}
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.lastErr = err
	if err != nil {
		v.fails++
		v.nextTry = time.Now().Add(min(every, time.Second<<min(v.fails-1, 5)))
	} else {
		v.keys, v.fails = keys, 0
		v.nextTry = time.Now().Add(every)
	}
	v.inflight = nil
	close(done)
}

// readJWKS reads the key set from the file or the URL.
func (v *jwtVerifier) readJWKS(ctx context.Context) ([]byte, error) {
	if v.cfg.JWKSFile != "" {
		b, err := os.ReadFile(v.cfg.JWKSFile)
		if err != nil {
			return nil, fmt.Errorf("jwks_file: %w", err)
		}
		return b, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.cfg.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: status %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

// verify checks a compact JWS JWT and returns its principal claim.
func (v *jwtVerifier) verify(ctx context.Context, token string, now time.Time) (string, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return "", errors.New("token is not a JWS in compact form")
	}
	var header struct {
		Alg  string          `json:"alg"`
		Kid  string          `json:"kid"`
		Crit json.RawMessage `json:"crit"`
	}
	if err := decodeSegment(parts[0], &header); err != nil {
		return "", fmt.Errorf("token header: %w", err)
	}
	if header.Crit != nil {
		// RFC 7515 4.1.11: a recipient must refuse critical extensions it
		// does not understand, and Strait understands none.
		return "", errors.New("token header has critical extensions (crit), which Strait does not understand")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return "", errors.New("token signature is not base64url")
	}
	key, err := v.key(ctx, header.Kid)
	if err != nil {
		return "", err
	}
	if err := verifySignature(header.Alg, key, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return "", err
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil {
		return "", fmt.Errorf("token claims: %w", err)
	}
	return v.checkClaims(claims, now)
}

func (v *jwtVerifier) checkClaims(claims map[string]any, now time.Time) (string, error) {
	exp, ok := numericDate(claims["exp"])
	if !ok {
		return "", errors.New("token has no exp")
	}
	if now.After(exp.Add(v.skew)) {
		return "", errors.New("token expired")
	}
	for _, c := range []string{"nbf", "iat"} {
		if _, present := claims[c]; !present {
			continue
		}
		at, ok := numericDate(claims[c])
		switch {
		case !ok:
			return "", fmt.Errorf("token claim %s is not a number", c)
		case now.Add(v.skew).Before(at) && c == "nbf":
			return "", errors.New("token not valid yet (nbf)")
		case now.Add(v.skew).Before(at):
			return "", errors.New("token issued in the future (iat)")
		}
	}
	if v.cfg.Issuer != "" && claims["iss"] != v.cfg.Issuer {
		return "", fmt.Errorf("token issuer %v is not %s", claims["iss"], v.cfg.Issuer)
	}
	if v.cfg.Audience != "" && !hasAudience(claims["aud"], v.cfg.Audience) {
		return "", fmt.Errorf("token audience %v does not include %s", claims["aud"], v.cfg.Audience)
	}
	name := v.cfg.PrincipalClaim
	if name == "" {
		name = "sub"
	}
	sub, _ := claims[name].(string)
	if sub == "" {
		return "", fmt.Errorf("token has no '%s' claim", name)
	}
	return sub, nil
}

func numericDate(v any) (time.Time, bool) {
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}

func hasAudience(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, x := range a {
			if x == want {
				return true
			}
		}
	}
	return false
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return errors.New("not base64url")
	}
	return json.Unmarshal(b, v)
}

// verifySignature checks a JWS signature. Only asymmetric algorithms are
// accepted: "none" and the HMAC ones would let anyone with the public key
// (or no key) sign.
func verifySignature(alg string, key crypto.PublicKey, signed, sig []byte) error {
	var h crypto.Hash
	var sum func([]byte) []byte
	switch alg {
	case "RS256", "PS256", "ES256":
		h, sum = crypto.SHA256, hashWith(sha256.New)
	case "RS384", "PS384", "ES384":
		h, sum = crypto.SHA384, hashWith(sha512.New384)
	case "RS512", "PS512", "ES512":
		h, sum = crypto.SHA512, hashWith(sha512.New)
	case "EdDSA":
		k, ok := key.(ed25519.PublicKey)
		if !ok || !ed25519.Verify(k, signed, sig) {
			return errors.New("bad token signature")
		}
		return nil
	default:
		return fmt.Errorf("token algorithm '%s' is not accepted", alg)
	}
	digest := sum(signed)
	switch k := key.(type) {
	case *rsa.PublicKey:
		var err error
		switch alg[0] {
		case 'R':
			err = rsa.VerifyPKCS1v15(k, h, digest, sig)
		case 'P':
			err = rsa.VerifyPSS(k, h, digest, sig, nil)
		default:
			err = errors.New("algorithm does not fit an RSA key")
		}
		if err != nil {
			return errors.New("bad token signature")
		}
		return nil
	case *ecdsa.PublicKey:
		size := (k.Curve.Params().BitSize + 7) / 8
		if alg[0] != 'E' || len(sig) != 2*size {
			return errors.New("bad token signature")
		}
		r, s := new(big.Int).SetBytes(sig[:size]), new(big.Int).SetBytes(sig[size:])
		if !ecdsa.Verify(k, digest, r, s) {
			return errors.New("bad token signature")
		}
		return nil
	}
	return errors.New("algorithm does not fit the key")
}

func hashWith(f func() hash.Hash) func([]byte) []byte {
	return func(b []byte) []byte {
		h := f()
		h.Write(b)
		return h.Sum(nil)
	}
}

// parseJWKS reads a JSON Web Key Set: RSA, EC (P-256, P-384, P-521) and
// Ed25519 public keys.
func parseJWKS(b []byte) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Kty string `json:"kty"`
			Crv string `json:"crv"`
			N   string `json:"n"`
			E   string `json:"e"`
			X   string `json:"x"`
			Y   string `json:"y"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	out := map[string]crypto.PublicKey{}
	num := func(s string) (*big.Int, error) {
		b, err := base64.RawURLEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			return nil, errors.New("bad key number")
		}
		return new(big.Int).SetBytes(b), nil
	}
	for i, k := range set.Keys {
		switch k.Kty {
		case "RSA":
			n, err1 := num(k.N)
			e, err2 := num(k.E)
			if err1 != nil || err2 != nil || !e.IsInt64() || n.BitLen() < 2048 {
				return nil, fmt.Errorf("keys[%d]: bad RSA key (at least 2048 bits)", i)
			}
			out[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				return nil, fmt.Errorf("keys[%d]: curve '%s' is not supported", i, k.Crv)
			}
			x, err1 := num(k.X)
			y, err2 := num(k.Y)
			if err1 != nil || err2 != nil || !curve.IsOnCurve(x, y) {
				return nil, fmt.Errorf("keys[%d]: bad EC key", i)
			}
			out[k.Kid] = &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
		case "OKP":
			x, err := base64.RawURLEncoding.DecodeString(k.X)
			if k.Crv != "Ed25519" || err != nil || len(x) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("keys[%d]: bad OKP key", i)
			}
			out[k.Kid] = ed25519.PublicKey(x)
		default:
			continue // symmetric and unknown key types are ignored
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no usable public key")
	}
	return out, nil
}
