package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/strait-dev/strait/internal/config"
	"github.com/strait-dev/strait/internal/daemon"
	"github.com/strait-dev/strait/internal/secret"
	"github.com/strait-dev/strait/internal/testutil"
	"github.com/strait-dev/strait/internal/testutil/daemontest"
)

// env is two clusters and a daemon mirroring between them.
type env struct {
	t            *testing.T
	src, dst     *kfake.Cluster
	srcCl, dstCl *kgo.Client
	api          *testutil.API
	clusterID    string
	stop         context.CancelFunc
	done         chan error
	srcOpts      []kfake.Opt
	dstOpts      []kfake.Opt
	// clientOpts are given to every test client of either cluster (TLS).
	clientOpts []kgo.Opt
	// promoteTimeout is passed to the daemon; zero keeps its default.
	promoteTimeout time.Duration
	// secretsKey seals link credentials; kept across daemon restarts.
	secretsKey string
	// configure, if set, changes the daemon's configuration before start.
	configure func(*config.Config)
	// log, if set, receives the daemon's log.
	log *slog.Logger
	// scheme is the REST API's scheme: http unless configure sets TLS.
	scheme string
	// maxTopics caps the topics per alter request; zero keeps the default.
	maxTopics int
}

func newEnv(t *testing.T, srcOpts ...kfake.Opt) *env {
	t.Helper()
	return newEnvWith(t, &env{srcOpts: srcOpts})
}

// newEnvWith starts an env configured by the fields set in e.
func newEnvWith(t *testing.T, e *env) *env {
	t.Helper()
	e.t = t
	e.src = testutil.NewCluster(t, append([]kfake.Opt{kfake.ClusterID("source-cluster")}, e.srcOpts...)...)
	e.dst = testutil.NewCluster(t, append([]kfake.Opt{kfake.ClusterID("destination-cluster")}, e.dstOpts...)...)
	e.srcCl = testutil.Client(t, e.src.ListenAddrs(), e.clientOpts...)
	e.dstCl = testutil.Client(t, e.dst.ListenAddrs(), e.clientOpts...)
	e.startDaemon()
	return e
}

// logger is the log the tests give a daemon (STRAIT_TEST_LOG shows it).
func logger() *slog.Logger { return daemontest.Logger() }

func (e *env) startDaemon() {
	e.t.Helper()
	cfg := daemontest.Config(e.dst)
	if e.secretsKey == "" {
		key, err := secret.NewKey()
		if err != nil {
			e.t.Fatal(err)
		}
		e.secretsKey = key
	}
	cfg.SecretsKey = e.secretsKey
	if e.configure != nil {
		e.configure(&cfg)
	}
	log := e.log
	if log == nil {
		log = logger()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.New(ctx, cfg, log, daemon.Options{MetadataInterval: 200 * time.Millisecond, PromoteTimeout: e.promoteTimeout, MaxTopicsPerRequest: e.maxTopics})
	if err != nil {
		e.t.Fatalf("start daemon: %v", err)
	}
	runCtx, stop := context.WithCancel(context.Background())
	e.stop = stop
	e.done = make(chan error, 1)
	go func() { e.done <- d.Run(runCtx) }()
	e.clusterID = d.Manager().ClusterID()
	if e.scheme == "" {
		e.scheme = "http"
	}
	e.api = testutil.NewAPI(e.t, e.scheme+"://"+d.Addr(), "/kafka/v3", e.clusterID)
	e.t.Cleanup(e.stopDaemon)
}

func (e *env) stopDaemon() {
	if e.stop == nil {
		return
	}
	e.stop()
	if err := <-e.done; err != nil {
		e.t.Errorf("daemon: %v", err)
	}
	e.stop = nil
}

// createLink creates a link to the source with extra configs.
func (e *env) createLink(name string, configs map[string]string) {
	e.t.Helper()
	cs := []map[string]string{{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]}}
	for k, v := range configs {
		cs = append(cs, map[string]string{"name": k, "value": v})
	}
	e.api.JSON(http.MethodPost, "/links?link_name="+name, map[string]any{"source_cluster_id": "source-cluster", "configs": cs}, http.StatusNoContent, nil)
}

// deleteSourceRecords deletes the records of each partition of the source
// topic below at(end), end being the partition's end offset.
func (e *env) deleteSourceRecords(topic string, at func(end int64) int64) {
	e.t.Helper()
	_, ends := testutil.Offsets(e.t, e.srcCl, topic)
	offs := kadm.Offsets{}
	for p, end := range ends {
		offs.Add(kadm.Offset{Topic: topic, Partition: p, At: at(end)})
	}
	if _, err := kadm.NewClient(e.srcCl).DeleteRecords(context.Background(), offs); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) createMirror(linkName, topic string) {
	e.t.Helper()
	e.api.JSON(http.MethodPost, "/links/"+linkName+"/mirrors", map[string]any{"source_topic_name": topic}, http.StatusNoContent, nil)
}

// waitCaughtUp waits until the mirror's end offsets equal the source's.
func (e *env) waitCaughtUp(srcTopic, mirrorTopic string) {
	e.t.Helper()
	_, srcEnds := testutil.Offsets(e.t, e.srcCl, srcTopic)
	testutil.WaitFor(e.t, 60*time.Second, mirrorTopic+" caught up", func() error {
		_, ends := testutil.Offsets(e.t, e.dstCl, mirrorTopic)
		for p, want := range srcEnds {
			if ends[p] != want {
				return fmt.Errorf("partition %d at %d, source at %d", p, ends[p], want)
			}
		}
		return nil
	})
}

