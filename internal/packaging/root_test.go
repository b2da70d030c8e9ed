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
