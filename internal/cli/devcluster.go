package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/devcluster"
)

func newDevcluster() *cobra.Command {
	var o devcluster.Options
	cmd := &cobra.Command{
		Use:   "devcluster",
		Short: "Run a standalone Kafka-protocol cluster (kfake) for local use and tests",
		Long: `Run kfake, an in-process Kafka-protocol cluster, until SIGINT or SIGTERM.
With --data-dir the cluster is persisted there: restarting it on the same
address and directory loses nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			c, err := devcluster.Start(o)
			if err != nil {
				return err
			}
			defer c.Close()
			id := o.ClusterID
			fmt.Fprintf(cmd.OutOrStdout(), "devcluster listening on %s (cluster id %q, data dir %q)\n", strings.Join(c.ListenAddrs(), ","), id, o.DataDir)
			<-ctx.Done()
			fmt.Fprintln(cmd.OutOrStdout(), "devcluster stopping")
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Listen, "listen", "127.0.0.1:9092", "first broker's listen address; port 0 picks a free one")
	cmd.Flags().StringVar(&o.DataDir, "data-dir", "", "persist the cluster in this directory")
	cmd.Flags().StringVar(&o.ClusterID, "cluster-id", "", "cluster id (default: chosen by kfake)")
	cmd.Flags().IntVar(&o.Brokers, "brokers", 1, "number of brokers, on consecutive ports")
	cmd.Flags().BoolVar(&o.AutoCreateTopics, "auto-create-topics", true, "create topics on first use, like auto.create.topics.enable")
	cmd.Flags().IntVar(&o.DefaultPartitions, "default-partitions", 1, "partitions of auto-created topics")
	cmd.Flags().DurationVar(&o.ResponseDelay, "response-delay", 0, "send every response this much later, as a cluster a round trip away would (benchmarks)")
	return cmd
}
