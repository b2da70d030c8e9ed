package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// configFlagHelp is the help of --config, as the Confluent CLI words it.
const configFlagHelp = `a comma-separated list of "key=value" pairs, or the path of a file with one "key=value" per line ('#' starts a comment)`

func addConfigFlag(cmd *cobra.Command, values *[]string, what string) {
	cmd.Flags().StringSliceVar(values, "config", nil, what+": "+configFlagHelp)
}

// readProperties reads the values of --config: the path of a properties
// file, or key=value pairs.
func readProperties(values []string) (map[string]string, error) {
	if len(values) == 1 && !strings.Contains(values[0], "=") {
		data, err := os.ReadFile(values[0])
		if errors.Is(err, fs.ErrNotExist) {
			return nil, usagef("--config %s: no such file, and not key=value pairs", values[0])
		}
		if err != nil {
			return nil, fmt.Errorf("--config: %w", err)
		}
		return parseProperties(string(data), values[0])
	}
	out := map[string]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("--config %q: want key=value", v)
		}
		out[strings.TrimSpace(k)] = val
	}
	return out, nil
}

// parseProperties reads key=value lines: blank lines and lines starting
// with '#' or '!' are skipped, and a line ending in a backslash goes on
// on the next.
func parseProperties(text, name string) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		n := i + 1
		line := strings.TrimSpace(lines[i])
		for strings.HasSuffix(line, `\`) && i+1 < len(lines) {
			i++
			line = strings.TrimSuffix(line, `\`) + strings.TrimSpace(lines[i])
		}
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, usagef("%s line %d: want key=value, got %q", name, n, line)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}
