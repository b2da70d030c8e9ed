package cli

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/testutil"
)

// TestLinkAndMirrorCommands runs the link and mirror commands against a
// daemon, one after the other as an operator would: create, list,
// describe, alter, refusals, confirmations, completion, delete.
func TestLinkAndMirrorCommands(t *testing.T) {
	cliEnv(t)
	s := startStrait(t)
	ctx := context.Background()

	// Creating.
	golden(t, "link-create-dry-run", s.mask(t, s.ok(t, "link", "create", "demo", "--source-cluster", "source-cluster",
		"--source-bootstrap-server", s.srcAddr, "--dry-run")))
	if links, _ := s.client.ListLinks(ctx); len(links) != 0 {
		t.Fatalf("--dry-run created %d links", len(links))
	}
	golden(t, "link-create", s.mask(t, s.ok(t, "link", "create", "demo", "--source-cluster", "source-cluster",
		"--source-bootstrap-server", s.srcAddr, "--config", "availability.check.ms=5000,mirror.start.offset.spec=earliest")))
	golden(t, "mirror-create", s.ok(t, "mirror", "create", "orders", "--link", "demo"))
	s.ok(t, "mirror", "create", "payments", "--link", "demo")
	s.waitMirror(t, "demo", "orders")
	s.waitMirror(t, "demo", "payments")

	// Reading: tables, JSON and YAML against golden files, and the JSON
	// and YAML parsing back into what the API says.
	for _, c := range []struct {
		name string
		args []string
	}{
		{"link-list", []string{"link", "list"}},
		{"link-list-topics", []string{"link", "list", "--include-topics"}},
		{"link-describe", []string{"link", "describe", "demo"}},
		{"link-configuration-list", []string{"link", "configuration", "list", "demo"}},
		{"link-task-list", []string{"link", "task", "list", "demo"}},
		{"mirror-list", []string{"mirror", "list"}},
		{"mirror-describe", []string{"mirror", "describe", "orders", "--link", "demo"}},
		{"mirror-state-transition-error-list", []string{"mirror", "state-transition-error", "list", "orders", "--link", "demo"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			golden(t, c.name, s.mask(t, s.ok(t, c.args...)))
			golden(t, c.name+"-json", s.mask(t, s.ok(t, append(c.args, "-o", "json")...)))
			golden(t, c.name+"-yaml", s.mask(t, s.ok(t, append(c.args, "-o", "yaml")...)))
		})
	}
	link, err := s.client.GetLink(ctx, "demo", false)
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, s, []linkRow{newLinkRow(link, "")}, "link", "list")
	roundTrip(t, s, newLinkDescription(link), "link", "describe", "demo")
	orders := s.waitMirror(t, "demo", "orders")
	var partitions []mirrorPartitionRow
	for _, l := range orders.MirrorLags {
		partitions = append(partitions, mirrorPartitionRow{LinkName: "demo", MirrorTopicName: "orders", Partition: l.Partition,
			SourceTopicName: "orders", MirrorStatus: "ACTIVE", MirrorTopicError: orders.MirrorTopicError, StatusTimeMs: orders.StateTimeMs,
			LastSourceFetchOffset: l.LastSourceFetchOffset})
	}
	roundTrip(t, s, partitions, "mirror", "describe", "orders", "--link", "demo")
	mirrors, err := s.client.ListMirrors(ctx, "demo", "")
	if err != nil {
		t.Fatal(err)
	}
	sortMirrors(mirrors)
	var listRows []mirrorListRow
	for _, m := range mirrors {
		listRows = append(listRows, mirrorListRow{LinkName: "demo", MirrorTopicName: m.MirrorTopicName, NumPartition: 3,
			SourceTopicName: m.MirrorTopicName, MirrorStatus: "ACTIVE", StatusTimeMs: m.StateTimeMs})
	}
	roundTrip(t, s, listRows, "mirror", "list", "--link", "demo")
	golden(t, "mirror-list-paused", s.ok(t, "mirror", "list", "--mirror-status", "paused"))
	if out := s.ok(t, "mirror", "list", "--mirror-status", "paused", "-o", "json"); out != "[]\n" {
		t.Fatalf("an empty list in JSON is %q", out)
	}

	// Changing configs.
	golden(t, "link-configuration-update", s.ok(t, "link", "configuration", "update", "demo", "--config", "consumer.offset.sync.ms=10000"))
	configs, err := s.client.ListLinkConfigs(ctx, "demo")
	if err != nil {
		t.Fatal(err)
	}
	if v := configValue(configs, "consumer.offset.sync.ms"); v != "10000" {
		t.Fatalf("consumer.offset.sync.ms is %q after the update", v)
	}

	// Pause and resume: the per-topic results, and the state they leave.
	golden(t, "mirror-pause", s.mask(t, s.ok(t, "mirror", "pause", "orders", "--link", "demo")))
	if st := s.status(t, "demo", "orders"); st != "PAUSED" {
		t.Fatalf("orders is %s after pause", st)
	}
	golden(t, "mirror-resume-yaml", s.mask(t, s.ok(t, "mirror", "resume", "--all", "--link", "demo", "-o", "yaml")))
	if st := s.status(t, "demo", "orders"); st != "ACTIVE" {
		t.Fatalf("orders is %s after resume --all", st)
	}

	t.Run("refusals", func(t *testing.T) {
		for _, c := range []struct {
			name     string
			args     []string
			code     int
			stderr   string
			goldenOK bool // stdout against testdata/refusal-<name>.golden
		}{
			{name: "unknown link", args: []string{"link", "describe", "nope"}, code: 1, stderr: "error: Cluster link 'nope' does not exist. (error code 404)\n"},
			{name: "unknown mirror", args: []string{"mirror", "describe", "nope", "--link", "demo"}, code: 1, stderr: "(error code 40403)"},
			{name: "one topic of two refused", args: []string{"mirror", "pause", "orders", "nope", "--link", "demo"}, code: 1,
				stderr: "error: 1 of 2 mirror topics refused to pause\n", goldenOK: true},
			{name: "bad pattern", args: []string{"mirror", "pause", "--topic-pattern", "(", "--link", "demo"}, code: 1, stderr: "(error code 40002)"},
			{name: "no selection", args: []string{"mirror", "pause", "--link", "demo"}, code: 2, stderr: "give --all or --topic-pattern"},
			{name: "names and all", args: []string{"mirror", "pause", "orders", "--all", "--link", "demo"}, code: 2, stderr: "one of the three"},
			{name: "no link", args: []string{"mirror", "describe", "orders"}, code: 2, stderr: "--link"},
			{name: "unknown verb", args: []string{"mirror", "bogus"}, code: 2, stderr: `unknown command "bogus" for "strait mirror"`},
			{name: "unknown flag", args: []string{"link", "list", "--bogus"}, code: 2, stderr: "unknown flag: --bogus"},
			{name: "bad output", args: []string{"link", "list", "-o", "xml"}, code: 2, stderr: `invalid --output "xml"`},
			{name: "missing argument", args: []string{"link", "describe"}, code: 2, stderr: "accepts 1 arg(s)"},
			{name: "bad config pair", args: []string{"link", "configuration", "update", "demo", "--config", "a=1,b"}, code: 2, stderr: `"b": want key=value`},
			{name: "config refused", args: []string{"link", "configuration", "update", "demo", "--config", "no.such.config=1"}, code: 1, stderr: "no.such.config"},
		} {
			t.Run(c.name, func(t *testing.T) {
				r := s.cli(t, nil, c.args...)
				if r.code != c.code || !strings.Contains(r.err, c.stderr) {
					t.Fatalf("exit %d, stderr %q; want exit %d and %q", r.code, r.err, c.code, c.stderr)
				}
				if c.goldenOK {
					golden(t, "refusal-"+strings.ReplaceAll(c.name, " ", "-"), s.mask(t, r.out))
				}
			})
		}
		// Outside the daemon.
		var out, errOut strings.Builder
		if code := run([]string{"link", "list", "--url", "http://" + testutil.FreeAddr(t)}, strings.NewReader(""), &out, &errOut); code != 1 ||
			!strings.Contains(errOut.String(), "connection refused") {
			t.Fatalf("no server: exit %d, stderr %q", code, errOut.String())
		}
		// The mixed request paused orders: the topic that could, did.
		if st := s.status(t, "demo", "orders"); st != "PAUSED" {
			t.Fatalf("orders is %s after a pause with an unknown topic", st)
		}
		s.ok(t, "mirror", "resume", "orders", "--link", "demo")
	})

	t.Run("completion", func(t *testing.T) {
		// The word to complete is the last argument, so --url goes
		// before it.
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"link", "describe", "--url", s.url, ""}, "demo"},
			{[]string{"link", "describe", "--url", s.url, "x"}, ""},
			{[]string{"mirror", "describe", "--url", s.url, "--link", "demo", ""}, "orders payments"},
			{[]string{"mirror", "pause", "--url", s.url, "--link", "demo", "orders", ""}, "payments"},
			{[]string{"mirror", "describe", "--url", s.url, "--link", ""}, "demo"},
			{[]string{"mirror", "list", "--url", s.url, "--mirror-status", ""}, strings.Join(lower(mirrorStatuses), " ")},
		} {
			if got := strings.Join(completeNoURL(t, s, c.args...), " "); got != c.want {
				t.Errorf("completing %v: %q, want %q", c.args, got, c.want)
			}
		}
	})

	t.Run("confirmation", func(t *testing.T) {
		// No terminal and no --force: refused, nothing changes.
		r := s.cli(t, nil, "mirror", "failover", "orders", "--link", "demo")
		if r.code != 2 || !strings.Contains(r.err, "pass --force") || s.status(t, "demo", "orders") != "ACTIVE" {
			t.Fatalf("failover without a terminal: exit %d, stderr %q, orders %s", r.code, r.err, s.status(t, "demo", "orders"))
		}
		// A terminal that answers n: nothing changes.
		r = s.cli(t, tty{strings.NewReader("n\n")}, "mirror", "failover", "orders", "--link", "demo")
		if r.code != 0 || !strings.Contains(r.err, `Are you sure you want to failover mirror topic "orders" of cluster link "demo"?`) ||
			!strings.Contains(r.err, "Cancelled") || r.out != "" || s.status(t, "demo", "orders") != "ACTIVE" {
			t.Fatalf("failover answered n: exit %d, stdout %q, stderr %q, orders %s", r.code, r.out, r.err, s.status(t, "demo", "orders"))
		}
		// A terminal that closes without an answer: refused.
		r = s.cli(t, tty{strings.NewReader("")}, "mirror", "failover", "orders", "--link", "demo")
		if r.code != 2 || s.status(t, "demo", "orders") != "ACTIVE" {
			t.Fatalf("failover without an answer: exit %d, stderr %q", r.code, r.err)
		}
		// A link with live mirrors is refused, even when confirmed.
		r = s.cli(t, tty{strings.NewReader("y\n")}, "link", "delete", "demo")
		if r.code != 1 || !strings.Contains(r.err, "pass --force") {
			t.Fatalf("delete of a link in use: exit %d, stderr %q", r.code, r.err)
		}
		// y: done, and waited for.
		// The dry run says what the failover would lose, and changes
		// nothing.
		r = s.cli(t, nil, "mirror", "failover", "orders", "--link", "demo", "--dry-run")
		if r.code != 0 || !strings.Contains(r.out, "failover now loses") || !strings.Contains(r.out, "Records Not Copied") || s.status(t, "demo", "orders") == "STOPPED" {
			t.Fatalf("failover --dry-run: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		r = s.cli(t, tty{strings.NewReader("y\n")}, "mirror", "failover", "orders", "--link", "demo")
		if r.code != 0 || !strings.Contains(r.err, "orders: STOPPED") || s.status(t, "demo", "orders") != "STOPPED" {
			t.Fatalf("failover answered y: exit %d, stderr %q", r.code, r.err)
		}
		golden(t, "mirror-failover", s.mask(t, r.out))
		// A refused transition: its own error, exit 1.
		r = s.cli(t, nil, "mirror", "resume", "orders", "--link", "demo")
		if r.code != 1 || !strings.Contains(r.out, "Topic 'orders' has already stopped its mirror from 'demo'") {
			t.Fatalf("resume of a stopped mirror: exit %d, stdout %q", r.code, r.out)
		}
		// --force, and waiting for promote; --dry-run asks nothing and
		// changes nothing.
		s.ok(t, "mirror", "promote", "payments", "--link", "demo", "--dry-run")
		if st := s.status(t, "demo", "payments"); st != "ACTIVE" {
			t.Fatalf("promote --dry-run changed payments to %s", st)
		}
		r = s.cli(t, nil, "mirror", "promote", "payments", "--link", "demo", "--force", "-o", "json")
		if r.code != 0 || !strings.Contains(r.err, "payments: STOPPED") || s.status(t, "demo", "payments") != "STOPPED" {
			t.Fatalf("promote --force: exit %d, stderr %q", r.code, r.err)
		}
		golden(t, "mirror-promote-json", s.mask(t, r.out))
		// Delete: n keeps the link, y deletes it.
		r = s.cli(t, tty{strings.NewReader("no\n")}, "link", "delete", "demo")
		if r.code != 0 || !strings.Contains(r.err, `Are you sure you want to delete cluster link "demo"?`) {
			t.Fatalf("delete answered no: exit %d, stderr %q", r.code, r.err)
		}
		if _, err := s.client.GetLink(ctx, "demo", false); err != nil {
			t.Fatalf("delete answered no: %v", err)
		}
		r = s.cli(t, tty{strings.NewReader("y\n")}, "link", "delete", "demo")
		if r.code != 0 || r.out != "Deleted cluster link \"demo\".\n" {
			t.Fatalf("delete answered y: exit %d, stdout %q, stderr %q", r.code, r.out, r.err)
		}
		if _, err := s.client.GetLink(ctx, "demo", false); err == nil {
			t.Fatal("the link is still there")
		}
	})

	t.Run("prefixed link", func(t *testing.T) {
		s.ok(t, "link", "create", "p", "--source-bootstrap-server", s.srcAddr, "--config", "cluster.link.prefix=src_")
		if out := s.ok(t, "mirror", "create", "src_orders", "--link", "p", "--source-topic", "orders"); out != "Created mirror topic \"src_orders\".\n" {
			t.Fatalf("mirror create: %q", out)
		}
		m := s.waitMirror(t, "p", "src_orders")
		if m.SourceTopicName != "orders" {
			t.Fatalf("src_orders mirrors %q", m.SourceTopicName)
		}
	})
}

// completeNoURL runs cobra's completion for args and returns the
// candidates.
func completeNoURL(t *testing.T, s *strait, args ...string) []string {
	t.Helper()
	var out, errOut strings.Builder
	if code := run(append([]string{"__complete"}, args...), strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if lines[len(lines)-1] != ":4" {
		t.Fatalf("__complete %v: %q", args, out.String())
	}
	return lines[:len(lines)-1]
}

func configValue(cs []api.LinkConfigData, name string) string {
	for _, c := range cs {
		if c.Name == name {
			return c.Value
		}
	}
	return ""
}

// TestCompletionNeverHangs completes against a server that is not there
// and one that never answers: no candidates, at once or within the
// completion timeout.
func TestCompletionNeverHangs(t *testing.T) {
	cliEnv(t)
	hung, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer hung.Close()
	go func() {
		for {
			c, err := hung.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	old := completionTimeout
	completionTimeout = 300 * time.Millisecond
	defer func() { completionTimeout = old }()
	for _, url := range []string{"http://" + testutil.FreeAddr(t), "http://" + hung.Addr().String()} {
		start := time.Now()
		got := completeNoURL(t, nil, "mirror", "pause", "--url", url, "--link", "demo", "")
		if len(got) != 0 || time.Since(start) > 5*time.Second {
			t.Errorf("completing against %s: %q after %v", url, got, time.Since(start))
		}
	}
}
