// Package auth decides who may call Strait's REST API and what they may
// do: authentication (HTTP Basic with API keys, Bearer JWTs, or a TLS
// client certificate), authorization (roles per link and per action), and
// per-principal rate limits.
//
// A Guard is built from a Config and can be swapped for a new one at any
// time (Update), so keys, roles and JWT settings rotate without a restart.
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Config is the auth section of the daemon's configuration.
type Config struct {
	// APIKeys are accepted with HTTP Basic: the key is the user name, the
	// secret the password. Only salted hashes of secrets are stored.
	APIKeys []APIKey `yaml:"api_keys"`
	// JWT accepts Bearer tokens verified against a JWKS.
	JWT *JWTConfig `yaml:"jwt"`
	// ClientCertificates accepts a verified TLS client certificate (mutual
	// TLS) as authentication; its principal is User:<subject common name>.
	ClientCertificates bool `yaml:"client_certificates"`
	// Roles grant principals actions on links.
	Roles []Role `yaml:"roles"`
	// RateLimit caps requests per principal; zero means no limit.
	RateLimit RateLimit `yaml:"rate_limit"`
}

// APIKey is one key and the salted hash of its secret (see HashSecret).
type APIKey struct {
	Key        string `yaml:"key"`
	SecretHash string `yaml:"secret_hash"`
	// Principal names the key's owner; default User:<key>.
	Principal string `yaml:"principal"`
}

// Role grants a principal a role on links.
type Role struct {
	Principal string `yaml:"principal"`
	// Role is viewer (read), operator (read, operate mirrors) or admin
	// (read, operate, manage links and their configs).
	Role string `yaml:"role"`
	// Links are link names the role applies to; "*" is every link, and a
	// trailing "*" matches a prefix. Empty means every link.
	Links []string `yaml:"links"`
	// Method, if set, is the authentication method the principal must
	// have used: basic (API keys), bearer (JWTs) or certificate. Required
	// when JWTs and client certificates are both on and the principal is
	// not an API key's: a token's subject and a certificate's common name
	// could name the same principal.
	Method string `yaml:"method"`
}

// RateLimit is a token bucket per principal.
type RateLimit struct {
	// PerSecond is the sustained rate; zero disables the limit.
	PerSecond float64 `yaml:"per_second"`
	// Burst is how many requests may come at once; default 2x PerSecond.
	Burst int `yaml:"burst"`
}

// Actions a role can grant.
const (
	ActionRead    = "read"
	ActionOperate = "operate"
	ActionManage  = "manage"
)

var roleActions = map[string][]string{
	"viewer":   {ActionRead},
	"operator": {ActionRead, ActionOperate},
	"admin":    {ActionRead, ActionOperate, ActionManage},
}

// Enabled reports whether any authentication method is configured.
func (c *Config) Enabled() bool {
	return len(c.APIKeys) > 0 || c.JWT != nil || c.ClientCertificates
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	for i, k := range c.APIKeys {
		if k.Key == "" || strings.Contains(k.Key, ":") {
			return fmt.Errorf("auth.api_keys[%d]: key must be set and must not contain ':'", i)
		}
		if _, err := parseHash(k.SecretHash); err != nil {
			return fmt.Errorf("auth.api_keys[%d] (%s): %w", i, k.Key, err)
		}
	}
	if c.JWT != nil {
		if err := c.JWT.validate(); err != nil {
			return fmt.Errorf("auth.jwt: %w", err)
		}
	}
	keyPrincipals := map[string]bool{}
	for _, k := range c.APIKeys {
		keyPrincipals[k.principal()] = true
	}
	for i, r := range c.Roles {
		if r.Principal == "" {
			return fmt.Errorf("auth.roles[%d]: principal is required", i)
		}
		if _, ok := roleActions[r.Role]; !ok {
			return fmt.Errorf("auth.roles[%d]: role '%s' is not viewer, operator or admin", i, r.Role)
		}
		switch r.Method {
		case "", "basic", "bearer", "certificate":
		default:
			return fmt.Errorf("auth.roles[%d]: method '%s' is not basic, bearer or certificate", i, r.Method)
		}
		if r.Method == "" && c.JWT != nil && c.ClientCertificates && !keyPrincipals[r.Principal] {
			return fmt.Errorf("auth.roles[%d] (%s): with both jwt and client_certificates on, say which method the principal authenticates with (method: bearer or certificate): a token's subject and a certificate's name could both be %s", i, r.Principal, r.Principal)
		}
	}
	if c.RateLimit.PerSecond < 0 || c.RateLimit.Burst < 0 {
		return errors.New("auth.rate_limit: must not be negative")
	}
	if len(c.Roles) > 0 && !c.Enabled() {
		return errors.New("auth.roles are set but no authentication method is")
	}
	return nil
}

