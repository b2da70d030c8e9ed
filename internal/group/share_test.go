package group

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

// copier is a member of the test that "copies" the partitions it owns:
// on every assignment it drops what it lost at once, records what it
// holds, and then tells the member it has applied the decision. The
// ledger checks that no partition is ever held by two copiers.
type copier struct {
	name string
	m    *Member
	stop context.CancelFunc
	done chan struct{}
}

type ledger struct {
	t    *testing.T
	mu   sync.Mutex
	held map[string]string // partition key -> copier
	bad  []string
}

var keys = func() []struct {
	topic string
	p     int32
} {
	var out []struct {
		topic string
		p     int32
	}
	for i := range 50 {
		for p := range int32(4) {
			out = append(out, struct {
				topic string
				p     int32
			}{fmt.Sprintf("t%d", i), p})
		}
	}
	return out
}()

func (l *ledger) apply(name string, a Assignment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, k := range keys {
		key := fmt.Sprintf("%s/%d", k.topic, k.p)
		owns := a.Owns(k.topic, k.p)
		cur, held := l.held[key]
		switch {
		case owns && held && cur != name:
			l.bad = append(l.bad, fmt.Sprintf("%s took %s while %s held it (generation %d)", name, key, cur, a.Generation))
		case owns:
			l.held[key] = name
		case held && cur == name:
			delete(l.held, key)
		}
	}
}

// release drops everything name holds: it died or left.
func (l *ledger) release(name string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, v := range l.held {
		if v == name {
			delete(l.held, k)
		}
	}
}

// settled checks every partition is held by exactly one live copier.
func (l *ledger) settled(live ...string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.bad) > 0 {
		l.t.Fatalf("overlapping owners: %v", l.bad)
	}
	counts := map[string]int{}
	for _, k := range keys {
		v, ok := l.held[fmt.Sprintf("%s/%d", k.topic, k.p)]
		if !ok {
			return fmt.Errorf("%s/%d is held by nobody", k.topic, k.p)
		}
		counts[v]++
	}
	for _, n := range live {
		if counts[n] == 0 {
			return fmt.Errorf("%s holds nothing (%v)", n, counts)
		}
	}
	if len(counts) != len(live) {
		return fmt.Errorf("holders %v, want %v", counts, live)
	}
	return nil
}

func startCopier(t *testing.T, c *kfake.Cluster, l *ledger, name string, standby bool) *copier {
	t.Helper()
	x := &copier{name: name, done: make(chan struct{})}
	changes := make(chan Assignment, 64)
	x.m = New(Config{
		Client:         testutil.Client(t, c.ListenAddrs()),
		Group:          "strait-share",
		Info:           Info{Instance: name, Format: 2, Standby: standby, StartedMs: time.Now().UnixMilli()},
		SessionTimeout: 2 * time.Second,
		OnChange:       func(a Assignment) { changes <- a },
	})
	ctx, cancel := context.WithCancel(context.Background())
	x.stop = cancel
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case a := <-changes:
				l.apply(name, a)
				x.m.Applied(a.Generation)
			}
		}
	}()
	go func() {
		defer close(x.done)
		_ = x.m.Run(ctx)
	}()
	t.Cleanup(func() { x.stop(); <-x.done })
	return x
}

// TestPartitionsAreSharedAndHandedOver: the owners share the partitions,
// a standby owns none, a member that joins takes its share only once the
// others let it go, and a member that leaves or dies leaves its share to
// the others.
func TestPartitionsAreSharedAndHandedOver(t *testing.T) {
	c := testutil.NewCluster(t, kfake.GroupMinSessionTimeout(time.Second))
	l := &ledger{t: t, held: map[string]string{}}
	startCopier(t, c, l, "a", false)
	testutil.WaitFor(t, 20*time.Second, "a holds everything", func() error { return l.settled("a") })
	b := startCopier(t, c, l, "b", false)
	startCopier(t, c, l, "s", true)
	testutil.WaitFor(t, 20*time.Second, "a and b share", func() error { return l.settled("a", "b") })
	startCopier(t, c, l, "c", false)
	testutil.WaitFor(t, 20*time.Second, "a, b and c share", func() error { return l.settled("a", "b", "c") })

	// b leaves: it lets its partitions go first.
	b.stop()
	<-b.done
	l.release("b")
	testutil.WaitFor(t, 20*time.Second, "a and c share", func() error { return l.settled("a", "c") })
}

