package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/demo"
)

func newDemo() *cobra.Command {
	var o demo.Options
	var exitAfter time.Duration
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the embedded demo: two local clusters, a link and a mirror topic",
		Long: `Run Strait on its embedded default: a source and a destination cluster
in-process (persisted under --data-dir), the daemon, a link "demo" and a
mirror topic "orders" fed by a sample producer. It prints the REST base URL
and curl commands to try, and stops cleanly on Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			if exitAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, exitAfter)
				defer cancel()
			}
			o.Out = cmd.OutOrStdout()
			o.Log = newLogger(cmd.ErrOrStderr(), logLevel, "text")
			return demo.Run(ctx, o)
		},
	}
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "strait-demo-data", "folder for both clusters' data; the demo resumes from it")
	cmd.Flags().StringVar(&o.HTTP, "http", "127.0.0.1:8090", "REST API listen address")
	cmd.Flags().StringVar(&o.SourceListen, "source-listen", "127.0.0.1:19092", "source cluster address (the demo link follows it when it changes between runs)")
	cmd.Flags().StringVar(&o.DestinationListen, "destination-listen", "127.0.0.1:19093", "destination cluster address")
	cmd.Flags().IntVar(&o.Rate, "rate", 20, "sample records produced per second")
	cmd.Flags().DurationVar(&exitAfter, "exit-after", 0, "stop after this long (0: run until Ctrl-C)")
	cmd.Flags().StringVar(&logLevel, "log-level", "warn", "log level: debug, info, warn or error")
	return cmd
}
