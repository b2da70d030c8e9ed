package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"
)

// Output formats of -o.
const (
	formatHuman = "human"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

var formats = []string{formatHuman, formatJSON, formatYAML}

// addOutputFlag adds -o/--output to cmd.
func addOutputFlag(cmd *cobra.Command, format *string) {
	cmd.Flags().StringVarP(format, "output", "o", formatHuman, "output format: human, json or yaml")
	_ = cmd.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(formats, cobra.ShellCompDirectiveNoFileComp))
}

// printer writes a command's result as a table for people, or as JSON or
// YAML that parse back into the same values.
type printer struct {
	w      io.Writer
	format string
}

func newPrinter(cmd *cobra.Command, format string) (printer, error) {
	switch format {
	case formatHuman, formatJSON, formatYAML:
		return printer{w: cmd.OutOrStdout(), format: format}, nil
	}
	return printer{}, usagef("invalid --output %q: use human, json or yaml", format)
}

// column is one column of a human table: its header, and whether its
// values are numbers (aligned right).
type column struct {
	header  string
	numeric bool
}

// list prints v (a slice of rows) as JSON or YAML, or as a table of cols
// and cells (one slice of strings per row) for people.
func (p printer) list(v any, cols []column, cells [][]string) error {
	if p.format != formatHuman {
		return p.serialized(v)
	}
	if len(cells) == 0 {
		_, err := fmt.Fprintln(p.w, "None found.")
		return err
	}
	widths := make([]int, len(cols))
	for i, c := range cols {
		widths[i] = utf8.RuneCountInString(c.header)
	}
	for _, row := range cells {
		for i, cell := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
		}
	}
	var b strings.Builder
	line := func(row []string, header bool) {
		parts := make([]string, len(cols))
		for i, cell := range row {
			parts[i] = pad(cell, widths[i], cols[i].numeric && !header)
		}
		b.WriteString(strings.TrimRight(" "+strings.Join(parts, " | "), " ") + "\n")
	}
	headers := make([]string, len(cols))
	for i, c := range cols {
		headers[i] = c.header
	}
	line(headers, true)
	dashes := make([]string, len(cols))
	for i, w := range widths {
		dashes[i] = strings.Repeat("-", w+2)
	}
	b.WriteString(strings.Join(dashes, "+") + "\n")
	for _, row := range cells {
		line(row, false)
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

// report prints v as JSON or YAML, or for people a summary line and then
// the table of cols and cells.
func (p printer) report(v any, summary string, cols []column, cells [][]string) error {
	if p.format != formatHuman {
		return p.serialized(v)
	}
	fmt.Fprintln(p.w, summary)
	return p.list(nil, cols, cells)
}

// fieldLine is one line of a human table of one object.
type fieldLine struct{ name, value string }

// object prints v as JSON or YAML, or the fields as a two-column table.
func (p printer) object(v any, fields []fieldLine) error {
	if p.format != formatHuman {
		return p.serialized(v)
	}
	nw, vw := 0, 0
	for _, f := range fields {
		nw = max(nw, utf8.RuneCountInString(f.name))
		vw = max(vw, utf8.RuneCountInString(f.value))
	}
	border := "+" + strings.Repeat("-", nw+2) + "+" + strings.Repeat("-", vw+2) + "+\n"
	var b strings.Builder
	b.WriteString(border)
	for _, f := range fields {
		b.WriteString("| " + pad(f.name, nw, false) + " | " + pad(f.value, vw, false) + " |\n")
	}
	b.WriteString(border)
	_, err := io.WriteString(p.w, b.String())
	return err
}

func (p printer) serialized(v any) error {
	if p.format == formatYAML {
		enc := yaml.NewEncoder(p.w)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return err
		}
		return enc.Close()
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = p.w.Write(append(b, '\n'))
	return err
}

func pad(s string, width int, right bool) string {
	n := width - utf8.RuneCountInString(s)
	if n <= 0 {
		return s
	}
	if right {
		return strings.Repeat(" ", n) + s
	}
	return s + strings.Repeat(" ", n)
}

func itoa[T ~int | ~int32 | ~int64](v T) string { return strconv.FormatInt(int64(v), 10) }
