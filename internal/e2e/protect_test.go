package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// TestMirrorWriteProtection runs against a destination with an authorizer:
// with strait.mirror.write.protection.enable, a principal allowed to write
// the topic is denied while it is a mirror (Strait, authenticated as
// itself, still copies), and may write again once the mirror fails over.
func TestMirrorWriteProtection(t *testing.T) {
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "strait", "strait-pw"), kfake.User("PLAIN", "app", "app-pw"))
	srcCl := testutil.Client(t, src.ListenAddrs())
	admin := testutil.Client(t, dst.ListenAddrs(), kgo.SASL(plain.Auth{User: "strait", Pass: "strait-pw"}.AsMechanism()))
	// The application may write and describe topic "p".
	res, err := kadm.NewClient(admin).CreateACLs(context.Background(), kadm.NewACLs().Topics("p").
		ResourcePatternType(kadm.ACLPatternLiteral).Allow("User:app").Operations(kadm.OpWrite, kadm.OpDescribe))
	if err == nil {
		for _, r := range res {
			err = errors.Join(err, r.Err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}

	cfg := daemontest.Config(dst)
	cfg.DestinationSecurityProtocol = "SASL_PLAINTEXT"
	cfg.DestinationSASLMechanism = "PLAIN"
	cfg.DestinationSASLUsername = "strait"
	cfg.DestinationSASLPassword = "strait-pw"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, logger(), daemon.Options{MetadataInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() { stop(); <-done })
	api := testutil.NewAPI(t, "http://"+d.Addr(), "/kafka/v3", "destination-cluster")

	testutil.CreateTopic(t, srcCl, "p", 1, nil)
	produceWith(t, srcCl, "p", 50)
	api.JSON("POST", "/links?link_name=l1", map[string]any{"source_cluster_id": "source-cluster", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]},
		map[string]any{"name": "strait.mirror.write.protection.enable", "value": "true"},
	}}, http.StatusNoContent, nil)
	api.JSON("POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "p"}, http.StatusNoContent, nil)

	app := testutil.Client(t, dst.ListenAddrs(), kgo.SASL(plain.Auth{User: "app", Pass: "app-pw"}.AsMechanism()),
		kgo.DisableIdempotentWrite(), kgo.RecordRetries(1), kgo.DefaultProduceTopic("p"))
	appWrite := func() error {
		wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return app.ProduceSync(wctx, &kgo.Record{Value: []byte("app")}).FirstErr()
	}
	if err := appWrite(); !errors.Is(err, kerr.TopicAuthorizationFailed) {
		t.Fatalf("the application could write to the mirror topic: %v", err)
	}
	// Strait itself still copies.
	testutil.WaitFor(t, 30*time.Second, "mirror caught up", func() error {
		_, ends := testutil.Offsets(t, admin, "p")
		if ends[0] != 50 {
			return fmt.Errorf("mirror at %d", ends[0])
		}
		return nil
	})

	var fo alterResults
	api.JSON("POST", "/links/l1/mirrors:failover", names("p"), http.StatusOK, &fo)
	if code, msg := resultErr(t, fo, 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	if err := appWrite(); err != nil {
		t.Fatalf("the application cannot write after the failover: %v", err)
	}
	described, err := kadm.NewClient(admin).DescribeACLs(context.Background(), kadm.NewACLs().Topics("p").
		ResourcePatternType(kadm.ACLPatternAny).Deny().DenyHosts().Operations(kadm.OpAny))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range described {
		if len(r.Described) > 0 {
			t.Fatalf("deny ACLs left after the failover: %+v", r.Described)
		}
	}
}
