package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/strait-dev/strait/internal/buildinfo"
)

// goreleaser is the part of .goreleaser.yaml the tests read.
type goreleaser struct {
	Builds []struct {
		ID      string   `yaml:"id"`
		Main    string   `yaml:"main"`
		Env     []string `yaml:"env"`
		GOOS    []string `yaml:"goos"`
		GOARCH  []string `yaml:"goarch"`
		Flags   []string `yaml:"flags"`
		LDFlags []string `yaml:"ldflags"`
	} `yaml:"builds"`
	Archives []struct {
		Files []string `yaml:"files"`
	} `yaml:"archives"`
	NFPMs []struct {
		Contents []struct {
			Src string `yaml:"src"`
		} `yaml:"contents"`
	} `yaml:"nfpms"`
}

func readGoreleaser(t *testing.T) goreleaser {
	t.Helper()
	var g goreleaser
	if err := yaml.Unmarshal(readRepoFile(t, ".goreleaser.yaml"), &g); err != nil {
		t.Fatalf(".goreleaser.yaml: %v", err)
	}
	if len(g.Builds) != 1 {
		t.Fatalf(".goreleaser.yaml has %d builds, want 1", len(g.Builds))
	}
	return g
}

// goreleaser's template fields the ldflags use, and what the test puts in.
var templateValues = map[string]string{
	"Version":    "1.2.3",
	"FullCommit": "0123456789abcdef0123456789abcdef01234567",
	"Date":       "2026-01-02T03:04:05Z",
}

var templateField = regexp.MustCompile(`{{\s*\.(\w+)\s*}}`)

// renderLDFlags fills goreleaser's {{ .Field }}s with templateValues.
func renderLDFlags(t *testing.T, s string) string {
	t.Helper()
	return templateField.ReplaceAllStringFunc(s, func(m string) string {
		f := templateField.FindStringSubmatch(m)[1]
		v, ok := templateValues[f]
		if !ok {
			t.Fatalf("ldflags use {{ .%s }}, which this test does not know", f)
		}
		return v
	})
}

// TestGoreleaserConfig: the release builds the four platforms, statically,
// stamped the way buildinfo reads, and ships files that exist.
func TestGoreleaserConfig(t *testing.T) {
	g := readGoreleaser(t)
	b := g.Builds[0]
	if b.Main != "./cmd/strait" {
		t.Errorf("main %q, want ./cmd/strait", b.Main)
	}
	if !contains(b.Env, "CGO_ENABLED=0") {
		t.Errorf("env %q lacks CGO_ENABLED=0: the binaries must be static", b.Env)
	}
	for _, want := range []string{"linux", "darwin"} {
		if !contains(b.GOOS, want) {
			t.Errorf("goos %q lacks %s", b.GOOS, want)
		}
	}
	for _, want := range []string{"amd64", "arm64"} {
		if !contains(b.GOARCH, want) {
			t.Errorf("goarch %q lacks %s", b.GOARCH, want)
		}
	}
	if len(b.LDFlags) != 1 {
		t.Fatalf("ldflags %q, want one line", b.LDFlags)
	}
	got := renderLDFlags(t, b.LDFlags[0])
	want := buildinfo.LDFlags("v"+templateValues["Version"], templateValues["FullCommit"], templateValues["Date"])
	if got != want {
		t.Errorf("ldflags render as\n%s\nwant buildinfo.LDFlags:\n%s", got, want)
	}
	var files []string
	for _, a := range g.Archives {
		files = append(files, a.Files...)
	}
	for _, n := range g.NFPMs {
		for _, c := range n.Contents {
			files = append(files, c.Src)
		}
	}
	if len(files) == 0 {
		t.Error("no archive or package files listed")
	}
	for _, f := range files {
		if _, err := os.Stat(filepath.Join(repoRoot(t), f)); err != nil {
			t.Errorf("the release ships %s: %v", f, err)
		}
	}
}

// TestReleaseTargetsBuild cross-compiles every target of .goreleaser.yaml
// with its environment, flags and (rendered) ldflags, as goreleaser would.
// From a cold build cache this takes 35 to 100 s a target on two cores; a
// warm cache makes it a few seconds in all.
func TestReleaseTargetsBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: cross-compiling the release targets is skipped")
	}
	dependOnSources(t)
	b := readGoreleaser(t).Builds[0]
	ldflags := renderLDFlags(t, b.LDFlags[0])
	for _, goos := range b.GOOS {
		for _, goarch := range b.GOARCH {
			t.Run(goos+"/"+goarch, func(t *testing.T) {
				args := append([]string{"build"}, b.Flags...)
				args = append(args, "-ldflags", ldflags, "-o", os.DevNull, b.Main)
				cmd := exec.Command("go", args...)
				cmd.Dir = repoRoot(t)
				cmd.Env = append(os.Environ(), b.Env...)
				cmd.Env = append(cmd.Env, "GOOS="+goos, "GOARCH="+goarch)
				start := time.Now()
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("go %s (GOOS=%s GOARCH=%s %s): %v\n%s", strings.Join(args, " "), goos, goarch, strings.Join(b.Env, " "), err, out)
				}
				t.Logf("built in %s", time.Since(start).Round(time.Millisecond))
			})
		}
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
