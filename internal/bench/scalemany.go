package bench

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The many-mirrors part: one serve, Topics mirror topics. The first
// PauseTopics topics are named pausedPrefix<n> so that a pattern selects
// exactly them, the others otherPrefix<n>.
const (
	pausedPrefix  = "scale-a-"
	otherPrefix   = "scale-b-"
	pausedPattern = pausedPrefix + ".*"
	scaleLink     = "scale"
)

// ManyResult is one serve binary's figures with many mirror topics.
type ManyResult struct {
	Label string `json:"label"`
	// CreateSeconds is the time to create every mirror, one call after
	// another; CreateMaxMs the slowest call.
	CreateSeconds float64 `json:"create_seconds"`
	CreateMaxMs   float64 `json:"create_max_ms"`
	// CatchUpSeconds runs from the last create until every mirror
	// partition ends where its source does; ActiveSeconds until every
	// mirror is ACTIVE.
	CatchUpSeconds float64 `json:"catch_up_seconds"`
	ActiveSeconds  float64 `json:"active_seconds"`
	// Idle figures, over the idle window after catching up: the serve's
	// CPU time over wall time (100 = one core), both clusters' too.
	IdleCPUPercent        float64 `json:"idle_cpu_percent"`
	IdleClusterCPUPercent float64 `json:"idle_clusters_cpu_percent"`
	RSSMiB                float64 `json:"rss_mib"`
	PeakRSSMiB            float64 `json:"peak_rss_mib"`
	FDs                   int     `json:"open_fds"`
	// SourceConns and DestConns are the serve's connections to each
	// broker of the source and of the destination; OtherConns the rest.
	SourceConns []int `json:"source_connections"`
	DestConns   []int `json:"dest_connections"`
	OtherConns  int   `json:"other_connections"`
	// List figures are the median and slowest of ListRepeats calls.
	ListAllMs     float64    `json:"list_all_ms"`
	ListAllMaxMs  float64    `json:"list_all_max_ms"`
	ListLinkMs    float64    `json:"list_link_ms"`
	ListLinkMaxMs float64    `json:"list_link_max_ms"`
	ListBytes     int        `json:"list_bytes"`
	Pause         BulkResult `json:"pause"`
	Resume        BulkResult `json:"resume"`
	// RestartSeconds is from starting serve again until /readyz is 200;
	// StateRecords the state topic's end offset then.
	RestartSeconds float64 `json:"restart_ready_seconds"`
	StateRecords   int64   `json:"state_records"`
	Error          string  `json:"error,omitempty"`
}

// BulkResult is a pause or resume by pattern while the source topics take
// writes.
type BulkResult struct {
	Topics int     `json:"topics"`
	CallMs float64 `json:"call_ms"`
	// SettledMs is, for a pause, when the mirrors' end offsets were last
	// seen moving, from the start of the call (polled every 50 ms; at
	// most the call's time when nothing moved after the answer);
	// AfterAnswer the records that landed after the answer. For a
	// resume, SettledMs is when they were first seen moving again.
	SettledMs   float64 `json:"settled_ms"`
	AfterAnswer int64   `json:"records_after_answer"`
	Error       string  `json:"error,omitempty"`
}

// topicNames returns the many-mirror topics: the paused group first.
func (e *scaleEnv) topicNames() (all, paused []string) {
	for i := range e.o.Topics {
		name := fmt.Sprintf("%s%05d", otherPrefix, i)
		if i < e.o.PauseTopics {
			name = fmt.Sprintf("%s%05d", pausedPrefix, i)
			paused = append(paused, name)
		}
		all = append(all, name)
	}
	return all, paused
}

// runMany measures one serve binary with many mirror topics, on clusters
// of its own.
func (e *scaleEnv) runMany(ctx context.Context, sb ServeBinary) ManyResult {
	res := ManyResult{Label: sb.Label}
	if err := e.many(ctx, sb, &res); err != nil {
		res.Error = err.Error()
		e.log.Error("many mirrors", "serve", sb.Label, "err", err)
	}
	return res
}

