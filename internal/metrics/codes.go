package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrorCode names err for the code label of strait_errors_total: the Kafka
// error code's name (NOT_LEADER_OR_FOLLOWER, ...), TIMEOUT, NETWORK (a
// connection refused, reset or closed), or UNKNOWN; "" for no error and
// for a cancellation or a closed client, which are how work stops, not
// errors. The set is bounded: Kafka's codes and three more.
func ErrorCode(err error) string {
	var ke *kerr.Error
	var ne net.Error
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, kgo.ErrClientClosed):
		return ""
	case errors.As(err, &ke):
		return ke.Message
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return "TIMEOUT"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "NETWORK"
	case errors.As(err, &ne):
		if ne.Timeout() {
			return "TIMEOUT"
		}
		return "NETWORK"
	}
	return "UNKNOWN"
}
