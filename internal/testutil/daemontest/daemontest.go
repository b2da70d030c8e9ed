// Package daemontest starts Strait daemons in tests, on in-process kfake
// clusters. It is apart from testutil because it imports internal/daemon,
// whose own tests import testutil.
package daemontest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
)

// Config returns the default configuration of a daemon whose destination
// is dst and whose REST API listens on a free loopback port.
func Config(dst *kfake.Cluster) config.Config {
	cfg := config.Defaults()
	cfg.DestinationBootstrap = dst.ListenAddrs()[0]
	cfg.HTTP = "127.0.0.1:0"
	return cfg
}

// Logger returns the log a test gives a daemon: nothing, or with the
// environment variable STRAIT_TEST_LOG set, debug lines on stderr.
func Logger() *slog.Logger {
	if os.Getenv("STRAIT_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// Start starts a daemon with cfg, log and opts, giving it 30 s to start,
// and runs it until the test ends. The test fails if the daemon does not
// start, or if it ends with an error.
func Start(t testing.TB, cfg config.Config, log *slog.Logger, opts daemon.Options) *daemon.Daemon {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, log, opts)
	if err != nil {
		t.Fatalf("start daemon: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("daemon: %v", err)
		}
	})
	return d
}