// mirrorView is the part of KafkaMirrorData the tests read.
type mirrorView struct {
	LinkName         string `json:"link_name"`
	MirrorTopicName  string `json:"mirror_topic_name"`
	SourceTopicName  string `json:"source_topic_name"`
	NumPartitions    int    `json:"num_partitions"`
	MirrorStatus     string `json:"mirror_status"`
	MirrorTopicError string `json:"mirror_topic_error"`
	StateTimeMs      int64  `json:"state_time_ms"`
	MirrorLags       []struct {
		Partition             int32  `json:"partition"`
		Lag                   int64  `json:"lag"`
		LastSourceFetchOffset int64  `json:"last_source_fetch_offset"`
		StraitInstance        string `json:"strait_instance,omitempty"`
	} `json:"mirror_lags"`
	TransitionErrors []struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	} `json:"mirror_state_transition_errors"`
}

func (m mirrorView) totalLag() int64 {
	var n int64
	for _, l := range m.MirrorLags {
		n += l.Lag
	}
	return n
}

type alterResults struct {
	Data []struct {
		MirrorTopicName string  `json:"mirror_topic_name"`
		ErrorCode       *int    `json:"error_code"`
		ErrorMessage    *string `json:"error_message"`
		MirrorLags      []struct {
			Partition             int   `json:"partition"`
			Lag                   int64 `json:"lag"`
			LastSourceFetchOffset int64 `json:"last_source_fetch_offset"`
		} `json:"mirror_lags"`
	} `json:"data"`
}

func (e *env) describe(linkName, topic string) mirrorView {
	e.t.Helper()
	var v mirrorView
	e.api.JSON(http.MethodGet, "/links/"+linkName+"/mirrors/"+topic+"?include_state_transition_errors=true", nil, http.StatusOK, &v)
	return v
}

func (e *env) waitStatus(linkName, topic, status string) mirrorView {
	e.t.Helper()
	var v mirrorView
	testutil.WaitFor(e.t, 30*time.Second, topic+" "+status, func() error {
		v = e.describe(linkName, topic)
		if v.MirrorStatus != status {
			return fmt.Errorf("status %s (%s %v)", v.MirrorStatus, v.MirrorTopicError, v.TransitionErrors)
		}
		return nil
	})
	return v
}

func (e *env) alter(linkName, op string, body any, query string) alterResults {
	e.t.Helper()
	var r alterResults
	e.api.JSON(http.MethodPost, "/links/"+linkName+"/mirrors:"+op+query, body, http.StatusOK, &r)
	return r
}

// produceMixed writes n records to topic through one producer per codec,
// with keys, headers and explicit timestamps, and returns how many it wrote.
func produceMixed(t *testing.T, addrs []string, topic string, perCodec int) int {
	t.Helper()
	codecs := []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression(), kgo.SnappyCompression(), kgo.Lz4Compression(), kgo.ZstdCompression()}
	total := 0
	for ci, c := range codecs {
		p := testutil.Client(t, addrs, kgo.ProducerBatchCompression(c), kgo.ProducerLinger(2*time.Millisecond), kgo.DefaultProduceTopic(topic))
		rs := make([]*kgo.Record, perCodec)
		for i := range rs {
			n := ci*perCodec + i
			rs[i] = &kgo.Record{
				Key:       []byte(fmt.Sprintf("key-%d", n%97)),
				Value:     []byte(fmt.Sprintf("value %d codec %d %s", n, ci, string(make([]byte, n%50)))),
				Headers:   []kgo.RecordHeader{{Key: "n", Value: []byte(fmt.Sprint(n))}, {Key: "codec", Value: []byte(fmt.Sprint(ci))}},
				Timestamp: time.UnixMilli(1_700_000_000_000 + int64(n)*7),
			}
			if n%13 == 0 {
				rs[i].Key = nil // some records without a key
			}
		}
		if err := p.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
		total += perCodec
	}
	return total
}

func saslOpt(mech, user, pass string) kgo.Opt {
	switch mech {
	case "SCRAM-SHA-256":
		return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism())
	case "SCRAM-SHA-512":
		return kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism())
	}
	return kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())
}

// produceWith writes n keyed records through cl.
func produceWith(t *testing.T, cl *kgo.Client, topic string, n int) {
	t.Helper()
	rs := make([]*kgo.Record, n)
	for i := range rs {
		rs[i] = &kgo.Record{Topic: topic, Key: []byte(fmt.Sprint(i % 11)), Value: []byte(fmt.Sprintf("v%d", i))}
	}
	if err := cl.ProduceSync(context.Background(), rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// failMirror creates topic on the source and a mirror of it, then makes
// the mirror FAIL the way it must when someone else writes to it: a record
// written to the mirror topic, then a new source record that can no longer
// land on its offset.
func (e *env) failMirror(linkName, topic string) mirrorView {
	e.t.Helper()
	testutil.CreateTopic(e.t, e.srcCl, topic, 1, nil)
	produceWith(e.t, e.srcCl, topic, 5)
	e.createMirror(linkName, topic)
	e.waitCaughtUp(topic, topic)
	e.waitStatus(linkName, topic, "ACTIVE")
	w := testutil.Client(e.t, e.dst.ListenAddrs())
	if err := w.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte("foreign")}).FirstErr(); err != nil {
		e.t.Fatalf("foreign write: %v", err)
	}
	produceWith(e.t, e.srcCl, topic, 1)
	v := e.waitStatus(linkName, topic, "FAILED")
	if v.MirrorTopicError != "ILLEGAL_STATE" || len(v.TransitionErrors) == 0 {
		e.t.Fatalf("failed mirror reports %s %+v", v.MirrorTopicError, v.TransitionErrors)
	}
	return v
}
