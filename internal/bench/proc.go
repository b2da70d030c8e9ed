package bench

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clkTck is USER_HZ, the unit of utime and stime in /proc/<pid>/stat. It
// is 100 on every Linux architecture Go supports; reading it with
// sysconf(_SC_CLK_TCK) would need cgo.
const clkTck = 100

// proc is a child process the benchmark started: a cluster or a copier.
// Its output goes to a log file so a failure can be diagnosed afterwards.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited and been reaped
	waitErr error         // Wait's result, set before done is closed
}

// startProc starts bin with args, with stdout and stderr appended to
// logDir/name.log.
func startProc(name, logDir, bin string, args ...string) (*proc, error) {
	return startProcEnv(name, logDir, nil, bin, args...)
}

// startProcEnv is startProc with env (KEY=value) added to this process's
// environment.
func startProcEnv(name, logDir string, env []string, bin string, args ...string) (*proc, error) {
	logPath := filepath.Join(logDir, name+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = lf, lf
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = childAttr()
	fmt.Fprintf(lf, "# %s %s %s\n", strings.Join(env, " "), bin, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		lf.Close()
		close(p.done)
	}()
	return p, nil
}

// pid is the process id.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has ended, and if so an error that
// says how, with the end of its log.
func (p *proc) exited() error {
	select {
	case <-p.done:
		return fmt.Errorf("%s (pid %d) exited: %v; log %s:\n%s", p.name, p.pid(), p.waitErr, p.logPath, p.logTail(2000))
	default:
		return nil
	}
}

// stop ends the process by its PID: SIGTERM, then SIGKILL after grace. It
// waits until the process is reaped.
func (p *proc) stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return
	case <-time.After(grace):
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// logTail returns the last n bytes of the process's log.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// usage is what the kernel says a process has consumed so far.
type usage struct {
	// CPUSeconds is user plus system time over all threads.
	CPUSeconds float64
	// PeakRSSBytes is the resident set's high-water mark (VmHWM).
	PeakRSSBytes int64
}

// usage reads /proc/<pid>/stat and /proc/<pid>/status. Call it while the
// process is alive: an exited one has no VmHWM.
func (p *proc) usage() (usage, error) {
	return readUsage(p.pid())
}

func readUsage(pid int) (usage, error) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return usage{}, fmt.Errorf("read stat of pid %d: %w", pid, err)
	}
	ticks, err := parseStatTicks(stat)
	if err != nil {
		return usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return usage{}, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	hwm, err := parseStatusKB(status, "VmHWM")
	if err != nil {
		return usage{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return usage{CPUSeconds: float64(ticks) / clkTck, PeakRSSBytes: hwm * 1024}, nil
}

// parseStatTicks returns utime+stime, in clock ticks, from the contents of
// /proc/<pid>/stat. The command name (field 2) is in parentheses and may
// itself hold spaces and parentheses, so fields are counted from the last
// ')'.
func parseStatTicks(stat []byte) (uint64, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("stat: no ')' after the command name")
	}
	// After ")" come fields 3 (state) onwards; utime and stime are 14
	// and 15, so indexes 11 and 12 here.
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	utime, err := strconv.ParseUint(f[11], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: utime: %w", err)
	}
	stime, err := strconv.ParseUint(f[12], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stat: stime: %w", err)
	}
	return utime + stime, nil
}

// parseStatusKB returns the value of a "Key:   123 kB" line of
// /proc/<pid>/status.
func parseStatusKB(status []byte, key string) (int64, error) {
	for line := range strings.SplitSeq(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || k != key {
			continue
		}
		f := strings.Fields(v)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: %s: unexpected value %q", key, v)
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("status: %s: %w", key, err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("status: no %s line", key)
}

// freeBlock returns a 127.0.0.1 address whose port and the n-1 after it
// were free a moment ago: a cluster of n brokers listens on consecutive
// ports. Ports are tried below the kernel's usual ephemeral range, where
// outgoing connections do not take them.
func freeBlock(n int) (string, error) {
	if n <= 1 {
		return freeAddr()
	}
	for range 100 {
		base := 20000 + rand.IntN(12000)
		var lns []net.Listener
		for i := range n {
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			lns = append(lns, ln)
		}
		for _, ln := range lns {
			ln.Close()
		}
		if len(lns) == n {
			return fmt.Sprintf("127.0.0.1:%d", base), nil
		}
	}
	return "", fmt.Errorf("no %d consecutive free ports found", n)
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago. The port is released before returning, so another process could
// take it first; on a quiet machine that does not happen.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}
