package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/strait-dev/strait/api"
)

// TestVerifyCommands runs Strait's own verbs against a daemon: verify (a
// table, JSON), the failover report, group readiness and a switchover of a
// source nobody writes to.
func TestVerifyCommands(t *testing.T) {
	cliEnv(t)
	s := startStrait(t)
	s.ok(t, "link", "create", "demo", "--source-cluster", "source-cluster", "--source-bootstrap-server", s.srcAddr)
	s.ok(t, "mirror", "create", "orders", "--link", "demo")
	s.ok(t, "mirror", "create", "payments", "--link", "demo")
	s.waitMirror(t, "demo", "orders")
	s.waitMirror(t, "demo", "payments")

	out := s.ok(t, "mirror", "verify", "orders", "--link", "demo", "--bytes-per-second", "0")
	if !strings.Contains(out, "3 partitions identical to their source") || !strings.Contains(out, "Verified") {
		t.Fatalf("verify printed:\n%s", out)
	}
	var v api.MirrorVerification
	if err := json.Unmarshal([]byte(s.ok(t, "mirror", "verify", "orders", "--link", "demo", "--from-start", "--partitions", "2", "-o", "json")), &v); err != nil {
		t.Fatal(err)
	}
	if !v.Verified || len(v.Partitions) != 1 || v.Partitions[0].Partition != 2 || v.Partitions[0].VerifiedOffset != 15 {
		t.Fatalf("verify -o json: %+v", v)
	}
	if r := s.cli(t, nil, "mirror", "verify", "orders", "--link", "demo", "--partitions", "x"); r.code != exitUsage {
		t.Fatalf("bad --partitions: exit %d: %s", r.code, r.err)
	}
	if r := s.cli(t, nil, "mirror", "verify", "nope", "--link", "demo"); r.code != exitFailure || !strings.Contains(r.err, "does not exist") {
		t.Fatalf("unknown mirror: exit %d: %s", r.code, r.err)
	}

	if out := s.ok(t, "mirror", "failover-report", "--link", "demo"); !strings.Contains(out, "failover now loses no data: every partition of 2 topics is copied") {
		t.Fatalf("failover-report printed:\n%s", out)
	}
	if out := s.ok(t, "group", "readiness"); !strings.Contains(out, "None found.") {
		t.Fatalf("group readiness printed:\n%s", out)
	}

	out = s.ok(t, "switchover", "orders", "--link", "demo", "--quiet", "300ms", "--timeout", "30s")
	if !strings.Contains(out, "switched over 1 topics (3 partitions") || !strings.Contains(out, "STOPPED") {
		t.Fatalf("switchover printed:\n%s", out)
	}
	if st := s.status(t, "demo", "orders"); st != "STOPPED" {
		t.Fatalf("orders is %s after the switchover", st)
	}
	r := s.cli(t, nil, "switchover", "orders", "--link", "demo")
	if r.code != exitFailure || !strings.Contains(r.err, "Switchover refused: mirror topic 'orders' is STOPPED") {
		t.Fatalf("a second switchover: exit %d: %s", r.code, r.err)
	}
	if r := s.cli(t, nil, "switchover", "--link", "demo"); r.code != exitUsage {
		t.Fatalf("switchover without topics: exit %d", r.code)
	}
}