// TestBalance: the hash spreads partitions evenly enough.
func TestBalance(t *testing.T) {
	owners := []string{"m-1", "m-2", "m-3"}
	counts := map[string]int{}
	for i := range 1000 {
		for p := range int32(10) {
			counts[owner(owners, keyOf(fmt.Sprintf("topic-%d", i), p))]++
		}
	}
	for _, o := range owners {
		if n := counts[o]; n < 3000 || n > 3700 {
			t.Fatalf("unbalanced: %v", counts)
		}
	}
	// Adding an owner moves only what it takes.
	moved := 0
	four := append(owners, "m-4")
	for i := range 1000 {
		for p := range int32(10) {
			k := keyOf(fmt.Sprintf("topic-%d", i), p)
			if a, b := owner(owners, k), owner(four, k); a != b {
				if b != "m-4" {
					t.Fatalf("%q moved from %s to %s, not to the new owner", k, a, b)
				}
				moved++
			}
		}
	}
	if moved < 2000 || moved > 3000 {
		t.Fatalf("%d of 10000 moved to the fourth owner", moved)
	}
}

// TestMixedVersionsAreRefused: an instance of this version does not join a
// group whose members speak an older protocol; it says why and waits, and
// joins once they are gone.
func TestMixedVersionsAreRefused(t *testing.T) {
	c := testutil.NewCluster(t, kfake.GroupMinSessionTimeout(time.Second))
	old := testutil.Client(t, c.ListenAddrs())
	ctx, stopOld := context.WithCancel(context.Background())
	defer stopOld()
	oldGone := make(chan struct{})
	go func() {
		defer close(oldGone)
		// A member of the previous version: protocol strait-active-v1.
		memberID := ""
		for ctx.Err() == nil {
			req := kmsg.NewPtrJoinGroupRequest()
			req.Group, req.MemberID, req.ProtocolType = "strait-mixed", memberID, ProtocolType
			req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 2000, 5000
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = "strait-active-v1", []byte(`{}`)
			req.Protocols = append(req.Protocols, p)
			resp, err := req.RequestWith(ctx, old)
			if err != nil {
				continue
			}
			memberID = resp.MemberID
			if resp.ErrorCode != 0 {
				continue
			}
			sreq := kmsg.NewPtrSyncGroupRequest()
			sreq.Group, sreq.Generation, sreq.MemberID = "strait-mixed", resp.Generation, memberID
			if _, err := sreq.RequestWith(ctx, old); err != nil {
				continue
			}
			for ctx.Err() == nil {
				hb := kmsg.NewPtrHeartbeatRequest()
				hb.Group, hb.Generation, hb.MemberID = "strait-mixed", resp.Generation, memberID
				hresp, err := hb.RequestWith(ctx, old)
				if err != nil || hresp.ErrorCode != 0 {
					break
				}
				time.Sleep(300 * time.Millisecond)
			}
		}
		leave := kmsg.NewPtrLeaveGroupRequest()
		leave.Group = "strait-mixed"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = memberID
		leave.Members = append(leave.Members, m)
		_, _ = leave.RequestWith(context.Background(), old)
	}()
	time.Sleep(time.Second) // the old member is in

	var logs testutil.SyncBuffer
	x := New(Config{
		Client:         testutil.Client(t, c.ListenAddrs()),
		Group:          "strait-mixed",
		Info:           Info{Instance: "new", Format: 2, StartedMs: time.Now().UnixMilli()},
		SessionTimeout: 2 * time.Second,
		Log:            slog.New(slog.NewTextHandler(&logs, nil)),
		OnChange:       func(Assignment) {},
	})
	mctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = x.Run(mctx) }()
	defer func() { stop(); <-done }()
	testutil.WaitFor(t, 20*time.Second, "the refusal said", func() error {
		if !strings.Contains(logs.String(), "members of another Strait version") {
			return fmt.Errorf("log: %s", logs.String())
		}
		return nil
	})
	if g := x.Current().Generation; g != 0 {
		t.Fatalf("joined generation %d beside an older member", g)
	}
	stopOld()
	<-oldGone
	testutil.WaitFor(t, 30*time.Second, "joined once the old member left", func() error {
		if a := x.Current(); !a.Active {
			return fmt.Errorf("not active: %+v", a)
		}
		return nil
	})
}
