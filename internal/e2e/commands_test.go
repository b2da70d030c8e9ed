package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

// cmdProc is a strait subcommand running in a subprocess: its stdout is
// kept for the test to read, its stderr is logged.
type cmdProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	done chan struct{}
}

// startCmd starts the binary with args. The process is killed (SIGKILL, by
// its PID) when the test ends if it is still running.
func startCmd(t *testing.T, bin string, args ...string) *cmdProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &cmdProc{t: t, cmd: cmd, done: make(chan struct{})}
	pid := cmd.Process.Pid
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
	}()
	go func() {
		defer readers.Done()
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			t.Logf("%s[%d]: %s", args[0], pid, sc.Text())
		}
	}()
	go func() {
		readers.Wait() // Wait closes the pipes: read them to the end first
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-p.done
		}
	})
	return p
}

// stdout returns what the process printed so far.
func (p *cmdProc) stdout() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitOutput waits until stdout contains s.
func (p *cmdProc) waitOutput(s string, d time.Duration) {
	p.t.Helper()
	testutil.WaitFor(p.t, d, fmt.Sprintf("%q on stdout", s), func() error {
		select {
		case <-p.done:
			p.t.Fatalf("process exited (%v) before printing %q; stdout:\n%s", p.cmd.ProcessState, s, p.stdout())
		default:
		}
		if !strings.Contains(p.stdout(), s) {
			return fmt.Errorf("not yet; stdout so far:\n%s", p.stdout())
		}
		return nil
	})
}

// stop sends sig to the process we started, by its PID, and returns its
// exit code.
func (p *cmdProc) stop(sig os.Signal, d time.Duration) int {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v to %d: %v", sig, p.cmd.Process.Pid, err)
	}
	select {
	case <-p.done:
	case <-time.After(d):
		p.t.Fatalf("process %d did not exit within %v of %v; stdout:\n%s", p.cmd.Process.Pid, d, sig, p.stdout())
	}
	return p.cmd.ProcessState.ExitCode()
}

// distinctAddrs returns n different free loopback addresses.
func distinctAddrs(t *testing.T, n int) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for len(out) < n {
		a := testutil.FreeAddr(t)
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	return out
}

// waitKafka waits until a Kafka broker answers metadata at addr and
// returns the metadata.
func waitKafka(t *testing.T, addr string) kadm.Metadata {
	t.Helper()
	var md kadm.Metadata
	testutil.WaitFor(t, 30*time.Second, "broker at "+addr, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		c.Close()
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		md, err = kadm.NewClient(cl).BrokerMetadata(ctx)
		return err
	})
	return md
}

func clusterID(t *testing.T, cl *kgo.Client) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		t.Fatalf("broker metadata: %v", err)
	}
	return md.Cluster
}

