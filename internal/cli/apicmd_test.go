package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// strait is a daemon on two in-process clusters, for the link and mirror
// commands to talk to.
type strait struct {
	url     string
	srcAddr string
	client  *client.Client
}

// startStrait starts a daemon between two kfake clusters. The source has
// topics orders and payments, 3 partitions each, with 5, 10 and 15
// records in partitions 0, 1 and 2.
func startStrait(t *testing.T) *strait {
	t.Helper()
	src := testutil.NewCluster(t, kfake.ClusterID("source-cluster"))
	dst := testutil.NewCluster(t, kfake.ClusterID("destination-cluster"))
	produceKnown(t, src, "orders", "payments")
	s := startDaemonOn(t, dst)
	s.srcAddr = src.ListenAddrs()[0]
	return s
}

// produceKnown creates the topics on c, with 3 partitions holding 5, 10
// and 15 records.
func produceKnown(t *testing.T, c *kfake.Cluster, topics ...string) {
	t.Helper()
	cl := testutil.Client(t, c.ListenAddrs(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for _, topic := range topics {
		testutil.CreateTopic(t, cl, topic, 3, nil)
		var recs []*kgo.Record
		for p := range int32(3) {
			for i := range 5 * (p + 1) {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "%s %d/%d", topic, p, i)})
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		cancel()
	}
}

// startDaemonOn starts a daemon whose destination is c and waits until it
// serves the API.
func startDaemonOn(t *testing.T, c *kfake.Cluster) *strait {
	t.Helper()
	d := daemontest.Start(t, daemontest.Config(c), slog.New(slog.DiscardHandler), daemon.Options{MetadataInterval: 200 * time.Millisecond})
	s := &strait{url: "http://" + d.Addr()}
	testutil.WaitFor(t, 30*time.Second, "the daemon ready", func() error {
		resp, err := http.Get(s.url + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	var err error
	if s.client, err = client.New(client.Config{URL: s.url}); err != nil {
		t.Fatal(err)
	}
	return s
}

// cliEnv keeps the user's CLI settings out of a test.
func cliEnv(t *testing.T) {
	t.Helper()
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	for _, name := range []string{envURL, envAPIKey, envAPISecret, envToken} {
		t.Setenv(name, "")
		os.Unsetenv(name)
	}
}

// tty is stdin that says it is a terminal.
type tty struct{ io.Reader }

func (tty) IsTerminal() bool { return true }

// result is what a command line printed and its exit code.
type result struct {
	out, err string
	code     int
}

// cli runs a command line against s (--url is added) with stdin in.
func (s *strait) cli(t *testing.T, in io.Reader, args ...string) result {
	t.Helper()
	if in == nil {
		in = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code := run(append(args, "--url", s.url), in, &out, &errOut)
	return result{out: out.String(), err: errOut.String(), code: code}
}

// ok runs a command line that must succeed and returns its stdout.
func (s *strait) ok(t *testing.T, args ...string) string {
	t.Helper()
	r := s.cli(t, nil, args...)
	if r.code != 0 {
		t.Fatalf("strait %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.out, r.err)
	}
	return r.out
}

var epochMs = regexp.MustCompile(`\b1[0-9]{12}\b`)

// mask replaces what changes from run to run with placeholders of the
// same width, so that tables keep their shape: times in ms, the source's
// address, link ids.
func (s *strait) mask(t *testing.T, text string) string {
	t.Helper()
	text = epochMs.ReplaceAllString(text, "1700000000000")
	if s.srcAddr != "" {
		text = strings.ReplaceAll(text, s.srcAddr, placeholder("<source>", len(s.srcAddr)))
	}
	if links, err := s.client.ListLinks(context.Background()); err == nil {
		for _, l := range links {
			for _, id := range []string{l.ClusterLinkID, l.LinkID} {
				if id != "" {
					text = strings.ReplaceAll(text, id, placeholder("<"+l.LinkName+"-id>", len(id)))
				}
			}
		}
	}
	return text
}

func placeholder(label string, n int) string {
	if len(label) >= n {
		return label[:n]
	}
	return label + strings.Repeat("~", n-len(label))
}

// golden compares got with testdata/name.golden, or writes it with
// -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from %s\n--- got:\n%s\n--- want:\n%s", name, path, got, want)
	}
}

// roundTrip checks that the JSON and the YAML output of a command parse
// back into want.
func roundTrip[T any](t *testing.T, s *strait, want T, args ...string) {
	t.Helper()
	for _, format := range []string{"json", "yaml"} {
		out := s.ok(t, append(args, "-o", format)...)
		var got T
		var err error
		if format == "json" {
			err = json.Unmarshal([]byte(out), &got)
		} else {
			err = yaml.Unmarshal([]byte(out), &got)
		}
		if err != nil {
			t.Fatalf("%s -o %s: %v\n%s", strings.Join(args, " "), format, err, out)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s -o %s parses back into\n%+v\nwant\n%+v", strings.Join(args, " "), format, got, want)
		}
	}
}

// waitMirror waits until the mirror is ACTIVE and holds every source
// record.
func (s *strait) waitMirror(t *testing.T, link, topic string) api.MirrorData {
	t.Helper()
	var m api.MirrorData
	testutil.WaitFor(t, 30*time.Second, topic+" caught up", func() error {
		var err error
		if m, err = s.client.GetMirror(context.Background(), link, topic, false); err != nil {
			return err
		}
		if m.MirrorStatus != "ACTIVE" || len(m.MirrorLags) != 3 {
			return fmt.Errorf("%s with %d partitions", m.MirrorStatus, len(m.MirrorLags))
		}
		for _, l := range m.MirrorLags {
			if l.Lag != 0 || l.LastSourceFetchOffset != 5*int64(l.Partition+1) {
				return fmt.Errorf("partition %d: lag %d, source at %d", l.Partition, l.Lag, l.LastSourceFetchOffset)
			}
		}
		return nil
	})
	return m
}

func (s *strait) status(t *testing.T, link, topic string) string {
	t.Helper()
	m, err := s.client.GetMirror(context.Background(), link, topic, false)
	if err != nil {
		t.Fatal(err)
	}
	return m.MirrorStatus
}
