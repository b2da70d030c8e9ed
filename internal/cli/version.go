package cli

import (
	"encoding/json"
	"fmt"

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
			in := buildinfo.Get()
			w := cmd.OutOrStdout()
			switch format {
			case "json":
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(in)
			case "human":
				commit := in.Commit
				if commit == "" {
					commit = "unknown"
				} else if in.Modified {
					commit += " (modified work tree)"
				}
				fmt.Fprintf(w, "Version:    %s\nCommit:     %s\n", in.Version, commit)
				if in.Date != "" {
					fmt.Fprintf(w, "Built:      %s\n", in.Date)
				}
				if in.CommitDate != "" {
					fmt.Fprintf(w, "Committed:  %s\n", in.CommitDate)
				}
				fmt.Fprintf(w, "Go version: %s\nPlatform:   %s\n", in.GoVersion, in.Platform)
				return nil
			}
			return fmt.Errorf("invalid --output %q: use human or json", format)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "human", "output format: human or json")
	return cmd
}
