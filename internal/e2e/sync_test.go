package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/testutil"
)

type linkTasks struct {
	Tasks []struct {
		TaskName string `json:"task_name"`
		State    string `json:"state"`
		Errors   []struct {
			ErrorCode    string `json:"error_code"`
			ErrorMessage string `json:"error_message"`
		} `json:"errors"`
	} `json:"tasks"`
}

func (e *env) task(linkName, name string) (string, []string) {
	e.t.Helper()
	var lt linkTasks
	e.api.JSON(http.MethodGet, "/links/"+linkName+"?include_tasks=true", nil, http.StatusOK, &lt)
	for _, t := range lt.Tasks {
		if t.TaskName == name {
			var errs []string
			for _, er := range t.Errors {
				errs = append(errs, er.ErrorCode+": "+er.ErrorMessage)
			}
			return t.State, errs
		}
	}
	e.t.Fatalf("no task %s in %+v", name, lt)
	return "", nil
}

// consumeCommit reads n records of topic with a group on the cluster at
// addrs and commits, returning the committed offsets.
func consumeCommit(t *testing.T, addrs []string, group, topic string, n int) map[int32]int64 {
	t.Helper()
	cl := testutil.Client(t, addrs, kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group), kgo.DisableAutoCommit())
	read := 0
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for read < n {
		fs := cl.PollRecords(ctx, n-read)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d", read, n)
		}
		read += fs.NumRecords()
	}
	if err := cl.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	got, err := kadm.NewClient(testutil.Client(t, addrs)).FetchOffsets(context.Background(), group)
	if err != nil {
		t.Fatal(err)
	}
	out := map[int32]int64{}
	got.Each(func(o kadm.OffsetResponse) {
		if o.Topic == topic {
			out[o.Partition] = o.At
		}
	})
	return out
}

