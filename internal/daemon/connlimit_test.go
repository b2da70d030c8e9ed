package daemon

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestConnectionLimits is the attack: one address opens connections and
// keeps them. Past its share it is answered 503 at once, another address
// is not affected while there is room, and a closed connection frees its
// place.
func TestConnectionLimits(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := newLimitListener(ln, 3, 2)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) }), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ll) }()
	defer srv.Close()
	addr := ln.Addr().String()
	dial := func(local string) net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	status := func(c net.Conn) string {
		t.Helper()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
			return "write failed: " + err.Error()
		}
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			return "read failed: " + err.Error()
		}
		return strings.TrimSpace(line)
	}
	a1, a2 := dial("127.0.0.1"), dial("127.0.0.1")
	if s := status(a1); s != "HTTP/1.1 200 OK" {
		t.Fatalf("first connection: %s", s)
	}
	status(a2)
	a3 := dial("127.0.0.1")
	if s := status(a3); !strings.Contains(s, "503") {
		t.Fatalf("a third connection from one address: %s, want 503", s)
	}
	b1 := dial("127.0.0.2")
	if s := status(b1); s != "HTTP/1.1 200 OK" {
		t.Fatalf("another address: %s", s)
	}
	b2 := dial("127.0.0.2")
	if s := status(b2); !strings.Contains(s, "503") {
		t.Fatalf("past the total: %s, want 503", s)
	}
	a1.Close()
	var s string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		a4 := dial("127.0.0.1")
		s = status(a4)
		a4.Close()
		if s == "HTTP/1.1 200 OK" {
			break
		}
		time.Sleep(20 * time.Millisecond) // polling: the server sees the close soon
	}
	if s != "HTTP/1.1 200 OK" {
		t.Fatalf("after a connection closed: %s", s)
	}
	for _, c := range []net.Conn{a2, a3, b1, b2} {
		c.Close()
	}
}
