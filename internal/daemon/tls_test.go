package daemon

import (
	"bytes"
	"crypto/tls"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestTLSRefusesCBCAndWeakVersions: a client that offers only CBC suites
// over TLS 1.2 gets no handshake; an AEAD one does; with tls13_only, TLS
// 1.2 gets none at all.
func TestTLSRefusesCBCAndWeakVersions(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "strait test CA")
	certFile, keyFile := ca.IssueFiles(t, dir, "127.0.0.1")
	cases := []struct {
		name      string
		tls13Only bool
		client    *tls.Config
		ok        bool
	}{
		{"TLS 1.2, CBC only", false, &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2, AEAD", false, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.3", false, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"TLS 1.2 with tls13_only", true, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := serverTLS(certFile, keyFile, "", tc.tls13Only, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			go func() {
				c, err := ln.Accept()
				if err == nil {
					_ = c.(*tls.Conn).Handshake()
					c.Close()
				}
			}()
			tc.client.InsecureSkipVerify = true //nolint:gosec // the suite and version are what is tested
			c, err := tls.DialWithDialer(&net.Dialer{}, "tcp", ln.Addr().String(), tc.client)
			if err == nil {
				c.Close()
			}
			if (err == nil) != tc.ok {
				t.Fatalf("handshake: %v, want success %v", err, tc.ok)
			}
		})
	}
}

// TestWarnsOfReadableSecretFiles: a key file other users can read is
// named in the log.
func TestWarnsOfReadableSecretFiles(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open.key")
	closed := filepath.Join(dir, "closed.key")
	if err := os.WriteFile(open, []byte("k"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(closed, []byte("k"), 0o600); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	warnReadable(slog.New(slog.NewTextHandler(&buf, nil)), map[string]string{"tls_key_file": open, "secrets_key_file": closed})
	if !strings.Contains(buf.String(), "open.key") || strings.Contains(buf.String(), "closed.key") {
		t.Fatalf("log: %s", buf.String())
	}
}