// TestConsumerOffsetSync: a group reads part of a mirrored topic on the
// source and commits; within a sync interval the same group on the
// destination resumes at exactly the next record, read with a franz-go
// consumer and with kcat. A destination group with active members is not
// overwritten, and the task says so.
func TestConsumerOffsetSync(t *testing.T) {
	e := offsetSyncEnv(t, 1, 100, "1000", `{"groupFilters":[{"name":"bill","patternType":"PREFIXED","filterType":"INCLUDE"},{"name":"bill-tmp","patternType":"LITERAL","filterType":"EXCLUDE"}]}`)
	committed := consumeCommit(t, e.src.ListenAddrs(), "billing", "orders", 37)
	consumeCommit(t, e.src.ListenAddrs(), "bill-tmp", "orders", 5)
	consumeCommit(t, e.src.ListenAddrs(), "other", "orders", 5)

	dstAdm := kadm.NewClient(e.dstCl)
	waitWithinInterval(t, time.Second, "offsets synced", func() error {
		got, err := dstAdm.FetchOffsets(context.Background(), "billing")
		if err != nil {
			return err
		}
		o, ok := got.Lookup("orders", 0)
		if !ok || o.At != committed[0] {
			return fmt.Errorf("destination billing at %v, source at %d", o, committed[0])
		}
		return nil
	})
	for _, g := range []string{"bill-tmp", "other"} {
		got, _ := dstAdm.FetchOffsets(context.Background(), g)
		if o, ok := got.Lookup("orders", 0); ok && o.At >= 0 {
			t.Fatalf("group %s was synced (at %d) though the filters exclude it", g, o.At)
		}
	}

	src := testutil.ReadAll(t, e.src.ListenAddrs(), "orders")[0]
	// A real consumer of the group on the destination starts at the next
	// record.
	resumed := testutil.Client(t, e.dst.ListenAddrs(), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var first *kgo.Record
	for first == nil && ctx.Err() == nil {
		resumed.PollRecords(ctx, 1).EachRecord(func(r *kgo.Record) {
			if first == nil {
				first = r
			}
		})
	}
	if first == nil || first.Offset != committed[0] || string(first.Value) != string(src[committed[0]].Value) {
		t.Fatalf("the group resumed at %+v, want offset %d (%q)", first, committed[0], src[committed[0]].Value)
	}
	resumed.Close() // leaves the group without committing

	// Independent reader: kcat in group mode starts at the synced offset.
	if kcat, err := exec.LookPath("kcat"); err == nil {
		cmd := exec.Command(kcat, "-b", e.dst.ListenAddrs()[0], "-G", "billing", "-c", "1", "-q",
			"-X", "enable.auto.commit=false", "-f", "%o|%s\n", "orders")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("kcat: %v: %s", err, stderr.String())
		}
		want := fmt.Sprintf("%d|%s", committed[0], src[committed[0]].Value)
		if got := strings.TrimSpace(string(out)); got != want {
			t.Fatalf("kcat resumed with %q, want %q", got, want)
		}
	}

	// A consumer that stays in the group makes it active on the
	// destination.
	active := testutil.Client(t, e.dst.ListenAddrs(), kgo.ConsumeTopics("orders"), kgo.ConsumerGroup("billing"), kgo.DisableAutoCommit())
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
	active.PollFetches(pctx)
	pcancel()
	before, _ := dstAdm.FetchOffsets(context.Background(), "billing")
	atBefore, _ := before.Lookup("orders", 0)

	// The destination group is now active: the sync leaves it alone.
	testutil.WaitFor(t, 15*time.Second, "destination group active", func() error {
		d, err := dstAdm.DescribeGroups(context.Background(), "billing")
		if err != nil || len(d["billing"].Members) == 0 {
			return fmt.Errorf("billing has no members yet: %v", err)
		}
		return nil
	})
	consumeCommit(t, e.src.ListenAddrs(), "billing", "orders", 20)
	testutil.WaitFor(t, 15*time.Second, "task reports the group in use", func() error {
		state, errs := e.task("l1", "ConsumerOffsetSync")
		if state != "IN_ERROR" || len(errs) == 0 || !strings.Contains(errs[0], "CONSUMER_GROUP_IN_USE_ERROR") {
			return fmt.Errorf("task %s %v", state, errs)
		}
		return nil
	})
	got, _ := dstAdm.FetchOffsets(context.Background(), "billing")
	if o, _ := got.Lookup("orders", 0); o.At != atBefore.At {
		t.Fatalf("an active destination group was overwritten: %d, had %d", o.At, atBefore.At)
	}
}

// TestTopicConfigSync: the source topic's data configs follow on the
// mirror within the interval, set and reset; others do not.
func TestTopicConfigSync(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "cfg", 1, nil)
	e.createLink("l1", map[string]string{"topic.config.sync.ms": "1000", "topic.config.sync.include": "flush.ms"})
	e.createMirror("l1", "cfg")
	srcAdm, dstAdm := kadm.NewClient(e.srcCl), kadm.NewClient(e.dstCl)
	alter := func(op kadm.IncrementalOp, name, value string) {
		t.Helper()
		c := kadm.AlterConfig{Op: op, Name: name}
		if op == kadm.SetConfig {
			c.Value = kadm.StringPtr(value)
		}
		if _, err := srcAdm.AlterTopicConfigs(context.Background(), []kadm.AlterConfig{c}, "cfg"); err != nil {
			t.Fatal(err)
		}
	}
	dynamic := func() map[string]string {
		rcs, err := dstAdm.DescribeTopicConfigs(context.Background(), "cfg")
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range rcs[0].Configs {
			if c.Value != nil && c.Source == 1 {
				out[c.Key] = *c.Value
			}
		}
		return out
	}
	alter(kadm.SetConfig, "retention.ms", "3600000")
	alter(kadm.SetConfig, "flush.ms", "1234")
	alter(kadm.SetConfig, "compression.type", "gzip") // never synced
	waitWithinInterval(t, time.Second, "configs synced", func() error {
		d := dynamic()
		if d["retention.ms"] != "3600000" || d["flush.ms"] != "1234" {
			return fmt.Errorf("mirror configs %v", d)
		}
		return nil
	})
	if d := dynamic(); d["compression.type"] != "producer" {
		t.Fatalf("compression.type followed the source: %v", d["compression.type"])
	}
	alter(kadm.DeleteConfig, "retention.ms", "")
	waitWithinInterval(t, time.Second, "config reset", func() error {
		if v, ok := dynamic()["retention.ms"]; ok {
			return fmt.Errorf("retention.ms still %s", v)
		}
		return nil
	})
	if state, errs := e.task("l1", "TopicConfigsSync"); state != "ACTIVE" {
		t.Fatalf("task %s %v", state, errs)
	}
}

