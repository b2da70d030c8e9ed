package kafkaclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/logdedup"
)

// slogger sends franz-go's client logs to slog. franz-go's info level is
// chatty (every connection), so it is logged at debug; warnings and errors
// keep their level, once per repeatWindow for the same line: a broker that
// cannot be dialed is retried every few hundred milliseconds, and each
// attempt warns the same (the line after the window says how many were
// held back).
type slogger struct {
	l       *slog.Logger
	repeats *logdedup.Limiter
}

// repeatWindow is how long the same client warning is held back.
const repeatWindow = time.Minute

func newLogger(l *slog.Logger) kgo.Logger {
	return slogger{l: l, repeats: logdedup.NewLimiter(repeatWindow)}
}

func (s slogger) Level() kgo.LogLevel {
	if s.l.Enabled(context.Background(), slog.LevelDebug) {
		return kgo.LogLevelInfo
	}
	return kgo.LogLevelWarn
}

func (s slogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var lv slog.Level
	switch level {
	case kgo.LogLevelError:
		lv = slog.LevelError
	case kgo.LogLevelWarn:
		lv = slog.LevelWarn
	default:
		s.l.Log(context.Background(), slog.LevelDebug, msg, keyvals...)
		return
	}
	// The same message with the same values (broker, address, error) is
	// the same condition.
	s.repeats.Log(s.l, lv, msg+fmt.Sprint(keyvals...), msg, keyvals...)
}
