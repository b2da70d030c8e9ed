package link

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzQueryParams fuzzes the query parameters the link package decodes:
// mirror_status (GET .../mirrors, upper-cased by the REST layer as the
// Confluent CLI sends it) and link_name (POST /links). mirror_status must
// be refused with ErrInvalid unless it is a status of the contract's enum,
// and then select exactly the mirrors in it; link_name must be accepted
// exactly when it is 1 to 249 of [a-zA-Z0-9._-] and not "-", "." or "..".
func FuzzQueryParams(f *testing.F) {
	for _, s := range []string{"", "ACTIVE", "active", "PAUSED", "STOPPED", "LINK_PAUSED", "SOURCE_UNAVAILABLE", "PENDING_MIRROR", "ACTIVE,PAUSED", "ACTİVE", "-", ".", "..", "dr-link_1.x", strings.Repeat("a", 250), "a b", "ſ"} {
		f.Add(s)
	}
	m := patternManager([]string{"a", "b"})
	m.mirrors["b"].Status = StatusPaused
	f.Fuzz(func(t *testing.T, s string) {
		status := strings.ToUpper(s)
		views, err := m.Mirrors("l", status)
		known := status == "" || slices.Contains(Statuses, Status(status))
		var e *Error
		switch {
		case !known && (err == nil || !errors.As(err, &e) || e.Kind != ErrInvalid):
			t.Fatalf("mirror_status %q: %v, want ErrInvalid", status, err)
		case known && err != nil:
			t.Fatalf("mirror_status %q refused: %v", status, err)
		}
		for _, v := range views {
			if status != "" && string(v.Status) != status {
				t.Fatalf("mirror_status %q listed %s in %s", status, v.Topic, v.Status)
			}
		}
		if status == "" && len(views) != 2 {
			t.Fatalf("no filter listed %d mirrors, want 2", len(views))
		}

		valid := len(s) >= 1 && len(s) <= 249 && s != "-" && s != "." && s != ".."
		for _, c := range []byte(s) {
			valid = valid && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-')
		}
		if err := validLinkName(s); (err == nil) != valid {
			t.Fatalf("link_name %q: %v, want valid %v", s, err, valid)
		}
	})
}
