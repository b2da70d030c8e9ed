package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/testutil"
)

// TestEveryMirrorStateReached drives a mirror into each status of the
// contract's MirrorTopicStatus enum and observes it through
// GET .../links/{l}/mirrors/{t} (whose answers the API helper validates
// against Confluent's spec). The transient statuses are held with
// requests the clusters refuse while a flag is set, never with sleeps.
func TestEveryMirrorStateReached(t *testing.T) {
	cases := []struct {
		status string
		// reach drives a mirror into status and returns the view in
		// which it was observed.
		reach func(t *testing.T) mirrorView
	}{
		{"ACTIVE", reachActive},
		{"FAILED", reachFailed},
		{"LINK_FAILED", reachLinkFailed},
		{"LINK_PAUSED", reachLinkPaused},
		{"PAUSED", reachPaused},
		{"PENDING_STOPPED", reachPendingStopped},
		{"SOURCE_UNAVAILABLE", reachSourceUnavailable},
		{"STOPPED", reachStopped},
		{"PENDING_MIRROR", reachPendingMirror},
		{"PENDING_SYNCHRONIZE", reachPendingSynchronize},
		{"PENDING_SETUP_FOR_RESTORE", reachPendingSetupForRestore},
		{"PENDING_RESTORE", reachPendingRestore},
	}
	// The table covers the contract's enum exactly.
	enum := mirrorStatusEnum(t)
	var covered []string
	for _, tc := range cases {
		covered = append(covered, tc.status)
	}
	for _, s := range enum {
		if !slices.Contains(covered, s) {
			t.Errorf("status %s of Confluent's MirrorTopicStatus has no subtest", s)
		}
	}
	for _, s := range covered {
		if !slices.Contains(enum, s) {
			t.Errorf("subtest %s is not a status of Confluent's MirrorTopicStatus %v", s, enum)
		}
	}
	for _, tc := range cases {
		t.Run(tc.status, func(t *testing.T) {
			start := time.Now()
			v := tc.reach(t)
			if v.MirrorStatus != tc.status {
				t.Fatalf("observed %s, want %s", v.MirrorStatus, tc.status)
			}
			t.Logf("%s observed; subtest took %v", tc.status, time.Since(start).Round(time.Millisecond))
		})
	}
}

