package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/strait-dev/strait/internal/testutil"
)

// kcatRead reads one partition from its start to its end with kcat
// (librdkafka), one line per record: offset, timestamp, key, headers, value.
func kcatRead(t *testing.T, kcat, broker, topic string, partition int32) []string {
	t.Helper()
	cmd := exec.Command(kcat, "-C", "-b", broker, "-t", topic, "-p", strconv.Itoa(int(partition)),
		"-o", "beginning", "-e", "-q", "-Z", "-f", `%o|%T|%k|%h|%S|%s\n`)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kcat %s[%d]: %v: %s", topic, partition, err, stderr.String())
	}
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	if len(lines) == 1 && lines[0] == "" {
		return nil
	}
	return lines
}

// TestMirrorReadByKcat reads the mirror with an independent client, kcat,
// and compares it with the source read by kcat too: offsets, timestamps,
// keys, headers and values, in all codecs.
func TestMirrorReadByKcat(t *testing.T) {
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat is not installed (Debian package kcat); .ci/run installs it")
	}
	e := newEnv(t)
	testutil.CreateTopic(t, e.srcCl, "k", 3, nil)
	produced := produceMixed(t, e.src.ListenAddrs(), "k", 300)
	e.createLink("l1", nil)
	e.createMirror("l1", "k")
	e.waitCaughtUp("k", "k")
	total := 0
	for p := int32(0); p < 3; p++ {
		src := kcatRead(t, kcat, e.src.ListenAddrs()[0], "k", p)
		dst := kcatRead(t, kcat, e.dst.ListenAddrs()[0], "k", p)
		if len(src) != len(dst) {
			t.Fatalf("partition %d: kcat reads %d records at the source, %d on the mirror", p, len(src), len(dst))
		}
		for i := range src {
			if src[i] != dst[i] {
				t.Fatalf("partition %d record %d differs:\nsource %q\nmirror %q", p, i, src[i], dst[i])
			}
			if want := fmt.Sprintf("%d|", i); !strings.HasPrefix(dst[i], want) {
				t.Fatalf("partition %d record %d: kcat reports %q, want offset %d", p, i, dst[i][:min(20, len(dst[i]))], i)
			}
		}
		total += len(dst)
	}
	if total != produced {
		t.Fatalf("kcat read %d records, produced %d", total, produced)
	}
}
