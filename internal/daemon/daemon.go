// Package daemon wires Strait together: the destination client, the state
// store, the group of instances, the link manager, the REST API and the
// metrics, and runs them until stopped.
//
// The HTTP listener comes up first, before the destination answers, so
// that /readyz can say what the daemon waits for. Start-up retries what
// can heal (a destination still starting, a leader moving, a dropped
// connection, a slow state topic) and stops only on what cannot (bad
// credentials, a state topic of a newer Strait or another cluster, a
// secrets key that opens nothing), with the cause.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/buildinfo"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/console"
	"github.com/strait-dev/strait/internal/group"
	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/metrics"
	"github.com/strait-dev/strait/internal/retry"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/store"
)

// Daemon is a running Strait.
type Daemon struct {
	log    *slog.Logger
	cfg    config.Config
	dest   *kgo.Client
	store  *store.Store
	srv    *http.Server
	ln     net.Listener
	guard  *auth.Holder
	sealer *secret.Sealer
	opt    Options
	tls    bool
	errc   chan error // the HTTP server's end
	// console is the web console; its lag sampler runs in bg.
	console *console.Console

	clusterID string
	member    *group.Member
	// changed is signalled when the group's assignment changes; applied
	// is the first assignment, once New applied it.
	changed chan struct{}
	applied group.Assignment

	// stopBG ends the background work (membership, activation,
	// probes); bg waits for it.
	stopBG context.CancelFunc
	bg     sync.WaitGroup

	// metrics counts what the manager, its runners and the store report.
	metrics *metrics.Metrics

	mu    sync.Mutex
	mgr   *link.Manager
	api   http.Handler // the API over mgr, nil while not active
	phase string       // what the daemon waits for, "" once it serves
	// destErr is the last failed probe of the destination and the state
	// topic, nil while they answer.
	destErr error
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
	// Version is the Strait version, told to the other instances.
	Version string
	// LagSampleInterval overrides how often the console samples the lag
	// of every mirror (tests); zero means every 10 s.
	LagSampleInterval time.Duration
}

// New starts the daemon: it listens at once, then connects to the
// destination, opens the state topic, loads the state and joins the group
// of instances. It returns once this instance serves the API and has
// applied the group's first decision, or with the error that stops it. It
// gives up when ctx ends.
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
	guard, err := auth.New(cfg.Auth)
	if err != nil {
		return nil, err
	}
	sealer, err := newSealer(cfg)
	if err != nil {
		return nil, err
	}
	dest, err := kafkaclient.New(ds, log.With("cluster", "destination"))
	if err != nil {
		return nil, err
	}
	d := &Daemon{log: log, cfg: cfg, dest: dest, opt: opt, guard: auth.NewHolder(guard), sealer: sealer,
		changed: make(chan struct{}, 1), phase: "connecting to the destination cluster"}
	bctx, stop := context.WithCancel(context.Background())
	d.stopBG = stop
	ok := false
	defer func() {
		if !ok {
			d.shutdown()
		}
	}()
	if err := d.listen(cfg, guard); err != nil {
		return nil, err
	}
	warnReadable(log, map[string]string{"tls_key_file": cfg.TLSKeyFile, "secrets_key_file": cfg.SecretsKeyFile, "destination_key_file": cfg.DestinationKeyFile})
	if d.clusterID, err = clusterID(ctx, dest, log); err != nil {
		return nil, err
	}
	d.setPhase("opening the state topic " + cfg.StateTopic)
	if d.store, err = store.Open(ctx, base, cfg.StateTopic, log); err != nil {
		return nil, err
	}
	d.store.Observe(d.metrics.StateWrite)
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	d.setPhase("joining the group " + cfg.GroupName() + " of Strait instances")
	d.join(bctx)
	a, err := d.firstAssignment(ctx)
	if err != nil {
		return nil, err
	}
	if err := d.apply(ctx, a); err != nil {
		if ctx.Err() != nil {
			return nil, err
		}
		// Serving and copying go on; supervise takes the active role
		// over again, with backoff, until it works.
		log.Error("this instance is active but cannot take the state over yet; trying again", "err", err)
	} else {
		d.applied = a
	}
	d.setPhase("")
	d.bg.Add(3)
	go d.supervise(bctx)
	go d.probe(bctx)
	go func() {
		defer d.bg.Done()
		d.console.Run(bctx)
	}()
	if opt.ConfigFile != "" && opt.Reload != nil {
		d.bg.Add(1)
		go func() {
			defer d.bg.Done()
			d.watchConfig(bctx)
		}()
	}
	if sealer == nil {
		log.Info("no secrets key: links cannot be given credentials (sasl.jaas.config, passwords, keys); see docs/security.md")
	}
	ok = true
	return d, nil
}

