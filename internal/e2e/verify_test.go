package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/testutil"
)

// strait calls one of Strait's own endpoints (/strait/v1/clusters/{id}
// + path), requires status want and decodes the answer into v. Error
// bodies are checked against Confluent's error schema; the other answers
// are Strait's own and not in Confluent's spec.
func (e *env) strait(method, path string, body any, want int, v any) []byte {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.api.Root+"/strait/v1/clusters/"+e.clusterID+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if e.api.Auth != nil {
		e.api.Auth(req)
	}
	resp, err := (&http.Client{Timeout: 120 * time.Second}).Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		testutil.CheckResponse(e.t, req, resp.StatusCode, resp.Header, out)
	}
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, out)
	}
	if v != nil {
		if err := json.Unmarshal(out, v); err != nil {
			e.t.Fatalf("%s %s: decode %s: %v", method, path, out, err)
		}
	}
	return out
}

func (e *env) verifyMirror(linkName, topic, query string) api.MirrorVerification {
	e.t.Helper()
	var v api.MirrorVerification
	e.strait(http.MethodPost, "/links/"+linkName+"/mirrors/"+topic+":verify"+query, nil, http.StatusOK, &v)
	return v
}

// assertVerified checks a verification found the mirror identical up to
// the source's end on every partition.
func assertVerified(t *testing.T, v api.MirrorVerification) {
	t.Helper()
	if !v.Verified || v.Diverged || len(v.Partitions) == 0 {
		t.Fatalf("%s not verified: %s\n%+v", v.MirrorTopicName, v.Summary, v.Partitions)
	}
	for _, p := range v.Partitions {
		if p.VerifiedOffset != p.SourceEndOffset || p.MirrorEndOffset != p.SourceEndOffset || p.Error != nil {
			t.Fatalf("%s[%d] verified to %d of %d: %+v", v.MirrorTopicName, p.Partition, p.VerifiedOffset, p.SourceEndOffset, p)
		}
	}
}

