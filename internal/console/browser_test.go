package console_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/testutil"
)

// The console in a real browser: a headless Chromium opens it on a daemon
// that mirrors between two kfake clusters and uses it as a person would.

var updateScreenshot = flag.Bool("update-screenshot", false, "write the console's screenshot to docs/console.png")

// row selects a mirror's row in the mirror table.
func row(link, topic string) string {
	return fmt.Sprintf(`#mirrors tr[data-link=%q][data-topic=%q]`, link, topic)
}

// operate runs op on the selected mirror through its button and the
// confirmation dialog: it checks the dry run's answer, that the dry run
// changed nothing (before says the status then), and confirms.
func (b *browser) operate(f *fixture, op, link, topic, before string) {
	b.t.Helper()
	b.do("click "+op, chromedp.Click(chromedp.CSS(`#detail button[data-op="`+op+`"]`)))
	b.waitFor("the dry run of "+op+" to succeed",
		`document.getElementById('confirm').open && !document.getElementById('confirm-ok').disabled`, 20*time.Second)
	if got := b.text(`#confirm-results tbody tr td:nth-child(2)`); got != "OK" {
		b.fail("dry run of %s answers %q for %s, want OK", op, got, topic)
	}
	if got := b.text(`#confirm-results tbody tr td:first-child`); got != topic {
		b.fail("dry run of %s reports topic %q, want %s", op, got, topic)
	}
	if s := f.status(link, topic); s != before {
		b.fail("after the dry run of %s the mirror is %s, want it unchanged (%s)", op, s, before)
	}
	b.screenshot("dry-run-" + op)
	b.do("confirm "+op, chromedp.Click(chromedp.ID("confirm-ok")))
	b.waitFor("the dialog to close after "+op, `!document.getElementById('confirm').open`, 70*time.Second)
}

func TestConsoleDrivesAMirror(t *testing.T) {
	b := newBrowser(t) // first: without a browser the test skips at once
	f := startDaemon(t, nil)
	testutil.CreateTopic(t, f.srcCl, "orders", 3, nil)
	f.produce("orders")
	f.createLink("demo")
	f.createMirror("demo", "orders")
	f.waitStatus("demo", "orders", "ACTIVE")

	b.do("open the console", chromedp.Navigate(f.root+"/console/?refresh=1"))
	orders := row("demo", "orders")
	b.waitFor("the mirror listed ACTIVE", `document.querySelector('`+orders+` td.status')?.textContent === 'ACTIVE'`, 20*time.Second)
	b.waitFor("the link listed with its tasks", `document.querySelector('#links tr[data-link="demo"] td.state')?.textContent === 'ACTIVE' && `+
		`document.querySelector('#links tr[data-link="demo"] td.tasks').textContent.includes('MirrorTopicCopy')`, 20*time.Second)

	b.do("open the mirror", chromedp.Click(chromedp.CSS(orders+" button")))
	b.waitFor("the mirror's lag chart with points", `!document.getElementById('detail').hidden && `+
		`Number(document.getElementById('chart-records').dataset.points) >= 3 && document.querySelector('#chart-records polyline') !== null`, 20*time.Second)
	if n := b.text(`#partitions tbody`); n == "" {
		b.fail("no partition lags shown")
	}
	if got := b.text("#chart-seconds"); got == "" {
		b.fail("the chart of lag in seconds shows nothing, not even that it has no data")
	}

	b.operate(f, "pause", "demo", "orders", "ACTIVE")
	b.waitFor("the mirror shown PAUSED", `document.querySelector('`+orders+` td.status')?.textContent === 'PAUSED' && `+
		`document.getElementById('detail-status').textContent === 'PAUSED'`, 20*time.Second)
	if s := f.status("demo", "orders"); s != "PAUSED" {
		b.fail("the API reports the mirror %s after the console paused it", s)
	}
	// Paused, the mirror falls behind the producer, and the table says so.
	b.waitFor("the lag of the paused mirror to grow", `Number(document.querySelector('`+orders+` td.lag').textContent.replaceAll(',', '')) > 50`, 20*time.Second)
	b.screenshot("paused")

	b.operate(f, "resume", "demo", "orders", "PAUSED")
	b.waitFor("the mirror shown ACTIVE", `document.querySelector('`+orders+` td.status')?.textContent === 'ACTIVE' && `+
		`document.getElementById('detail-status').textContent === 'ACTIVE'`, 20*time.Second)
	if s := f.status("demo", "orders"); s != "ACTIVE" {
		b.fail("the API reports the mirror %s after the console resumed it", s)
	}
	// Let the chart show the lag going back down.
	b.waitFor("the lag to come down", `Number(document.querySelector('`+orders+` td.lag').textContent.replaceAll(',', '')) < 50`, 30*time.Second)
	time.Sleep(2 * time.Second) // a few more samples for the picture, not synchronisation
	b.saveScreenshot(t)
}