// TestDevclusterRestart runs `strait devcluster` with a data dir, writes
// to it, stops it with SIGTERM, starts it again on the same address and
// directory, and reads everything back at the same offsets.
func TestDevclusterRestart(t *testing.T) {
	bin := straitBinary(t)
	addr := testutil.FreeAddr(t)
	dir := t.TempDir()
	args := []string{"devcluster", "--listen", addr, "--data-dir", dir, "--cluster-id", "dev-1"}

	p := startCmd(t, bin, args...)
	md := waitKafka(t, addr)
	p.waitOutput(`devcluster listening on `+addr+` (cluster id "dev-1"`, 10*time.Second)
	if md.Cluster != "dev-1" {
		t.Fatalf("cluster id %q, want dev-1", md.Cluster)
	}
	if len(md.Brokers) != 1 || net.JoinHostPort(md.Brokers[0].Host, fmt.Sprint(md.Brokers[0].Port)) != addr {
		t.Fatalf("brokers %+v, want one at %s", md.Brokers, addr)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("events"))
	if err != nil {
		t.Fatal(err)
	}
	if id := clusterID(t, cl); id != "dev-1" {
		cl.Close()
		t.Fatalf("cluster id %q, want dev-1", id)
	}
	testutil.CreateTopic(t, cl, "events", 3, nil)
	type pos struct {
		p int32
		o int64
	}
	produced := map[pos]string{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var rs []*kgo.Record
	for i := 0; i < 100; i++ {
		rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i%7)), Value: []byte(fmt.Sprintf("value-%d", i))})
	}
	results := cl.ProduceSync(ctx, rs...)
	if err := results.FirstErr(); err != nil {
		cl.Close()
		t.Fatalf("produce: %v", err)
	}
	for _, r := range results {
		produced[pos{r.Record.Partition, r.Record.Offset}] = string(r.Record.Value)
	}
	cl.Close()
	before := testutil.ReadAll(t, []string{addr}, "events")
	if n := testutil.Count(before); n != 100 {
		t.Fatalf("read %d records before the restart, want 100", n)
	}

	if code := p.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("devcluster exited %d after SIGTERM; stdout:\n%s", code, p.stdout())
	}
	if !strings.Contains(p.stdout(), "devcluster stopping") {
		t.Errorf("no \"devcluster stopping\" on stdout:\n%s", p.stdout())
	}

	p2 := startCmd(t, bin, args...)
	waitKafka(t, addr)
	cl2 := testutil.Client(t, []string{addr}, kgo.DefaultProduceTopic("events"), kgo.RecordPartitioner(kgo.ManualPartitioner()))

	t.Run("cluster id", func(t *testing.T) {
		if id := clusterID(t, cl2); id != "dev-1" {
			t.Fatalf("cluster id %q after the restart, want dev-1", id)
		}
	})
	t.Run("records at the same offsets", func(t *testing.T) {
		after := testutil.ReadAll(t, []string{addr}, "events")
		if diff := testutil.DiffRecords(before, after); diff != "" {
			t.Fatalf("records differ after the restart: %s", diff)
		}
		n := 0
		for part, recs := range after {
			for _, r := range recs {
				n++
				if v, ok := produced[pos{part, r.Offset}]; !ok || v != string(r.Value) {
					t.Errorf("partition %d offset %d: %q, produced %q (found %v)", part, r.Offset, r.Value, v, ok)
				}
			}
		}
		if n != len(produced) {
			t.Fatalf("%d records after the restart, produced %d", n, len(produced))
		}
	})
	t.Run("new records follow on", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, ends := testutil.Offsets(t, cl2, "events")
		r := &kgo.Record{Partition: 0, Value: []byte("after-restart")}
		if err := cl2.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		if r.Offset != ends[0] {
			t.Fatalf("new record at offset %d, want %d", r.Offset, ends[0])
		}
	})

	if code := p2.stop(syscall.SIGTERM, 30*time.Second); code != 0 {
		t.Fatalf("second devcluster exited %d", code)
	}
}

// demoMirror is the part of the mirror description the demo test reads.
type demoMirror struct {
	MirrorStatus  string `json:"mirror_status"`
	NumPartitions int    `json:"num_partitions"`
	MirrorLags    []struct {
		Partition             int32 `json:"partition"`
		Lag                   int64 `json:"lag"`
		LastSourceFetchOffset int64 `json:"last_source_fetch_offset"`
	} `json:"mirror_lags"`
}

func getMirror(t *testing.T, api *testutil.API) (demoMirror, error) {
	t.Helper()
	var m demoMirror
	status, body := api.Do(http.MethodGet, "/links/demo/mirrors/orders", nil)
	if status != http.StatusOK {
		return m, fmt.Errorf("status %d: %s", status, body)
	}
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("decode %s: %v", body, err)
	}
	return m, nil
}

// waitCaughtUp waits for the demo mirror to be ACTIVE with lag 0 after its
// source has passed minSource records.
func waitCaughtUp(t *testing.T, api *testutil.API, minSource int64) demoMirror {
	t.Helper()
	var m demoMirror
	testutil.WaitFor(t, 90*time.Second, "mirror orders ACTIVE with lag 0", func() error {
		var err error
		if m, err = getMirror(t, api); err != nil {
			return err
		}
		var lag, src int64
		for _, l := range m.MirrorLags {
			lag += l.Lag
			src += max(l.LastSourceFetchOffset, 0)
		}
		if m.MirrorStatus != "ACTIVE" || lag != 0 || src <= minSource {
			return fmt.Errorf("status %s, lag %d, source records %d (want > %d)", m.MirrorStatus, lag, src, minSource)
		}
		return nil
	})
	return m
}

func linkID(t *testing.T, api *testutil.API) string {
	t.Helper()
	var l struct {
		LinkID   string `json:"link_id"`
		LinkName string `json:"link_name"`
	}
	api.JSON(http.MethodGet, "/links/demo", nil, http.StatusOK, &l)
	if l.LinkName != "demo" || l.LinkID == "" {
		t.Fatalf("link %+v", l)
	}
	return l.LinkID
}

