// Package demo runs Strait's embedded default: two local clusters, the
// daemon, a link "demo" and a mirror topic "orders" fed by a sample
// producer, driven through the daemon's own REST API.
package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/devcluster"
)

// Options configures the demo.
type Options struct {
	// DataDir holds both clusters' data; the demo resumes from it.
	DataDir string
	// HTTP is the REST API's listen address.
	HTTP string
	// SourceListen and DestinationListen are the clusters' addresses; port
	// 0 picks a free one. When the source's changes between runs, the
	// link of the earlier run is pointed at the new one.
	SourceListen      string
	DestinationListen string
	// Rate is the sample producer's records per second.
	Rate int
	// Out receives the instructions; logs go to Log.
	Out io.Writer
	Log *slog.Logger
	// ReportEvery is how often the status line is printed (10 s if zero).
	ReportEvery time.Duration
}

// Names used by the demo.
const (
	LinkName  = "demo"
	TopicName = "orders"
)

// Run runs the demo until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.ReportEvery <= 0 {
		o.ReportEvery = 10 * time.Second
	}
	if err := os.MkdirAll(o.DataDir, 0o755); err != nil {
		return err
	}
	src, err := devcluster.Start(devcluster.Options{Listen: o.SourceListen, DataDir: filepath.Join(o.DataDir, "source"), ClusterID: "demo-source"})
	if err != nil {
		return fmt.Errorf("start source cluster on %s: %w", o.SourceListen, err)
	}
	defer src.Close()
	dst, err := devcluster.Start(devcluster.Options{Listen: o.DestinationListen, DataDir: filepath.Join(o.DataDir, "destination"), ClusterID: "demo-destination"})
	if err != nil {
		return fmt.Errorf("start destination cluster on %s: %w", o.DestinationListen, err)
	}
	defer dst.Close()

	prod, err := kgo.NewClient(kgo.SeedBrokers(src.ListenAddrs()...), kgo.ProducerLinger(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer prod.Close()
	if err := ensureTopic(ctx, prod, TopicName, 3); err != nil {
		return err
	}

	cfg := config.Defaults()
	cfg.DestinationBootstrap = dst.ListenAddrs()[0]
	cfg.HTTP = o.HTTP
	d, err := daemon.New(ctx, cfg, o.Log, daemon.Options{})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- d.Run(runCtx) }()

	base := "http://" + d.Addr() + "/kafka/v3/clusters/" + d.Manager().ClusterID()
	if err := setup(ctx, base, src); err != nil {
		stop()
		<-done
		return err
	}
	printHelp(o.Out, base, o.DataDir)

	go produce(runCtx, prod, o.Rate, o.Log)
	go report(runCtx, o.Out, base, o.ReportEvery)
	<-ctx.Done()
	stop()
	err = <-done
	fmt.Fprintln(o.Out, "demo stopped; data kept in", o.DataDir)
	return err
}

func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, -1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// setup creates the link and the mirror through the REST API, unless an
// earlier run did.
func setup(ctx context.Context, base string, src *kfake.Cluster) error {
	status, _, err := call(ctx, http.MethodGet, base+"/links/"+LinkName, nil)
	if err != nil {
		return err
	}
	addr := src.ListenAddrs()[0]
	if status == http.StatusNotFound {
		body := map[string]any{"configs": []map[string]string{{"name": "bootstrap.servers", "value": addr}}}
		if status, msg, err := call(ctx, http.MethodPost, base+"/links?link_name="+LinkName, body); err != nil || status != http.StatusNoContent {
			return fmt.Errorf("create link: %d %s %v", status, msg, err)
		}
	} else if err := followSource(ctx, base, addr); err != nil {
		return err
	}
	status, _, err = call(ctx, http.MethodGet, base+"/links/"+LinkName+"/mirrors/"+TopicName, nil)
	if err != nil {
		return err
	}
	if status == http.StatusNotFound {
		body := map[string]any{"source_topic_name": TopicName}
		if status, msg, err := call(ctx, http.MethodPost, base+"/links/"+LinkName+"/mirrors", body); err != nil || status != http.StatusNoContent {
			return fmt.Errorf("create mirror: %d %s %v", status, msg, err)
		}
	}
	return nil
}

