// Package readme checks that the README's commands work as written.
package readme

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestTryItSection runs the README's "try it end to end" commands exactly
// as they are written there (the shell block between the readme-try
// markers), in a copy of the repository, and checks the mirror they end
// with: ACTIVE, all records copied. The commands start clusters and the
// daemon in the background; they are stopped afterwards by the process
// group the test started.
func TestTryItSection(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs Strait")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed; .ci/run installs it")
	}
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	script := extract(t, string(readme))
	// The commands build ./cmd/strait and write try/: run them in a copy
	// of the module, so the checkout stays as it is.
	work := t.TempDir()
	cp := exec.Command("cp", "-r", filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"), filepath.Join(root, "cmd"), filepath.Join(root, "internal"), filepath.Join(root, "api"), work)
	if out, err := cp.CombinedOutput(); err != nil {
		t.Fatalf("copy the module: %v: %s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = work
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	// The background processes are in the script's process group.
	if cmd.Process != nil {
		pgid := cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		for deadline := time.Now().Add(20 * time.Second); syscall.Kill(-pgid, 0) == nil; {
			if time.Now().After(deadline) {
				_ = syscall.Kill(-pgid, syscall.SIGKILL)
			}
			time.Sleep(50 * time.Millisecond) // polling for the group to exit
		}
	}
	if err != nil {
		logs, _ := exec.Command("sh", "-c", "tail -n 20 "+filepath.Join(work, "try")+"/*.log").CombinedOutput()
		t.Fatalf("the README's commands failed: %v\n%s\nlogs:\n%s", err, out.String(), logs)
	}
	last := out.String()
	if !strings.Contains(last, `"mirror_status":"ACTIVE"`) || strings.Count(last, `"lag":0`) != 3 {
		t.Fatalf("the README's last command shows no ACTIVE mirror with lag 0 on its 3 partitions:\n%s", last)
	}
}

// extract returns the shell block between the readme-try markers.
func extract(t *testing.T, readme string) string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "<!-- readme-try:start -->")
	if !ok {
		t.Fatal("the README has no readme-try section")
	}
	block, _, ok := strings.Cut(rest, "<!-- readme-try:end -->")
	if !ok {
		t.Fatal("the README's readme-try section does not end")
	}
	block = strings.TrimSpace(block)
	block = strings.TrimPrefix(block, "```sh")
	block = strings.TrimSuffix(block, "```")
	return block
}