func endOffsets(t *testing.T, addr, topic string) map[int32]int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	_, ends := testutil.Offsets(t, cl, topic)
	return ends
}

func sumOffsets(m map[int32]int64) (n int64) {
	for _, v := range m {
		n += v
	}
	return n
}

// TestDemoRunsAndResumes runs `strait demo`, waits for its mirror to catch
// up, stops it with SIGINT, runs it again on the same data dir and ports,
// and checks that it resumed the same link and mirror.
func TestDemoRunsAndResumes(t *testing.T) {
	bin := straitBinary(t)
	addrs := distinctAddrs(t, 3)
	httpAddr, srcAddr, dstAddr := addrs[0], addrs[1], addrs[2]
	dir := t.TempDir()
	args := []string{"demo", "--data-dir", dir, "--http", httpAddr, "--source-listen", srcAddr, "--destination-listen", dstAddr, "--rate", "50"}
	api := testutil.NewAPI(t, "http://"+httpAddr, "/kafka/v3", "demo-destination")

	p := startCmd(t, bin, args...)
	p.waitOutput("Press Ctrl-C to stop.", 60*time.Second)
	if base := "http://" + httpAddr + "/kafka/v3/clusters/demo-destination"; !strings.Contains(p.stdout(), base) {
		t.Errorf("stdout does not show the REST base %s:\n%s", base, p.stdout())
	}
	m := waitCaughtUp(t, api, 0)
	if m.NumPartitions != 3 || len(m.MirrorLags) != 3 {
		t.Fatalf("mirror has %d partitions and %d lags, want 3", m.NumPartitions, len(m.MirrorLags))
	}
	id := linkID(t, api)
	ends1 := endOffsets(t, dstAddr, "orders")
	if sumOffsets(ends1) == 0 {
		t.Fatal("the mirror holds no records")
	}

	if code := p.stop(os.Interrupt, 60*time.Second); code != 0 {
		t.Fatalf("demo exited %d after SIGINT; stdout:\n%s", code, p.stdout())
	}
	if !strings.Contains(p.stdout(), "demo stopped") {
		t.Fatalf("no \"demo stopped\" on stdout:\n%s", p.stdout())
	}
	for _, a := range addrs {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the demo exited", a)
		}
	}

	// Run it again on the same folder and ports: it resumes.
	p2 := startCmd(t, bin, args...)
	p2.waitOutput("Press Ctrl-C to stop.", 60*time.Second)

	t.Run("same link", func(t *testing.T) {
		if got := linkID(t, api); got != id {
			t.Fatalf("link id %s after the restart, was %s: the link was created again", got, id)
		}
		var list struct {
			Data []struct {
				LinkName string `json:"link_name"`
			} `json:"data"`
		}
		api.JSON(http.MethodGet, "/links", nil, http.StatusOK, &list)
		if len(list.Data) != 1 {
			t.Fatalf("%d links after the restart, want 1", len(list.Data))
		}
	})
	t.Run("mirror kept its records", func(t *testing.T) {
		ends2 := endOffsets(t, dstAddr, "orders")
		for part, e := range ends1 {
			if ends2[part] < e {
				t.Errorf("partition %d: end offset %d after the restart, was %d", part, ends2[part], e)
			}
		}
	})
	t.Run("mirror active and caught up again", func(t *testing.T) {
		m := waitCaughtUp(t, api, sumOffsets(ends1))
		if m.NumPartitions != 3 {
			t.Fatalf("%d partitions", m.NumPartitions)
		}
		// Nothing was copied twice: the mirror never runs ahead of the
		// source (read the mirror first; the source only grows).
		dst := endOffsets(t, dstAddr, "orders")
		src := endOffsets(t, srcAddr, "orders")
		for part, e := range dst {
			if e > src[part] {
				t.Errorf("partition %d: mirror end %d beyond source end %d", part, e, src[part])
			}
		}
	})

	if code := p2.stop(os.Interrupt, 60*time.Second); code != 0 {
		t.Fatalf("second demo exited %d after SIGINT; stdout:\n%s", code, p2.stdout())
	}
	if !strings.Contains(p2.stdout(), "demo stopped") {
		t.Fatalf("no \"demo stopped\" on the second run's stdout:\n%s", p2.stdout())
	}
}
