package restapi

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/verify"
)

// Strait's own endpoints, outside Confluent's namespace: verification of
// mirror topics, the failover report, consumer group readiness and the
// planned switchover. They go through the same guard (authentication,
// roles, rate limits, audit) and answer errors in Confluent's body.

// StraitPrefix is the root of Strait's own endpoints.
const StraitPrefix = "/strait/v1"

// defaultVerifyRate caps what a verification asked through the API reads
// from each cluster, unless the request says otherwise.
const defaultVerifyRate = 32 << 20

func (s *Server) straitRoutes() {
	const p = StraitPrefix
	c := p + "/clusters/{cluster_id}"
	l := c + "/links/{link_name}"
	verifyRoute := "POST " + l + "/mirrors/{mirror_topic_name}:verify"
	s.mux.HandleFunc("POST "+l+"/mirrors/{mirror_action}", s.actions("mirror_action", "mirror_topic_name", map[string]http.HandlerFunc{
		"verify": s.wrap(verifyRoute, p, access{action: auth.ActionOperate, link: pathLink, query: []string{"partitions", "from_start", "bytes_per_second"}}, s.verifyMirror),
	}))
	s.handle("GET "+l+"/mirrors/{mirror_topic_name}/verification", p, readPath, s.getVerification)
	s.handle("GET "+l+"/failover-report", p, access{action: auth.ActionRead, link: pathLink, query: []string{"mirror_topic_name"}}, s.failoverReport)
	switchRoute := "POST " + c + "/links/{link_name}:switchover"
	s.mux.HandleFunc("POST "+c+"/links/{link_action}", s.actions("link_action", "link_name", map[string]http.HandlerFunc{
		"switchover": s.wrap(switchRoute, p, access{action: auth.ActionOperate, link: pathLink}, s.switchover),
	}))
	s.handle("GET "+c+"/groups/{group_id}/readiness", p, access{action: auth.ActionRead, anyLink: true, query: []string{"max_lag"}}, s.groupReadiness)
}

// actions serves "{name}:{action}" path segments (topic and link names
// cannot hold a colon): the name becomes the path value nameParam, and the
// action picks the handler; an unknown action is not found.
func (s *Server) actions(param, nameParam string, byAction map[string]http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		name, action, ok := strings.Cut(r.PathValue(param), ":")
		h := byAction[action]
		if !ok || name == "" || h == nil {
			s.notFoundAudited(w, r)
			return
		}
		r.SetPathValue(nameParam, name)
		h(w, r)
	}
}

func (s *Server) straitURL(r *http.Request, c *call, rest string) string {
	return c.baseURL(r) + "/clusters/" + s.m.ClusterID() + rest
}

// int64Param reads an integer query parameter with a default.
func int64Param(r *http.Request, name string, def int64) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest("Invalid value '%s' for query parameter '%s': use a whole number of 0 or more.", v, name)
	}
	return n, nil
}