// followSource points the link of an earlier run at the source's address
// of this run, when --source-listen changed in between: otherwise the
// link would look for the source where it no longer is.
func followSource(ctx context.Context, base, addr string) error {
	url := base + "/links/" + LinkName + "/configs/bootstrap.servers"
	status, body, err := call(ctx, http.MethodGet, url, nil)
	if err != nil || status != http.StatusOK {
		return fmt.Errorf("read the link's bootstrap.servers: %d %s %v", status, body, err)
	}
	var c struct {
		Value string `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		return fmt.Errorf("read the link's bootstrap.servers: %w", err)
	}
	if c.Value == addr {
		return nil
	}
	if status, msg, err := call(ctx, http.MethodPut, url, map[string]string{"value": addr}); err != nil || status != http.StatusNoContent {
		return fmt.Errorf("point the link at the source's new address %s: %d %s %v", addr, status, msg, err)
	}
	return nil
}

func call(ctx context.Context, method, url string, body any) (int, string, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, "", err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, r)
	if err != nil {
		return 0, "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func printHelp(out io.Writer, base, dataDir string) {
	m := base + "/links/" + LinkName + "/mirrors"
	root, _, _ := strings.Cut(base, "/kafka/")
	fmt.Fprintf(out, `
Strait demo is running.
  source cluster "demo-source" -> link %q -> mirror topic %q on "demo-destination"
  data folder: %s (delete it to start over)

REST API: %s
Console:  %s/console/ (open it in a browser)

Try, in another terminal:
  # list the mirrors of the link, with their lag
  curl -s %s
  # describe the mirror topic
  curl -s %s/%s
  # pause it: the destination stops moving and the lag grows
  curl -s -X POST -H 'Content-Type: application/json' -d '{"mirror_topic_names":["%s"]}' %s:pause
  # resume it: the mirror catches up
  curl -s -X POST -H 'Content-Type: application/json' -d '{"mirror_topic_names":["%s"]}' %s:resume

Press Ctrl-C to stop.

`, LinkName, TopicName, dataDir, base, root, m, m, TopicName, TopicName, m, TopicName, m)
}

// produce writes sample orders to the source until ctx ends.
func produce(ctx context.Context, cl *kgo.Client, rate int, log *slog.Logger) {
	if rate <= 0 {
		return
	}
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		rec := &kgo.Record{
			Topic:   TopicName,
			Key:     []byte(fmt.Sprintf("customer-%d", n%17)),
			Value:   []byte(fmt.Sprintf(`{"order":%d,"amount":%d.%02d}`, n, 10+n%90, n%100)),
			Headers: []kgo.RecordHeader{{Key: "source", Value: []byte("strait-demo")}},
		}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				log.Warn("sample producer", "err", err)
			}
		})
	}
}

// report prints a status line every opts.ReportEvery (ten seconds by
// default), read from the REST API as a user would read it.
func report(ctx context.Context, out io.Writer, base string, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), readStatus(ctx, base))
	}
}

// linkStatus and mirrorStatus are the parts of the API's answers the
// status line shows.
type linkStatus struct {
	State        string  `json:"link_state"`
	Error        string  `json:"link_error"`
	ErrorMessage *string `json:"link_error_message"`
}

type mirrorStatus struct {
	Status string `json:"mirror_status"`
	Lags   []struct {
		Lag  int64 `json:"lag"`
		Last int64 `json:"last_source_fetch_offset"`
	} `json:"mirror_lags"`
}

// readStatus describes the link and the mirror in one line. When the API
// does not answer, it says so rather than skipping the line.
func readStatus(ctx context.Context, base string) string {
	var l linkStatus
	var m mirrorStatus
	for _, get := range []struct {
		url string
		v   any
	}{{base + "/links/" + LinkName, &l}, {base + "/links/" + LinkName + "/mirrors/" + TopicName, &m}} {
		status, body, err := call(ctx, http.MethodGet, get.url, nil)
		switch {
		case err != nil:
			return "the REST API does not answer: " + err.Error()
		case status != http.StatusOK:
			return fmt.Sprintf("the REST API answers %d to GET %s: %s", status, get.url, body)
		}
		if err := json.Unmarshal([]byte(body), get.v); err != nil {
			return fmt.Sprintf("the REST API's answer to GET %s is not understood: %v", get.url, err)
		}
	}
	return statusLine(l, m)
}

// statusLine is the demo's status line. The lag is what the source's last
// known end offsets say: when the link cannot reach the source, the line
// says so and calls those figures the last known ones, since the true lag
// is unknown.
func statusLine(l linkStatus, m mirrorStatus) string {
	var lag, end int64
	for _, p := range m.Lags {
		lag += p.Lag
		end += max(p.Last, 0)
	}
	line := fmt.Sprintf("%s: %s, source end offsets sum to %d, lag %d", TopicName, m.Status, end, lag)
	switch l.State {
	case "ACTIVE":
		return line
	case "UNAVAILABLE", "FAILED":
		why := l.Error
		if l.ErrorMessage != nil && *l.ErrorMessage != "" {
			why += ": " + *l.ErrorMessage
		}
		return fmt.Sprintf("%s: %s, link %s (%s); nothing is copied, lag unknown (last known: source end offsets sum to %d, lag %d)",
			TopicName, m.Status, l.State, why, end, lag)
	default:
		return fmt.Sprintf("%s (link %s)", line, l.State)
	}
}
