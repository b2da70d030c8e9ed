package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/logdedup"
	"github.com/strait-dev/strait/internal/restapi"
)

// Health. /livez says the process runs. /readyz says whether this instance
// serves the API: 200 once it is the active instance with its state loaded
// and the destination and its state topic answer, 503 with the reason
// otherwise (starting, standby, destination unreachable).

// probeEvery is how often the destination and the state topic are probed,
// and probeTimeout how long a probe waits for its answer. probeFailures
// probes in a row must fail before /readyz turns 503 (one slow answer of
// a loaded cluster is not an outage): within about
// probeFailures*probeEvery+probeTimeout of the destination going silent;
// it turns 200 again within probeEvery of its return. A probe is one
// ListOffsets of the state topic's partition (and the metadata request
// that finds its leader when the client has none cached): cheap enough
// to run this often, and independent of how often /readyz is asked.
const (
	probeEvery    = 2 * time.Second
	probeTimeout  = 1500 * time.Millisecond
	probeFailures = 2
)

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
	var fails logdedup.Cause
	failed := 0
	t := time.NewTicker(probeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
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
		if err != nil {
			failed++
		} else {
			failed = 0
		}
		d.mu.Lock()
		if err == nil || failed >= probeFailures {
			d.destErr = err
		}
		d.mu.Unlock()
		// Once per cause, and once when it heals, with the count of
		// failed probes: not every two seconds.
		if err != nil && failed >= probeFailures {
			fails.Fail(d.log, "the destination cluster or the state topic does not answer; /readyz answers 503", err, "state_topic", d.cfg.StateTopic)
		} else if err == nil {
			fails.Recover(d.log, "the destination cluster answers again", "state_topic", d.cfg.StateTopic)
		}
	}
}
