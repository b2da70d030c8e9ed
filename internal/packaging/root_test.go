package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	rootOnce sync.Once
	rootDir  string
	rootErr  error
)

// repoRoot is the directory of Strait's go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	rootOnce.Do(func() {
		var b []byte
		b, rootErr = exec.Command("go", "env", "GOMOD").Output()
		rootDir = filepath.Dir(strings.TrimSpace(string(b)))
	})
	if rootErr != nil {
		t.Fatalf("go env GOMOD: %v", rootErr)
	}
	return rootDir
}

// readRepoFile reads a file by its path in the repository.
func readRepoFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dependOnSources makes the calling test's cached result depend on every
// Go source file of the module and on go.mod and go.sum. go test caches a
// result by the test binary and the files the test itself opened; a test
// that runs go build on the module must also be run again when a file it
// did not open changes.
func dependOnSources(t *testing.T) {
	t.Helper()
	dependOn(t, ".", func(n string) bool { return strings.HasSuffix(n, ".go") || n == "go.mod" || n == "go.sum" })
}

// dependOn makes the calling test's cached result depend on the files
// under dir (a path in the repository) whose names match: see
// dependOnSources.
func dependOn(t *testing.T, dir string, match func(name string) bool) {
	t.Helper()
	start := filepath.Join(repoRoot(t), dir)
	err := filepath.WalkDir(start, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); p != start && (strings.HasPrefix(n, ".") || n == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if match(d.Name()) {
			_, err = os.Stat(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