func (e *scaleEnv) many(ctx context.Context, sb ServeBinary, res *ManyResult) error {
	o := e.o
	src, dst, stop, err := e.startClusters(ctx, "many", o.Brokers)
	if err != nil {
		return err
	}
	defer stop()
	all, paused := e.topicNames()
	e.log.Info("many mirrors: creating source topics", "serve", sb.Label, "topics", len(all), "partitions", o.Partitions)
	if err := src.createTopics(ctx, all, o.Partitions); err != nil {
		return err
	}
	if err := fillTopics(ctx, src, all, o.Partitions, o.RecordsPerPartition); err != nil {
		return err
	}
	want, err := src.endOffsetsOf(ctx, all)
	if err != nil {
		return err
	}
	var runEnv, idleEnv []string
	if o.ProfileDir != "" {
		base := filepath.Join(o.ProfileDir, sb.Label)
		runEnv = []string{"STRAIT_CPUPROFILE=" + base + "-run.cpu"}
		idleEnv = []string{"STRAIT_CPUPROFILE=" + base + "-idle.cpu", "STRAIT_MEMPROFILE=" + base + "-idle.mem",
			"STRAIT_PROFILE_AFTER=" + (20 * time.Second).String()}
	}
	sv, err := startServe(ctx, "many-"+sb.Label, e.logDir, sb.Path, append(runEnv, e.serveEnv...), dst, "__strait_state")
	if err != nil {
		return err
	}
	defer func() { sv.p.stop(30 * time.Second) }()
	if err := sv.createLink(ctx, dst, src, scaleLink, nil); err != nil {
		return fmt.Errorf("create link: %w", err)
	}

	e.log.Info("many mirrors: creating mirrors", "serve", sb.Label, "mirrors", len(all))
	start := time.Now()
	url := sv.links(dst) + "/" + scaleLink + "/mirrors"
	for _, t := range all {
		t0 := time.Now()
		if _, err := sv.call(ctx, http.MethodPost, url, map[string]string{"source_topic_name": t}); err != nil {
			return fmt.Errorf("create mirror %s: %w", t, err)
		}
		res.CreateMaxMs = max(res.CreateMaxMs, ms(time.Since(t0)))
	}
	created := time.Now()
	res.CreateSeconds = created.Sub(start).Seconds()
	e.log.Info("many mirrors: created", "serve", sb.Label, "seconds", round(res.CreateSeconds, 2))

	err = waitFor(ctx, o.Timeout, 500*time.Millisecond, func() error {
		if err := sv.p.exited(); err != nil {
			return stopWaiting{err}
		}
		got, err := dst.endOffsetsOf(ctx, all)
		if err != nil {
			return err
		}
		if behind := behindOf(got, want); behind > 0 {
			return fmt.Errorf("%d partitions not caught up", behind)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("catch up: %w", err)
	}
	res.CatchUpSeconds = time.Since(created).Seconds()
	err = waitFor(ctx, o.Timeout, time.Second, func() error {
		ml, _, err := sv.mirrors(ctx, url)
		if err != nil {
			return err
		}
		active := 0
		for _, m := range ml.Data {
			if m.MirrorStatus == "ACTIVE" {
				active++
			}
		}
		if active < len(all) {
			return fmt.Errorf("%d of %d mirrors ACTIVE", active, len(all))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mirrors active: %w", err)
	}
	res.ActiveSeconds = time.Since(created).Seconds()
	e.log.Info("many mirrors: caught up", "serve", sb.Label, "seconds", round(res.CatchUpSeconds, 2))

	if err := e.idle(ctx, sv, src, dst, res); err != nil {
		return err
	}
	if err := e.lists(ctx, sv, dst, res); err != nil {
		return err
	}
	e.bulk(ctx, sv, src, dst, paused, res)

	// Start-up: the state topic read again.
	sv.p.stop(30 * time.Second)
	t0 := time.Now()
	sv, err = startServe(ctx, "many-"+sb.Label+"-restart", e.logDir, sb.Path, append(idleEnv, e.serveEnv...), dst, "__strait_state")
	if err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	res.RestartSeconds = time.Since(t0).Seconds()
	if ends, err := dst.endOffsets(ctx, "__strait_state"); err == nil {
		res.StateRecords = ends[0]
	}
	e.log.Info("many mirrors: restarted", "serve", sb.Label, "seconds", round(res.RestartSeconds, 2))
	if o.ProfileDir != "" {
		// The profile of an idle serve: what start-up set going has
		// settled; stopping it writes the profiles.
		e.log.Info("many mirrors: profiling the idle serve", "seconds", o.IdleSeconds, "after", 20*time.Second)
		return sleepCtx(ctx, time.Duration(20+o.IdleSeconds)*time.Second)
	}
	return nil
}

// idle measures the serve process over the idle window.
func (e *scaleEnv) idle(ctx context.Context, sv *serve, src, dst *cluster, res *ManyResult) error {
	// Let what catching up started (state writes, first syncs) settle.
	if err := sleepCtx(ctx, 5*time.Second); err != nil {
		return err
	}
	e.log.Info("many mirrors: idle window", "seconds", e.o.IdleSeconds)
	pid := sv.p.pid()
	u0, err := readUsage(pid)
	if err != nil {
		return err
	}
	s0, _ := src.proc.usage()
	d0, _ := dst.proc.usage()
	t0 := time.Now()
	if err := sleepCtx(ctx, time.Duration(e.o.IdleSeconds)*time.Second); err != nil {
		return err
	}
	u1, err := readUsage(pid)
	if err != nil {
		return err
	}
	s1, _ := src.proc.usage()
	d1, _ := dst.proc.usage()
	wall := time.Since(t0).Seconds()
	res.IdleCPUPercent = 100 * (u1.CPUSeconds - u0.CPUSeconds) / wall
	res.IdleClusterCPUPercent = 100 * (s1.CPUSeconds - s0.CPUSeconds + d1.CPUSeconds - d0.CPUSeconds) / wall
	res.PeakRSSMiB = float64(u1.PeakRSSBytes) / (1 << 20)
	rss, err := rssBytes(pid)
	if err != nil {
		return err
	}
	res.RSSMiB = float64(rss) / (1 << 20)
	if res.FDs, err = openFDs(pid); err != nil {
		return err
	}
	peers, err := tcpPeers(pid)
	if err != nil {
		return err
	}
	srcB, err := src.brokerAddrs(ctx)
	if err != nil {
		return err
	}
	dstB, err := dst.brokerAddrs(ctx)
	if err != nil {
		return err
	}
	total := 0
	for _, n := range peers {
		total += n
	}
	for _, a := range srcB {
		res.SourceConns = append(res.SourceConns, peers[a])
		total -= peers[a]
	}
	for _, a := range dstB {
		res.DestConns = append(res.DestConns, peers[a])
		total -= peers[a]
	}
	res.OtherConns = total
	return nil
}

// lists times the mirror lists.
func (e *scaleEnv) lists(ctx context.Context, sv *serve, dst *cluster, res *ManyResult) error {
	time1 := func(url string) ([]float64, int, error) {
		var ds []float64
		size := 0
		for range e.o.ListRepeats {
			t0 := time.Now()
			ml, n, err := sv.mirrors(ctx, url)
			if err != nil {
				return nil, 0, err
			}
			ds = append(ds, ms(time.Since(t0)))
			if len(ml.Data) != e.o.Topics {
				return nil, 0, fmt.Errorf("GET %s listed %d mirrors, want %d", url, len(ml.Data), e.o.Topics)
			}
			size = n
		}
		slices.Sort(ds)
		return ds, size, nil
	}
	all, size, err := time1(sv.root + "/kafka/v3/clusters/" + dst.id + "/links/-/mirrors")
	if err != nil {
		return err
	}
	one, _, err := time1(sv.links(dst) + "/" + scaleLink + "/mirrors")
	if err != nil {
		return err
	}
	res.ListAllMs, res.ListAllMaxMs = all[(len(all)-1)/2], all[len(all)-1]
	res.ListLinkMs, res.ListLinkMaxMs = one[(len(one)-1)/2], one[len(one)-1]
	res.ListBytes = size
	return nil
}

// bulk pauses and resumes the paused group by pattern while a producer
// writes to their source topics.
func (e *scaleEnv) bulk(ctx context.Context, sv *serve, src, dst *cluster, topics []string, res *ManyResult) {
	res.Pause.Topics, res.Resume.Topics = len(topics), len(topics)
	pctx, cancel := context.WithCancel(ctx)
	var produced atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		produceSteadily(pctx, src, topics, e.o.Partitions, e.o.ProduceRate, &produced, e.log)
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()
	base := sv.links(dst) + "/" + scaleLink + "/mirrors"
	body := map[string]string{"mirror_topic_name_pattern": pausedPattern}

	// Copying first: the mirrors' ends move.
	before, err := dst.endOffsetsOf(ctx, topics)
	if err == nil {
		err = waitFor(ctx, 30*time.Second, 100*time.Millisecond, func() error {
			now, err := dst.endOffsetsOf(ctx, topics)
			if err != nil {
				return err
			}
			if sumAll(now) == sumAll(before) {
				return fmt.Errorf("the mirrors take no records (%d produced)", produced.Load())
			}
			return nil
		})
	}
	if err != nil {
		res.Pause.Error = err.Error()
		return
	}
	e.log.Info("many mirrors: pausing", "mirrors", len(topics))
	res.Pause = e.timeBulk(ctx, sv, base+":pause", body, dst, topics, true)
	res.Pause.Topics = len(topics)
	if res.Pause.Error != "" {
		return
	}
	e.log.Info("many mirrors: resuming", "mirrors", len(topics))
	res.Resume = e.timeBulk(ctx, sv, base+":resume", body, dst, topics, false)
	res.Resume.Topics = len(topics)
}

// timeBulk sends one alter call and watches the mirrors' end offsets: for
// a pause until they have not moved for 3 s, for a resume until they move.
func (e *scaleEnv) timeBulk(ctx context.Context, sv *serve, url string, body any, dst *cluster, topics []string, pause bool) BulkResult {
	var r BulkResult
	t0 := time.Now()
	if _, err := sv.call(ctx, http.MethodPost, url, body); err != nil {
		r.Error = err.Error()
		return r
	}
	answered := time.Now()
	r.CallMs = ms(answered.Sub(t0))
	prev, err := dst.endOffsetsOf(ctx, topics)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	first := sumAll(prev)
	last := answered
	deadline := answered.Add(time.Minute)
	for time.Now().Before(deadline) {
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			r.Error = err.Error()
			return r
		}
		cur, err := dst.endOffsetsOf(ctx, topics)
		if err != nil {
			continue
		}
		now := time.Now()
		moved := sumAll(cur) != sumAll(prev)
		prev = cur
		if !pause && moved {
			r.SettledMs = ms(now.Sub(t0))
			return r
		}
		if pause && moved {
			last = now
		}
		if pause && now.Sub(last) >= 3*time.Second {
			r.SettledMs = ms(last.Sub(t0))
			r.AfterAnswer = sumAll(cur) - first
			return r
		}
	}
	if pause {
		r.Error = "the mirrors' end offsets still move a minute after the pause"
	} else {
		r.Error = "the mirrors' end offsets did not move within a minute of the resume"
	}
	return r
}

// produceSteadily writes rate small records a second, round-robin over
// the partitions of topics, until ctx ends.
func produceSteadily(ctx context.Context, src *cluster, topics []string, partitions, rate int, n *atomic.Int64, log *slog.Logger) {
	if rate <= 0 || len(topics) == 0 {
		return
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(src.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	if err != nil {
		log.Warn("steady producer", "err", err)
		return
	}
	defer cl.Close()
	m := newRecordMaker(smallShape(), 7)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var i int64
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		due := int64(time.Since(start).Seconds() * float64(rate))
		for ; i < due; i++ {
			r := m.record(i)
			slot := i % int64(len(topics)*partitions)
			r.Topic, r.Partition = topics[slot/int64(partitions)], int32(slot%int64(partitions))
			cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
				if err == nil {
					n.Add(1)
				}
			})
		}
	}
}

// fillTopics writes perPartition small records to every partition of
// topics.
func fillTopics(ctx context.Context, c *cluster, topics []string, partitions, perPartition int) error {
	if perPartition == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.addr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(10*time.Millisecond), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return fmt.Errorf("filler client: %w", err)
	}
	defer cl.Close()
	m := newRecordMaker(smallShape(), 3)
	var mu sync.Mutex
	var firstErr error
	var i int64
	for range perPartition {
		for _, t := range topics {
			for p := range partitions {
				r := m.record(i)
				i++
				r.Topic, r.Partition = t, int32(p)
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					if err != nil {
						mu.Lock()
						firstErr = cmpOr(firstErr, err)
						mu.Unlock()
					}
				})
			}
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	if firstErr != nil {
		return fmt.Errorf("fill: %w", firstErr)
	}
	return nil
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// createTopics creates topics with n partitions each, in requests of a
// few hundred topics.
func (c *cluster) createTopics(ctx context.Context, topics []string, n int) error {
	for chunk := range slices.Chunk(topics, 200) {
		resp, err := c.adm.CreateTopics(ctx, int32(n), 1, nil, chunk...)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("create topics on %s: %w", c.id, err)
		}
	}
	return nil
}

// endOffsetsOf returns the end offsets of every partition of topics, by
// topic; a partition that does not exist yet is left out.
func (c *cluster) endOffsetsOf(ctx context.Context, topics []string) (map[string]map[int32]int64, error) {
	out := make(map[string]map[int32]int64, len(topics))
	listed, err := c.adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("end offsets on %s: %w", c.id, err)
	}
	var firstErr error
	listed.Each(func(o kadm.ListedOffset) {
		switch {
		case o.Err == nil:
			if out[o.Topic] == nil {
				out[o.Topic] = map[int32]int64{}
			}
			out[o.Topic][o.Partition] = o.Offset
		case o.Err != kerr.UnknownTopicOrPartition && firstErr == nil:
			firstErr = fmt.Errorf("end offset of %s/%d on %s: %w", o.Topic, o.Partition, c.id, o.Err)
		}
	})
	return out, firstErr
}

// brokerAddrs lists the cluster's brokers' addresses, by node id.
func (c *cluster) brokerAddrs(ctx context.Context) ([]string, error) {
	bs, err := c.adm.ListBrokers(ctx)
	if err != nil {
		return nil, fmt.Errorf("brokers of %s: %w", c.id, err)
	}
	slices.SortFunc(bs, func(a, b kadm.BrokerDetail) int { return int(a.NodeID - b.NodeID) })
	var out []string
	for _, b := range bs {
		out = append(out, fmt.Sprintf("%s:%d", b.Host, b.Port))
	}
	return out, nil
}

// behindOf counts the partitions of want that got does not reach.
func behindOf(got, want map[string]map[int32]int64) int {
	n := 0
	for t, ps := range want {
		for p, end := range ps {
			if got[t][p] < end {
				n++
			}
		}
	}
	return n
}

func sumAll(ends map[string]map[int32]int64) int64 {
	var n int64
	for _, ps := range ends {
		n += sumEnds(ps)
	}
	return n
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
