// Package cli is Strait's command line: cobra commands that parse flags and
// call into the other packages. The link and mirror verbs are clients of
// the REST API only (internal/client), with the Confluent CLI's arguments,
// flags and columns.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/buildinfo"
)

// Exit codes of the command line.
const (
	exitOK = 0
	// exitFailure: the server refused (the whole request, or some of the
	// topics of a mirror operation), or something else failed.
	exitFailure = 1
	// exitUsage: the command line cannot be run as written (unknown
	// command or flag, wrong arguments, a confirmation that cannot be
	// asked).
	exitUsage = 2
)

// Execute runs the command line and returns the process exit code.
func Execute() int {
	return run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
}

// run runs the command line args with the given streams, prints the error
// if any, and returns the exit code.
func run(args []string, in io.Reader, out, errOut io.Writer) int {
	root := newRoot(out, errOut)
	root.SetIn(in)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(errOut, "error:", err)
	if isUsage(err) {
		if cmd != nil && !errors.Is(err, errNoConfirm) {
			fmt.Fprintf(errOut, "Run '%s --help' for usage.\n", cmd.CommandPath())
		}
		return exitUsage
	}
	return exitFailure
}

// usageError is a command line that cannot be run as written.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usagef returns a usageError.
func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// usageArgs makes the errors of an argument check usage errors.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// cobraUsage are the starts of the messages cobra gives a command line it
// cannot run (its errors have no types).
var cobraUsage = []string{"unknown command ", "accepts ", "requires at least ", "requires at most ",
	"accepts between ", "invalid argument ", "required flag(s) ", "if any flags in the group "}

func isUsage(err error) bool {
	var ue usageError
	if errors.As(err, &ue) {
		return true
	}
	for _, p := range cobraUsage {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}

func newRoot(out, errOut io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "strait",
		Short: "Open-source cluster linking for any Kafka cluster",
		Long: `Strait mirrors topics from a source Kafka cluster into mirror topics on a
destination cluster with the same partitions and the same offsets, managed
through the Kafka REST v3 cluster-linking API.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Get().String(),
	}
	root.SetOut(out)
	root.SetErr(errOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(newServe(), newDevcluster(), newDemo(), newAuth(), newBench(), newLink(), newMirror(), newGroupCmd(), newSwitchover(), newVersion())
	return root
}

// signalContext is cancelled on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}

// newLogger builds the process logger.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var lv slog.Level
	switch level {
	case "debug":
		lv = slog.LevelDebug
	case "warn":
		lv = slog.LevelWarn
	case "error":
		lv = slog.LevelError
	default:
		lv = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
