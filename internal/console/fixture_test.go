package console_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// The browser tests' fixtures: a daemon on two kfake clusters, and a
// headless Chromium driven through the DevTools protocol.

// fixture is a daemon mirroring between two in-process clusters.
type fixture struct {
	t     *testing.T
	src   *kfake.Cluster
	srcCl *kgo.Client
	api   *testutil.API
	root  string // http://127.0.0.1:port
}

// startDaemon starts the clusters and a daemon whose configuration
// configure may change; the daemon samples lag every 100 ms.
func startDaemon(t *testing.T, configure func(*config.Config)) *fixture {
	t.Helper()
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	cfg := daemontest.Config(dst)
	if configure != nil {
		configure(&cfg)
	}
	d := daemontest.Start(t, cfg, daemontest.Logger(), daemon.Options{MetadataInterval: 200 * time.Millisecond, LagSampleInterval: 100 * time.Millisecond})
	root := "http://" + d.Addr()
	return &fixture{t: t, src: src, srcCl: testutil.Client(t, src.ListenAddrs()), api: testutil.NewAPI(t, root, "/kafka/v3", d.ClusterID()), root: root}
}

// createLink creates a link to the source cluster, with configs given
// as name, value, name, value...
func (f *fixture) createLink(name string, configs ...string) {
	f.t.Helper()
	cs := []map[string]string{{"name": "bootstrap.servers", "value": f.src.ListenAddrs()[0]}}
	for i := 0; i+1 < len(configs); i += 2 {
		cs = append(cs, map[string]string{"name": configs[i], "value": configs[i+1]})
	}
	body := map[string]any{"source_cluster_id": "source-cluster", "configs": cs}
	f.api.JSON(http.MethodPost, "/links?link_name="+name, body, http.StatusNoContent, nil)
}

// createMirror mirrors a source topic through link.
func (f *fixture) createMirror(link, topic string) {
	f.t.Helper()
	f.api.JSON(http.MethodPost, "/links/"+link+"/mirrors", map[string]any{"source_topic_name": topic}, http.StatusNoContent, nil)
}

// status is a mirror's status as the API reports it.
func (f *fixture) status(link, topic string) string {
	f.t.Helper()
	var v struct {
		MirrorStatus string `json:"mirror_status"`
	}
	f.api.JSON(http.MethodGet, "/links/"+link+"/mirrors/"+topic, nil, http.StatusOK, &v)
	return v.MirrorStatus
}

func (f *fixture) waitStatus(link, topic, want string) {
	f.t.Helper()
	testutil.WaitFor(f.t, 30*time.Second, topic+" "+want, func() error {
		if s := f.status(link, topic); s != want {
			return fmt.Errorf("status %s", s)
		}
		return nil
	})
}

// produce writes a record to every partition of topic every 20 ms until
// the test ends, so the mirror always has something to copy.
func (f *fixture) produce(topic string) {
	f.t.Helper()
	cl := testutil.Client(f.t, f.src.ListenAddrs(), kgo.DefaultProduceTopic(topic), kgo.ProducerLinger(0))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			cl.Produce(ctx, &kgo.Record{Key: []byte(fmt.Sprint(i % 7)), Value: []byte(fmt.Sprintf("record %d", i))}, nil)
		}
	}()
	// Registered after the client's cleanup, so it runs before it.
	f.t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
}

// browser is a headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
	dir string // where screenshots go

	mu       sync.Mutex
	problems []string // errors the page logged
}

