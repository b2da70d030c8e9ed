package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// serveLogLevelEnv, in the env given to startServe, sets the serve's log
// level (default warn).
const serveLogLevelEnv = "BENCH_SERVE_LOG_LEVEL"

// serve is a `strait serve` child process and its REST API.
type serve struct {
	p    *proc
	root string // http://host:port
	hc   *http.Client
}

// startServe starts `<bin> serve` against dst with the given state topic
// and waits until /readyz answers 200. env is added to its environment.
func startServe(ctx context.Context, name, logDir, bin string, env []string, dst *cluster, stateTopic string) (*serve, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	level := "warn"
	for _, kv := range env {
		// The serves' own log level, for diagnosing a run (see
		// ScaleOptions.ServeLogLevel).
		if v, ok := strings.CutPrefix(kv, serveLogLevelEnv+"="); ok {
			level = v
		}
	}
	p, err := startProcEnv(name, logDir, env, bin, "serve",
		"--destination-bootstrap", dst.addr,
		"--http", httpAddr,
		"--state-topic", stateTopic,
		"--log-level", level)
	if err != nil {
		return nil, err
	}
	s := &serve{p: p, root: "http://" + httpAddr, hc: &http.Client{Timeout: 2 * time.Minute}}
	if err := s.waitReady(ctx, 2*time.Minute); err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("strait serve on %s: %w", httpAddr, err)
	}
	return s, nil
}

// waitReady polls /readyz until it answers 200.
func (s *serve) waitReady(ctx context.Context, timeout time.Duration) error {
	return waitFor(ctx, timeout, 20*time.Millisecond, func() error {
		if err := s.p.exited(); err != nil {
			return stopWaiting{err}
		}
		resp, err := s.hc.Get(s.root + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		return nil
	})
}

// links is the base URL of the destination's links.
func (s *serve) links(dst *cluster) string {
	return s.root + "/kafka/v3/clusters/" + dst.id + "/links"
}

// createLink creates a link to src called name, with extra link configs.
func (s *serve) createLink(ctx context.Context, dst, src *cluster, name string, configs map[string]string) error {
	cs := []map[string]string{{"name": "bootstrap.servers", "value": src.addr}}
	for k, v := range configs {
		cs = append(cs, map[string]string{"name": k, "value": v})
	}
	body := map[string]any{"source_cluster_id": src.id, "configs": cs}
	_, err := s.call(ctx, http.MethodPost, s.links(dst)+"?link_name="+name, body)
	return err
}

// call sends a request with body as JSON (none when nil), requires a 2xx
// answer and returns the answer's body.
func (s *serve) call(ctx context.Context, method, url string, body any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read answer: %w", method, url, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, fmt.Errorf("%s %s: %s: %s", method, url, resp.Status, bytes.TrimSpace(out[:min(len(out), 4096)]))
	}
	return out, nil
}

// mirrorList is the part of a mirror list answer the benchmark reads.
type mirrorList struct {
	Data []mirrorItem `json:"data"`
}

// mirrorItem is the part of one mirror the benchmark reads.
type mirrorItem struct {
	MirrorTopicName string `json:"mirror_topic_name"`
	MirrorStatus    string `json:"mirror_status"`
	MirrorLags      []struct {
		Partition      int32  `json:"partition"`
		StraitInstance string `json:"strait_instance"`
	} `json:"mirror_lags"`
}

// unmarshalOne reads one mirror's answer into a list of one.
func unmarshalOne(b []byte, m *mirrorList) error {
	var one mirrorItem
	if err := json.Unmarshal(b, &one); err != nil {
		return fmt.Errorf("mirror answer: %w", err)
	}
	m.Data = []mirrorItem{one}
	return nil
}

// mirrors lists the mirrors at url (a link's, or every link's).
func (s *serve) mirrors(ctx context.Context, url string) (mirrorList, int, error) {
	var ml mirrorList
	b, err := s.call(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ml, 0, err
	}
	if err := json.Unmarshal(b, &ml); err != nil {
		return ml, len(b), fmt.Errorf("GET %s: %w", url, err)
	}
	return ml, len(b), nil
}

// stopAll stops processes in parallel and waits for all of them.
func stopAll(grace time.Duration, ps ...*proc) {
	done := make(chan struct{}, len(ps))
	for _, p := range ps {
		go func() {
			p.stop(grace)
			done <- struct{}{}
		}()
	}
	for range ps {
		<-done
	}
}
