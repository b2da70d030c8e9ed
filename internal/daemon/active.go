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

// The active instance. Instances of one destination and state topic form a
// group on the destination (internal/group); the active one loads the
// state and runs everything, the others wait as standbys and answer 503.
// When the group moves the role, the old active stops copying before it
// does anything else and the new one loads the state whole before it
// serves. Writes of an old active that is still running somewhere are
// refused by the brokers (internal/mirror/fence.go).

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

// activate loads the state and serves it.
func (d *Daemon) activate(ctx context.Context) error {
	d.setPhase("loading the state from " + d.cfg.StateTopic)
	networks, err := d.cfg.LinkNetworks()
	if err != nil {
		return err
	}
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
		Observers:        d.metrics,

		MaxTopicsPerRequest: d.opt.MaxTopicsPerRequest,
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

// deactivate stops serving and mirroring; phase says why.
func (d *Daemon) deactivate(phase string) {
	d.mu.Lock()
	mgr := d.mgr
	d.mgr, d.api, d.phase = nil, nil, phase
	d.mu.Unlock()
	if mgr != nil {
		mgr.Close()
	}
}

// standby records that another instance is active.
func (d *Daemon) standby(a group.Assignment) {
	why := "standby: no instance of the group is active"
	if a.ActiveInstance != "" {
		why = fmt.Sprintf("standby: the active Strait instance is %s at %s", a.ActiveInstance, a.ActiveURL)
	}
	d.deactivate(why)
}

// supervise follows the group's decisions: it starts serving when this
// instance becomes active and stops when it no longer is.
func (d *Daemon) supervise(ctx context.Context) {
	defer d.bg.Done()
	var bo retry.Backoff
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.changed:
		case <-time.After(time.Second):
		}
		a := d.member.Current()
		serving := d.Manager() != nil
		switch {
		case a.Active && !serving && a.Generation > 0:
			if err := d.activate(ctx); err != nil {
				if ctx.Err() != nil {
					return
				}
				d.log.Error("this instance is active but cannot load the state; trying again", "err", err)
				d.setPhase("active, but the state does not load: " + err.Error())
				_ = retry.Sleep(ctx, bo.Next())
				continue
			}
			bo.Reset()
			if !d.member.Current().Active {
				d.standby(d.member.Current()) // lost while loading
			}
		case !a.Active && serving:
			d.log.Warn("another instance is active now: mirroring stops here")
			d.standby(a)
		case !a.Active:
			d.standby(a) // the active instance may have changed
		}
	}
}

// setPhase records what the daemon waits for.
func (d *Daemon) setPhase(p string) {
	d.mu.Lock()
	d.phase = p
	d.mu.Unlock()
}