// principal is the principal an API key authenticates as.
func (k APIKey) principal() string {
	if k.Principal != "" {
		return k.Principal
	}
	return "User:" + k.Key
}

// Principal is an authenticated caller.
type Principal struct {
	// Name is Kafka-style, e.g. User:alice.
	Name string
	// Method is how it authenticated: basic, bearer, certificate or none.
	Method string
}

// Anonymous is the principal of every request when authentication is off.
var Anonymous = Principal{Name: "User:ANONYMOUS", Method: "none"}

// Errors of Authenticate; the REST layer answers them with 401.
var (
	ErrNoCredentials  = errors.New("no credentials")
	ErrBadCredentials = errors.New("bad credentials")
)

// Guard applies one Config. It is safe for concurrent use.
type Guard struct {
	cfg     Config
	keys    map[string]APIKey
	jwt     *jwtVerifier
	limiter *limiter
	ok      verified
	// failures is the budget of failed authentications (see Admit).
	failures *limiter
	// now is the clock of the budgets; time.Now but in tests.
	now func() time.Time
}

// The failure budget: failedBurst failed authentications, then one more
// every minute/failedPerMinute, per presented API key or per address.
const (
	failedBurst     = 10
	failedPerMinute = 10
)

// New builds a Guard from cfg.
func New(cfg Config) (*Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Guard{cfg: cfg, keys: map[string]APIKey{}, failures: newLimiter(failedPerMinute/60.0, failedBurst), now: time.Now}
	for _, k := range cfg.APIKeys {
		g.keys[k.Key] = k
	}
	if cfg.JWT != nil {
		v, err := newJWTVerifier(*cfg.JWT)
		if err != nil {
			return nil, err
		}
		g.jwt = v
	}
	if cfg.RateLimit.PerSecond > 0 {
		burst := cfg.RateLimit.Burst
		if burst == 0 {
			burst = max(1, int(2*cfg.RateLimit.PerSecond))
		}
		g.limiter = newLimiter(cfg.RateLimit.PerSecond, burst)
	}
	return g, nil
}

// Enabled reports whether requests must authenticate.
func (g *Guard) Enabled() bool { return g.cfg.Enabled() }

// Admit authenticates r (see Authenticate) within the budget of failed
// API secrets, and returns a wait when it is refused for too many failures
// (429). Failures count against what the request presents: a known API
// key counts against that key, an unknown one against the address it
// comes from (host).
// So guessing at one key, or from one address, never locks out another
// valid credential from the same address (a NAT, a proxy). A key over its
// budget is refused before its secret is hashed (a 100,000-round hash
// nobody should make the daemon pay at will), unless the same key and
// secret were verified a moment ago; an address over its budget likewise
// for unknown keys. Bearer tokens cost little to check and are always
// checked: a valid one is never refused for others' failures.
func (g *Guard) Admit(r *http.Request, host string) (Principal, time.Duration, error) {
	if !g.Enabled() {
		return Anonymous, 0, nil
	}
	budget := ""
	now := g.now()
	if key, secret, ok := r.BasicAuth(); ok && len(g.keys) > 0 {
		budget = "address:" + host
		if k, known := g.keys[key]; known {
			budget = "key:" + key
			if g.ok.has(verifiedKey(key, k.SecretHash, secret), now) {
				budget = "" // verified a moment ago: no hash to pay
			}
		}
		if spent, wait := g.failures.spent(budget, now); budget != "" && spent {
			return Principal{}, wait, fmt.Errorf("%w: too many failed authentications for %s", ErrBadCredentials, budget)
		}
	}
	p, err := g.Authenticate(r)
	if err != nil && budget != "" {
		if ok, wait := g.failures.take(budget, now); !ok {
			return Principal{}, wait, err
		}
	}
	return p, 0, err
}

