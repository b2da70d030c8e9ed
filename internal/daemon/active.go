package daemon

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/strait-dev/strait/internal/group"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/restapi"
	"github.com/strait-dev/strait/internal/retry"
	"github.com/strait-dev/strait/internal/store"
)

// Instances of one destination and state topic form a group on the
// destination (internal/group). Every instance loads the state, follows
// it, answers the API and copies the mirror partitions the group gives it;
// the active one also applies every change (the others forward theirs to
// it through the state topic, internal/link/commands.go) and runs what a
// link does once. When the group moves partitions, an instance stops the
// ones it loses before it tells the group it has (Member.Applied), so that
// their new owner starts them only then; writes of an instance that lost
// its partitions without knowing it are refused by the brokers
// (internal/mirror/fence.go).

// join starts this instance's membership of the group.
func (d *Daemon) join(ctx context.Context) {
	host, _ := os.Hostname()
	url := d.cfg.AdvertisedURL
	if url == "" {
		scheme := "http"
		if d.tls {
			scheme = "https"
		}
		url = scheme + "://" + d.ln.Addr().String()
	}
	d.member = group.New(group.Config{
		Client: d.dest,
		Group:  d.cfg.GroupName(),
		Info: group.Info{
			Instance:  fmt.Sprintf("%s/%d", host, os.Getpid()),
			URL:       url,
			Version:   d.opt.Version,
			Format:    store.FormatVersion,
			Standby:   d.cfg.Standby,
			StartedMs: time.Now().UnixMilli(),
		},
		SessionTimeout: d.cfg.SessionTimeout(),
		Log:            d.log,
		OnChange: func(group.Assignment) {
			select {
			case d.changed <- struct{}{}:
			default:
			}
		},
	})
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		if err := d.member.Run(ctx); err != nil {
			d.log.Error("the group of Strait instances", "err", err)
			d.setPhase("not a member of the group " + d.cfg.GroupName() + ": " + err.Error())
		}
	}()
}

// firstAssignment waits until the group has decided this instance's role.
func (d *Daemon) firstAssignment(ctx context.Context) (group.Assignment, error) {
	for {
		if a := d.member.Current(); a.Generation > 0 {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return group.Assignment{}, fmt.Errorf("join the group %s: %w", d.cfg.GroupName(), ctx.Err())
		case <-d.changed:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// load reads the state and serves it, as a follower of the active
// instance until the group says otherwise.
func (d *Daemon) load(ctx context.Context) error {
	d.setPhase("loading the state from " + d.cfg.StateTopic)
	networks, err := d.cfg.LinkNetworks()
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	mgr, err := link.New(ctx, link.Config{
		Store:            d.store,
		Dest:             d.dest,
		ClusterID:        d.clusterID,
		Log:              d.log,
		MetadataInterval: d.opt.MetadataInterval,
		PromoteTimeout:   d.opt.PromoteTimeout,
		Principal:        principal(d.cfg),
		Secrets:          d.sealer,
		StallTimeout:     d.cfg.StallTimeout(),
		AllowTopicDelete: d.cfg.AllowTopicDelete,
		Networks:         networks,
		Follower:         true,
		Instance:         fmt.Sprintf("%s/%d", host, os.Getpid()),
		Observers:        d.metrics,

		MaxTopicsPerRequest:  d.opt.MaxTopicsPerRequest,
		VerifyInterval:       d.cfg.VerifyEvery(),
		VerifyBytesPerSecond: d.cfg.VerifyRate(),
	})
	if err != nil {
		return err
	}
	api := restapi.New(mgr, d.log, restapi.Options{Guard: d.guard, ExternalURL: d.cfg.AdvertisedURL})
	d.mu.Lock()
	d.mgr, d.api, d.phase = mgr, api, ""
	d.mu.Unlock()
	d.log.Info("strait ready", "rest", d.ln.Addr().String(), "cluster_id", d.clusterID, "state_topic", d.cfg.StateTopic)
	return nil
}

// apply makes the manager what the group decided: the active instance or
// a follower, copying the partitions the decision gives this instance.
// Then it tells the group the decision is applied.
func (d *Daemon) apply(ctx context.Context, a group.Assignment) error {
	mgr := d.Manager()
	if mgr == nil {
		return nil
	}
	if !a.Active {
		mgr.Unlead()
	}
	owns, ownerOf := a.Owns, a.Owner
	if a.Generation == 0 {
		owns, ownerOf = func(string, int32) bool { return false }, nil
	}
	mgr.SetOwnership(owns, ownerOf)
	if a.Active {
		if err := mgr.Lead(ctx); err != nil {
			return err
		}
	}
	d.member.Applied(a.Generation)
	return nil
}

// drain stops every copy here and leaves the group, so that the others
// take this instance's partitions over at once (a graceful stop).
func (d *Daemon) drain() {
	mgr := d.Manager()
	if mgr == nil {
		return
	}
	mgr.Unlead()
	mgr.SetOwnership(func(string, int32) bool { return false }, nil)
}

// supervise follows the group's decisions and applies each.
func (d *Daemon) supervise(ctx context.Context) {
	defer d.bg.Done()
	var bo retry.Backoff
	last := d.applied // what New applied, if it could
	retrying := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
		case <-time.After(time.Second):
		}
		a := d.member.Current()
		same := a.Generation == last.Generation && a.Active == last.Active && a.Owning() == last.Owning() && a.Settling() == last.Settling()
		if same && !retrying {
			continue
		}
		if err := d.apply(ctx, a); err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Error("this instance is active but cannot take the state over; trying again", "err", err)
			retrying = true
			_ = retry.Sleep(ctx, bo.Next())
			continue
		}
		bo.Reset()
		retrying = false
		last = a
	}
}

// setPhase records what the daemon waits for.
func (d *Daemon) setPhase(p string) {
	d.mu.Lock()
	d.phase = p
	d.mu.Unlock()
}
