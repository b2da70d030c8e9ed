package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestBidirectionalCommands runs the disaster-recovery verbs with the CLI
// on two clusters A and B, each with its Strait and a bidirectional link
// "dr" made with link create: B mirrors A's orders, fails over, A gets
// writes B never had, truncate-and-restore turns A back into a mirror of
// B (waiting until it is ACTIVE), and reverse-and-start turns it around
// again (waiting until A's topic is no longer a mirror).
func TestBidirectionalCommands(t *testing.T) {
	cliEnv(t)
	a := testutil.NewCluster(t, kfake.ClusterID("cluster-a"))
	b := testutil.NewCluster(t, kfake.ClusterID("cluster-b"))
	produceKnown(t, a, "orders")
	sa, sb := startDaemonOn(t, a), startDaemonOn(t, b)
	ctx := context.Background()

	for _, side := range []struct {
		s      *strait
		remote *kfake.Cluster
		id     string
	}{{sa, b, "cluster-b"}, {sb, a, "cluster-a"}} {
		side.s.ok(t, "link", "create", "dr", "--remote-cluster", side.id, "--remote-bootstrap-server", side.remote.ListenAddrs()[0],
			"--config", "link.mode=BIDIRECTIONAL")
	}
	r := sb.cli(t, nil, "link", "create", "x", "--remote-cluster", "cluster-a")
	if r.code != 2 || !strings.Contains(r.err, "link.mode=BIDIRECTIONAL") {
		t.Fatalf("--remote-cluster on a destination link: exit %d, stderr %q", r.code, r.err)
	}
	if got := sb.ok(t, "link", "list", "-o", "json"); !strings.Contains(got, `"remote_cluster": "cluster-a"`) {
		t.Fatalf("link list on B: %s", got)
	}

	sb.ok(t, "mirror", "create", "orders", "--link", "dr")
	sb.waitMirror(t, "dr", "orders")
	r = sb.cli(t, nil, "mirror", "failover", "orders", "--link", "dr", "--force")
	if r.code != 0 || !strings.Contains(r.err, "orders: STOPPED") {
		t.Fatalf("failover on B: exit %d, stderr %q", r.code, r.err)
	}

	// A takes 3 more records in partition 0 that B never gets.
	acl := testutil.Client(t, a.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for i := range 3 {
		if err := acl.ProduceSync(ctx, &kgo.Record{Topic: "orders", Partition: 0, Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}

	// Truncate-and-restore on A, refused without an answer, then forced
	// and waited for: A's orders is a mirror of B's again.
	if r := sa.cli(t, nil, "mirror", "truncate-and-restore", "orders", "--link", "dr"); r.code != 2 {
		t.Fatalf("truncate-and-restore without --force: exit %d, stderr %q", r.code, r.err)
	}
	r = sa.cli(t, nil, "mirror", "truncate-and-restore", "orders", "--link", "dr", "--force", "--include-partitions", "--timeout", "60s")
	if r.code != 0 || !strings.Contains(r.err, "orders: ACTIVE") {
		t.Fatalf("truncate-and-restore: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	t.Logf("truncate-and-restore stderr:\n%s", r.err)
	golden(t, "mirror-truncate-and-restore-partitions", r.out)
	if st := sa.status(t, "dr", "orders"); st != "ACTIVE" {
		t.Fatalf("A's orders is %s after truncate-and-restore", st)
	}
	sa.waitMirror(t, "dr", "orders")

	// Reverse on A: A's orders takes writes again and B's mirrors it.
	r = sa.cli(t, nil, "mirror", "reverse-and-start", "orders", "--link", "dr", "--force")
	if r.code != 0 || !strings.Contains(r.err, "orders: reversed: a writable topic here now") {
		t.Fatalf("reverse-and-start: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
	}
	t.Logf("reverse-and-start stderr:\n%s", r.err)
	golden(t, "mirror-reverse-and-start", r.out)
	testutil.WaitFor(t, 30*time.Second, "B mirrors A", func() error {
		if st := sb.status(t, "dr", "orders"); st != "ACTIVE" {
			return fmt.Errorf("B's orders is %s", st)
		}
		return nil
	})
}
