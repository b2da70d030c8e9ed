package cli

import (
	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/buildinfo"
)

func newVersion() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print Strait's version, commit, build date and Go version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := newPrinter(cmd, format)
			if err != nil {
				return err
			}
			in := buildinfo.Get()
			commit := in.Commit
			switch {
			case commit == "":
				commit = "unknown"
			case in.Modified:
				commit += " (modified work tree)"
			}
			fields := []fieldLine{{"Version", in.Version}, {"Commit", commit}}
			if in.Date != "" {
				fields = append(fields, fieldLine{"Built", in.Date})
			}
			if in.CommitDate != "" {
				fields = append(fields, fieldLine{"Committed", in.CommitDate})
			}
			fields = append(fields, fieldLine{"Go version", in.GoVersion}, fieldLine{"Platform", in.Platform})
			return p.object(in, fields)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