// TestACLSync: ACLs the filters select appear on the destination and go
// when removed at the source; an ACL made on the destination is never
// touched.
func TestACLSync(t *testing.T) {
	e := newEnv(t)
	srcAdm, dstAdm := kadm.NewClient(e.srcCl), kadm.NewClient(e.dstCl)
	mk := func(adm *kadm.Client, principal, topic string) {
		t.Helper()
		res, err := adm.CreateACLs(context.Background(), kadm.NewACLs().Topics(topic).ResourcePatternType(kadm.ACLPatternLiteral).Allow(principal).Operations(kadm.OpRead))
		if err == nil {
			for _, r := range res {
				if r.Err != nil {
					err = r.Err
				}
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	readers := func() []string {
		res, err := dstAdm.DescribeACLs(context.Background(), kadm.NewACLs().Topics().ResourcePatternType(kadm.ACLPatternAny).Allow().AllowHosts().Operations(kadm.OpAny))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range res {
			for _, d := range r.Described {
				out = append(out, d.Principal+"@"+d.Name)
			}
		}
		return out
	}
	mk(dstAdm, "User:local", "orders") // the destination's own
	mk(srcAdm, "User:alice", "orders")
	mk(srcAdm, "User:bob", "orders")
	e.createLink("l1", map[string]string{
		"acl.sync.enable": "true", "acl.sync.ms": "1000",
		"acl.filters": `{"aclFilters":[{"resourceFilter":{"resourceType":"topic","patternType":"any"},"accessFilter":{"principal":"User:alice","operation":"any","permissionType":"any"}},{"resourceFilter":{"resourceType":"topic","name":"orders","patternType":"literal"},"accessFilter":{"principal":"User:local","operation":"any","permissionType":"allow"}}]}`,
	})
	waitWithinInterval(t, time.Second, "alice's ACL synced", func() error {
		if got := fmt.Sprint(readers()); !strings.Contains(got, "User:alice@orders") {
			return fmt.Errorf("destination ACLs %s", got)
		}
		return nil
	})
	if got := fmt.Sprint(readers()); strings.Contains(got, "User:bob") {
		t.Fatalf("bob's ACL was synced though the filters exclude it: %s", got)
	}
	// The destination's own ACL on the same resource stays even though the
	// source has none like it (the second filter selects it).
	if _, err := srcAdm.DeleteACLs(context.Background(), kadm.NewACLs().Topics("orders").ResourcePatternType(kadm.ACLPatternLiteral).Allow("User:alice").AllowHosts().Operations(kadm.OpRead)); err != nil {
		t.Fatal(err)
	}
	waitWithinInterval(t, time.Second, "alice's ACL removed", func() error {
		if got := fmt.Sprint(readers()); strings.Contains(got, "User:alice") {
			return fmt.Errorf("destination ACLs %s", got)
		}
		return nil
	})
	if got := fmt.Sprint(readers()); !strings.Contains(got, "User:local@orders") {
		t.Fatalf("the destination's own ACL was removed: %s", got)
	}
}

// TestAutoCreateMirrors: new source topics the filters select become
// mirrors within an interval; others and internal topics do not.
func TestAutoCreateMirrors(t *testing.T) {
	e := newEnv(t)
	e.createLink("l1", map[string]string{
		"auto.create.mirror.topics.enable":  "true",
		"topic.config.sync.ms":              "1000",
		"auto.create.mirror.topics.filters": `{"topicFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"},{"name":"skip-","patternType":"PREFIXED","filterType":"EXCLUDE"}]}`,
	})
	for _, topic := range []string{"orders", "payments", "skip-me", "__internal"} {
		testutil.CreateTopic(t, e.srcCl, topic, 2, nil)
	}
	produceWith(t, e.srcCl, "orders", 30)
	waitWithinInterval(t, time.Second, "mirrors auto-created", func() error {
		var list struct {
			Data []mirrorView `json:"data"`
		}
		e.api.JSON(http.MethodGet, "/links/l1/mirrors", nil, http.StatusOK, &list)
		var names []string
		for _, m := range list.Data {
			names = append(names, m.MirrorTopicName)
		}
		if got := fmt.Sprint(names); got != "[orders payments]" {
			return fmt.Errorf("mirrors %s", got)
		}
		return nil
	})
	e.waitCaughtUp("orders", "orders")
	e.assertIdentical("orders", "orders")
	if state, errs := e.task("l1", "AutoCreateMirror"); state != "ACTIVE" {
		t.Fatalf("task %s %v", state, errs)
	}
}

// TestPrefixedLink runs a link with cluster.link.prefix end to end: the
// mirror topic and the synced group carry the prefix, and every operation
// uses the prefixed name.
func TestPrefixedLink(t *testing.T) {
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "orders", 2, nil)
	produceMixed(t, e.src.ListenAddrs(), "orders", 40)
	e.createLink("dr", map[string]string{
		"cluster.link.prefix":           "west.",
		"consumer.offset.sync.enable":   "true",
		"consumer.offset.sync.ms":       "1000",
		"consumer.group.prefix.enable":  "true",
		"consumer.offset.group.filters": `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`,
	})
	status, body := e.api.Do(http.MethodPost, "/links/dr/mirrors", map[string]any{"source_topic_name": "orders", "mirror_topic_name": "orders"})
	if status != http.StatusBadRequest || !strings.Contains(string(body), "west.orders") {
		t.Fatalf("unprefixed mirror name accepted: %d %s", status, body)
	}
	e.createMirror("dr", "orders")
	e.waitStatus("dr", "west.orders", "ACTIVE")
	testutil.WaitFor(t, 30*time.Second, "caught up", func() error {
		_, s := testutil.Offsets(t, e.srcCl, "orders")
		_, d := testutil.Offsets(t, e.dstCl, "west.orders")
		if s[0] != d[0] || s[1] != d[1] {
			return fmt.Errorf("source %v mirror %v", s, d)
		}
		return nil
	})
	assertSameViews(t, e.src.ListenAddrs(), "orders", e.dst.ListenAddrs(), "west.orders")
	committed := consumeCommit(t, e.src.ListenAddrs(), "billing", "orders", 50)
	testutil.WaitFor(t, 15*time.Second, "prefixed group synced", func() error {
		got, err := kadm.NewClient(e.dstCl).FetchOffsets(context.Background(), "west.billing")
		if err != nil {
			return err
		}
		for p, at := range committed {
			if o, ok := got.Lookup("west.orders", p); !ok || o.At != at {
				return fmt.Errorf("west.billing %v, want %v", got, committed)
			}
		}
		return nil
	})
	r := e.alter("dr", "pause", names("west.orders"), "")
	if code, msg := resultErr(t, r, 0); code != 0 {
		t.Fatalf("pause west.orders: %d %s", code, msg)
	}
	e.waitStatus("dr", "west.orders", "PAUSED")
	e.api.JSON(http.MethodGet, "/links/dr/mirrors/orders", nil, http.StatusNotFound, nil)
}

// TestSyncConfigValidation: filters are checked when set, with a message
// that names the problem; disabling a feature keeps its filters, as
// Confluent does (see TestTerraformUpdates).
func TestSyncConfigValidation(t *testing.T) {
	e := newEnv(t)
	e.createLink("l1", map[string]string{"consumer.offset.sync.enable": "true",
		"consumer.offset.group.filters": `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"}]}`})
	cases := []struct{ name, value, want string }{
		{"consumer.offset.group.filters", `{"groupFilters": [`, "malformed JSON"},
		{"consumer.offset.group.filters", `{"groupFilters":[{"name":"a","patternType":"REGEX","filterType":"INCLUDE"}]}`, "patternType 'REGEX'"},
		{"consumer.offset.group.filters", `{"groupFilters":[{"name":"a","patternType":"LITERAL","filterType":"MAYBE"}]}`, "filterType 'MAYBE'"},
		{"consumer.offset.group.filters", `{"topicFilters":[]}`, "groupFilters"},
		{"consumer.offset.group.filters", `{"groupFilters":[]}]`, "data after the document"},
		{"consumer.offset.group.filters", `{"groupFilters":[]}}`, "data after the document"},
		{"consumer.offset.group.filters", `{"groupFilters":[]} {}`, "data after the document"},
		{"auto.create.mirror.topics.filters", `{"topicFilters":[]}]`, "data after the document"},
		{"acl.filters", `{"aclFilters":[]}}`, "data after the document"},
		{"auto.create.mirror.topics.filters", `{"topicFilters":[{"patternType":"LITERAL","filterType":"INCLUDE"}]}`, "name is required"},
		{"acl.filters", `{"aclFilters":[{"resourceFilter":{"resourceType":"planet","patternType":"any"},"accessFilter":{"operation":"any","permissionType":"any"}}]}`, "resourceType 'planet'"},
		{"acl.filters", `{"aclFilters":[{"resourceFilter":{"resourceType":"topic","patternType":"any"},"accessFilter":{"operation":"fly","permissionType":"any"}}]}`, "operation 'fly'"},
		{"consumer.offset.sync.ms", "10", "between 1000"},
	}
	for _, tc := range cases {
		t.Run(tc.name+"="+tc.value, func(t *testing.T) {
			status, body := e.api.With(t).Do(http.MethodPut, "/links/l1/configs/"+tc.name, map[string]any{"value": tc.value})
			if status != http.StatusBadRequest || !strings.Contains(string(body), tc.want) {
				t.Fatalf("%d %s, want 400 with %q", status, body, tc.want)
			}
		})
	}
	e.api.JSON(http.MethodPut, "/links/l1/configs/consumer.offset.sync.enable", map[string]any{"value": "false"}, http.StatusNoContent, nil)
	var c configData
	e.api.JSON(http.MethodGet, "/links/l1/configs/consumer.offset.group.filters", nil, http.StatusOK, &c)
	if c.IsDefault || !strings.Contains(c.Value, "groupFilters") {
		t.Fatalf("disabling the sync dropped its filters: %+v", c)
	}
	if state, _ := e.task("l1", "ConsumerOffsetSync"); state != "NOT_CONFIGURED" {
		t.Fatalf("disabled task is %s", state)
	}
}

// TestFailoverSyncsOffsetsFirst: failover runs one last offset sync, so a
// group's latest commit on the source is on the destination even when the
// periodic sync has not come round.
func TestFailoverSyncsOffsetsFirst(t *testing.T) {
	e := offsetSyncEnv(t, 1, 60, "86400000", allOffsetGroups) // one round at start, then a day
	committed := consumeCommit(t, e.src.ListenAddrs(), "late", "orders", 23)
	got, _ := kadm.NewClient(e.dstCl).FetchOffsets(context.Background(), "late")
	if o, ok := got.Lookup("orders", 0); ok && o.At == committed[0] {
		t.Fatal("synced before the failover: the test proves nothing")
	}
	e.alter("l1", "failover", names("orders"), "")
	got, err := kadm.NewClient(e.dstCl).FetchOffsets(context.Background(), "late")
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := got.Lookup("orders", 0); !ok || o.At != committed[0] {
		t.Fatalf("after failover the group is at %+v, committed %d on the source", o, committed[0])
	}
}

// waitWithinInterval waits for what a sync task running every interval
// must bring about: within two intervals (the change may come just after
// a round began) and 3 s for the round itself on a loaded machine.
func waitWithinInterval(t *testing.T, interval time.Duration, what string, cond func() error) {
	t.Helper()
	testutil.WaitFor(t, 2*interval+3*time.Second, what+" within the sync interval", cond)
}