// chromium finds the browser: $STRAIT_CHROMIUM, else the usual names.
func chromium(t *testing.T) string {
	if p := os.Getenv("STRAIT_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	noBrowser(t, "SKIP: no Chromium binary found (install the Debian package chromium, or set STRAIT_CHROMIUM): the console's browser tests did not run")
	return ""
}

// noBrowser skips the test for want of a browser, or fails it where one
// is required (STRAIT_REQUIRE_CHROMIUM=1, as CI sets it): there a skip
// would hide that the console went untested.
func noBrowser(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("STRAIT_REQUIRE_CHROMIUM") != "" {
		t.Fatalf(strings.Replace(format, "SKIP: ", "", 1)+" (STRAIT_REQUIRE_CHROMIUM is set)", args...)
	}
	t.Skipf(format, args...)
}

// artifacts is the folder for screenshots: $STRAIT_ARTIFACTS, else a
// temporary folder of the test.
func artifacts(t *testing.T) string {
	dir := os.Getenv("STRAIT_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	exe := chromium(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.DisableGPU,
		// This machine's closed network makes Chromium wait on its
		// own background requests without these.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
	})
	b := &browser{t: t, ctx: ctx, dir: artifacts(t)}
	// The first action starts the browser (with no timeout of its own:
	// one on this context would stop the browser); one that cannot
	// start skips the test, saying why.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[int]("1")); err != nil {
		noBrowser(t, "SKIP: Chromium at %s does not start: %v", exe, err)
	}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A refused request (401, 403) is the API answering, and
			// the page handles it; anything else logged as an error
			// (an exception, a CSP violation) is a fault.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				b.mu.Lock()
				b.problems = append(b.problems, m.String())
				b.mu.Unlock()
			}
		}
	}()
	t.Cleanup(b.checkProblems)
	return b
}

// checkProblems fails the test for what the page logged as errors.
func (b *browser) checkProblems() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, p := range b.problems {
		b.t.Errorf("the page logged: %s", p)
	}
}

// do runs actions, failing the test on an error.
func (b *browser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr))
}

// text is the text of the element sel finds, "" when there is none.
func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := eval[string](b, `(document.querySelector(`+quote(sel)+`)||{}).textContent||""`)
	if err != nil {
		b.fail("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

// waitFor polls a JavaScript expression until it is true.
func (b *browser) waitFor(what, expr string, d time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for {
		ok, err := eval[bool](b, expr)
		if err == nil && ok {
			return
		}
		last = err
		if time.Now().After(deadline) {
			b.fail("timed out after %v waiting for %s (%s), last error %v", d, what, expr, last)
		}
		time.Sleep(100 * time.Millisecond) // polling interval
	}
}

// fail saves a screenshot of the page, then fails the test.
func (b *browser) fail(format string, args ...any) {
	b.t.Helper()
	path := b.screenshot("failure-" + strings.NewReplacer("/", "_", " ", "_").Replace(b.t.Name()))
	b.t.Fatalf(format+" (screenshot: %s)", append(args, path)...)
}

// screenshot saves the whole page as name.png in the artifacts folder
// and returns its path ("" when it could not be taken).
func (b *browser) screenshot(name string) string {
	png, err := b.png()
	if err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	return path
}

func (b *browser) png() ([]byte, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err == nil && len(png) == 0 {
		err = errors.New("empty screenshot")
	}
	return png, err
}

// quote makes a JavaScript string literal.
func quote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`)
	return "'" + r.Replace(s) + "'"
}

// issuer signs ES256 tokens whose key the daemon reads from a JWKS file.
type issuer struct {
	t    *testing.T
	key  *ecdsa.PrivateKey
	JWKS string // the file
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b64 := base64.RawURLEncoding.EncodeToString
	x, y := make([]byte, 32), make([]byte, 32)
	k.X.FillBytes(x)
	k.Y.FillBytes(y)
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "kid": "test", "use": "sig", "alg": "ES256", "crv": "P-256", "x": b64(x), "y": b64(y)}}})
	path := filepath.Join(t.TempDir(), "jwks.json")
	if err := os.WriteFile(path, jwks, 0o600); err != nil {
		t.Fatal(err)
	}
	return &issuer{t: t, key: k, JWKS: path}
}

// token is a token for sub, valid for an hour, for issuer
// https://idp.test and audience strait.
func (i *issuer) token(sub string) string {
	b64 := base64.RawURLEncoding.EncodeToString
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": "test"})
	c, _ := json.Marshal(map[string]any{"sub": sub, "iss": "https://idp.test", "aud": "strait", "exp": time.Now().Add(time.Hour).Unix()})
	signed := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, i.key, sum[:])
	if err != nil {
		i.t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}
