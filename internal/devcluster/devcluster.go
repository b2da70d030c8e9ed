// Package devcluster runs kfake, franz-go's Kafka-protocol cluster, as a
// local cluster for the demo, development and tests.
package devcluster

import (
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Options configures a development cluster.
type Options struct {
	// Listen is the first broker's host:port; port 0 picks a free port.
	// Further brokers take the following ports (or free ones for 0).
	Listen string
	// Brokers is the number of brokers; 0 means 1.
	Brokers int
	// DataDir, if set, persists the cluster there: a restart on the same
	// ports and directory loses nothing.
	DataDir string
	// ClusterID names the cluster; empty lets kfake choose.
	ClusterID string
	// AutoCreateTopics creates a topic when a client first produces to or
	// asks for it, as Kafka's auto.create.topics.enable does.
	AutoCreateTopics bool
	// DefaultPartitions is the partition count of auto-created topics; 0
	// means 1.
	DefaultPartitions int
	// ResponseDelay holds back every byte the brokers send by this long,
	// in order, without holding up the brokers: the cluster answers as
	// one a round trip of ResponseDelay away would (benchmarks).
	ResponseDelay time.Duration
	// Extra options passed to kfake.
	Extra []kfake.Opt
}

// Start starts a cluster. Close it with Close.
func Start(o Options) (*kfake.Cluster, error) {
	host, portStr, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Errorf("listen address %q: bad port", o.Listen)
	}
	n := max(o.Brokers, 1)
	ports := make([]int, n)
	for i := range ports {
		if port != 0 {
			ports[i] = port + i
		}
	}
	opts := []kfake.Opt{
		kfake.Ports(ports...),
		// kfake binds 127.0.0.1; honour the host asked for instead.
		kfake.ListenFn(func(network, addr string) (net.Listener, error) {
			_, p, _ := net.SplitHostPort(addr)
			l, err := net.Listen(network, net.JoinHostPort(host, p))
			if err != nil || o.ResponseDelay <= 0 {
				return l, err
			}
			return delayListener{l, o.ResponseDelay}, nil
		}),
	}
	if o.DataDir != "" {
		opts = append(opts, kfake.DataDir(o.DataDir))
	}
	if o.ClusterID != "" {
		opts = append(opts, kfake.ClusterID(o.ClusterID))
	}
	if o.AutoCreateTopics {
		opts = append(opts, kfake.AllowAutoTopicCreation())
	}
	if o.DefaultPartitions > 0 {
		opts = append(opts, kfake.DefaultNumPartitions(o.DefaultPartitions))
	}
	opts = append(opts, o.Extra...)
	return kfake.NewCluster(opts...)
}
