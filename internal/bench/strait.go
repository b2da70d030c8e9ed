package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// startStrait starts `strait serve` against dst with a state topic of its
// own (so nothing of an earlier case is loaded), links it to src and
// mirrors topic. It returns once the mirror is created; the copy runs in
// the background.
func startStrait(ctx context.Context, e *env, label, topic string) (*proc, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	p, err := startProc("strait-"+label, e.logDir, e.bin, "serve",
		"--destination-bootstrap", e.dst.addr,
		"--http", httpAddr,
		"--state-topic", "__strait_state_"+label,
		"--log-level", "warn")
	if err != nil {
		return nil, err
	}
	root := "http://" + httpAddr
	hc := &http.Client{Timeout: 60 * time.Second}
	err = waitFor(ctx, 60*time.Second, 50*time.Millisecond, func() error {
		if err := p.exited(); err != nil {
			return stopWaiting{err}
		}
		resp, err := hc.Get(root + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /readyz: %s", resp.Status)
		}
		return nil
	})
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("strait serve on %s: %w", httpAddr, err)
	}
	base := root + "/kafka/v3/clusters/" + e.dst.id + "/links"
	link := map[string]any{
		"source_cluster_id": e.src.id,
		"configs":           []map[string]string{{"name": "bootstrap.servers", "value": e.src.addr}},
	}
	if err := postJSON(ctx, hc, base+"?link_name=bench", link); err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("create link: %w", err)
	}
	if err := postJSON(ctx, hc, base+"/bench/mirrors", map[string]string{"source_topic_name": topic}); err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("create mirror %s: %w", topic, err)
	}
	return p, nil
}

// postJSON POSTs body as JSON to url and requires a 2xx answer.
func postJSON(ctx context.Context, hc *http.Client, url string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", url, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, bytes.TrimSpace(out))
	}
	return nil
}
