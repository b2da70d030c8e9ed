package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

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
			// The id the cluster answers with: a data directory keeps the
			// id it was created with, whatever --cluster-id says now.
			id, err := askClusterID(ctx, c.ListenAddrs())
			if err != nil {
				return fmt.Errorf("the cluster started but does not answer: %w", err)
			}
			if o.ClusterID != "" && id != o.ClusterID {
				fmt.Fprintf(cmd.ErrOrStderr(), "note: --cluster-id %q is ignored: the data dir %q holds cluster %q\n", o.ClusterID, o.DataDir, id)
			}
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
	cmd.AddCommand(newDevProduce())
	return cmd
}

// newDevProduce writes sample records to a topic, creating it if needed:
// enough to try a link without another tool.
func newDevProduce() *cobra.Command {
	var bootstrap, topic string
	var partitions, records int
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "produce",
		Short: "Write sample records to a topic of a cluster (creating the topic), for trying links",
		Long: `Write --records sample records (keys, values, a header) to --topic on the
cluster at --bootstrap, creating the topic with --partitions if it does not
exist. It waits up to --wait for the cluster to answer, so it can follow a
devcluster started in the background.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signalContext()
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, wait)
			defer cancel()
			cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(bootstrap, ",")...), kgo.DefaultProduceTopic(topic))
			if err != nil {
				return err
			}
			defer cl.Close()
			adm := kadm.NewClient(cl)
			for {
				resp, err := adm.CreateTopic(ctx, int32(partitions), -1, nil, topic)
				if err == nil {
					err = resp.Err
				}
				if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
					break
				}
				if ctx.Err() != nil {
					return fmt.Errorf("create topic %s on %s: %w", topic, bootstrap, err)
				}
				time.Sleep(200 * time.Millisecond) // waiting for the cluster to come up
			}
			rs := make([]*kgo.Record, records)
			for i := range rs {
				rs[i] = &kgo.Record{
					Key:     []byte(fmt.Sprintf("key-%d", i%17)),
					Value:   []byte(fmt.Sprintf("sample record %d", i)),
					Headers: []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(i))}},
				}
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				return fmt.Errorf("produce to %s: %w", topic, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d records to %s on %s\n", records, topic, bootstrap)
			return nil
		},
	}
	cmd.Flags().StringVar(&bootstrap, "bootstrap", "127.0.0.1:9092", "the cluster's bootstrap servers")
	cmd.Flags().StringVar(&topic, "topic", "orders", "topic to write to")
	cmd.Flags().IntVar(&partitions, "partitions", 3, "partitions of the topic, if it is created")
	cmd.Flags().IntVar(&records, "records", 1000, "records to write")
	cmd.Flags().DurationVar(&wait, "wait", 30*time.Second, "how long to wait for the cluster")
	return cmd
}

// askClusterID asks a cluster for its id.
func askClusterID(ctx context.Context, addrs []string) (string, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return "", err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		return "", err
	}
	return md.Cluster, nil
}
