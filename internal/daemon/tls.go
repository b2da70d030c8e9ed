package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// certReloader serves the REST listener's certificate and loads it again
// when its files change, so a renewed certificate needs no restart.
type certReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	modTime time.Time
	checked time.Time
}

func newCertReloader(certFile, keyFile string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, log: log}
	if err := r.load(); err != nil {
		return nil, err
	}
	return r, nil
}

// newest is the later modification time of the two files.
func (r *certReloader) newest() (time.Time, error) {
	var t time.Time
	for _, f := range []string{r.certFile, r.keyFile} {
		st, err := os.Stat(f)
		if err != nil {
			return t, err
		}
		if st.ModTime().After(t) {
			t = st.ModTime()
		}
	}
	return t, nil
}

func (r *certReloader) load() error {
	mt, err := r.newest()
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	r.cert, r.modTime = &cert, mt
	return nil
}

// getCertificate is tls.Config.GetCertificate. It looks at the files at
// most once a second; a pair that fails to load (half-written during a
// renewal) keeps the previous certificate in service.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if now := time.Now(); now.Sub(r.checked) >= time.Second {
		r.checked = now
		if mt, err := r.newest(); err == nil && !mt.Equal(r.modTime) {
			old := r.cert
			if err := r.load(); err != nil {
				r.cert = old
				r.log.Warn("TLS certificate changed but does not load; keeping the previous one", "err", err)
			} else {
				r.log.Info("TLS certificate reloaded", "cert_file", r.certFile)
			}
		}
	}
	return r.cert, nil
}

// serverTLS is the REST listener's TLS configuration. With a client CA
// file, clients may present a certificate signed by one of its CAs; one
// that does not verify ends the handshake, and auth decides whether a
// request without one is let in.
func serverTLS(certFile, keyFile, clientCAFile string, tls13Only bool, log *slog.Logger) (*tls.Config, error) {
	r, err := newCertReloader(certFile, keyFile, log)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: aeadSuites, GetCertificate: r.getCertificate}
	if tls13Only {
		cfg.MinVersion = tls.VersionTLS13
	}
	if clientCAFile != "" {
		pem, err := os.ReadFile(clientCAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("tls_client_ca_file holds no PEM certificate")
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	}
	return cfg, nil
}

// aeadSuites are the TLS 1.2 suites the API accepts: forward secret
// (ECDHE) with an AEAD cipher, no CBC. (TLS 1.3 suites are not
// configurable and all AEAD.)
var aeadSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// warnReadable logs the secret files (keys, the secrets key) that other
// users of the machine can read.
func warnReadable(log *slog.Logger, files map[string]string) {
	for what, f := range files {
		if f == "" {
			continue
		}
		st, err := os.Stat(f)
		if err == nil && st.Mode().Perm()&0o077 != 0 {
			log.Warn("a secret file can be read by other users: chmod 600 it", "setting", what, "file", f, "mode", st.Mode().Perm().String())
		}
	}
}