// saveScreenshot saves the page as console.png, and into docs/ with
// -update-screenshot.
func (b *browser) saveScreenshot(t *testing.T) {
	png, err := b.png()
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(filepath.Join(b.dir, "console.png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d KB)", filepath.Join(b.dir, "console.png"), len(png)/1024)
	if *updateScreenshot {
		if len(png) > 300<<10 {
			t.Fatalf("screenshot is %d KB, over the 300 KB the README can carry", len(png)>>10)
		}
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "console.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsoleManyMirrors lists 1,000 mirror topics: the table shows one
// page of them, and the filter, the status filter, the sort and the pager
// work on all of them.
func TestConsoleManyMirrors(t *testing.T) {
	const n = 1000
	b := newBrowser(t) // first: without a browser the test skips at once
	f := startDaemon(t, nil)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("t-%04d", i)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	adm := kadm.NewClient(f.srcCl)
	for i := 0; i < n; i += 250 {
		resp, err := adm.CreateTopics(ctx, 1, -1, nil, names[i:i+250]...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			t.Fatalf("create source topics: %v", err)
		}
	}
	// Ten links of a hundred mirrors: a link creates its mirrors one at
	// a time, links side by side. Nine links are paused, so that only a
	// hundred mirrors copy (a test, not a benchmark): their mirrors are
	// LINK_PAUSED.
	const links = 10
	for l := range links {
		f.createLink(fmt.Sprintf("many-%d", l), "cluster.link.paused", fmt.Sprint(l > 0))
	}
	start := time.Now()
	createMirrors(t, f, links, names)
	t.Logf("%d mirrors created in %v", n, time.Since(start).Round(time.Millisecond))
	// Two mirrors of the running link paused, for the status filter.
	f.api.JSON(http.MethodPost, "/links/many-0/mirrors:pause", map[string]any{"mirror_topic_names": []string{"t-0010", "t-0500"}}, http.StatusOK, nil)

	b.do("open the console", chromedp.Navigate(f.root+"/console/?refresh=2"))
	b.waitFor("the table to list the mirrors", `document.getElementById('mirror-count').textContent === '(1,000)'`, 30*time.Second)
	rows := `document.querySelectorAll('#mirrors tbody tr[data-topic]')`
	b.waitFor("one page of 50 rows, sorted by name", rows+`.length === 50 && `+rows+`[0].dataset.topic === 't-0000' && `+rows+`[49].dataset.topic === 't-0049'`, 10*time.Second)
	if got := b.text("#page-info"); got != "1-50 of 1,000, page 1 of 20" {
		b.fail("pager says %q", got)
	}
	b.do("next page", chromedp.Click(chromedp.ID("next")))
	b.waitFor("the second page", rows+`[0].dataset.topic === 't-0050'`, 5*time.Second)

	b.do("filter", chromedp.SendKeys(chromedp.ID("filter"), "t-09"))
	b.waitFor("the filter to keep the 100 names with t-09", `document.getElementById('mirror-count').textContent === '(100 of 1,000)' && `+
		rows+`.length === 50 && [...`+rows+`].every(r => r.dataset.topic.startsWith('t-09'))`, 10*time.Second)
	b.do("sort by name, descending", chromedp.Click(chromedp.CSS(`#mirrors th[data-sort="name"] button`)))
	b.waitFor("the last name first", rows+`[0].dataset.topic === 't-0999'`, 5*time.Second)
	b.screenshot("many-filtered")

	b.do("clear the filter and filter by status", chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.getElementById('filter'), s = document.getElementById('status-filter');
		f.value = ''; f.dispatchEvent(new Event('input'));
		s.value = 'PAUSED'; s.dispatchEvent(new Event('change'));
	})()`))
	b.waitFor("the two paused mirrors", rows+`.length === 2 && [...`+rows+`].map(r => r.dataset.topic).sort().join() === 't-0010,t-0500'`, 10*time.Second)
	b.do("filter by LINK_PAUSED", chromedp.Evaluate[chromedp.Void](`(() => {
		const s = document.getElementById('status-filter');
		s.value = 'LINK_PAUSED'; s.dispatchEvent(new Event('change'));
	})()`))
	b.waitFor("the mirrors of the paused links", `document.getElementById('mirror-count').textContent === '(900 of 1,000)' && `+
		`[...`+rows+`].every(r => r.dataset.link !== 'many-0' && r.querySelector('td.status').textContent === 'LINK_PAUSED')`, 10*time.Second)
}

// linkOf is the link of many-<i> that mirrors topic t-<n>: n mod links.
func linkOf(topic string, links int) string {
	var n int
	fmt.Sscanf(topic, "t-%d", &n)
	return fmt.Sprintf("many-%d", n%links)
}

// createMirrors creates a mirror of each source topic on its link (see
// linkOf), the links side by side.
func createMirrors(t *testing.T, f *fixture, links int, topics []string) {
	t.Helper()
	errs := make(chan error, len(topics))
	var wg sync.WaitGroup
	for l := range links {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := l; i < len(topics); i += links {
				body := fmt.Sprintf(`{"source_topic_name":%q}`, topics[i])
				url := f.api.Base + "/links/" + linkOf(topics[i], links) + "/mirrors"
				resp, err := http.Post(url, "application/json", bytes.NewReader([]byte(body)))
				if err == nil {
					resp.Body.Close()
					if resp.StatusCode != http.StatusNoContent {
						err = fmt.Errorf("create mirror %s: status %s", topics[i], resp.Status)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestConsoleSignIn runs the console against a daemon with API keys and
// JWTs: it asks for credentials, keeps them in the tab's sessionStorage
// only, and works with them; a viewer's pause is refused in the dialog, an
// operator's and a token's go through.
func TestConsoleSignIn(t *testing.T) {
	b := newBrowser(t) // first: without a browser the test skips at once
	hash := func(s string) string {
		h, err := auth.HashSecret(s)
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	idp := newIssuer(t)
	f := startDaemon(t, func(c *config.Config) {
		c.Auth.APIKeys = []auth.APIKey{{Key: "admin", SecretHash: hash("admin-secret")}, {Key: "ops", SecretHash: hash("ops-secret")}, {Key: "viewer", SecretHash: hash("viewer-secret")}}
		c.Auth.JWT = &auth.JWTConfig{JWKSFile: idp.JWKS, Issuer: "https://idp.test", Audience: "strait"}
		c.Auth.Roles = []auth.Role{{Principal: "User:admin", Role: "admin"}, {Principal: "User:ops", Role: "operator"},
			{Principal: "User:viewer", Role: "viewer"}, {Principal: "User:robot", Role: "operator", Links: []string{"secure"}}}
	})
	anonymous := *f.api
	if status, _ := anonymous.Do(http.MethodGet, "/links", nil); status != http.StatusUnauthorized {
		t.Fatalf("GET /links without credentials: %d, want 401", status)
	}
	// The test's own calls (links, checks) are an admin's.
	f.api.Auth = func(r *http.Request) { r.SetBasicAuth("admin", "admin-secret") }
	testutil.CreateTopic(t, f.srcCl, "orders", 1, nil)

	b.do("open the console", chromedp.Navigate(f.root+"/console/?refresh=1"))
	b.waitFor("the sign-in dialog", `document.getElementById('login').open`, 20*time.Second)
	b.screenshot("sign-in")

	// A wrong secret is refused and asked again.
	b.do("sign in with a wrong secret", chromedp.SetValue(chromedp.ID("login-key"), "ops"), chromedp.SetValue(chromedp.ID("login-secret"), "wrong"),
		chromedp.Click(chromedp.ID("login-ok")))
	b.waitFor("the dialog to say the credentials were refused", `document.getElementById('login').open && document.getElementById('login-why').textContent.includes('refused')`, 20*time.Second)

	b.do("sign in as a viewer", chromedp.SetValue(chromedp.ID("login-key"), "viewer"), chromedp.SetValue(chromedp.ID("login-secret"), "viewer-secret"),
		chromedp.Click(chromedp.ID("login-ok")))
	b.waitFor("the console signed in", `!document.getElementById('login').open && document.getElementById('who').textContent === 'signed in as viewer'`, 20*time.Second)
	b.waitFor("no error shown", `document.getElementById('banner').hidden`, 20*time.Second)

	// The viewer sees the mirror an admin makes.
	f.createLink("secure")
	f.createMirror("secure", "orders")
	orders := row("secure", "orders")
	b.waitFor("the mirror listed", `document.querySelector('`+orders+`') !== null`, 20*time.Second)
	stored, err := eval[string](b, `JSON.stringify({session: sessionStorage.getItem('strait.credentials'), local: localStorage.length, cookie: document.cookie})`)
	if err != nil {
		b.fail("read storage: %v", err)
	}
	if want := `{"session":"{\"type\":\"basic\",\"key\":\"viewer\",\"secret\":\"viewer-secret\"}","local":0,"cookie":""}`; stored != want {
		b.fail("storage holds %s, want %s", stored, want)
	}

	// A viewer may not pause: the dry run already says so.
	b.do("open the mirror", chromedp.Click(chromedp.CSS(orders+" button")))
	b.waitFor("the mirror's details", `!document.getElementById('detail').hidden`, 20*time.Second)
	b.do("pause as a viewer", chromedp.Click(chromedp.CSS(`#detail button[data-op="pause"]`)))
	b.waitFor("the refusal", `document.getElementById('confirm').open && document.getElementById('confirm-phase').textContent.includes('not authorized') && document.getElementById('confirm-ok').disabled`, 20*time.Second)
	b.do("cancel", chromedp.Click(chromedp.ID("confirm-cancel")))

	// Signed out and in again as the operator, the pause goes through.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.waitFor("the sign-in dialog again", `document.getElementById('login').open`, 20*time.Second)
	b.do("sign in as ops", chromedp.SetValue(chromedp.ID("login-key"), "ops"), chromedp.SetValue(chromedp.ID("login-secret"), "ops-secret"),
		chromedp.Click(chromedp.ID("login-ok")))
	b.waitFor("the console signed in as ops", `!document.getElementById('login').open && document.getElementById('who').textContent === 'signed in as ops'`, 20*time.Second)
	b.waitFor("the mirror listed ACTIVE", `document.querySelector('`+orders+` td.status')?.textContent === 'ACTIVE'`, 30*time.Second)
	b.waitFor("the mirror's details", `!document.getElementById('detail').hidden`, 20*time.Second)
	b.operate(f, "pause", "secure", "orders", "ACTIVE")
	b.waitFor("the mirror shown PAUSED", `document.querySelector('`+orders+` td.status')?.textContent === 'PAUSED'`, 20*time.Second)
	if s := f.status("secure", "orders"); s != "PAUSED" {
		b.fail("the API reports the mirror %s after ops paused it", s)
	}

	// A bearer token works the same way.
	b.do("sign out", chromedp.Click(chromedp.ID("signout")))
	b.waitFor("the sign-in dialog again", `document.getElementById('login').open`, 20*time.Second)
	b.do("sign in with a token", chromedp.Click(chromedp.CSS(`#login input[value="bearer"]`)),
		chromedp.SetValue(chromedp.ID("login-token"), idp.token("robot")), chromedp.Click(chromedp.ID("login-ok")))
	b.waitFor("the console signed in with the token", `!document.getElementById('login').open && document.getElementById('who').textContent === 'signed in with a token'`, 20*time.Second)
	b.waitFor("the mirror listed PAUSED", `document.querySelector('`+orders+` td.status')?.textContent === 'PAUSED'`, 30*time.Second)
	b.waitFor("the mirror's details", `!document.getElementById('detail').hidden`, 20*time.Second)
	b.operate(f, "resume", "secure", "orders", "PAUSED")
	b.waitFor("the mirror shown ACTIVE", `document.querySelector('`+orders+` td.status')?.textContent === 'ACTIVE'`, 20*time.Second)
	if kind, err := eval[string](b, `JSON.parse(sessionStorage.getItem('strait.credentials')).type`); err != nil || kind != "bearer" {
		b.fail("stored credentials are %q (%v), want a bearer token", kind, err)
	}
}
