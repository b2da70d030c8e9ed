// Package retry tells transient Kafka errors from permanent ones and retries
// the transient ones with backoff.
//
// Every Kafka request can fail, time out after it took effect, or lose its
// answer. Start-up and background work retry what can heal (a leader
// moving, a coordinator loading, a dropped connection, a slow broker) and
// give up at once on what cannot (bad credentials, a missing permission, an
// unsupported version), so that an operator sees the cause instead of a
// daemon that exits on the first hiccup or waits forever on a typo.
package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Backoff is an exponential backoff with jitter: 50 ms doubling up to 3.2 s.
// The zero value is ready to use.
type Backoff struct{ n int }

// Reset starts the backoff again from its shortest wait.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts is how many waits Next has given since the last Reset.
func (b *Backoff) Attempts() int { return b.n }

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	d := 50 * time.Millisecond << min(b.n, 6) // 50ms .. 3.2s
	b.n++
	jitter := time.Duration(time.Now().UnixNano() % int64(d/4+1))
	return d + jitter
}

// Sleep waits d or until ctx ends, and returns ctx's error in that case.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// permanent lists broker errors that retrying does not heal.
var permanent = []error{
	kerr.SaslAuthenticationFailed, kerr.IllegalSaslState, kerr.UnsupportedSaslMechanism,
	kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed, kerr.ClusterAuthorizationFailed,
	kerr.TransactionalIDAuthorizationFailed, kerr.DelegationTokenAuthorizationFailed,
	kerr.UnsupportedVersion, kerr.UnsupportedForMessageFormat, kerr.InvalidConfig,
	kerr.InvalidReplicationFactor, kerr.PolicyViolation, kerr.InvalidTopicException,
	kerr.InvalidRequest, kerr.SecurityDisabled,
}

// Permanent marks err as one that retrying does not heal, whatever it wraps.
func Permanent(err error) error { return &permanentError{err} }

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Transient reports whether err may heal by itself: retriable broker errors
// (and UNKNOWN_SERVER_ERROR, which is what a broker answers when something
// unexpected went wrong on its side), timeouts of one attempt, and
// connection errors. A closed client and a canceled context are not.
func Transient(err error) bool {
	var pe *permanentError
	if err == nil || errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, kgo.ErrClientClosed) {
		return false
	}
	for _, p := range permanent {
		if errors.Is(err, p) {
			return false
		}
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable || errors.Is(err, kerr.UnknownServerError)
	}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE),
		errors.As(err, &ne):
		return true
	}
	// Anything else from the client (no broker known yet, a broker that
	// went away) is about reaching the cluster, which can come back.
	return true
}

// Do runs fn until it succeeds, fails with an error Transient says will
// not heal, or ctx ends. Each attempt gets attemptTimeout (none if zero).
// While it waits it logs what it waits for: the first failure, then the
// same cause again only every 30 s, with how many attempts failed.
func Do(ctx context.Context, log *slog.Logger, what string, attemptTimeout time.Duration, fn func(context.Context) error) error {
	var bo Backoff
	var lastMsg string
	var lastLog time.Time
	fails := 0
	for {
		actx, cancel := ctx, context.CancelFunc(func() {})
		if attemptTimeout > 0 {
			actx, cancel = context.WithTimeout(ctx, attemptTimeout)
		}
		err := fn(actx)
		cancel()
		if err == nil {
			if fails > 0 && log != nil {
				log.Info("done waiting", "for", what, "failed_attempts", fails)
			}
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w (gave up: %v)", what, err, ctx.Err())
		}
		if !Transient(err) {
			return fmt.Errorf("%s: %w", what, err)
		}
		fails++
		if msg := err.Error(); log != nil && (msg != lastMsg || time.Since(lastLog) >= 30*time.Second) {
			log.Warn("waiting", "for", what, "err", err, "failed_attempts", fails)
			lastMsg, lastLog = msg, time.Now()
		}
		if err := Sleep(ctx, bo.Next()); err != nil {
			return fmt.Errorf("%s: %w (gave up: %v)", what, lastErr(err, lastMsg), err)
		}
	}
}

func lastErr(err error, msg string) error {
	if msg == "" {
		return err
	}
	return errors.New(msg)
}
