// Package kafkaclient builds franz-go clients for the clusters Strait talks
// to, from connection settings (bootstrap, TLS, SASL), and holds the small
// admin helpers several packages share.
package kafkaclient

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/strait-dev/strait/internal/netguard"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/oauth"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Settings says how to reach and authenticate to one cluster.
type Settings struct {
	// Bootstrap lists host:port seed brokers.
	Bootstrap []string
	// Protocol is PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL; empty means
	// PLAINTEXT.
	Protocol string
	// SASLMechanism is PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or
	// OAUTHBEARER, used with a SASL_* protocol.
	SASLMechanism string
	SASLUser      string
	SASLPassword  string
	// OAuth configures OAUTHBEARER.
	OAuth *OAuth
	// CAPEM, if set, replaces the system roots for verifying the brokers.
	CAPEM string
	// CertPEM and KeyPEM, if set, are presented as a client certificate.
	CertPEM string
	KeyPEM  string
	// SkipHostnameVerification disables checking the broker's name against
	// its certificate (ssl.endpoint.identification.algorithm="").
	SkipHostnameVerification bool
	// RequestTimeout bounds each request; zero means 30s.
	RequestTimeout time.Duration
	// ClientID names the client in broker logs.
	ClientID string
	// Guard, if set, checks every address dialed: brokers and the OAuth
	// token endpoint (see internal/netguard).
	Guard *netguard.Guard
}

// Options returns the franz-go options for s.
func (s Settings) Options(log *slog.Logger) ([]kgo.Opt, error) {
	if len(s.Bootstrap) == 0 {
		return nil, errors.New("no bootstrap servers")
	}
	seeds := make([]string, len(s.Bootstrap))
	for i, b := range s.Bootstrap {
		if j := strings.Index(b, "://"); j >= 0 {
			b = b[j+3:]
		}
		seeds[i] = b
	}
	timeout := s.RequestTimeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	clientID := s.ClientID
	if clientID == "" {
		clientID = "strait"
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(seeds...),
		kgo.ClientID(clientID),
		kgo.DialTimeout(10 * time.Second),
		kgo.RequestTimeoutOverhead(timeout),
		kgo.RetryTimeout(timeout),
		kgo.MetadataMinAge(500 * time.Millisecond),
		kgo.MetadataMaxAge(30 * time.Second),
	}
	if log != nil {
		opts = append(opts, kgo.WithLogger(newLogger(log)))
	}
	proto := strings.ToUpper(s.Protocol)
	switch proto {
	case "", "PLAINTEXT":
	case "SSL", "SASL_SSL", "SASL_PLAINTEXT":
	default:
		return nil, fmt.Errorf("unsupported security protocol %q", s.Protocol)
	}
	var tc *tls.Config
	if proto == "SSL" || proto == "SASL_SSL" {
		var err error
		if tc, err = s.tlsConfig(); err != nil {
			return nil, err
		}
	}
	switch {
	case s.Guard != nil:
		opts = append(opts, kgo.Dialer(guardedDial(s.Guard, tc)))
	case tc != nil:
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if strings.HasPrefix(proto, "SASL_") {
		mech, err := s.Mechanism()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(mech))
	}
	return opts, nil
}

// guardedDial dials brokers through g, with TLS when tc is set.
func guardedDial(g *netguard.Guard, tc *tls.Config) func(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := g.DialContext(&net.Dialer{Timeout: 10 * time.Second})
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil || tc == nil {
			return conn, err
		}
		c := tc.Clone()
		if c.ServerName == "" {
			c.ServerName, _, _ = net.SplitHostPort(addr)
		}
		tconn := tls.Client(conn, c)
		if err := tconn.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tconn, nil
	}
}

// Mechanism returns the SASL mechanism of s.
func (s Settings) Mechanism() (sasl.Mechanism, error) {
	switch s.SASLMechanism {
	case "PLAIN":
		return plain.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: s.SASLUser, Pass: s.SASLPassword}.AsSha512Mechanism(), nil
	case "OAUTHBEARER":
		if s.OAuth == nil || s.OAuth.TokenURL == "" {
			return nil, errors.New("OAUTHBEARER needs a token endpoint URL")
		}
		if err := ValidTokenURL(s.OAuth.TokenURL); err != nil {
			return nil, fmt.Errorf("OAuth token endpoint URL %w", err)
		}
		timeout := s.RequestTimeout
		if timeout <= 0 {
			timeout = 30 * time.Second
		}
		return oauth.Oauth(newTokenSource(*s.OAuth, timeout, s.Guard).auth), nil
	}
	return nil, fmt.Errorf("unsupported SASL mechanism %q", s.SASLMechanism)
}

func (s Settings) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CAPEM != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(s.CAPEM)) {
			return nil, errors.New("no certificate in the trust store PEM")
		}
		tc.RootCAs = pool
	}
	if s.CertPEM != "" || s.KeyPEM != "" {
		cert, err := tls.X509KeyPair([]byte(s.CertPEM), []byte(s.KeyPEM))
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if s.SkipHostnameVerification {
		// Verify the chain but not the name, as Kafka does with an empty
		// ssl.endpoint.identification.algorithm.
		tc.InsecureSkipVerify = true
		roots := tc.RootCAs
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("no peer certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return tc, nil
}

// New builds a client for s with extra options appended.
func New(s Settings, log *slog.Logger, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := s.Options(log)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// IsUnreachable reports whether err means the cluster could not be reached
// at all (as opposed to answering with an error).
func IsUnreachable(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, context.DeadlineExceeded)
}