// mirrorStatusEnum reads the MirrorTopicStatus enum from Confluent's Cloud
// spec.
func mirrorStatusEnum(t *testing.T) []string {
	t.Helper()
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Enum []any `yaml:"enum"`
			} `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(api.CloudSpec, &doc); err != nil {
		t.Fatalf("read the Cloud spec: %v", err)
	}
	var out []string
	for _, v := range doc.Components.Schemas["MirrorTopicStatus"].Enum {
		out = append(out, fmt.Sprint(v))
	}
	if len(out) == 0 {
		t.Fatal("no MirrorTopicStatus enum in the Cloud spec")
	}
	return out
}

// activeMirror creates a source topic with records, the link l1 and the
// mirror, and waits until the mirror is ACTIVE and caught up.
func activeMirror(t *testing.T, e *env, topic string, partitions int32, linkConfigs map[string]string) {
	t.Helper()
	testutil.CreateTopic(t, e.srcCl, topic, partitions, nil)
	produceMixed(t, e.src.ListenAddrs(), topic, 20)
	e.createLink("l1", linkConfigs)
	e.createMirror("l1", topic)
	e.waitCaughtUp(topic, topic)
	e.waitStatus("l1", topic, "ACTIVE")
}

// waitLag waits until describe reports the mirror's total lag as want.
func waitLag(t *testing.T, e *env, topic string, want int64) {
	t.Helper()
	testutil.WaitFor(t, 20*time.Second, fmt.Sprintf("%s lag %d", topic, want), func() error {
		if lag := e.describe("l1", topic).totalLag(); lag != want {
			return fmt.Errorf("lag %d", lag)
		}
		return nil
	})
}

func reachActive(t *testing.T) mirrorView {
	e := newEnv(t)
	activeMirror(t, e, "act", 2, nil)
	waitLag(t, e, "act", 0)
	e.assertIdentical("act", "act")
	v := e.describe("l1", "act")
	if v.MirrorTopicError != "NO_ERROR" || len(v.MirrorLags) != 2 || v.SourceTopicName != "act" || v.NumPartitions != 2 {
		t.Fatalf("active mirror: %+v", v)
	}
	return v
}

func reachPaused(t *testing.T) mirrorView {
	e := newEnv(t)
	activeMirror(t, e, "pau", 1, nil)
	if code, msg := resultErr(t, e.alter("l1", "pause", names("pau"), ""), 0); code != 0 {
		t.Fatalf("pause: %d %s", code, msg)
	}
	_, ends := testutil.Offsets(t, e.dstCl, "pau")
	produceMixed(t, e.src.ListenAddrs(), "pau", 10)
	waitLag(t, e, "pau", 50) // the source moved on, the mirror did not
	v := e.waitStatus("l1", "pau", "PAUSED")
	if _, now := testutil.Offsets(t, e.dstCl, "pau"); now[0] != ends[0] {
		t.Fatalf("paused mirror moved from %d to %d", ends[0], now[0])
	}
	return v
}

func reachStopped(t *testing.T) mirrorView {
	e := newEnv(t)
	activeMirror(t, e, "sto", 1, nil)
	if code, msg := resultErr(t, e.alter("l1", "failover", names("sto"), ""), 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	v := e.waitStatus("l1", "sto", "STOPPED")
	_, ends := testutil.Offsets(t, e.dstCl, "sto")
	if got := produceToMirror(t, e.dstCl, "sto", 1); got[0] != ends[0] {
		t.Fatalf("write after failover landed at %d, want %d", got[0], ends[0])
	}
	return v
}

func reachFailed(t *testing.T) mirrorView {
	e := newEnv(t)
	e.createLink("l1", nil)
	return e.failMirror("l1", "fai")
}

// linkState is the part of KafkaLinkData these tests read.
type linkState struct {
	LinkState        string  `json:"link_state"`
	LinkError        string  `json:"link_error"`
	LinkErrorMessage *string `json:"link_error_message"`
}

func getLinkState(t *testing.T, a *testutil.API, name string) linkState {
	t.Helper()
	var l linkState
	a.JSON(http.MethodGet, "/links/"+name, nil, http.StatusOK, &l)
	return l
}

func reachLinkPaused(t *testing.T) mirrorView {
	e := newEnv(t)
	activeMirror(t, e, "lpa", 1, nil)
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	v := e.waitStatus("l1", "lpa", "LINK_PAUSED")
	if l := getLinkState(t, e.api, "l1"); l.LinkState != "PAUSED" {
		t.Fatalf("link of a paused link: %+v", l)
	}
	_, ends := testutil.Offsets(t, e.dstCl, "lpa")
	produceMixed(t, e.src.ListenAddrs(), "lpa", 10)
	waitLag(t, e, "lpa", 50)
	if _, now := testutil.Offsets(t, e.dstCl, "lpa"); now[0] != ends[0] {
		t.Fatalf("mirror of a paused link moved from %d to %d", ends[0], now[0])
	}
	if v2 := e.describe("l1", "lpa"); v2.MirrorStatus != "LINK_PAUSED" {
		t.Fatalf("mirror of a paused link is %s", v2.MirrorStatus)
	}
	// And back.
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "false"}, http.StatusNoContent, nil)
	e.waitStatus("l1", "lpa", "ACTIVE")
	e.waitCaughtUp("lpa", "lpa")
	e.assertIdentical("lpa", "lpa")
	return v
}

func reachSourceUnavailable(t *testing.T) mirrorView {
	e := newEnv(t)
	activeMirror(t, e, "sun", 1, map[string]string{
		"availability.check.ms": "200", "availability.check.consecutive.failure.threshold": "2", "request.timeout.ms": "1000",
	})
	e.src.Close()
	start := time.Now()
	v := e.waitStatus("l1", "sun", "SOURCE_UNAVAILABLE")
	t.Logf("SOURCE_UNAVAILABLE %v after the source closed", time.Since(start).Round(time.Millisecond))
	if l := getLinkState(t, e.api, "l1"); l.LinkState != "UNAVAILABLE" || l.LinkError == "NO_ERROR" || l.LinkErrorMessage == nil {
		t.Fatalf("link while the source is down: %+v", l)
	}
	return v
}

// badPEM is a well-formed PEM block that holds no certificate: it passes
// the config check, and the source client cannot be built from it.
const badPEM = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"

func reachLinkFailed(t *testing.T) mirrorView {
	e := newEnv(t)
	// A link whose source client cannot be built from the start: FAILED,
	// and no mirror can be created on it.
	e.api.JSON(http.MethodPost, "/links?link_name=broken&validate_link=false", map[string]any{
		"source_cluster_id": "source-cluster",
		"configs": []any{
			map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]},
			map[string]any{"name": "security.protocol", "value": "SSL"},
			map[string]any{"name": "ssl.truststore.type", "value": "PEM"},
			map[string]any{"name": "ssl.truststore.certificates", "value": badPEM},
		},
	}, http.StatusNoContent, nil)
	if l := getLinkState(t, e.api, "broken"); l.LinkState != "FAILED" || l.LinkError == "NO_ERROR" || l.LinkErrorMessage == nil {
		t.Fatalf("link with an unusable trust store: %+v", l)
	}
	activeMirror(t, e, "lfa", 1, nil) // also creates l1
	if st, body := e.api.Do(http.MethodPost, "/links/broken/mirrors", map[string]any{"source_topic_name": "lfa", "mirror_topic_name": "lfa2"}); st != http.StatusBadRequest {
		t.Fatalf("mirror on a failed link: %d %s", st, body)
	}

	// A working link whose source settings are changed to unusable ones:
	// its client is rebuilt and fails, and its mirror reports LINK_FAILED.
	ssl := []any{
		map[string]any{"name": "security.protocol", "value": "SSL"},
		map[string]any{"name": "ssl.truststore.type", "value": "PEM"},
		map[string]any{"name": "ssl.truststore.certificates", "value": badPEM},
	}
	e.api.JSON(http.MethodPut, "/links/l1/configs:alter", map[string]any{"data": ssl}, http.StatusNoContent, nil)
	v := e.waitStatus("l1", "lfa", "LINK_FAILED")
	if l := getLinkState(t, e.api, "l1"); l.LinkState != "FAILED" {
		t.Fatalf("link after its trust store became unusable: %+v", l)
	}
	_, ends := testutil.Offsets(t, e.dstCl, "lfa")
	produceMixed(t, e.src.ListenAddrs(), "lfa", 10)
	if v2 := e.describe("l1", "lfa"); v2.MirrorStatus != "LINK_FAILED" {
		t.Fatalf("mirror of a failed link is %s", v2.MirrorStatus)
	}
	if _, now := testutil.Offsets(t, e.dstCl, "lfa"); now[0] != ends[0] {
		t.Fatalf("mirror of a failed link moved from %d to %d", ends[0], now[0])
	}
	// Settings fixed: the mirror carries on.
	e.api.JSON(http.MethodPut, "/links/l1/configs:alter", map[string]any{"data": []any{
		map[string]any{"name": "security.protocol", "operation": "DELETE"},
		map[string]any{"name": "ssl.truststore.type", "operation": "DELETE"},
		map[string]any{"name": "ssl.truststore.certificates", "operation": "DELETE"},
	}}, http.StatusNoContent, nil)
	e.waitStatus("l1", "lfa", "ACTIVE")
	e.waitCaughtUp("lfa", "lfa")
	e.assertIdentical("lfa", "lfa")
	return v
}

func reachPendingMirror(t *testing.T) mirrorView {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "pmi", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "pmi", 20)
	e.createLink("l1", nil) // the state writer takes its producer id here
	// Every new producer id is refused while refuse is set: the mirror's
	// partition workers cannot finish their setup.
	var refuse atomic.Bool
	var refused atomic.Int32
	refuse.Store(true)
	e.dst.ControlKey(int16(kmsg.InitProducerID), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if !refuse.Load() {
			e.dst.DropControl()
			return nil, nil, false
		}
		e.dst.KeepControl()
		refused.Add(1)
		resp := kreq.(*kmsg.InitProducerIDRequest).ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		return resp, nil, true
	})
	e.createMirror("l1", "pmi")
	testutil.WaitFor(t, 30*time.Second, "producer ids refused again and again", func() error {
		if n := refused.Load(); n < 4 {
			return fmt.Errorf("%d refused", n)
		}
		return nil
	})
	v := e.describe("l1", "pmi")
	if v.MirrorStatus != "PENDING_MIRROR" {
		t.Fatalf("mirror whose partitions cannot be set up is %s (%+v)", v.MirrorStatus, v)
	}
	// A promote now says to wait for ACTIVE, not to fail over.
	var r alterResults
	e.api.JSON(http.MethodPost, "/links/l1/mirrors:promote?validate_only=true", names("pmi"), http.StatusOK, &r)
	if code, msg := resultErr(t, r, 0); code != 400 || !strings.Contains(msg, "wait until it is ACTIVE") {
		t.Fatalf("promote of a PENDING_MIRROR mirror: %d %q", code, msg)
	}
	if _, ends := testutil.Offsets(t, e.dstCl, "pmi"); ends[0] != 0 || ends[1] != 0 {
		t.Fatalf("mirror took records before its setup: %v", ends)
	}
	refuse.Store(false)
	e.waitStatus("l1", "pmi", "ACTIVE")
	e.waitCaughtUp("pmi", "pmi")
	e.assertIdentical("pmi", "pmi")
	return v
}

// topicID returns a topic's id.
func topicID(t *testing.T, cl *kgo.Client, topic string) [16]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	td, err := kadm.NewClient(cl).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := td[topic]
	if !ok || d.Err != nil {
		t.Fatalf("topic %s: %v", topic, d.Err)
	}
	return d.ID
}

// refuseProduce makes c answer produce requests whose topics all match
// refused with NOT_ENOUGH_REPLICAS (retriable) while on is set. Once on is
// cleared the next produce request drops the control function.
// It returns the count of requests refused.
func refuseProduce(c *kfake.Cluster, on *atomic.Bool, refused func(topic string, id [16]byte) bool) *atomic.Int32 {
	var n atomic.Int32
	c.ControlKey(int16(kmsg.Produce), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if !on.Load() {
			c.DropControl()
			return nil, nil, false
		}
		c.KeepControl()
		req := kreq.(*kmsg.ProduceRequest)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, rt := range req.Topics {
			if !refused(rt.Topic, rt.TopicID) {
				return nil, nil, false
			}
			st := kmsg.NewProduceResponseTopic()
			st.Topic, st.TopicID = rt.Topic, rt.TopicID
			for _, rp := range rt.Partitions {
				sp := kmsg.NewProduceResponseTopicPartition()
				sp.Partition = rp.Partition
				sp.ErrorCode = kerr.NotEnoughReplicas.Code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		n.Add(1)
		return resp, nil, true
	})
	return &n
}

// waitRefused waits until at least n produce requests were refused.
func waitRefused(t *testing.T, refused *atomic.Int32, n int32) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, fmt.Sprintf("%d writes refused", n), func() error {
		if got := refused.Load(); got < n {
			return fmt.Errorf("%d refused", got)
		}
		return nil
	})
}

// alterCall is an alter-mirrors request sent from another goroutine.
type alterCall struct {
	req    *http.Request
	status int
	header http.Header
	body   []byte
	err    error
}

// alterAsync sends POST .../mirrors:<op> for one topic without waiting:
// promote and reverse answer only once their copy is done or timed out.
func alterAsync(a *testutil.API, linkName, op, topic string) <-chan alterCall {
	ch := make(chan alterCall, 1)
	body, _ := json.Marshal(names(topic))
	go func() {
		var c alterCall
		c.req, c.err = http.NewRequest(http.MethodPost, a.Base+"/links/"+linkName+"/mirrors:"+op, bytes.NewReader(body))
		if c.err == nil {
			c.req.Header.Set("Content-Type", "application/json")
			var resp *http.Response
			resp, c.err = (&http.Client{Timeout: 2 * time.Minute}).Do(c.req)
			if c.err == nil {
				c.status, c.header = resp.StatusCode, resp.Header
				c.body, c.err = io.ReadAll(resp.Body)
				resp.Body.Close()
			}
		}
		ch <- c
	}()
	return ch
}

// awaitAlter waits for an alterAsync answer, validates it against the spec
// and returns its one result.
func awaitAlter(t *testing.T, ch <-chan alterCall) (code int, msg string) {
	t.Helper()
	var c alterCall
	select {
	case c = <-ch:
	case <-time.After(90 * time.Second):
		t.Fatal("no answer to the alter request within 90s")
	}
	if c.err != nil {
		t.Fatalf("alter request: %v", c.err)
	}
	testutil.CheckResponse(t, c.req, c.status, c.header, c.body)
	if c.status != http.StatusOK {
		t.Fatalf("alter request: %d %s", c.status, c.body)
	}
	var r alterResults
	if err := json.Unmarshal(c.body, &r); err != nil {
		t.Fatalf("alter answer %s: %v", c.body, err)
	}
	return resultErr(t, r, 0)
}

func reachPendingStopped(t *testing.T) mirrorView {
	e := newEnvWith(t, &env{promoteTimeout: 5 * time.Second})
	activeMirror(t, e, "pst", 1, nil)
	e.alter("l1", "pause", names("pst"), "")
	e.waitStatus("l1", "pst", "PAUSED")
	produceMixed(t, e.src.ListenAddrs(), "pst", 10)
	waitLag(t, e, "pst", 50)
	_, ends := testutil.Offsets(t, e.dstCl, "pst")

	// The destination refuses the mirror's writes: the promote cannot
	// finish, and the mirror shows PENDING_STOPPED meanwhile.
	id := topicID(t, e.dstCl, "pst")
	var block atomic.Bool
	block.Store(true)
	refused := refuseProduce(e.dst, &block, func(topic string, tid [16]byte) bool { return topic == "pst" || tid == id })
	start := time.Now()
	done := alterAsync(e.api, "l1", "promote", "pst")
	e.waitStatus("l1", "pst", "PENDING_STOPPED")
	t.Logf("PENDING_STOPPED %v after the promote was sent", time.Since(start).Round(time.Millisecond))
	waitRefused(t, refused, 2)
	v := e.describe("l1", "pst")
	if v.MirrorStatus != "PENDING_STOPPED" {
		t.Fatalf("promote whose writes are refused is %s", v.MirrorStatus)
	}
	if _, now := testutil.Offsets(t, e.dstCl, "pst"); now[0] != ends[0] {
		t.Fatalf("refused writes landed: %d, was %d", now[0], ends[0])
	}
	block.Store(false)

	code, msg := awaitAlter(t, done)
	took := time.Since(start)
	after := e.describe("l1", "pst")
	switch {
	case code == 0:
		t.Logf("promote finished after %v", took.Round(time.Millisecond))
		if after.MirrorStatus != "STOPPED" || after.totalLag() != 0 {
			t.Fatalf("after the promote: %s, lag %d", after.MirrorStatus, after.totalLag())
		}
		e.assertIdentical("pst", "pst")
	case code == 400 && strings.Contains(msg, "did not catch up"):
		t.Logf("promote timed out after %v: %s", took.Round(time.Millisecond), msg)
		if after.MirrorStatus != "PAUSED" {
			t.Fatalf("after a promote that timed out: %s, want PAUSED as before", after.MirrorStatus)
		}
	default:
		t.Fatalf("promote: %d %q", code, msg)
	}
	return v
}

func reachPendingSynchronize(t *testing.T) mirrorView {
	e := newEnvWith(t, &env{promoteTimeout: 5 * time.Second})
	a, b := e.src, e.dst
	apiB, apiA := e.api, e.bidiPair()
	testutil.CreateTopic(t, e.srcCl, "psy", 2, nil)
	produceMixed(t, a.ListenAddrs(), "psy", 20)
	apiB.JSON(http.MethodPost, "/links/dr/mirrors", map[string]any{"source_topic_name": "psy"}, http.StatusNoContent, nil)
	waitMirrorStatus(t, apiB, "psy", "ACTIVE")
	waitEndsEqual(t, e.srcCl, e.dstCl, "psy")
	apiB.JSON(http.MethodPost, "/links/dr/mirrors:pause", names("psy"), http.StatusOK, nil)
	waitMirrorStatus(t, apiB, "psy", "PAUSED")
	produceMixed(t, a.ListenAddrs(), "psy", 10) // what the reverse must copy first
	_, ends := testutil.Offsets(t, e.dstCl, "psy")

	// B refuses the mirror's writes: the reverse cannot synchronize, and
	// the mirror shows PENDING_SYNCHRONIZE meanwhile.
	id := topicID(t, e.dstCl, "psy")
	var block atomic.Bool
	block.Store(true)
	refused := refuseProduce(b, &block, func(topic string, tid [16]byte) bool { return topic == "psy" || tid == id })
	start := time.Now()
	done := alterAsync(apiB, "dr", "reverse-and-start-mirror", "psy")
	waitMirrorStatus(t, apiB, "psy", "PENDING_SYNCHRONIZE")
	t.Logf("PENDING_SYNCHRONIZE %v after the reverse was sent", time.Since(start).Round(time.Millisecond))
	waitRefused(t, refused, 2)
	v := describeOn(t, apiB, "psy")
	if v.MirrorStatus != "PENDING_SYNCHRONIZE" {
		t.Fatalf("reverse whose writes are refused is %s", v.MirrorStatus)
	}
	if _, now := testutil.Offsets(t, e.dstCl, "psy"); now[0] != ends[0] || now[1] != ends[1] {
		t.Fatalf("refused writes landed: %v, was %v", now, ends)
	}
	block.Store(false)

	code, msg := awaitAlter(t, done)
	took := time.Since(start)
	switch {
	case code == 0:
		t.Logf("reverse finished after %v", took.Round(time.Millisecond))
		apiB.JSON(http.MethodGet, "/links/dr/mirrors/psy", nil, http.StatusNotFound, nil) // B's topic takes writes now
		waitMirrorStatus(t, apiA, "psy", "ACTIVE")                                        // and A's mirrors it
		produceMixed(t, b.ListenAddrs(), "psy", 4)
		waitEndsEqual(t, e.dstCl, e.srcCl, "psy")
		if diff := testutil.DiffRecords(testutil.ReadAll(t, b.ListenAddrs(), "psy"), testutil.ReadAll(t, a.ListenAddrs(), "psy")); diff != "" {
			t.Fatalf("after the reverse: %s", diff)
		}
	case code == 400 && strings.Contains(msg, "did not catch up"):
		t.Logf("reverse timed out after %v: %s", took.Round(time.Millisecond), msg)
		if after := waitMirrorStatus(t, apiB, "psy", "PAUSED"); after.MirrorStatus != "PAUSED" {
			t.Fatalf("after a reverse that timed out: %s", after.MirrorStatus)
		}
	default:
		t.Fatalf("reverse: %d %q", code, msg)
	}
	return v
}

// failedOverPair runs the first half of the failover drill on two daemons:
// topic on A is mirrored to B over the bidirectional link "dr", A's last
// 20 records never reach B, B fails over and takes 50 new records. It
// returns A's API; e.api is B's.
func failedOverPair(t *testing.T, topic string) (*env, *testutil.API) {
	t.Helper()
	e := newEnv(t)
	a, b := e.src, e.dst
	apiB, apiA := e.api, e.bidiPair()
	testutil.CreateTopic(t, e.srcCl, topic, 2, nil)
	produceMixed(t, a.ListenAddrs(), topic, 20)
	apiB.JSON(http.MethodPost, "/links/dr/mirrors", map[string]any{"source_topic_name": topic}, http.StatusNoContent, nil)
	waitMirrorStatus(t, apiB, topic, "ACTIVE")
	waitEndsEqual(t, e.srcCl, e.dstCl, topic)
	apiB.JSON(http.MethodPost, "/links/dr/mirrors:pause", names(topic), http.StatusOK, nil)
	waitMirrorStatus(t, apiB, topic, "PAUSED")
	produceMixed(t, a.ListenAddrs(), topic, 4)
	var fo alterResults
	apiB.JSON(http.MethodPost, "/links/dr/mirrors:failover", names(topic), http.StatusOK, &fo)
	if code, msg := resultErr(t, fo, 0); code != 0 {
		t.Fatalf("failover: %d %s", code, msg)
	}
	waitMirrorStatus(t, apiB, topic, "STOPPED")
	produceMixed(t, b.ListenAddrs(), topic, 10)
	return e, apiA
}

func describeOn(t *testing.T, a *testutil.API, topic string) mirrorView {
	t.Helper()
	var v mirrorView
	a.JSON(http.MethodGet, "/links/dr/mirrors/"+topic+"?include_state_transition_errors=true", nil, http.StatusOK, &v)
	return v
}

// restoreDrill turns A back into a mirror of B with truncate-and-restore
// and returns the mirror as seen while it was PENDING_SETUP_FOR_RESTORE
// and, with holdCopy, while it was PENDING_RESTORE. The setup is held by
// A refusing to delete the topic; the copy by A refusing the writes.
func restoreDrill(t *testing.T, topic string, holdCopy bool) (setup, restore mirrorView) {
	e, apiA := failedOverPair(t, topic)
	a := e.src
	_, aEnds := testutil.Offsets(t, e.srcCl, topic)

	var refuseDelete atomic.Bool
	refuseDelete.Store(true)
	deletesRefused := refuseDeletes(a, &refuseDelete)

	var tr struct {
		Data []struct {
			ErrorCode         *int    `json:"error_code"`
			ErrorMessage      *string `json:"error_message"`
			MessagesTruncated *int64  `json:"messages_truncated"`
		} `json:"data"`
	}
	apiA.JSON(http.MethodPost, "/links/dr/mirrors:truncate-and-restore", names(topic), http.StatusOK, &tr)
	if len(tr.Data) != 1 || tr.Data[0].ErrorCode != nil || tr.Data[0].MessagesTruncated == nil || *tr.Data[0].MessagesTruncated != 20 {
		t.Fatalf("truncate-and-restore: %+v", tr)
	}
	// The restore is recorded; replacing the topic fails and is retried
	// in the background, each failure noted.
	testutil.WaitFor(t, 30*time.Second, "the topic replacement retried", func() error {
		setup = describeOn(t, apiA, topic)
		if setup.MirrorStatus != "PENDING_SETUP_FOR_RESTORE" {
			t.Fatalf("restore whose topic cannot be deleted is %s (%+v)", setup.MirrorStatus, setup.TransitionErrors)
		}
		if n := deletesRefused.Load(); n < 2 || len(setup.TransitionErrors) < 2 {
			return fmt.Errorf("%d deletes refused, transition errors %+v", n, setup.TransitionErrors)
		}
		return nil
	})
	if te := setup.TransitionErrors[len(setup.TransitionErrors)-1]; !strings.Contains(te.ErrorMessage, "truncate-and-restore") {
		t.Fatalf("transition error of the held restore: %+v", te)
	}
	if _, now := testutil.Offsets(t, e.srcCl, topic); now[0] != aEnds[0] || now[1] != aEnds[1] {
		t.Fatalf("A's topic changed before it could be replaced: %v, was %v", now, aEnds)
	}

	if holdCopy {
		// A refuses every write but those to the Strait state topic.
		stateID := topicID(t, e.srcCl, "__strait_state")
		var block atomic.Bool
		block.Store(true)
		refused := refuseProduce(a, &block, func(topic string, id [16]byte) bool { return topic != "__strait_state" && id != stateID })
		refuseDelete.Store(false)
		waitRefused(t, refused, 3)
		restore = describeOn(t, apiA, topic)
		_, now := testutil.Offsets(t, e.srcCl, topic)
		block.Store(false)
		restoredIdentical(t, e, apiA, topic)
		if restore.MirrorStatus != "PENDING_RESTORE" {
			t.Fatalf("restore whose writes are refused is %s (A's ends %v)", restore.MirrorStatus, now)
		}
		return setup, restore
	}
	refuseDelete.Store(false)
	restoredIdentical(t, e, apiA, topic)
	return setup, restore
}

// restoredIdentical waits until A's topic is an ACTIVE mirror identical
// to B's.
func restoredIdentical(t *testing.T, e *env, apiA *testutil.API, topic string) {
	t.Helper()
	waitMirrorStatus(t, apiA, topic, "ACTIVE")
	waitEndsEqual(t, e.dstCl, e.srcCl, topic)
	if diff := testutil.DiffRecords(testutil.ReadAll(t, e.dst.ListenAddrs(), topic), testutil.ReadAll(t, e.src.ListenAddrs(), topic)); diff != "" {
		t.Fatalf("restored A differs from B: %s", diff)
	}
}

func reachPendingSetupForRestore(t *testing.T) mirrorView {
	setup, _ := restoreDrill(t, "rsu", false)
	return setup
}

func reachPendingRestore(t *testing.T) mirrorView {
	_, restore := restoreDrill(t, "rre", true)
	return restore
}
