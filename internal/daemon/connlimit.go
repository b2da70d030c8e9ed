package daemon

import (
	"net"
	"sync"
	"syscall"
	"time"
)

// Connection limits. Every HTTP connection holds a file descriptor, and so
// does every connection to Kafka: a client opening thousands of
// connections would leave none for the clusters. The listener takes at
// most a total number of connections, and at most a number from one
// address; one more is answered 503 and closed at once. The total is kept
// under half the process's descriptor limit, the rest for Kafka.

// The limits of the REST listener.
const (
	maxConnections           = 1024
	maxConnectionsPerAddress = 128
)

// limitListener caps the connections a listener hands out.
type limitListener struct {
	net.Listener
	total, perAddr int

	mu     sync.Mutex
	open   int
	byAddr map[string]int
}

func newLimitListener(ln net.Listener, total, perAddr int) *limitListener {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur > 0 && rl.Cur < uint64(2*total) {
		total = max(1, int(rl.Cur/2))
	}
	return &limitListener{Listener: ln, total: total, perAddr: perAddr, byAddr: map[string]int{}}
}

// refusal is what a connection over the limits is told.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 73\r\n\r\n" +
	`{"error_code":503,"message":"Too many connections; try again in a moment"}`

// Accept hands out connections within the limits.
func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		l.mu.Lock()
		if l.open >= l.total || l.byAddr[host] >= l.perAddr {
			l.mu.Unlock()
			go func() {
				_ = c.SetWriteDeadline(time.Now().Add(time.Second))
				_, _ = c.Write([]byte(refusal))
				_ = c.Close()
			}()
			continue
		}
		l.open++
		l.byAddr[host]++
		l.mu.Unlock()
		return &limitedConn{Conn: c, release: func() { l.release(host) }}, nil
	}
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if l.byAddr[host]--; l.byAddr[host] <= 0 {
		delete(l.byAddr, host)
	}
}

// limitedConn gives its place back once, when closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
