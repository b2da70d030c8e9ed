package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/testutil"
)

// Attacks on the API, as the attacker would run them. Each fails before
// its fix; see docs/security.md for the threat model.

// TestRetargetingALinkDoesNotSendItsCredentials: someone allowed to alter
// a link's configs points its bootstrap.servers at a cluster of theirs,
// hoping Strait logs in there with the link's stored SASL password. The
// change is refused unless it gives the credentials again; nothing reaches
// the attacker's cluster.
func TestRetargetingALinkDoesNotSendItsCredentials(t *testing.T) {
	const secret = "pw-never-leaves-7c1e"
	e := newEnv(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "admin-pass"), kfake.User("PLAIN", "linker", secret))
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required username="linker" password="` + secret + `";`
	e.createLink("sec", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": jaas})

	// The attacker's cluster records every SASL exchange it is offered.
	evil := testutil.NewCluster(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "x", "y"))
	var mu sync.Mutex
	var seen [][]byte
	evil.ControlKey(int16(kmsg.SASLAuthenticate), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		evil.KeepControl()
		mu.Lock()
		seen = append(seen, bytes.Clone(kreq.(*kmsg.SASLAuthenticateRequest).SASLAuthBytes))
		mu.Unlock()
		return nil, nil, false
	})
	leaked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range seen {
			if bytes.Contains(b, []byte(secret)) {
				return true
			}
		}
		return false
	}

	for _, attempt := range []struct {
		method, path string
		body         any
	}{
		{"PUT", "/links/sec/configs/bootstrap.servers", map[string]any{"value": evil.ListenAddrs()[0]}},
		{"PUT", "/links/sec/configs:alter", map[string]any{"data": []any{map[string]any{"name": "bootstrap.servers", "value": evil.ListenAddrs()[0]}}}},
		{"PUT", "/links/sec/configs/sasl.oauthbearer.token.endpoint.url", map[string]any{"value": "http://127.0.0.1:1/token"}},
	} {
		status, body := e.api.Do(attempt.method, attempt.path, attempt.body)
		if status != http.StatusBadRequest || !strings.Contains(string(body), "sasl.jaas.config") {
			t.Fatalf("%s %s: %d %s, want 400 asking for sasl.jaas.config again", attempt.method, attempt.path, status, body)
		}
	}
	time.Sleep(2 * time.Second) // what a change would have triggered has had time to run
	if leaked() {
		t.Fatal("the link's password reached the attacker's cluster")
	}
	var c struct {
		Value *string `json:"value"`
	}
	e.api.JSON("GET", "/links/sec/configs/bootstrap.servers", nil, http.StatusOK, &c)
	if c.Value == nil || *c.Value != e.src.ListenAddrs()[0] {
		t.Fatalf("bootstrap.servers changed to %v", c.Value)
	}

	// With the credentials in the same request the change is the
	// caller's own: it goes through.
	other := `org.apache.kafka.common.security.plain.PlainLoginModule required username="x" password="y";`
	e.api.JSON("PUT", "/links/sec/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "bootstrap.servers", "value": evil.ListenAddrs()[0]},
		map[string]any{"name": "sasl.jaas.config", "value": other},
	}}, http.StatusNoContent, nil)
	time.Sleep(time.Second)
	if leaked() {
		t.Fatal("the old password was sent to the new cluster")
	}
}

// TestMovedSealedValueDoesNotOpen: someone who can write the state topic
// copies a link's sealed password into another link's record, under a
// config the API shows (bootstrap.servers) or under that link's own
// credential, hoping Strait unseals it there. Sealed values are bound to
// their link and config: neither opens, and the record is not applied.
func TestMovedSealedValueDoesNotOpen(t *testing.T) {
	const secret = "pw-bound-to-its-place-41d2"
	e := newEnv(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "admin", "admin-pass"), kfake.User("PLAIN", "linker", secret), kfake.User("PLAIN", "x", "y"))
	jaas := `org.apache.kafka.common.security.plain.PlainLoginModule required username="linker" password="` + secret + `";`
	e.createLink("victim", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": jaas})
	e.createLink("mine", map[string]string{"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN", "sasl.jaas.config": `org.apache.kafka.common.security.plain.PlainLoginModule required username="x" password="y";`})

	records := func() map[string][]byte {
		out := map[string][]byte{}
		for _, rs := range testutil.ReadAll(t, e.dst.ListenAddrs(), "__strait_state") {
			for _, r := range rs {
				out[string(r.Key)] = r.Value
			}
		}
		return out
	}
	state := records()
	var victim, mine map[string]any
	if err := jsonUnmarshal(state["link/victim"], &victim); err != nil {
		t.Fatal(err)
	}
	sealed := victim["configs"].(map[string]any)["sasl.jaas.config"].(string)
	w := testutil.Client(t, e.dst.ListenAddrs())
	for _, under := range []string{"bootstrap.servers", "sasl.jaas.config"} {
		if err := jsonUnmarshal(state["link/mine"], &mine); err != nil {
			t.Fatal(err)
		}
		mine["configs"].(map[string]any)[under] = sealed
		b, err := json.Marshal(mine)
		if err != nil {
			t.Fatal(err)
		}
		if err := w.ProduceSync(context.Background(), &kgo.Record{Topic: "__strait_state", Key: []byte("link/mine"), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the daemon follows the state topic
		status, body := e.api.Do("GET", "/links/mine/configs", nil)
		if status != http.StatusOK {
			t.Fatalf("configs of the tampered link: %d %s", status, body)
		}
		if strings.Contains(string(body), secret) || strings.Contains(string(body), "sealed:") {
			t.Fatalf("moved under %s, the sealed value shows: %s", under, body)
		}
		var c struct {
			Value *string `json:"value"`
		}
		e.api.JSON("GET", "/links/mine/configs/bootstrap.servers", nil, http.StatusOK, &c)
		if c.Value == nil || *c.Value != e.src.ListenAddrs()[0] {
			t.Fatalf("moved under %s: bootstrap.servers is now %v", under, c.Value)
		}
	}
}

// TestDeleteOnlyMirrorTopics: Strait holds the destination's credentials,
// so DELETE /topics/{t} is a way to delete any topic there with them (a
// confused deputy). It deletes mirror topics only, unless the daemon is
// started with allow_topic_delete.
func TestDeleteOnlyMirrorTopics(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_topic_delete=%v", allow), func(t *testing.T) {
			e := newEnvWith(t, &env{configure: func(c *config.Config) { c.AllowTopicDelete = allow }})
			testutil.CreateTopic(t, e.dstCl, "payroll", 1, nil)
			status, body := e.api.Do("DELETE", "/topics/payroll", nil)
			exists := func() bool {
				td, err := kadm.NewClient(e.dstCl).ListTopics(context.Background(), "payroll")
				if err != nil {
					t.Fatal(err)
				}
				d, ok := td["payroll"]
				return ok && d.Err == nil
			}
			if !allow {
				if status != http.StatusForbidden || !strings.Contains(string(body), "not a mirror topic") || !strings.Contains(string(body), `"error_code":40301`) {
					t.Fatalf("DELETE of a topic that is not a mirror: %d %s", status, body)
				}
				if !exists() {
					t.Fatal("the topic was deleted")
				}
				return
			}
			if status != http.StatusNoContent {
				t.Fatalf("with allow_topic_delete: %d %s", status, body)
			}
		})
	}
}

// TestLinkToItselfCopiesNothing: a link created with validate_link=false,
// a made-up source_cluster_id and the destination's own bootstrap servers
// would mirror the destination into itself. The real ids are compared
// before anything is copied: the mirror fails, saying why, and stays
// empty.
func TestLinkToItselfCopiesNothing(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.dstCl, "loop", 1, nil)
	produceWith(t, e.dstCl, "loop", 20)
	e.api.JSON("POST", "/links?link_name=self&validate_link=false", map[string]any{
		"source_cluster_id": "made-up-cluster",
		"configs": []any{
			map[string]any{"name": "bootstrap.servers", "value": e.dst.ListenAddrs()[0]},
			map[string]any{"name": "cluster.link.prefix", "value": "copy."},
		},
	}, http.StatusNoContent, nil)
	e.api.JSON("POST", "/links/self/mirrors", map[string]any{"source_topic_name": "loop"}, http.StatusNoContent, nil)
	var m mirrorView
	testutil.WaitFor(t, 30*time.Second, "the self mirror failed", func() error {
		e.api.JSON("GET", "/links/self/mirrors/copy.loop?include_state_transition_errors=true", nil, http.StatusOK, &m)
		if m.MirrorStatus != "FAILED" {
			return fmt.Errorf("mirror is %s", m.MirrorStatus)
		}
		return nil
	})
	_, body := e.api.Do("GET", "/links/self/mirrors/copy.loop?include_state_transition_errors=true", nil)
	if !strings.Contains(string(body), "destination cluster itself") {
		t.Fatalf("the failure does not say why: %s", body)
	}
	if _, ends := testutil.Offsets(t, e.dstCl, "copy.loop"); ends[0] != 0 {
		t.Fatalf("the self link copied %d records", ends[0])
	}
}

// TestLinksCannotScanOrReachDeniedNetworks: whoever may create a link
// names its bootstrap servers. They must not learn from the answer what
// listens at an address (a closed port, a web server, a broker look the
// same), and Strait must not connect to the networks denied for links:
// link-local ones by default (the cloud metadata address), or any the
// operator lists.
func TestLinksCannotScanOrReachDeniedNetworks(t *testing.T) {
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("internal admin")) }))
	defer web.Close()
	e := newEnvWith(t, &env{configure: func(c *config.Config) { c.LinkNetworksDeny += ",127.0.0.3/32" }})
	closed := testutil.FreeAddr(t) // nothing listens there any more
	answer := func(bootstrap string) (int, string) {
		status, body := e.api.Do("POST", "/links?link_name=probe", map[string]any{"configs": []any{
			map[string]any{"name": "bootstrap.servers", "value": bootstrap},
			map[string]any{"name": "request.timeout.ms", "value": "2000"},
		}})
		return status, string(body)
	}
	s1, closedBody := answer(closed)
	s2, webBody := answer(strings.TrimPrefix(web.URL, "http://"))
	if s1 != http.StatusBadRequest || s2 != http.StatusBadRequest || closedBody != webBody {
		t.Fatalf("a closed port and a web server answer differently:\n%d %s\n%d %s", s1, closedBody, s2, webBody)
	}
	for _, leak := range []string{"refused", "EOF", "connection", strings.Split(closed, ":")[1]} {
		if strings.Contains(closedBody, leak) {
			t.Fatalf("the answer says %q: %s", leak, closedBody)
		}
	}

	// Denied networks are never dialed: a listener there sees nothing.
	ln, err := net.Listen("tcp", "127.0.0.3:0")
	if err != nil {
		t.Skipf("cannot listen on 127.0.0.3: %v", err)
	}
	defer ln.Close()
	var dialed atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			dialed.Add(1)
			c.Close()
		}
	}()
	if status, body := answer(ln.Addr().String()); status != http.StatusBadRequest || body != closedBody {
		t.Fatalf("a link to a denied network: %d %s", status, body)
	}
	e.api.JSON("POST", "/links?link_name=later&validate_link=false", map[string]any{"source_cluster_id": "x", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": ln.Addr().String()},
	}}, http.StatusNoContent, nil)
	time.Sleep(2 * time.Second) // the link's runner has tried by now
	if n := dialed.Load(); n != 0 {
		t.Fatalf("Strait connected %d times to a denied network", n)
	}
}

// TestSlowLinkDoesNotStallOthers: one call on a link whose source accepts
// connections and never answers must not hold up calls on another link
// (a pause waited 44 s behind one before, on a lock shared by all links).
func TestSlowLinkDoesNotStallOthers(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "fast", 1, nil)
	e.createLink("good", nil)
	e.createMirror("good", "fast")
	// A source that takes connections and says nothing.
	tarpit, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tarpit.Close()
	go func() {
		for {
			c, err := tarpit.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }()
		}
	}()
	e.api.JSON("POST", "/links?link_name=slow&validate_link=false", map[string]any{"source_cluster_id": "x", "configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": tarpit.Addr().String()},
		map[string]any{"name": "request.timeout.ms", "value": "8000"},
	}}, http.StatusNoContent, nil)
	started := make(chan struct{})
	go func() {
		close(started)
		e.api.Do("POST", "/links/slow/mirrors", map[string]any{"source_topic_name": "anything"}) // waits on the silent source
	}()
	<-started
	time.Sleep(500 * time.Millisecond) // the slow call holds its link's lock now
	begin := time.Now()
	done := make(chan int, 1)
	go func() {
		status, _ := e.api.Do("POST", "/links/good/mirrors:pause", names("fast"))
		done <- status
	}()
	select {
	case status := <-done:
		if status != http.StatusOK {
			t.Fatalf("pause on the other link: %d", status)
		}
		t.Logf("pause on the other link answered in %v", time.Since(begin).Round(time.Millisecond))
	case <-time.After(5 * time.Second):
		t.Fatal("a pause on another link waited behind the slow link's call")
	}
}

// TestBodyWithoutContentTypeIsRefused: a web page can make a browser send
// a POST with a body and no Content-Type to a daemon on loopback, without
// a preflight. A state-changing body must say it is JSON: 415, and
// nothing changes.
func TestBodyWithoutContentTypeIsRefused(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "csrf", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "csrf")
	e.waitStatus("l1", "csrf", "ACTIVE")
	req, err := http.NewRequest("POST", e.api.Base+"/links/l1/mirrors:pause", strings.NewReader(`{"mirror_topic_names":["csrf"]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(body), "application/json") {
		t.Fatalf("a body without Content-Type: %d %s", resp.StatusCode, body)
	}
	e.waitStatus("l1", "csrf", "ACTIVE")
}

// TestHostHeaderIsNotReflected: metadata.self comes from the configured
// external URL (or the socket's address), never from the Host header a
// client wrote, which would otherwise be repeated to whoever reads it.
func TestHostHeaderIsNotReflected(t *testing.T) {
	for _, external := range []string{"", "https://strait.example.com"} {
		t.Run("external="+external, func(t *testing.T) {
			e := newEnvWith(t, &env{configure: func(c *config.Config) { c.AdvertisedURL = external }})
			req, _ := http.NewRequest("GET", e.api.Root+"/kafka/v3/clusters", nil)
			req.Host = "evil.example"
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), "evil.example") {
				t.Fatalf("the Host header is in the answer: %s", body)
			}
			want := strings.TrimPrefix(e.api.Root, "http://")
			if external != "" {
				want = external
			}
			if !strings.Contains(string(body), want+"/kafka/v3/clusters") {
				t.Fatalf("metadata.self is not %s: %s", want, body)
			}
		})
	}
}
