package daemon_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReadyzFollowsTheDestination: /readyz answers 503 with the reason
// within a few seconds of the destination (or its state topic) no longer
// answering, and 200 again once it does; /livez answers 200 throughout.
func TestReadyzFollowsTheDestination(t *testing.T) {
	errDown := errors.New("the destination is down")
	tests := []struct {
		name string
		// fail makes the destination fail and returns what heals it.
		fail func(dst *kfake.Cluster) (heal func())
		// backWithin bounds the recovery: a destination that answered
		// nothing also lost the group's heartbeats, and the instance
		// may have to take the active role again.
		backWithin time.Duration
	}{
		{
			name: "state topic unreachable",
			fail: func(dst *kfake.Cluster) func() {
				h := dst.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.ListOffsets}, Topic: "__strait_state", Err: kerr.UnknownServerError, Count: -1})
				return func() { h.Remove() }
			},
			backWithin: 10 * time.Second,
		},
		{
			name: "destination silent",
			fail: func(dst *kfake.Cluster) func() {
				var down atomic.Bool
				down.Store(true)
				dst.Control(func(kmsg.Request) (kmsg.Response, error, bool) {
					if !down.Load() {
						return nil, nil, false
					}
					dst.KeepControl()
					return nil, errDown, true // the connection is closed
				})
				return func() { down.Store(false) }
			},
			backWithin: time.Minute,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
			d := daemontest.Start(t, daemontest.Config(dst), slog.New(slog.DiscardHandler), daemon.Options{MetadataInterval: 200 * time.Millisecond})
			root := "http://" + d.Addr()
			if code, body := get(t, root+"/readyz"); code != http.StatusOK {
				t.Fatalf("/readyz before: %d %s", code, body)
			}
			heal := tc.fail(dst)
			failed := time.Now()
			testutil.WaitFor(t, 15*time.Second, "/readyz 503", func() error {
				if code, body := get(t, root+"/readyz"); code != http.StatusServiceUnavailable {
					return fmt.Errorf("%d %s", code, body)
				}
				return nil
			})
			// probeFailures probes apart, plus one probe's timeout, plus
			// room for a loaded machine.
			if took := time.Since(failed); took > daemon.ProbeFailures*daemon.ProbeEvery+daemon.ProbeTimeout+3*time.Second {
				t.Errorf("/readyz turned 503 after %v", took)
			}
			code, body := get(t, root+"/readyz")
			if code != http.StatusServiceUnavailable || !strings.Contains(body, "does not answer") {
				t.Errorf("/readyz while failing: %d %q, want 503 saying the destination does not answer", code, body)
			}
			if code, body := get(t, root+"/livez"); code != http.StatusOK {
				t.Errorf("/livez while the destination fails: %d %s", code, body)
			}
			heal()
			testutil.WaitFor(t, tc.backWithin, "/readyz 200", func() error {
				if code, body := get(t, root+"/readyz"); code != http.StatusOK {
					return fmt.Errorf("%d %s", code, body)
				}
				return nil
			})
		})
	}
}
