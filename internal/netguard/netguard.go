// Package netguard decides which network addresses Strait may connect to
// on a link's behalf. Whoever may create or change a link chooses its
// bootstrap servers and token endpoint; without a guard, Strait would dial
// whatever they name (the cloud metadata service at 169.254.169.254, an
// internal admin port) and tell them from the error what answered there.
//
// Every address is checked after name resolution, at every dial (brokers
// discovered through metadata included), and the connection is made to the
// address that was checked, so that a name cannot resolve to an allowed
// address for the check and to another one for the dial.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// DefaultDeny are the networks a link may not reach unless configured
// otherwise: link-local addresses, where cloud metadata services answer
// (169.254.169.254 and fd00:ec2::254 among them).
var DefaultDeny = []string{"169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"}

// Guard allows or denies addresses. The zero value allows everything.
type Guard struct {
	allow, deny []*net.IPNet
}

// ErrDenied is wrapped by the error of a denied address.
var ErrDenied = errors.New("address not allowed for links")

// New builds a guard from CIDR lists: an address in deny is refused; if
// allow is not empty, an address outside it is refused too.
func New(allow, deny []string) (*Guard, error) {
	g := &Guard{}
	for _, l := range []struct {
		in  []string
		out *[]*net.IPNet
	}{{allow, &g.allow}, {deny, &g.deny}} {
		for _, c := range l.in {
			c = strings.TrimSpace(c)
			if c == "" {
				continue
			}
			if !strings.Contains(c, "/") {
				if ip := net.ParseIP(c); ip != nil && ip.To4() != nil {
					c += "/32"
				} else {
					c += "/128"
				}
			}
			_, n, err := net.ParseCIDR(c)
			if err != nil {
				return nil, fmt.Errorf("network %q: %w", c, err)
			}
			*l.out = append(*l.out, n)
		}
	}
	return g, nil
}

// Check refuses an address the guard does not allow.
func (g *Guard) Check(ip net.IP) error {
	if g == nil {
		return nil
	}
	for _, n := range g.deny {
		if n.Contains(ip) {
			return fmt.Errorf("%w: %s is in %s", ErrDenied, ip, n)
		}
	}
	if len(g.allow) == 0 {
		return nil
	}
	for _, n := range g.allow {
		if n.Contains(ip) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s is in no allowed network", ErrDenied, ip)
}

// DialContext resolves addr, checks every address it resolves to, and
// dials the first one allowed with d.
func (g *Guard) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		ips, err := net.DefaultResolver.LookupIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		var denied error
		for _, ip := range ips {
			if err := g.Check(ip); err != nil {
				denied = err
				continue
			}
			return d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		}
		if denied == nil {
			denied = fmt.Errorf("%s resolves to no address", host)
		}
		return nil, denied
	}
}