// TestVerifyIdenticalMirrors verifies mirrors Strait copied of every kind
// of source: codecs and merged small batches above a log start that is not
// 0 (filler and DeleteRecords on the mirror), transactions committed and
// aborted, and a compacted topic (filled with tombstones). Then it checks
// that a second run reads only the new batches, and that a record written
// to the mirror by someone else is found.
func TestVerifyIdenticalMirrors(t *testing.T) {
	e := newEnv(t)
	// Plain, in every codec, starting above 0 in the middle of a batch.
	testutil.CreateTopic(t, e.srcCl, "plain", 2, nil)
	produceCodecs(t, e.src.ListenAddrs(), "plain", 300)
	e.deleteSourceRecords("plain", func(end int64) int64 { return end/3 + 1 })
	// Transactions of two producers, committed and aborted, and plain
	// records between them.
	testutil.CreateTopic(t, e.srcCl, "tx", 2, nil)
	a := txnProducer(t, e.src.ListenAddrs(), "app-a")
	b := txnProducer(t, e.src.ListenAddrs(), "app-b")
	inTxn(t, a, 0, 5, "a1", true)
	inTxn(t, b, 0, 3, "b1", false)
	inTxn(t, a, 1, 4, "a2", false)
	inTxn(t, b, 1, 2, "b2", true)
	// Compacted before the copy: batches thinned and removed.
	testutil.CreateTopic(t, e.srcCl, "table", 1, compactedConfigs())
	produceKeyed(t, e.src.ListenAddrs(), "table", 20, 30, kgo.ZstdCompression())
	e.src.Compact()

	e.createLink("l1", nil)
	for _, topic := range []string{"plain", "tx", "table"} {
		e.createMirror("l1", topic)
	}
	for _, topic := range []string{"plain", "tx", "table"} {
		e.waitCaughtUp(topic, topic)
		e.waitStatus("l1", topic, "ACTIVE")
	}
	testutil.WaitFor(t, 30*time.Second, "mirror log start aligned", func() error {
		srcStarts, _ := testutil.Offsets(t, e.srcCl, "plain")
		dstStarts, _ := testutil.Offsets(t, e.dstCl, "plain")
		for p, s := range srcStarts {
			if s == 0 || dstStarts[p] != s {
				return fmt.Errorf("partition %d: mirror starts at %d, source at %d", p, dstStarts[p], s)
			}
		}
		return nil
	})

	first := map[string]api.MirrorVerification{}
	for _, topic := range []string{"plain", "tx", "table"} {
		v := e.verifyMirror("l1", topic, "")
		assertVerified(t, v)
		first[topic] = v
		t.Logf("%s: %s", topic, v.Summary)
	}
	if p := first["plain"].Totals; p.MirrorBatches >= p.SourceBatches || p.DecompressedBatches == 0 {
		t.Fatalf("no merged runs compared in the plain topic: %+v", p)
	}
	if first["table"].Totals.Fillers == 0 {
		t.Fatalf("the compacted topic's verification saw no filler: %+v", first["table"].Totals)
	}
	// Markers are compared without decompressing; the transactional
	// data of kfake's producers is uncompressed.
	if first["tx"].Totals.DecompressedBatches != 0 {
		t.Fatalf("transactions decompressed %d batches", first["tx"].Totals.DecompressedBatches)
	}

	// A second run reads only what was written since.
	produceCodecs(t, e.src.ListenAddrs(), "plain", 40)
	e.waitCaughtUp("plain", "plain")
	newBatches := int64(0)
	for _, p := range first["plain"].Partitions {
		newBatches += int64(len(testutil.RawBatchesFrom(t, e.srcCl, "plain", p.Partition, p.VerifiedOffset)))
	}
	second := e.verifyMirror("l1", "plain", "")
	assertVerified(t, second)
	for i, p := range second.Partitions {
		if p.FromOffset != first["plain"].Partitions[i].VerifiedOffset {
			t.Fatalf("partition %d: second run from %d, the first verified to %d", p.Partition, p.FromOffset, first["plain"].Partitions[i].VerifiedOffset)
		}
	}
	if second.Totals.SourceBatches != newBatches || newBatches == 0 {
		t.Fatalf("second run read %d source batches; %d were written since the first", second.Totals.SourceBatches, newBatches)
	}
	if again := e.verifyMirror("l1", "plain", ""); again.Totals.SourceBatches != 0 || !again.Verified {
		t.Fatalf("a run with nothing new read %d batches: %s", again.Totals.SourceBatches, again.Summary)
	}
	full := e.verifyMirror("l1", "plain", "?from_start=true&partitions=1")
	assertVerified(t, full)
	if len(full.Partitions) != 1 || full.Partitions[0].FromOffset != first["plain"].Partitions[1].SourceStartOffset {
		t.Fatalf("from_start run: %+v", full.Partitions)
	}

	// The checkpoints are kept.
	var cps api.MirrorCheckpoints
	e.strait(http.MethodGet, "/links/l1/mirrors/plain/verification", nil, http.StatusOK, &cps)
	if len(cps.Partitions) != 2 || cps.Partitions[0].VerifiedOffset != second.Partitions[0].VerifiedOffset {
		t.Fatalf("checkpoints %+v", cps.Partitions)
	}

	// A record written to a paused mirror by someone else.
	e.alter("l1", "pause", names("tx"), "")
	w := testutil.Client(t, e.dst.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := w.ProduceSync(context.Background(), &kgo.Record{Topic: "tx", Partition: 1, Value: []byte("foreign")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	_, srcEnds := testutil.Offsets(t, e.srcCl, "tx")
	bad := e.verifyMirror("l1", "tx", "")
	if bad.Verified || !bad.Diverged || bad.Partitions[1].Divergence == nil || bad.Partitions[1].Divergence.Code != "EXTRA_RECORDS" || bad.Partitions[1].Divergence.Offset != srcEnds[1] {
		t.Fatalf("a foreign record on the mirror: %s %+v", bad.Summary, bad.Partitions)
	}
	if !strings.Contains(bad.Summary, "partition 1 differs") {
		t.Fatalf("summary %q", bad.Summary)
	}
}

// TestVerifyRefusesBadRequests: unknown mirrors, partitions and actions.
func TestVerifyRefusesBadRequests(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "t", 1, nil)
	e.createLink("l1", nil)
	e.createMirror("l1", "t")
	e.waitStatus("l1", "t", "ACTIVE")
	cases := []struct {
		method, path string
		status, code int
	}{
		{http.MethodPost, "/links/l1/mirrors/nope:verify", 404, 40403},
		{http.MethodPost, "/links/nope/mirrors/t:verify", 404, 404},
		{http.MethodPost, "/links/l1/mirrors/t:verify?partitions=7", 400, 40002},
		{http.MethodPost, "/links/l1/mirrors/t:verify?partitions=x", 400, 400},
		{http.MethodPost, "/links/l1/mirrors/t:verify?bytes_per_second=-1", 400, 400},
		{http.MethodPost, "/links/l1/mirrors/t:verify?validate_onyl=true", 400, 400},
		{http.MethodPost, "/links/l1/mirrors/t:explode", 404, 404},
		{http.MethodGet, "/links/l1/mirrors/t:verify", 405, 405},
		{http.MethodGet, "/links/l1/mirrors/nope/verification", 404, 40403},
	}
	for _, tc := range cases {
		var body struct {
			ErrorCode int `json:"error_code"`
		}
		e.strait(tc.method, tc.path, nil, tc.status, &body)
		if body.ErrorCode != tc.code {
			t.Fatalf("%s %s: error_code %d, want %d", tc.method, tc.path, body.ErrorCode, tc.code)
		}
	}
}

// produceCodecs writes perCodec records in every codec, half of them in
// one call, the rest five at a time (small batches, which the copy
// merges), with current timestamps (kfake's retention deletes old ones).
func produceCodecs(t *testing.T, addrs []string, topic string, perCodec int) {
	t.Helper()
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	for ci, c := range codecs {
		p := testutil.Client(t, addrs, kgo.ProducerBatchCompression(c), kgo.ProducerLinger(2*time.Millisecond), kgo.DefaultProduceTopic(topic))
		rs := make([]*kgo.Record, perCodec)
		for i := range rs {
			rs[i] = &kgo.Record{Key: []byte(fmt.Sprintf("key-%d", i%97)), Value: []byte(fmt.Sprintf("value %d codec %d %s", i, ci, strings.Repeat("v", i%50))),
				Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}}}
		}
		if err := p.ProduceSync(context.Background(), rs[:perCodec/2]...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		for i := perCodec / 2; i < perCodec; i += 5 {
			if err := p.ProduceSync(context.Background(), rs[i:min(i+5, perCodec)]...).FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
		}
	}
}

// TestBackgroundVerifier: with verify_interval set, every mirror is
// verified on its own; the verified offsets and a divergence are exported
// as metrics and the divergence as the link's MirrorTopicVerify task.
func TestBackgroundVerifier(t *testing.T) {
	e := newEnvWith(t, &env{configure: func(c *config.Config) {
		c.VerifyInterval = "200ms"
		c.VerifyBytesPerSecond = "1000000"
	}})
	testutil.CreateTopic(t, e.srcCl, "bg", 1, nil)
	produceCodecs(t, e.src.ListenAddrs(), "bg", 20)
	e.createLink("l1", nil)
	e.createMirror("l1", "bg")
	e.waitCaughtUp("bg", "bg")
	_, ends := testutil.Offsets(t, e.srcCl, "bg")
	metric := func(name string) string {
		resp, err := http.Get(e.api.Root + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, name+`{link="l1",partition="0",topic="bg"} `) {
				return strings.Fields(line)[1]
			}
		}
		return ""
	}
	testutil.WaitFor(t, 30*time.Second, "verified in the background", func() error {
		if got := metric("strait_mirror_verified_offset"); got != fmt.Sprint(ends[0]) {
			return fmt.Errorf("verified offset %q, the source ends at %d", got, ends[0])
		}
		return nil
	})
	if got := metric("strait_mirror_divergence"); got != "0" {
		t.Fatalf("divergence %q", got)
	}
	e.alter("l1", "pause", names("bg"), "")
	e.waitStatus("l1", "bg", "PAUSED")
	w := testutil.Client(t, e.dst.ListenAddrs())
	if err := w.ProduceSync(context.Background(), &kgo.Record{Topic: "bg", Value: []byte("foreign")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the divergence seen", func() error {
		if got := metric("strait_mirror_divergence"); got != "1" {
			return fmt.Errorf("divergence %q", got)
		}
		return nil
	})
	var lt struct {
		Tasks []struct {
			TaskName string `json:"task_name"`
			State    string `json:"state"`
			Errors   []struct {
				ErrorMessage string `json:"error_message"`
			} `json:"errors"`
		} `json:"tasks"`
	}
	e.api.JSON(http.MethodGet, "/links/l1?include_tasks=true", nil, http.StatusOK, &lt)
	found := false
	for _, task := range lt.Tasks {
		if task.TaskName == "MirrorTopicVerify" {
			found = true
			if task.State != "IN_ERROR" || len(task.Errors) != 1 || !strings.Contains(task.Errors[0].ErrorMessage, fmt.Sprintf("partition 0 differs from its source at offset %d (EXTRA_RECORDS)", ends[0])) {
				t.Fatalf("task %+v", task)
			}
		}
	}
	if !found {
		t.Fatalf("no MirrorTopicVerify task: %+v", lt.Tasks)
	}
}

