package bench

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// openFDs counts the open file descriptors of a process.
func openFDs(pid int) (int, error) {
	es, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, fmt.Errorf("list descriptors of pid %d: %w", pid, err)
	}
	return len(es), nil
}

// rssBytes is a process's resident set now (VmRSS).
func rssBytes(pid int) (int64, error) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of pid %d: %w", pid, err)
	}
	kb, err := parseStatusKB(status, "VmRSS")
	if err != nil {
		return 0, fmt.Errorf("pid %d: %w", pid, err)
	}
	return kb * 1024, nil
}

// tcpPeers counts a process's established TCP connections by remote
// address ("127.0.0.1:9092"). /proc/<pid>/net/tcp lists every socket of
// the process's network namespace, so only the sockets among the process's
// own descriptors are counted.
func tcpPeers(pid int) (map[string]int, error) {
	inodes, err := socketInodes(pid)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, f := range []string{"tcp", "tcp6"} {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/%s", pid, f))
		if err != nil {
			if os.IsNotExist(err) {
				continue
			}
			return nil, fmt.Errorf("read %s of pid %d: %w", f, pid, err)
		}
		if err := countPeers(b, inodes, out); err != nil {
			return nil, fmt.Errorf("%s of pid %d: %w", f, pid, err)
		}
	}
	return out, nil
}

// socketInodes returns the inodes of the sockets among a process's
// descriptors (links "socket:[123]").
func socketInodes(pid int) (map[string]bool, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	es, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list descriptors of pid %d: %w", pid, err)
	}
	out := map[string]bool{}
	for _, e := range es {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if in, ok := strings.CutPrefix(l, "socket:["); ok {
			out[strings.TrimSuffix(in, "]")] = true
		}
	}
	return out, nil
}

// countPeers adds the established connections of a /proc/net/tcp table
// whose inode is in inodes to out, by remote address.
func countPeers(table []byte, inodes map[string]bool, out map[string]int) error {
	sc := bufio.NewScanner(bytes.NewReader(table))
	first := true
	for sc.Scan() {
		if first { // the header
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 {
			continue
		}
		if f[3] != "01" || !inodes[f[9]] { // 01 is ESTABLISHED
			continue
		}
		addr, err := parseProcAddr(f[2])
		if err != nil {
			return err
		}
		out[addr]++
	}
	return sc.Err()
}

// parseProcAddr turns a /proc/net/tcp address ("0100007F:1F90", the IP
// as 32-bit words in host order, little-endian here) into "127.0.0.1:8080".
func parseProcAddr(s string) (string, error) {
	h, p, ok := strings.Cut(s, ":")
	if !ok {
		return "", fmt.Errorf("address %q: no port", s)
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", s, err)
	}
	raw, err := hex.DecodeString(h)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return "", fmt.Errorf("address %q: bad IP", s)
	}
	ip := make(net.IP, len(raw))
	for i := 0; i < len(raw); i += 4 {
		ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	if v4 := ip.To4(); v4 != nil {
		ip = v4
	}
	return net.JoinHostPort(ip.String(), strconv.FormatUint(port, 10)), nil
}
