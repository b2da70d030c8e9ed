package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// isTerminal reports whether r is an interactive terminal: a character
// device, or a stand-in that says it is one (tests).
func isTerminal(r io.Reader) bool {
	if t, ok := r.(interface{ IsTerminal() bool }); ok {
		return t.IsTerminal()
	}
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// errNoConfirm is a destructive command that could not ask.
var errNoConfirm = errors.New("this command changes mirror topics or links for good and asks for confirmation first, and none came (stdin is not a terminal, or gave no answer): pass --force to go ahead without asking")

// confirm asks question on the terminal and reports whether the answer is
// yes. force says yes without asking. Without a terminal to ask on, or
// with no answer (end of input), it refuses with a usage error.
func confirm(cmd *cobra.Command, force bool, question string) (bool, error) {
	if force {
		return true, nil
	}
	in := cmd.InOrStdin()
	if !isTerminal(in) {
		return false, usageError{errNoConfirm}
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s (y/N): ", question)
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(cmd.ErrOrStderr())
		return false, usageError{errNoConfirm}
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "Cancelled: nothing was changed.")
	return false, nil
}

// quoteList writes names as "a", "b" and "c".
func quoteList(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = fmt.Sprintf("%q", n)
	}
	switch len(q) {
	case 0:
		return ""
	case 1:
		return q[0]
	}
	return strings.Join(q[:len(q)-1], ", ") + " and " + q[len(q)-1]
}
