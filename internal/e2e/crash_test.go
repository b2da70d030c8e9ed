package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// straitBinary builds cmd/strait once per test run.
func straitBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "strait-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "strait")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/strait-dev/strait/cmd/strait").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// serveProc is `strait serve` in a subprocess.
type serveProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	addr string // its REST listener
}

func startServe(t *testing.T, bin, dest, httpAddr string, extra ...string) *serveProc {
	t.Helper()
	p := spawnServe(t, bin, dest, httpAddr, extra...)
	p.waitReady(t, 60*time.Second)
	return p
}

// spawnServe starts `strait serve` and does not wait for it.
func spawnServe(t *testing.T, bin, dest, httpAddr string, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve", "--destination-bootstrap", dest, "--http", httpAddr, "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, done: make(chan struct{}), addr: httpAddr}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("serve[%d]: %s", cmd.Process.Pid, sc.Text())
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// ready reports whether the instance serves the API: it is the active one
// (a killed one's group membership lasts its session timeout) and its
// state is loaded.
func (p *serveProc) ready() error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + p.addr + "/readyz")
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil
}

func (p *serveProc) waitReady(t *testing.T, d time.Duration) {
	t.Helper()
	testutil.WaitFor(t, d, "serve ready", p.ready)
}

// kill sends SIGKILL to the process we started, by its PID, and waits.
func (p *serveProc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGCONT) // a stopped process dies too
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM (a graceful stop) and waits for the exit.
func (p *serveProc) terminate() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
	}
}

// alive reports whether the process has not exited.
func (p *serveProc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// freeze stops the process with SIGSTOP, as a paused VM or a long GC would;
// thaw continues it.
func (p *serveProc) freeze() { _ = p.cmd.Process.Signal(syscall.SIGSTOP) }
func (p *serveProc) thaw()   { _ = p.cmd.Process.Signal(syscall.SIGCONT) }

// TestCrashResumesWithoutGapOrDuplicate kills `strait serve` with SIGKILL
// twice while it copies and while a producer keeps writing, restarts it,
// and checks that the link, the mirrors and their states survived and
// that the mirror is identical to the source: no gap, no duplicate.
func TestCrashResumesWithoutGapOrDuplicate(t *testing.T) {
	bin := straitBinary(t)
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	srcCl := testutil.Client(t, src.ListenAddrs())
	dstCl := testutil.Client(t, dst.ListenAddrs())
	testutil.CreateTopic(t, srcCl, "crash", 3, nil)
	testutil.CreateTopic(t, srcCl, "held", 1, nil)
	produceMixed(t, src.ListenAddrs(), "crash", 20000) // 100,000 records in large batches
	// and 40,000 in batches of a few records: copying these takes a
	// few seconds, so the first kill lands in the middle of the backlog.
	small := testutil.Client(t, src.ListenAddrs(), kgo.DefaultProduceTopic("crash"), kgo.ProducerBatchMaxBytes(512), kgo.ProducerLinger(0))
	produceWith(t, small, "crash", 40000)
	produceWith(t, srcCl, "held", 10)

	httpAddr := testutil.FreeAddr(t)
	proc := startServe(t, bin, dst.ListenAddrs()[0], httpAddr)
	api := testutil.NewAPI(t, "http://"+httpAddr, "/kafka/v3", "destination-cluster")
	api.JSON("POST", "/links?link_name=l1", map[string]any{"source_cluster_id": "source-cluster", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": src.ListenAddrs()[0]},
	}}, http.StatusNoContent, nil)
	api.JSON("POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "held"}, http.StatusNoContent, nil)
	api.JSON("POST", "/links/l1/mirrors:pause", map[string]any{"mirror_topic_names": []string{"held"}}, http.StatusOK, nil)
	api.JSON("POST", "/links/l1/mirrors", map[string]any{"source_topic_name": "crash"}, http.StatusNoContent, nil)

	// Keep producing while the daemon is killed and restarted.
	ctx, stopProducing := context.WithCancel(context.Background())
	producer := testutil.Client(t, src.ListenAddrs(), kgo.DefaultProduceTopic("crash"), kgo.ProducerLinger(time.Millisecond))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ctx.Err() == nil; i++ {
			_ = producer.ProduceSync(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 5)), Value: []byte(fmt.Sprintf("live-%d", i))}).FirstErr()
			if i%50 == 0 {
				time.Sleep(5 * time.Millisecond) // pace the producer, about 10k records/s
			}
		}
	}()

	var killedAt int64
	sum := func(m map[int32]int64) (n int64) {
		for _, v := range m {
			n += v
		}
		return n
	}
	for round := 0; round < 2; round++ {
		// Kill while the copy is under way: the mirror moved since the
		// last kill and is still behind the source.
		testutil.WaitFor(t, 60*time.Second, "copy under way", func() error {
			_, srcEnds := testutil.Offsets(t, srcCl, "crash")
			_, ends := testutil.Offsets(t, dstCl, "crash")
			n, want := sum(ends), sum(srcEnds)
			if n <= killedAt || n >= want {
				return fmt.Errorf("mirror holds %d of %d (last kill at %d)", n, want, killedAt)
			}
			killedAt = n
			return nil
		})
		proc.kill()
		t.Logf("round %d: killed serve with %d records on the mirror", round, killedAt)
		proc = startServe(t, bin, dst.ListenAddrs()[0], httpAddr)
	}
	stopProducing()
	wg.Wait()

	// The state survived: the link, both mirrors, and the paused one is
	// still paused.
	var m mirrorView
	api.JSON("GET", "/links/l1/mirrors/held", nil, http.StatusOK, &m)
	if m.MirrorStatus != "PAUSED" {
		t.Fatalf("held mirror is %s after the crashes, want PAUSED", m.MirrorStatus)
	}
	testutil.WaitSameEnds(t, 120*time.Second, srcCl, dstCl, "crash")
	n := assertSameViews(t, src.ListenAddrs(), "crash", dst.ListenAddrs(), "crash")
	t.Logf("%d records identical after two SIGKILLs", n)
	api.JSON("GET", "/links/l1/mirrors/crash", nil, http.StatusOK, &m)
	if m.MirrorStatus != "ACTIVE" {
		t.Fatalf("crash mirror is %s", m.MirrorStatus)
	}
}
