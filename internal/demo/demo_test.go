package demo

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/internal/testutil"
)

// waitFor polls the output for a line matching re, written after the
// first `from` bytes.
func waitFor(t *testing.T, out *testutil.SyncBuffer, from int, re *regexp.Regexp, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		s := out.String()[from:]
		for _, line := range strings.Split(s, "\n") {
			if re.MatchString(line) {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no output line matches %q within %v; output:\n%s", re, within, s)
		}
		time.Sleep(50 * time.Millisecond) // polling the demo's output
	}
}

// startDemo runs the demo until the returned stop is called.
func startDemo(t *testing.T, dir, sourceListen string) (out *testutil.SyncBuffer, base string, stop func()) {
	t.Helper()
	out = &testutil.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, Options{DataDir: dir, HTTP: "127.0.0.1:0", SourceListen: sourceListen, DestinationListen: "127.0.0.1:0",
			Rate: 50, Out: out, Log: slog.New(slog.DiscardHandler), ReportEvery: 200 * time.Millisecond})
	}()
	m := waitFor(t, out, 0, regexp.MustCompile(`^REST API: (\S+)`), 30*time.Second)
	base = strings.TrimPrefix(m, "REST API: ")
	return out, base, func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("demo: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("the demo did not stop within 30 s")
		}
	}
}

// TestStatusLineTellsTheTruth runs the demo, then makes its source
// unreachable: the status line must stop showing a healthy lag and say
// that nothing is copied. A second run on the same data with the source
// on another address must copy again.
func TestStatusLineTellsTheTruth(t *testing.T) {
	dir := t.TempDir()
	healthy := regexp.MustCompile(`orders: ACTIVE, source end offsets sum to [1-9][0-9]*, lag [0-9]+$`)
	out, base, stop := startDemo(t, dir, "127.0.0.1:0")
	waitFor(t, out, 0, healthy, 60*time.Second)

	// Point the link at a port nothing listens on.
	from := len(out.String())
	req, _ := http.NewRequest(http.MethodPut, base+"/links/demo/configs/bootstrap.servers", strings.NewReader(`{"value":"`+testutil.FreeAddr(t)+`"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT bootstrap.servers: %d", resp.StatusCode)
	}
	line := waitFor(t, out, from, regexp.MustCompile(`link UNAVAILABLE .*nothing is copied, lag unknown \(last known`), 30*time.Second)
	if healthy.MatchString(line) {
		t.Fatalf("the line reads healthy: %s", line)
	}
	stop()

	// A new run with the source elsewhere: the link follows it.
	out, _, stop = startDemo(t, dir, "127.0.0.1:0")
	defer stop()
	waitFor(t, out, 0, healthy, 60*time.Second)
}

func TestStatusLine(t *testing.T) {
	msg := "Strait cannot reach the source cluster."
	lags := mirrorStatus{Status: "ACTIVE"}
	lags.Lags = append(lags.Lags, struct {
		Lag  int64 `json:"lag"`
		Last int64 `json:"last_source_fetch_offset"`
	}{Lag: 3, Last: 10}, struct {
		Lag  int64 `json:"lag"`
		Last int64 `json:"last_source_fetch_offset"`
	}{Lag: 0, Last: -1})
	for _, c := range []struct {
		name string
		link linkStatus
		want string
	}{
		{"healthy", linkStatus{State: "ACTIVE", Error: "NO_ERROR"}, "orders: ACTIVE, source end offsets sum to 10, lag 3"},
		{"paused link", linkStatus{State: "PAUSED", Error: "NO_ERROR"}, "orders: ACTIVE, source end offsets sum to 10, lag 3 (link PAUSED)"},
		{"unreachable", linkStatus{State: "UNAVAILABLE", Error: "SOURCE_UNAVAILABLE", ErrorMessage: &msg},
			"orders: ACTIVE, link UNAVAILABLE (SOURCE_UNAVAILABLE: Strait cannot reach the source cluster.); nothing is copied, lag unknown (last known: source end offsets sum to 10, lag 3)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := statusLine(c.link, lags); got != c.want {
				t.Fatalf("got  %q\nwant %q", got, c.want)
			}
		})
	}
}