func (s *Server) verifyMirror(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	var opt link.VerifyOptions
	var err error
	if opt.FromStart, err = boolParam(r, "from_start", false); err != nil {
		return err
	}
	if opt.BytesPerSecond, err = int64Param(r, "bytes_per_second", defaultVerifyRate); err != nil {
		return err
	}
	if v := r.URL.Query().Get("partitions"); v != "" {
		for _, f := range strings.Split(v, ",") {
			p, err := strconv.ParseInt(strings.TrimSpace(f), 10, 32)
			if err != nil || p < 0 {
				return badRequest("Invalid value '%s' for query parameter 'partitions': give partition numbers separated by commas.", v)
			}
			opt.Partitions = append(opt.Partitions, int32(p))
		}
	}
	name, topic := r.PathValue("link_name"), r.PathValue("mirror_topic_name")
	res, err := s.m.VerifyMirror(r.Context(), name, topic, opt)
	if err != nil {
		return err
	}
	out := api.MirrorVerification{
		Kind:            "StraitMirrorVerification",
		Metadata:        api.ResourceMetadata{Self: s.straitURL(r, c, "/links/"+name+"/mirrors/"+topic+"/verification")},
		LinkName:        name,
		MirrorTopicName: topic,
		SourceTopicName: res.SourceTopic,
		MirrorStatus:    string(res.Status),
		Verified:        res.Complete(),
		Diverged:        res.Diverged(),
		Summary:         verifySummary(&res),
		TookMs:          res.Took.Milliseconds(),
		Partitions:      []api.VerifiedPartition{},
		Totals:          statsJSON(res.Stats),
	}
	for _, p := range res.Partitions {
		out.Partitions = append(out.Partitions, verifiedJSON(p))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func statsJSON(s verify.Stats) api.VerifyStats {
	return api.VerifyStats{SourceBatches: s.SourceBatches, MirrorBatches: s.MirrorBatches, SourceBytes: s.SourceBytes, MirrorBytes: s.MirrorBytes,
		Offsets: s.Offsets, DecompressedBatches: s.Decompressed, Fillers: s.Fillers, Compacted: s.Compacted}
}

func divergenceJSON(d *verify.Divergence) *api.Divergence {
	if d == nil {
		return nil
	}
	return &api.Divergence{Offset: d.Offset, Code: string(d.Code), Message: d.Message}
}

func verifiedJSON(p verify.PartitionResult) api.VerifiedPartition {
	v := api.VerifiedPartition{Partition: p.Partition, FromOffset: p.From, VerifiedOffset: p.Verified,
		SourceStartOffset: p.SourceStart, SourceEndOffset: p.SourceEnd, MirrorStartOffset: p.MirrorStart, MirrorEndOffset: p.MirrorEnd,
		Divergence: divergenceJSON(p.Divergence), VerifyStats: statsJSON(p.Stats)}
	if p.Error != "" {
		e := p.Error
		v.Error = &e
	}
	return v
}

// verifySummary says in one line how a verification went.
func verifySummary(res *link.VerifyResult) string {
	for _, p := range res.Partitions {
		if d := p.Divergence; d != nil {
			return fmt.Sprintf("partition %d differs from its source at offset %d: %s", p.Partition, d.Offset, d.Message)
		}
	}
	for _, p := range res.Partitions {
		if p.Error != "" {
			return fmt.Sprintf("partition %d verified up to offset %d only: %s", p.Partition, p.Verified, p.Error)
		}
	}
	behind := 0
	for _, p := range res.Partitions {
		if p.MirrorEnd < p.SourceEnd {
			behind++
		}
	}
	msg := fmt.Sprintf("%d partitions identical to their source up to the mirror's end: %d offsets compared in %d source and %d mirror batches, %d decompressed",
		len(res.Partitions), res.Stats.Offsets, res.Stats.SourceBatches, res.Stats.MirrorBatches, res.Stats.Decompressed)
	if behind > 0 {
		msg += fmt.Sprintf("; %d partitions still have records to copy", behind)
	}
	return msg
}

func (s *Server) getVerification(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	name, topic := r.PathValue("link_name"), r.PathValue("mirror_topic_name")
	cps, err := s.m.MirrorCheckpoints(name, topic)
	if err != nil {
		return err
	}
	out := api.MirrorCheckpoints{Kind: "StraitMirrorCheckpoints", Metadata: api.ResourceMetadata{Self: s.straitURL(r, c, "/links/"+name+"/mirrors/"+topic+"/verification")},
		LinkName: name, MirrorTopicName: topic, Partitions: []api.VerificationCheckpoint{}}
	for _, cp := range cps {
		out.Partitions = append(out.Partitions, api.VerificationCheckpoint{Partition: cp.Partition, VerifiedOffset: cp.Verified, Divergence: divergenceJSON(cp.Divergence), TimeMs: cp.TimeMs})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// failoverPreview is, for a failover with validate_only=true, what the
// failover of each topic that would take it loses now; nil otherwise, or
// when the report cannot be made (the validation itself stands).
func (s *Server) failoverPreview(r *http.Request, op link.Op, opt link.AlterOptions, name string, results []link.AlterResult) map[string]*api.FailoverTopic {
	if op != link.OpFailover || !opt.ValidateOnly {
		return nil
	}
	var topics []string
	for _, res := range results {
		if res.ErrorCode == 0 {
			topics = append(topics, res.Topic)
		}
	}
	if len(topics) == 0 {
		return nil
	}
	rep, err := s.m.FailoverReport(r.Context(), name, topics)
	if err != nil {
		s.log.Warn("failover report for a validate_only failover", "link", name, "err", err)
		return nil
	}
	out := map[string]*api.FailoverTopic{}
	for _, ft := range rep.Topics {
		j := failoverTopicJSON(ft)
		out[ft.Topic] = &j
	}
	return out
}

func (s *Server) failoverReport(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	name := r.PathValue("link_name")
	var topics []string
	for _, v := range r.URL.Query()["mirror_topic_name"] {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				topics = append(topics, t)
			}
		}
	}
	rep, err := s.m.FailoverReport(r.Context(), name, topics)
	if err != nil {
		return err
	}
	out := api.FailoverReport{
		Kind:               "StraitFailoverReport",
		Metadata:           api.ResourceMetadata{Self: s.straitURL(r, c, "/links/"+name+"/failover-report")},
		LinkName:           name,
		Verdict:            rep.Verdict,
		MaxDataLossSeconds: rep.MaxLossSeconds,
		LaggingPartitions:  rep.LaggingPartitions,
		LaggingTopics:      rep.LaggingTopics,
		OpenTransactions:   rep.OpenTransactions,
		Topics:             []api.FailoverTopic{},
	}
	for _, ft := range rep.Topics {
		out.Topics = append(out.Topics, failoverTopicJSON(ft))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func failoverTopicJSON(ft link.FailoverTopic) api.FailoverTopic {
	out := api.FailoverTopic{MirrorTopicName: ft.Topic, SourceTopicName: ft.SourceTopic, MirrorStatus: string(ft.Status), Verdict: ft.Verdict,
		Partitions: []api.FailoverPartition{}, Groups: []api.FailoverGroup{}}
	for _, p := range ft.Partitions {
		fp := api.FailoverPartition{Partition: p.Partition, SourceEndOffset: p.SourceEnd, MirrorEndOffset: p.MirrorEnd,
			RecordsNotCopied: p.NotCopied, DataLossSeconds: p.LossSeconds, OpenTransactions: []api.OpenTransaction{}}
		if p.OldestNotCopiedMs >= 0 {
			ts := p.OldestNotCopiedMs
			fp.OldestNotCopiedTimestampMs = &ts
		}
		for _, start := range p.OpenTxnStarts {
			fp.OpenTransactions = append(fp.OpenTransactions, api.OpenTransaction{StartOffset: start, RecordsOnMirror: max(0, p.MirrorEnd-start)})
		}
		out.Partitions = append(out.Partitions, fp)
	}
	for _, g := range ft.Groups {
		fg := api.FailoverGroup{GroupID: g.Group, Reprocessed: g.Reprocessed, Missed: g.Missed, Partitions: []api.FailoverGroupPartition{}}
		for _, p := range g.Partitions {
			fg.Partitions = append(fg.Partitions, api.FailoverGroupPartition{Partition: p.Partition, SourceOffset: p.Source, DestinationOffset: p.Destination,
				OffsetAfterFailover: p.After, Reprocessed: p.Reprocessed, Missed: p.Missed})
		}
		out.Groups = append(out.Groups, fg)
	}
	return out
}

func (s *Server) groupReadiness(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	maxLag, err := int64Param(r, "max_lag", 0)
	if err != nil {
		return err
	}
	group := r.PathValue("group_id")
	self := s.straitURL(r, c, "/groups/"+group+"/readiness")
	if group == "-" {
		group = "" // every group
	}
	linkName := r.URL.Query().Get("link_name")
	if linkName != "" && !s.canRead(r, linkName) {
		return errForbidden
	}
	rs, err := s.m.GroupReadiness(r.Context(), linkName, group, maxLag, func(l string) bool { return s.canRead(r, l) })
	if err != nil {
		return err
	}
	out := api.GroupReadinessList{Kind: "StraitGroupReadinessList", Metadata: api.ResourceMetadata{Self: self}, Data: []api.GroupReadiness{}}
	for _, g := range rs {
		gr := api.GroupReadiness{Kind: "StraitGroupReadiness", LinkName: g.Link, GroupID: g.Group, Ready: g.Ready, Reasons: g.Reasons, Topics: []api.ReadinessTopic{}}
		for _, t := range g.Topics {
			rt := api.ReadinessTopic{SourceTopicName: t.SourceTopic, Lag: t.Lag, Partitions: []api.ReadinessPartition{}}
			if t.MirrorTopic != "" {
				mt := t.MirrorTopic
				rt.MirrorTopicName = &mt
			}
			for _, p := range t.Partitions {
				rt.Partitions = append(rt.Partitions, api.ReadinessPartition{Partition: p.Partition, SourceOffset: p.Source, DestinationOffset: p.Destination,
					MirrorEndOffset: p.MirrorEnd, SourceEndOffset: p.SourceEnd, Lag: p.Lag})
			}
			gr.Topics = append(gr.Topics, rt)
		}
		out.Data = append(out.Data, gr)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) switchover(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	var body api.SwitchoverRequest
	if err := decode(r, &body, false); err != nil {
		return err
	}
	req := link.SwitchoverRequest{Groups: body.GroupIDs, Quiet: 5 * time.Second, Timeout: time.Minute}
	req.Selection = link.Selection{HasNames: body.MirrorTopicNames != nil, HasPattern: body.MirrorTopicNamePattern != nil}
	if req.Selection.HasNames {
		req.Selection.Names = *body.MirrorTopicNames
	}
	if req.Selection.HasPattern {
		req.Selection.Pattern = *body.MirrorTopicNamePattern
	}
	for name, v := range map[string]*int64{"quiet_ms": body.QuietMs, "timeout_ms": body.TimeoutMs, "verify_bytes_per_second": body.VerifyBytesPerSecond} {
		if v != nil && *v < 0 {
			return badRequest("Field '%s' must be 0 or more.", name)
		}
	}
	if body.QuietMs != nil && *body.QuietMs > 0 {
		req.Quiet = time.Duration(*body.QuietMs) * time.Millisecond
	}
	if body.TimeoutMs != nil && *body.TimeoutMs > 0 {
		req.Timeout = time.Duration(*body.TimeoutMs) * time.Millisecond
	}
	if body.VerifyBytesPerSecond != nil {
		req.BytesPerSecond = *body.VerifyBytesPerSecond
	}
	name := r.PathValue("link_name")
	res, err := s.m.Switchover(r.Context(), name, req)
	if err != nil {
		return err
	}
	out := api.SwitchoverReport{
		Kind:        "StraitSwitchover",
		Metadata:    api.ResourceMetadata{Self: s.straitURL(r, c, "/links/"+name)},
		LinkName:    name,
		QuietWaitMs: res.QuietWait.Milliseconds(),
		TookMs:      res.Took.Milliseconds(),
		Topics:      []api.SwitchoverTopic{},
		Groups:      []api.SwitchoverGroup{},
	}
	for _, t := range res.Topics {
		st := api.SwitchoverTopic{MirrorTopicName: t.Topic, SourceTopicName: t.SourceTopic, MirrorStatus: string(t.Status), Partitions: []api.SwitchoverPartition{}, Verified: statsJSON(t.Verified)}
		for _, p := range t.Partitions {
			st.Partitions = append(st.Partitions, api.SwitchoverPartition{Partition: p.Partition, EndOffset: p.End, VerifiedOffset: p.Verified})
		}
		out.Topics = append(out.Topics, st)
	}
	for _, g := range res.Groups {
		sg := api.SwitchoverGroup{GroupID: g.Group, Offsets: []api.SwitchoverGroupOffset{}}
		for _, o := range g.Offsets {
			sg.Offsets = append(sg.Offsets, api.SwitchoverGroupOffset{MirrorTopicName: o.Topic, Partition: o.Partition, Offset: o.Offset})
		}
		out.Groups = append(out.Groups, sg)
	}
	out.Summary = fmt.Sprintf("switched over %d topics (%d partitions, verified up to their source's end) and %d consumer groups after %.1f s of quiet wait",
		len(res.Topics), countPartitions(res.Topics), len(res.Groups), res.QuietWait.Seconds())
	writeJSON(w, http.StatusOK, out)
	return nil
}

func countPartitions(ts []link.SwitchoverTopic) int {
	n := 0
	for _, t := range ts {
		n += len(t.Partitions)
	}
	return n
}
