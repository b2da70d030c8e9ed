package daemon

import (
	"strings"
	"testing"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
)

// TestReloadKeepsAuthenticationOnTheBoundListener is the attack: a daemon
// bound to a wildcard address with API keys reloads a file that says
// http: 127.0.0.1:8090 and has no authentication. The reload must be
// refused: the socket is still the wildcard one. On a loopback socket the
// same file is fine.
func TestReloadKeepsAuthenticationOnTheBoundListener(t *testing.T) {
	noAuth := config.Defaults()
	noAuth.DestinationBootstrap = "127.0.0.1:9092"
	noAuth.HTTP = "127.0.0.1:8090"
	hash, err := auth.HashSecret("s3cret")
	if err != nil {
		t.Fatal(err)
	}
	withAuth := noAuth
	withAuth.Auth = auth.Config{APIKeys: []auth.APIKey{{Key: "k1", SecretHash: hash}}}
	cases := []struct {
		name, bound string
		cfg         config.Config
		refused     bool
	}{
		{"wildcard socket, file without auth", "0.0.0.0:8090", noAuth, true},
		{"IPv6 wildcard socket, file without auth", "[::]:8090", noAuth, true},
		{"loopback socket, file without auth", "127.0.0.1:8090", noAuth, false},
		{"wildcard socket, file with API keys", "0.0.0.0:8090", withAuth, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := reloadedGuard(tc.cfg, tc.bound)
			if (err != nil) != tc.refused {
				t.Fatalf("reload on %s: %v, want refused %v", tc.bound, err, tc.refused)
			}
			if err != nil && !strings.Contains(err.Error(), tc.bound) {
				t.Fatalf("the refusal does not name the socket: %v", err)
			}
		})
	}
}
