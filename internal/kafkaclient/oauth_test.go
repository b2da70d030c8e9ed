package kafkaclient

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// tokenServer is a client-credentials token endpoint for one client.
func tokenServer(t *testing.T, id, secret string, expiresIn int) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		gotID, gotSecret, ok := r.BasicAuth()
		// RFC 6749 2.3.1: form-encoded, then Basic.
		gotID, _ = url.QueryUnescape(gotID)
		gotSecret, _ = url.QueryUnescape(gotSecret)
		w.Header().Set("Content-Type", "application/json")
		if r.Method != http.MethodPost || r.FormValue("grant_type") != "client_credentials" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "unsupported_grant_type"})
			return
		}
		if !ok || gotID != id || gotSecret != secret {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": "bad client credentials"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "token-" + r.FormValue("scope") + "-" + string(rune('0'+n)), "token_type": "Bearer", "expires_in": expiresIn})
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func TestOAuthBearer(t *testing.T) {
	srv, calls := tokenServer(t, "strait client", "s3cret:with/specials", 3600)
	s := Settings{
		Bootstrap:     []string{"127.0.0.1:9092"},
		Protocol:      "SASL_SSL",
		SASLMechanism: "OAUTHBEARER",
		OAuth: &OAuth{TokenURL: srv.URL + "/token", ClientID: "strait client", ClientSecret: "s3cret:with/specials", Scope: "kafka",
			Extensions: map[string]string{"logicalCluster": "lkc-1", "identityPoolId": "pool-2"}},
	}
	mech, err := s.Mechanism()
	if err != nil {
		t.Fatal(err)
	}
	if mech.Name() != "OAUTHBEARER" {
		t.Fatalf("mechanism %s", mech.Name())
	}
	for range 3 {
		_, first, err := mech.Authenticate(context.Background(), "broker:9092")
		if err != nil {
			t.Fatal(err)
		}
		want := "n,,\x01auth=Bearer token-kafka-1\x01identityPoolId=pool-2\x01logicalCluster=lkc-1\x01\x01"
		if string(first) != want {
			t.Fatalf("client first message %q, want %q", first, want)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("token endpoint called %d times for three sessions, want once", n)
	}
	if _, err := s.Options(nil); err != nil {
		t.Fatalf("Options: %v", err)
	}
}

func TestOAuthTokenRefresh(t *testing.T) {
	srv, calls := tokenServer(t, "c", "s", 100)
	ts := newTokenSource(OAuth{TokenURL: srv.URL, ClientID: "c", ClientSecret: "s"}, 5*time.Second, nil)
	t0 := time.Now()
	for _, at := range []time.Duration{0, 79 * time.Second, 81 * time.Second, 82 * time.Second} {
		if _, err := ts.get(context.Background(), t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
	// Fetched at 0 and again past 80% of the 100 s lifetime.
	if n := calls.Load(); n != 2 {
		t.Fatalf("token endpoint called %d times, want 2", n)
	}
}

func TestOAuthRefusals(t *testing.T) {
	srv, _ := tokenServer(t, "c", "right-secret", 60)
	tests := []struct {
		name    string
		oauth   *OAuth
		wantErr string
	}{
		{"wrong secret", &OAuth{TokenURL: srv.URL, ClientID: "c", ClientSecret: "wrong-secret"}, "answered 401: invalid_client"},
		{"endpoint down", &OAuth{TokenURL: "http://127.0.0.1:1/token", ClientID: "c", ClientSecret: "wrong-secret"}, "token endpoint"},
		{"no endpoint", &OAuth{ClientID: "c", ClientSecret: "wrong-secret"}, "token endpoint"},
		{"plain http elsewhere", &OAuth{TokenURL: "http://idp.example/token", ClientID: "c", ClientSecret: "wrong-secret"}, "https"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Bootstrap: []string{"x:1"}, Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", OAuth: tc.oauth, RequestTimeout: 2 * time.Second}
			mech, err := s.Mechanism()
			if err == nil {
				_, _, err = mech.Authenticate(context.Background(), "broker:9092")
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err %v, want one mentioning %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "wrong-secret") {
				t.Fatalf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestOAuthEndpointCannotRedirectOrTalk is the attack: whoever may set a
// link's token endpoint points it at a host that redirects to a second
// one (to collect the client secret there) or that answers with text of
// its own choosing (to use Strait as a reader of internal services). The
// redirect is not followed and the text is not repeated.
func TestOAuthEndpointCannotRedirectOrTalk(t *testing.T) {
	var collected atomic.Int32
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, ok := r.BasicAuth(); ok {
			collected.Add(1)
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer collector.Close()
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, collector.URL+"/token", http.StatusTemporaryRedirect)
	}))
	defer redirector.Close()
	talker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error":"internal-service-banner","error_description":"redis_version:7.2.4 role:master"}`))
	}))
	defer talker.Close()
	for _, tc := range []struct{ name, url, want, never string }{
		{"redirect", redirector.URL + "/token", "answered 307: a redirect", ""},
		{"text of its own", talker.URL + "/token", "answered 400: no access_token", "redis_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Settings{Bootstrap: []string{"x:1"}, Protocol: "SASL_SSL", SASLMechanism: "OAUTHBEARER", RequestTimeout: 2 * time.Second,
				OAuth: &OAuth{TokenURL: tc.url, ClientID: "c", ClientSecret: "the-secret"}}
			mech, err := s.Mechanism()
			if err == nil {
				_, _, err = mech.Authenticate(context.Background(), "broker:9092")
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
			if (tc.never != "" && strings.Contains(err.Error(), tc.never)) || strings.Contains(err.Error(), "internal-service-banner") {
				t.Fatalf("the endpoint's text is repeated: %v", err)
			}
		})
	}
	if n := collected.Load(); n != 0 {
		t.Fatalf("the client secret reached the redirect's target %d times", n)
	}
}