func newSealer(cfg config.Config) (*secret.Sealer, error) {
	key, err := cfg.SecretsKeyBytes()
	if err != nil {
		return nil, fmt.Errorf("secrets key: %w", err)
	}
	if key == nil {
		return nil, nil
	}
	previous, err := cfg.SecretsPreviousKeyBytes()
	if err != nil {
		return nil, err
	}
	return secret.New(key, previous...)
}

// listen opens the REST listener and serves health and metrics at once;
// the API answers 503 with the reason until the daemon is ready.
func (d *Daemon) listen(cfg config.Config, guard *auth.Guard) error {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(metrics.BuildInfo(buildinfo.Get()))
	var err error
	d.metrics, err = metrics.New(reg, metrics.Options{
		PartitionLabels: cfg.MetricsPartitionLabels,
		Ready:           func() bool { return d.notReady() == "" },
	}, d.Manager)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", d.authenticated(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), cfg.MetricsPublic))
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", d.readyz)
	d.console = console.New(console.Config{Manager: d.Manager, Guard: d.guard, Log: d.log, Interval: d.opt.LagSampleInterval})
	d.console.Mount(mux)
	mux.HandleFunc("/", d.serveAPI)
	if d.ln, err = net.Listen("tcp", cfg.HTTP); err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	if err := cfg.CheckListener(d.ln.Addr().String()); err != nil {
		// A name that resolved elsewhere than loopback.
		_ = d.ln.Close()
		return err
	}
	d.ln = newLimitListener(d.ln, maxConnections, maxConnectionsPerAddress)
	d.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		if d.srv.TLSConfig, err = serverTLS(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.TLSClientCAFile, cfg.TLS13Only, d.log); err != nil {
			return err
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
		d.log.Log(context.Background(), lvl, "the REST API has no authentication: whoever reaches "+d.ln.Addr().String()+" can change links")
	}
	d.errc = make(chan error, 1)
	go func() {
		if d.tls {
			d.errc <- d.srv.ServeTLS(d.ln, "", "")
			return
		}
		d.errc <- d.srv.Serve(d.ln)
	}()
	d.log.Info("listening", "rest", scheme+"://"+d.ln.Addr().String()+"/kafka/v3")
	return nil
}

// clusterID asks the destination for its cluster id, retrying what heals:
// the destination may still be starting.
func clusterID(ctx context.Context, cl *kgo.Client, log *slog.Logger) (string, error) {
	var id string
	err := retry.Do(ctx, log, "the destination cluster", 10*time.Second, func(ctx context.Context) error {
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		if md.Cluster == "" {
			return retry.Permanent(errors.New("the destination cluster reports no cluster id"))
		}
		id = md.Cluster
		return nil
	})
	return id, err
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

// ClusterID is the destination cluster's id.
func (d *Daemon) ClusterID() string { return d.clusterID }

// Manager is the daemon's link manager, nil until the state is loaded.
func (d *Daemon) Manager() *link.Manager {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mgr
}

// Run serves until ctx ends, then shuts down: the HTTP server stops taking
// requests, mirroring stops, the instance leaves the group (another takes
// over at once), clients close.
func (d *Daemon) Run(ctx context.Context) error {
	var err error
	select {
	case <-ctx.Done():
	case err = <-d.errc:
	}
	d.shutdown()
	d.log.Info("strait stopped")
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// shutdown stops everything New started, in order.
func (d *Daemon) shutdown() {
	if d.srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = d.srv.Shutdown(sctx)
		cancel()
	}
	// Stop copying before leaving the group: the others take the
	// partitions over when it leaves.
	d.drain()
	d.stopBG()
	d.bg.Wait()
	d.mu.Lock()
	mgr := d.mgr
	d.mgr, d.api, d.phase = nil, nil, "stopping"
	d.mu.Unlock()
	if mgr != nil {
		mgr.Close()
	}
	if d.store != nil {
		d.store.Close()
	}
	d.dest.Close()
}

// Guard is the daemon's current auth guard.
func (d *Daemon) Guard() *auth.Holder { return d.guard }

// reloadedGuard validates a reloaded configuration against the listener
// the daemon is bound to and returns its guard.
func reloadedGuard(cfg config.Config, bound string) (*auth.Guard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := cfg.CheckListener(bound); err != nil {
		return nil, err
	}
	return auth.New(cfg.Auth)
}

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
		var g *auth.Guard
		if err == nil {
			g, err = reloadedGuard(cfg, d.ln.Addr().String())
		}
		if err != nil {
			d.log.Error("configuration changed but does not load; keeping the running auth settings", "file", d.opt.ConfigFile, "err", err)
			continue
		}
		d.guard.Update(g)
		d.log.Info("auth settings reloaded", "file", d.opt.ConfigFile, "api_keys", len(cfg.Auth.APIKeys), "roles", len(cfg.Auth.Roles))
	}
}
