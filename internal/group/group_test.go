package group

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// member runs one Member in the test and records what it was told.
type member struct {
	m      *Member
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	last Assignment
}

func (x *member) active() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.last.Active
}

func (x *member) activeInstance() string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.last.ActiveInstance
}

func startMember(t *testing.T, c *kfake.Cluster, name string, standby bool) *member {
	t.Helper()
	x := &member{done: make(chan struct{})}
	x.m = New(Config{
		Client:         testutil.Client(t, c.ListenAddrs()),
		Group:          "strait-test",
		Info:           Info{Instance: name, Format: 1, Standby: standby, StartedMs: time.Now().UnixMilli()},
		SessionTimeout: 2 * time.Second,
		OnChange: func(a Assignment) {
			x.mu.Lock()
			x.last = a
			x.mu.Unlock()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	x.cancel = cancel
	go func() {
		defer close(x.done)
		_ = x.m.Run(ctx)
	}()
	t.Cleanup(x.stop)
	return x
}

func (x *member) stop() {
	x.cancel()
	<-x.done
}

func onlyActive(ms ...*member) error {
	n := 0
	for _, m := range ms {
		if m.active() {
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%d members active", n)
	}
	return nil
}

// TestOneActiveAndTakeOver: of the members of a group exactly one is
// active, a standby member never is, and the role moves when the active
// one leaves or stops answering.
func TestOneActiveAndTakeOver(t *testing.T) {
	cases := []struct {
		name string
		end  func(c *kfake.Cluster, a *member)
	}{
		{"the active member leaves", func(_ *kfake.Cluster, a *member) { a.stop() }},
		{"the active member's heartbeats stop reaching the coordinator", func(c *kfake.Cluster, a *member) {
			a.m.mu.Lock()
			id := a.m.memberID
			a.m.mu.Unlock()
			c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Heartbeat, kmsg.JoinGroup, kmsg.SyncGroup}, Count: -1, Err: kerr.CoordinatorNotAvailable,
				When: func(req kmsg.Request) bool {
					switch r := req.(type) {
					case *kmsg.HeartbeatRequest:
						return r.MemberID == id
					case *kmsg.JoinGroupRequest:
						return r.MemberID == id
					case *kmsg.SyncGroupRequest:
						return r.MemberID == id
					}
					return false
				}})
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.NewCluster(t, kfake.GroupMinSessionTimeout(time.Second))
			a := startMember(t, c, "a", false)
			testutil.WaitFor(t, 20*time.Second, "a active", func() error { return onlyActive(a) })
			b := startMember(t, c, "b", false)
			s := startMember(t, c, "s", true)
			testutil.WaitFor(t, 20*time.Second, "b and s standbys of a", func() error {
				if b.activeInstance() != "a" || s.activeInstance() != "a" {
					return fmt.Errorf("b sees %q, s sees %q active", b.activeInstance(), s.activeInstance())
				}
				return onlyActive(a, b, s)
			})
			if !a.active() {
				t.Fatal("the first member lost the role when others joined")
			}
			tc.end(c, a)
			testutil.WaitFor(t, 20*time.Second, "b takes over", func() error {
				if !b.active() {
					return fmt.Errorf("b not active (a active: %v)", a.active())
				}
				if a.active() {
					return fmt.Errorf("a still active")
				}
				if s.active() {
					return fmt.Errorf("the standby became active")
				}
				return nil
			})
		})
	}
}

// TestStandbyAloneIsNotActive: a group of standbys has no active member.
func TestStandbyAloneIsNotActive(t *testing.T) {
	c := testutil.NewCluster(t, kfake.GroupMinSessionTimeout(time.Second))
	s := startMember(t, c, "s", true)
	testutil.WaitFor(t, 20*time.Second, "s joined", func() error {
		if s.m.Current().Generation == 0 {
			return fmt.Errorf("not joined")
		}
		return nil
	})
	if s.active() {
		t.Fatal("a standby became active")
	}
}
