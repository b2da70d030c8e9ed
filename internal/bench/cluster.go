package bench

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster is a `strait devcluster` child process and an admin client on it.
type cluster struct {
	id   string
	addr string
	proc *proc
	cl   *kgo.Client
	adm  *kadm.Client
}

// startCluster runs `<bin> devcluster` for cluster id on a free port with
// its data in dataDir/dirName (in memory only for an empty dirName), and
// waits until it answers.
// Its responses are sent delay late (0 for none). It has brokers brokers
// (at least 1) on consecutive ports.
func startCluster(ctx context.Context, bin, dataDir, logDir, dirName, id string, delay time.Duration, brokers int) (*cluster, error) {
	addr, err := freeBlock(brokers)
	if err != nil {
		return nil, err
	}
	args := []string{"devcluster",
		"--listen", addr,
		"--cluster-id", id,
		"--auto-create-topics=false",
		"--response-delay", delay.String(),
		"--brokers", strconv.Itoa(max(brokers, 1))}
	if dirName != "" {
		args = append(args, "--data-dir", filepath.Join(dataDir, dirName))
	}
	p, err := startProc(id, logDir, bin, args...)
	if err != nil {
		return nil, err
	}
	c := &cluster{id: id, addr: addr, proc: p}
	c.cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("client for %s: %w", id, err)
	}
	c.adm = kadm.NewClient(c.cl)
	err = waitFor(ctx, 30*time.Second, 50*time.Millisecond, func() error {
		if err := p.exited(); err != nil {
			return stopWaiting{err}
		}
		_, err := c.adm.ListBrokers(ctx)
		return err
	})
	if err != nil {
		c.close()
		return nil, fmt.Errorf("cluster %s on %s: %w", id, addr, err)
	}
	return c, nil
}

// close closes the client and stops the process.
func (c *cluster) close() {
	c.cl.Close()
	c.proc.stop(5 * time.Second)
}

// createTopic creates topic with n partitions, one replica.
func (c *cluster) createTopic(ctx context.Context, topic string, n int) error {
	resp, err := c.adm.CreateTopics(ctx, int32(n), 1, nil, topic)
	if err == nil {
		_, err = resp.On(topic, nil)
	}
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("create topic %s on %s: %w", topic, c.id, err)
	}
	return nil
}

// deleteTopics deletes topics, ignoring ones that do not exist.
func (c *cluster) deleteTopics(ctx context.Context, topics ...string) error {
	resp, err := c.adm.DeleteTopics(ctx, topics...)
	if err != nil {
		return fmt.Errorf("delete topics on %s: %w", c.id, err)
	}
	for _, r := range resp {
		if r.Err != nil && !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("delete topic %s on %s: %w", r.Topic, c.id, r.Err)
		}
	}
	return nil
}

// endOffsets returns the log end offset of each partition of topic. A topic
// that does not exist yet has none.
func (c *cluster) endOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	listed, err := c.adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("end offsets of %s on %s: %w", topic, c.id, err)
	}
	ends := map[int32]int64{}
	for _, o := range listed[topic] {
		if o.Err != nil {
			if errors.Is(o.Err, kerr.UnknownTopicOrPartition) {
				return map[int32]int64{}, nil
			}
			return nil, fmt.Errorf("end offset of %s/%d on %s: %w", topic, o.Partition, c.id, o.Err)
		}
		ends[o.Partition] = o.Offset
	}
	return ends, nil
}

// sameEnds reports whether got has every partition of want at the same end.
func sameEnds(got, want map[int32]int64) bool {
	if len(got) != len(want) {
		return false
	}
	for p, w := range want {
		if got[p] != w {
			return false
		}
	}
	return true
}

// sumEnds is the number of offsets in all partitions (from offset 0).
func sumEnds(ends map[int32]int64) int64 {
	var n int64
	for _, e := range ends {
		n += e
	}
	return n
}

// stopWaiting makes waitFor give up at once with the wrapped error.
type stopWaiting struct{ err error }

func (b stopWaiting) Error() string { return b.err.Error() }

// waitFor calls f every interval until it returns nil, returns a
// stopWaiting, ctx ends, or timeout passes; the error then says what f last
// returned.
func waitFor(ctx context.Context, timeout, interval time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		var stop stopWaiting
		if errors.As(err, &stop) {
			return stop.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gave up after %s: %w", timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(interval):
		}
	}
}
