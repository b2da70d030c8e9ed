package restapi

import (
	"net/http"
	"strings"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/mirror"
)

func lagsJSON(lags []mirror.Lag, copiedBy map[int32]string) []api.MirrorLag {
	out := make([]api.MirrorLag, 0, len(lags))
	for _, l := range lags {
		out = append(out, api.MirrorLag{Partition: l.Partition, Lag: l.Lag, LastSourceFetchOffset: l.LastSourceFetchOffset, StraitInstance: copiedBy[l.Partition]})
	}
	return out
}

func (s *Server) mirrorsURL(r *http.Request, c *call, linkName string) string {
	return c.baseURL(r) + "/clusters/" + s.m.ClusterID() + "/links/" + linkName + "/mirrors"
}

func (s *Server) mirrorData(r *http.Request, c *call, v link.MirrorView, withErrors bool) api.MirrorData {
	d := api.MirrorData{
		Kind:             "KafkaMirrorData",
		Metadata:         api.ResourceMetadata{Self: s.mirrorsURL(r, c, v.Link) + "/" + v.Topic},
		LinkName:         v.Link,
		MirrorTopicName:  v.Topic,
		SourceTopicName:  v.SourceTopic,
		NumPartitions:    v.Partitions,
		MirrorLags:       lagsJSON(v.Lags, v.CopiedBy),
		MirrorStatus:     string(v.Status),
		MirrorTopicError: v.TopicError,
		StateTimeMs:      v.StateTimeMs,
	}
	if withErrors {
		errs := make([]api.StateTransitionError, 0, len(v.TransitionErrors))
		for _, e := range v.TransitionErrors {
			errs = append(errs, api.StateTransitionError{ErrorCode: e.Code, ErrorMessage: e.Message})
		}
		d.TransitionErrors = &errs
	}
	return d
}

func (s *Server) listAllMirrors(w http.ResponseWriter, r *http.Request, c *call) error {
	return s.writeMirrors(w, r, c, "", s.mirrorsURL(r, c, "-"))
}

func (s *Server) listMirrors(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("link_name")
	return s.writeMirrors(w, r, c, name, s.mirrorsURL(r, c, name))
}

func (s *Server) writeMirrors(w http.ResponseWriter, r *http.Request, c *call, linkName, self string) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	// The Confluent CLI upper-cases the filter; accept either case.
	views, err := s.m.Mirrors(linkName, strings.ToUpper(r.URL.Query().Get("mirror_status")))
	if err != nil {
		return err
	}
	out := api.MirrorDataList{Kind: "KafkaMirrorDataList", Metadata: api.CollectionMetadata{Self: self}, Data: []api.MirrorData{}}
	for _, v := range views {
		if !s.canRead(r, v.Link) {
			continue
		}
		out.Data = append(out.Data, s.mirrorData(r, c, v, false))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getMirror(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	withErrors, err := boolParam(r, "include_state_transition_errors", false)
	if err != nil {
		return err
	}
	v, err := s.m.Mirror(r.PathValue("link_name"), r.PathValue("mirror_topic_name"), withErrors)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.mirrorData(r, c, v, withErrors))
	return nil
}

func (s *Server) createMirror(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	var body api.CreateMirrorRequest
	if err := decode(r, &body, false); err != nil {
		return err
	}
	req := link.CreateMirrorRequest{
		SourceTopic:       body.SourceTopicName,
		MirrorTopic:       body.MirrorTopicName,
		ReplicationFactor: body.ReplicationFactor,
	}
	for _, cv := range body.Configs {
		req.Configs = append(req.Configs, link.ConfigValue{Name: cv.Name, Value: cv.Value})
	}
	if err := s.m.CreateMirror(r.Context(), r.PathValue("link_name"), req); err != nil {
		return err
	}
	topic := req.MirrorTopic
	if topic == "" {
		topic = req.SourceTopic
	}
	noteTopics(r, auditTopic{name: topic})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) alterMirrors(op link.Op) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		if err := s.checkCluster(r); err != nil {
			return err
		}
		var opt link.AlterOptions
		var err error
		if opt.ValidateOnly, err = boolParam(r, "validate_only", false); err != nil {
			return err
		}
		if opt.IncludePartitionTruncation, err = boolParam(r, "include_partition_level_truncation_data", false); err != nil {
			return err
		}
		var body api.AlterMirrorsRequest
		if err := decode(r, &body, false); err != nil {
			return err
		}
		sel := link.Selection{HasNames: body.MirrorTopicNames != nil, HasPattern: body.MirrorTopicNamePattern != nil}
		if sel.HasNames {
			sel.Names = *body.MirrorTopicNames
		}
		if sel.HasPattern {
			sel.Pattern = *body.MirrorTopicNamePattern
		}
		name := r.PathValue("link_name")
		results, err := s.m.AlterMirrors(r.Context(), name, op, sel, opt)
		if err != nil {
			return err
		}
		reports := s.failoverPreview(r, op, opt, name, results)
		for _, res := range results {
			noteTopics(r, auditTopic{name: res.Topic, code: res.ErrorCode, msg: res.ErrorMessage})
		}
		base := s.mirrorsURL(r, c, name)
		out := api.AlterMirrorsDataList{Kind: "AlterMirrorsDataList", Metadata: api.CollectionMetadata{Self: base}, Data: []api.AlterMirrorsData{}}
		for _, res := range results {
			ar := api.AlterMirrorsData{
				Kind:                         "AlterMirrorsData",
				Metadata:                     api.ResourceMetadata{Self: base + "/" + res.Topic},
				MirrorTopicName:              res.Topic,
				MirrorLags:                   lagsJSON(res.Lags, nil),
				PartitionLevelTruncationData: []api.PartitionTruncation{},
			}
			if res.ErrorCode != 0 {
				code, msg := res.ErrorCode, res.ErrorMessage
				ar.ErrorCode, ar.ErrorMessage = &code, &msg
			}
			ar.MessagesTruncated = res.MessagesTruncated
			for _, pt := range res.Truncation {
				ar.PartitionLevelTruncationData = append(ar.PartitionLevelTruncationData, api.PartitionTruncation{PartitionID: pt.Partition, OffsetTruncatedTo: pt.OffsetTruncatedTo, MessagesTruncated: pt.MessagesTruncated})
			}
			ar.StraitFailoverReport = reports[res.Topic]
			out.Data = append(out.Data, ar)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}