// TestStraitEndpointsAuthorization: Strait's own endpoints go through the
// same guard as Confluent's: credentials, and the role on the link.
func TestStraitEndpointsAuthorization(t *testing.T) {
	keys := []string{"viewer", "operator", "westop"}
	e := newEnvWith(t, &env{configure: func(c *config.Config) {
		for _, k := range append(keys, "admin") {
			c.Auth.APIKeys = append(c.Auth.APIKeys, auth.APIKey{Key: k, SecretHash: hashed(t, k+"-secret")})
		}
		c.Auth.Roles = []auth.Role{
			{Principal: "User:viewer", Role: "viewer", Links: []string{"east"}},
			{Principal: "User:operator", Role: "operator", Links: []string{"east"}},
			{Principal: "User:westop", Role: "operator", Links: []string{"west"}},
			{Principal: "User:admin", Role: "admin"},
		}
	}})
	e.api.Auth = basic("admin", "admin-secret")
	testutil.CreateTopic(t, e.srcCl, "refunds", 1, nil)
	e.createLink("east", nil)
	e.createMirror("east", "refunds")
	e.waitStatus("east", "refunds", "ACTIVE")
	cases := []struct {
		who, method, path string
		want              int
	}{
		{"", http.MethodPost, "/links/east/mirrors/refunds:verify", http.StatusUnauthorized},
		{"", http.MethodGet, "/links/east/failover-report", http.StatusUnauthorized},
		{"viewer", http.MethodPost, "/links/east/mirrors/refunds:verify", http.StatusForbidden},
		{"viewer", http.MethodPost, "/links/east:switchover", http.StatusForbidden},
		{"viewer", http.MethodGet, "/links/east/failover-report", http.StatusOK},
		{"viewer", http.MethodGet, "/links/east/mirrors/refunds/verification", http.StatusOK},
		{"viewer", http.MethodGet, "/groups/-/readiness", http.StatusOK},
		{"westop", http.MethodPost, "/links/east/mirrors/refunds:verify", http.StatusForbidden},
		{"westop", http.MethodGet, "/links/east/failover-report", http.StatusForbidden},
		{"westop", http.MethodGet, "/groups/-/readiness?link_name=east", http.StatusForbidden},
		{"operator", http.MethodPost, "/links/east/mirrors/refunds:verify", http.StatusOK},
	}
	for _, tc := range cases {
		e.api.Auth = nil
		if tc.who != "" {
			e.api.Auth = basic(tc.who, tc.who+"-secret")
		}
		e.strait(tc.method, tc.path, nil, tc.want, nil)
	}
	// westop sees no group of a link it cannot read.
	e.api.Auth = basic("westop", "westop-secret")
	var list api.GroupReadinessList
	e.strait(http.MethodGet, "/groups/-/readiness", nil, http.StatusOK, &list)
	if len(list.Data) != 0 {
		t.Fatalf("westop sees %+v", list.Data)
	}
}
