// Package daemon wires Strait together: the destination client, the state
// store, the link manager, the REST API and the metrics, and runs them
// until stopped.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/metrics"
	"github.com/strait-dev/strait/internal/restapi"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/store"
)

// Daemon is a running Strait.
type Daemon struct {
	log   *slog.Logger
	dest  *kgo.Client
	store *store.Store
	mgr   *link.Manager
	srv   *http.Server
	ln    net.Listener
	guard *auth.Holder
	opt   Options
	tls   bool
}

// Options tunes a daemon beyond Config; zero values are fine.
type Options struct {
	// MetadataInterval overrides how often sources are probed (tests).
	MetadataInterval time.Duration
	// PromoteTimeout bounds a promote's wait for its mirrors to catch up;
	// zero means one minute.
	PromoteTimeout time.Duration
	// ConfigFile, when set, is watched; when it changes, Reload reads the
	// configuration again and its auth section (API keys, JWT settings,
	// roles, rate limits) replaces the running one.
	ConfigFile string
	Reload     func() (config.Config, error)
	// ReloadInterval is how often ConfigFile is checked; zero means two
	// seconds.
	ReloadInterval time.Duration
	// MaxTopicsPerRequest overrides link.DefaultMaxTopicsPerRequest (tests).
	MaxTopicsPerRequest int
}

// New connects to the destination, loads the state and starts mirroring
// and listening. It gives up when ctx ends.
func New(ctx context.Context, cfg config.Config, log *slog.Logger, opt Options) (*Daemon, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ds, err := cfg.Destination()
	if err != nil {
		return nil, err
	}
	base, err := ds.Options(log.With("cluster", "destination"))
	if err != nil {
		return nil, err
	}
	dest, err := kafkaclient.New(ds, log.With("cluster", "destination"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{log: log, dest: dest, opt: opt}
	guard, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, err
	}
	d.guard = auth.NewHolder(guard)
	var sealer *secret.Sealer
	if key, err := cfg.SecretsKeyBytes(); err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	} else if key != nil {
		previous, err := cfg.SecretsPreviousKeyBytes()
		if err != nil {
			return nil, err
		}
		if sealer, err = secret.New(key, previous...); err != nil {
			return nil, err
		}
	}
	ok := false
	defer func() {
		if !ok {
			d.closeClients()
		}
	}()
	clusterID, err := waitClusterID(ctx, dest, log)
	if err != nil {
		return nil, err
	}
	if d.store, err = store.Open(ctx, base, cfg.StateTopic, log); err != nil {
		return nil, err
	}
	d.mgr, err = link.New(ctx, link.Config{
		Store:            d.store,
		Dest:             dest,
		ClusterID:        clusterID,
		Log:              log,
		MetadataInterval: opt.MetadataInterval,
		PromoteTimeout:   opt.PromoteTimeout,
		Principal:        principal(cfg),
		Secrets:          sealer,

		MaxTopicsPerRequest: opt.MaxTopicsPerRequest,
	})
	if err != nil {
		return nil, err
	}
	api := restapi.New(d.mgr, log, restapi.Options{Guard: d.guard})
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if err := metrics.Register(reg, d.mgr); err != nil {
		return nil, err
	}
	api.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	api.Handle("GET /livez", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	api.Handle("GET /readyz", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) }))
	d.ln, err = net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	d.srv = &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		if d.srv.TLSConfig, err = serverTLS(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile, log); err != nil {
			_ = d.ln.Close()
			return nil, err
		}
		d.tls, scheme = true, "https"
	}
	if !guard.Enabled() {
		// On loopback this is the documented default; elsewhere only
		// allow_unauthenticated lets it through, and it deserves a warning.
		lvl := slog.LevelInfo
		if !cfg.Loopback() {
			lvl = slog.LevelWarn
		}
		log.Log(ctx, lvl, "the REST API has no authentication: whoever reaches "+d.ln.Addr().String()+" can change links")
	}
	if sealer == nil {
		log.Info("no secrets key: links cannot be given credentials (sasl.jaas.config, passwords, keys); see docs/security.md")
	}
	log.Info("strait ready", "rest", scheme+"://"+d.ln.Addr().String()+"/kafka/v3", "cluster_id", clusterID, "state_topic", cfg.StateTopic)
	ok = true
	return d, nil
}

// waitClusterID asks the destination for its cluster id, retrying until
// ctx ends: the destination may still be starting.
func waitClusterID(ctx context.Context, cl *kgo.Client, log *slog.Logger) (string, error) {
	adm := kadm.NewClient(cl)
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		md, err := adm.BrokerMetadata(rctx)
		cancel()
		if err == nil {
			if md.Cluster == "" {
				return "", errors.New("the destination cluster reports no cluster id")
			}
			return md.Cluster, nil
		}
		log.Warn("destination cluster not reachable yet", "err", err)
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("reach destination cluster: %w", err)
		case <-time.After(time.Second):
		}
	}
}

// principal is how the destination's authorizer names Strait.
func principal(cfg config.Config) string {
	if cfg.DestinationSASLUsername != "" {
		return "User:" + cfg.DestinationSASLUsername
	}
	return "User:ANONYMOUS"
}

// Addr is the REST API's listen address.
func (d *Daemon) Addr() string { return d.ln.Addr().String() }

// Manager is the daemon's link manager.
func (d *Daemon) Manager() *link.Manager { return d.mgr }

// Run serves until ctx ends, then shuts down: the HTTP server stops taking
// requests, mirroring stops, clients close.
func (d *Daemon) Run(ctx context.Context) error {
	errc := make(chan error, 1)
	go func() {
		if d.tls {
			errc <- d.srv.ServeTLS(d.ln, "", "")
			return
		}
		errc <- d.srv.Serve(d.ln)
	}()
	if d.opt.ConfigFile != "" && d.opt.Reload != nil {
		go d.watchConfig(ctx)
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(sctx)
	d.mgr.Close()
	d.closeClients()
	d.log.Info("strait stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

func (d *Daemon) closeClients() {
	if d.mgr != nil && d.srv == nil {
		d.mgr.Close()
	}
	if d.store != nil {
		d.store.Close()
	}
	d.dest.Close()
}

// Guard is the daemon's current auth guard.
func (d *Daemon) Guard() *auth.Holder { return d.guard }

// watchConfig reloads the auth section when the config file changes, so
// keys and roles rotate without a restart. A file that does not load or
// validate leaves the running guard in place.
func (d *Daemon) watchConfig(ctx context.Context) {
	every := d.opt.ReloadInterval
	if every == 0 {
		every = 2 * time.Second
	}
	stamp := func() time.Time {
		st, err := os.Stat(d.opt.ConfigFile)
		if err != nil {
			return time.Time{}
		}
		return st.ModTime()
	}
	last := stamp()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mt := stamp()
		if mt.Equal(last) || mt.IsZero() {
			continue
		}
		last = mt
		cfg, err := d.opt.Reload()
		if err == nil {
			err = cfg.Validate()
		}
		var g *auth.Guard
		if err == nil {
			g, err = auth.New(cfg.Auth)
		}
		if err != nil {
			d.log.Error("configuration changed but does not load; keeping the running auth settings", "file", d.opt.ConfigFile, "err", err)
			continue
		}
		d.guard.Update(g)
		d.log.Info("auth settings reloaded", "file", d.opt.ConfigFile, "api_keys", len(cfg.Auth.APIKeys), "roles", len(cfg.Auth.Roles))
	}
}