// Authenticate returns the request's principal.
func (g *Guard) Authenticate(r *http.Request) (Principal, error) {
	if !g.Enabled() {
		return Anonymous, nil
	}
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Basic") && len(g.keys) > 0:
		key, secret, ok := r.BasicAuth()
		if !ok {
			return Principal{}, fmt.Errorf("%w: malformed Basic credentials", ErrBadCredentials)
		}
		k, found := g.keys[key]
		vk, now := verifiedKey(key, k.SecretHash, secret), time.Now()
		if !found || !g.ok.has(vk, now) {
			// Verify even for an unknown key, so timing does not tell
			// which keys exist.
			if !verifySecret(k.SecretHash, secret) || !found {
				return Principal{}, fmt.Errorf("%w: unknown API key or wrong secret", ErrBadCredentials)
			}
			g.ok.add(vk, now)
		}
		return Principal{Name: k.principal(), Method: "basic"}, nil
	case strings.EqualFold(scheme, "Bearer") && g.jwt != nil:
		sub, err := g.jwt.verify(r.Context(), strings.TrimSpace(cred), time.Now())
		if err != nil {
			return Principal{}, fmt.Errorf("%w: %v", ErrBadCredentials, err)
		}
		return g.notAKey(Principal{Name: "User:" + sub, Method: "bearer"})
	case h == "" && g.cfg.ClientCertificates && r.TLS != nil && len(r.TLS.VerifiedChains) > 0:
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if cn == "" {
			return Principal{}, fmt.Errorf("%w: client certificate without a common name", ErrBadCredentials)
		}
		return g.notAKey(Principal{Name: "User:" + cn, Method: "certificate"})
	case h == "":
		return Principal{}, ErrNoCredentials
	}
	return Principal{}, fmt.Errorf("%w: unsupported authorization scheme '%s'", ErrBadCredentials, scheme)
}

// notAKey refuses a token or certificate principal that is an API key's:
// whoever can get a token or a certificate issued with that name must not
// take the key's roles.
func (g *Guard) notAKey(p Principal) (Principal, error) {
	for _, k := range g.keys {
		if k.principal() == p.Name {
			return Principal{}, fmt.Errorf("%w: %s authenticated with %s, but it is the principal of an API key", ErrBadCredentials, p.Name, p.Method)
		}
	}
	return p, nil
}

// Allowed reports whether p may take action on link ("" for actions that
// concern no single link, which need the action on every link).
func (g *Guard) Allowed(p Principal, action, link string) bool {
	if !g.Enabled() {
		return true
	}
	for _, r := range g.cfg.Roles {
		if r.Principal != p.Name || (r.Method != "" && r.Method != p.Method) || !slices.Contains(roleActions[r.Role], action) {
			continue
		}
		if link == "" {
			if len(r.Links) == 0 || slices.Contains(r.Links, "*") {
				return true
			}
			continue
		}
		if matchLink(r.Links, link) {
			return true
		}
	}
	return false
}

// CanAny reports whether p may take action on some link.
func (g *Guard) CanAny(p Principal, action string) bool {
	if !g.Enabled() {
		return true
	}
	for _, r := range g.cfg.Roles {
		if r.Principal == p.Name && (r.Method == "" || r.Method == p.Method) && slices.Contains(roleActions[r.Role], action) {
			return true
		}
	}
	return false
}

func matchLink(patterns []string, link string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, pat := range patterns {
		if ok, _ := path.Match(pat, link); ok {
			return true
		}
	}
	return false
}

// Spent reports, without taking a token, whether p has used up its rate
// limit, and how long until it may go on.
func (g *Guard) Spent(p Principal) (bool, time.Duration) {
	if g.limiter == nil {
		return false, 0
	}
	return g.limiter.spent(p.Name, time.Now())
}

// Allow takes a token for p from the rate limiter; false means over the
// limit, with how long to wait.
func (g *Guard) Allow(p Principal) (bool, time.Duration) {
	if g.limiter == nil {
		return true, 0
	}
	return g.limiter.take(p.Name, time.Now())
}

// Holder holds the current Guard, swapped atomically on reload.
type Holder struct{ p atomic.Pointer[Guard] }

// NewHolder holds g.
func NewHolder(g *Guard) *Holder {
	h := &Holder{}
	h.p.Store(g)
	return h
}

// Get returns the current Guard.
func (h *Holder) Get() *Guard { return h.p.Load() }

// Update replaces the Guard.
func (h *Holder) Update(g *Guard) { h.p.Store(g) }

// Challenge is the WWW-Authenticate value of a 401: the schemes this
// guard accepts.
func (g *Guard) Challenge() string {
	var c []string
	if len(g.keys) > 0 {
		c = append(c, `Basic realm="strait"`)
	}
	if g.jwt != nil {
		c = append(c, `Bearer realm="strait"`)
	}
	if len(c) == 0 {
		// Certificates only: there is no header scheme to offer.
		return `Basic realm="strait"`
	}
	return strings.Join(c, ", ")
}
