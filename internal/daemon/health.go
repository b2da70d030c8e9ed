package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/restapi"
)

// Health. /livez says the process runs. /readyz says whether this instance
// serves the API: 200 once it is the active instance with its state loaded
// and the destination and its state topic answer, 503 with the reason
// otherwise (starting, standby, destination unreachable).

// probeEvery is how often the destination and the state topic are probed.
const probeEvery = 5 * time.Second

// notReady is why the API is not served, "" when it is.
func (d *Daemon) notReady() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.phase != "":
		return d.phase
	case d.destErr != nil:
		return "the destination cluster or the state topic does not answer: " + d.destErr.Error()
	}
	return ""
}

func (d *Daemon) readyz(w http.ResponseWriter, _ *http.Request) {
	if why := d.notReady(); why != "" {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, why)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// serveAPI hands a request to the API, or answers 503 with the reason the
// instance does not serve it. A destination that does not answer does not
// stop the API: reads still answer from memory, and changes fail with
// their own errors.
func (d *Daemon) serveAPI(w http.ResponseWriter, r *http.Request) {
	d.mu.Lock()
	api, phase := d.api, d.phase
	d.mu.Unlock()
	if api == nil {
		if phase == "" {
			phase = "starting"
		}
		restapi.WriteUnavailable(w, "This Strait instance does not serve the API now: "+phase+".")
		return
	}
	api.ServeHTTP(w, r)
}

// authenticated serves h to authenticated callers only, when the API has
// authentication and public is not set.
func (d *Daemon) authenticated(h http.Handler, public bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g := d.guard.Get()
		if public || g == nil || !g.Enabled() {
			h.ServeHTTP(w, r)
			return
		}
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		if _, wait, err := g.Admit(r, host); err != nil {
			if wait > 0 {
				w.Header().Set("Retry-After", fmt.Sprint(max(1, int(wait.Seconds()))))
				http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
				return
			}
			w.Header().Set("WWW-Authenticate", g.Challenge())
			http.Error(w, "Authentication failed", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// probe checks the destination and the state topic every probeEvery.
func (d *Daemon) probe(ctx context.Context) {
	defer d.bg.Done()
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, probeEvery)
		ends, err := kadm.NewClient(d.dest).ListEndOffsets(pctx, d.cfg.StateTopic)
		cancel()
		if err == nil {
			if o, ok := ends.Lookup(d.cfg.StateTopic, 0); !ok {
				err = errors.New("no answer for the state topic")
			} else {
				err = o.Err
			}
		}
		if ctx.Err() != nil {
			return
		}
		d.mu.Lock()
		was := d.destErr
		d.destErr = err
		d.mu.Unlock()
		switch {
		case err != nil && was == nil:
			d.log.Warn("the destination cluster or the state topic does not answer", "err", err)
		case err == nil && was != nil:
			d.log.Info("the destination cluster answers again")
		}
	}
}
