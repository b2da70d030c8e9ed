package netguard

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
)

func TestGuard(t *testing.T) {
	def, err := New(nil, DefaultDeny)
	if err != nil {
		t.Fatal(err)
	}
	only, err := New([]string{"10.0.0.0/8", "127.0.0.1"}, DefaultDeny)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		g     *Guard
		ip    string
		allow bool
	}{
		{def, "169.254.169.254", false}, // cloud metadata
		{def, "169.254.1.1", false},
		{def, "fe80::1", false},
		{def, "fd00:ec2::254", false},
		{def, "127.0.0.1", true},
		{def, "10.1.2.3", true},
		{only, "10.1.2.3", true},
		{only, "127.0.0.1", true},
		{only, "127.0.0.2", false},
		{only, "192.168.1.1", false},
		{only, "169.254.169.254", false},
		{nil, "169.254.169.254", true},
	}
	for _, tc := range cases {
		err := tc.g.Check(net.ParseIP(tc.ip))
		if (err == nil) != tc.allow {
			t.Errorf("%s: %v, want allowed %v", tc.ip, err, tc.allow)
		}
		if err != nil && !errors.Is(err, ErrDenied) {
			t.Errorf("%s: %v is not ErrDenied", tc.ip, err)
		}
	}
	if _, err := New([]string{"not-a-network"}, nil); err == nil {
		t.Fatal("a bad network was accepted")
	}
}

// TestDialChecksTheAddressDialed: a name is resolved and the address that
// was checked is the one dialed.
func TestDialChecksTheAddressDialed(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	deny, _ := New(nil, []string{"127.0.0.0/8", "::1/128"})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := deny.DialContext(&net.Dialer{})(ctx, "tcp", "localhost:"+port); !errors.Is(err, ErrDenied) {
		t.Fatalf("dial of a denied name: %v", err)
	}
	allow, _ := New(nil, DefaultDeny)
	c, err := allow.DialContext(&net.Dialer{})(ctx, "tcp", "localhost:"+port)
	if err != nil {
		t.Fatalf("dial of an allowed name: %v", err)
	}
	c.Close()
}

// FuzzGuard builds guards from arbitrary network lists and checks
// arbitrary addresses: no panic, a denied network always wins, and an
// address outside a non-empty allow list is refused.
func FuzzGuard(f *testing.F) {
	f.Add("10.0.0.0/8,127.0.0.1", "169.254.0.0/16", []byte{169, 254, 169, 254})
	f.Add("", "fe80::/10", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("::/0", "0.0.0.0/0", []byte{127, 0, 0, 1})
	f.Fuzz(func(t *testing.T, allow, deny string, raw []byte) {
		g, err := New(strings.Split(allow, ","), strings.Split(deny, ","))
		if err != nil {
			return
		}
		if len(raw) != 4 && len(raw) != 16 {
			return
		}
		ip := net.IP(raw)
		err = g.Check(ip)
		for _, n := range g.deny {
			if n.Contains(ip) && err == nil {
				t.Fatalf("%s is in denied %s but allowed", ip, n)
			}
		}
		if err == nil && len(g.allow) > 0 {
			in := false
			for _, n := range g.allow {
				in = in || n.Contains(ip)
			}
			if !in {
				t.Fatalf("%s is in no allowed network but allowed", ip)
			}
		}
	})
}
