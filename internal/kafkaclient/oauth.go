package kafkaclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/strait-dev/strait/internal/netguard"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
)

// OAuth is SASL/OAUTHBEARER with the OAuth 2 client credentials grant:
// Strait asks the token endpoint for a token with its client id and
// secret, and presents the token to the brokers.
type OAuth struct {
	TokenURL     string
	ClientID     string
	ClientSecret string
	// Scope, if set, is asked for.
	Scope string
	// Extensions are SASL extensions sent with the token (Confluent Cloud
	// wants logicalCluster and identityPoolId).
	Extensions map[string]string
}

// ValidTokenURL checks a token endpoint URL: https, or http on loopback
// (a local test identity provider).
func ValidTokenURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return errors.New("must be an absolute URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && (u.Hostname() == "localhost" || u.Hostname() == "127.0.0.1" || u.Hostname() == "::1"):
		return nil
	}
	return errors.New("must be https (or http on loopback): the client secret travels in it")
}

// tokenSource fetches tokens and keeps one until most of its lifetime has
// passed, so connections do not each ask the endpoint.
type tokenSource struct {
	cfg  OAuth
	http *http.Client

	mu      sync.Mutex
	token   string
	refresh time.Time
}

func newTokenSource(cfg OAuth, timeout time.Duration, guard *netguard.Guard) *tokenSource {
	var transport http.RoundTripper
	if guard != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil // the guard checks the endpoint itself, not a proxy
		t.DialContext = guard.DialContext(&net.Dialer{Timeout: timeout})
		transport = t
	}
	return &tokenSource{cfg: cfg, http: &http.Client{
		Timeout:   timeout,
		Transport: transport,
		// The client secret goes with the request: a redirect would take
		// it to a host nobody configured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// OAuthError is a token endpoint's refusal. Msg is an RFC 6749 error code
// or Strait's own words, never the endpoint's text.
type OAuthError struct {
	Status int
	Msg    string
}

func (e *OAuthError) Error() string {
	return fmt.Sprintf("OAuth token endpoint answered %d: %s", e.Status, e.Msg)
}

// oauthErrors are the error codes of RFC 6749 section 5.2: the only part
// of a refusal that is repeated to the caller. The endpoint's own text
// (error_description) is not: it is whatever the host at that URL chose
// to say, and the URL may be the caller's to choose.
var oauthErrors = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

// auth is the oauth.Oauth callback: the token for one SASL session.
func (ts *tokenSource) auth(ctx context.Context) (oauth.Auth, error) {
	tok, err := ts.get(ctx, time.Now())
	if err != nil {
		return oauth.Auth{}, err
	}
	return oauth.Auth{Token: tok, Extensions: ts.cfg.Extensions}, nil
}

func (ts *tokenSource) get(ctx context.Context, now time.Time) (string, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.token != "" && now.Before(ts.refresh) {
		return ts.token, nil
	}
	form := url.Values{"grant_type": {"client_credentials"}}
	if ts.cfg.Scope != "" {
		form.Set("scope", ts.cfg.Scope)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ts.cfg.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("OAuth token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	// RFC 6749 section 2.3.1: the credentials are form-encoded first.
	req.SetBasicAuth(url.QueryEscape(ts.cfg.ClientID), url.QueryEscape(ts.cfg.ClientSecret))
	resp, err := ts.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("OAuth token endpoint: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("OAuth token endpoint: %w", err)
	}
	var tr struct {
		AccessToken string      `json:"access_token"`
		ExpiresIn   json.Number `json:"expires_in"`
		Error       string      `json:"error"`
		Description string      `json:"error_description"`
	}
	_ = json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		msg := "no access_token in the answer"
		switch {
		case oauthErrors[tr.Error]:
			msg = tr.Error
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			msg = "a redirect, which is not followed"
		}
		return "", &OAuthError{Status: resp.StatusCode, Msg: msg}
	}
	life := time.Hour
	if secs, err := tr.ExpiresIn.Int64(); err == nil && secs > 0 {
		life = time.Duration(secs) * time.Second
	}
	ts.token, ts.refresh = tr.AccessToken, now.Add(life*8/10)
	return ts.token, nil
}
