package restapi

import (
	"net/http"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
)

func (s *Server) linkData(r *http.Request, c *call, v link.LinkView) api.LinkData {
	d := api.LinkData{
		Kind:             "KafkaLinkData",
		Metadata:         api.ResourceMetadata{Self: c.baseURL(r) + "/clusters/" + s.m.ClusterID() + "/links/" + v.Name},
		LinkName:         v.Name,
		LinkID:           v.LinkID,
		ClusterLinkID:    v.ClusterLinkID,
		TopicNames:       v.TopicNames,
		LinkState:        v.State,
		LinkError:        v.Error,
		LinkErrorMessage: v.ErrorMessage,
		CategoryCounts:   []api.LinkCategoryCount{},
	}
	if v.SourceClusterID != "" {
		id := v.SourceClusterID
		if v.Bidirectional {
			d.RemoteClusterID = &id
		} else {
			d.SourceClusterID = &id
		}
	}
	for _, cc := range v.Categories {
		d.CategoryCounts = append(d.CategoryCounts, api.LinkCategoryCount{StateCategory: cc.Category, Count: cc.Count})
	}
	for _, t := range v.Tasks {
		lt := api.LinkTask{TaskName: t.Name, State: t.State, Errors: []api.LinkTaskError{}}
		for _, e := range t.Errors {
			lt.Errors = append(lt.Errors, api.LinkTaskError{ErrorCode: e.Code, ErrorMessage: e.Message})
		}
		d.Tasks = append(d.Tasks, lt)
	}
	return d
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	out := api.LinkDataList{
		Kind:     "KafkaLinkDataList",
		Metadata: api.CollectionMetadata{Self: c.baseURL(r) + "/clusters/" + s.m.ClusterID() + "/links"},
		Data:     []api.LinkData{},
	}
	for _, v := range s.m.Links() {
		if !s.canRead(r, v.Name) {
			continue
		}
		out.Data = append(out.Data, s.linkData(r, c, v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getLink(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	withTasks, err := boolParam(r, "include_tasks", false)
	if err != nil {
		return err
	}
	v, err := s.m.Link(r.PathValue("link_name"), withTasks)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.linkData(r, c, v))
	return nil
}

func (s *Server) createLink(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	name := r.URL.Query().Get("link_name")
	if name == "" {
		return badRequest("Query parameter 'link_name' is required.")
	}
	validateOnly, err := boolParam(r, "validate_only", false)
	if err != nil {
		return err
	}
	validateLink, err := boolParam(r, "validate_link", true)
	if err != nil {
		return err
	}
	var body api.CreateLinkRequest
	if err := decode(r, &body, true); err != nil {
		return err
	}
	req := link.CreateLinkRequest{
		Name:                 name,
		SourceClusterID:      body.SourceClusterID,
		DestinationClusterID: body.DestinationClusterID,
		RemoteClusterID:      body.RemoteClusterID,
		ClusterLinkID:        body.ClusterLinkID,
		ValidateOnly:         validateOnly,
		ValidateLink:         validateLink,
	}
	for _, cv := range body.Configs {
		req.Configs = append(req.Configs, link.ConfigValue{Name: cv.Name, Value: cv.Value})
	}
	if err := s.m.CreateLink(r.Context(), req); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	force, err := boolParam(r, "force", false)
	if err != nil {
		return err
	}
	validateOnly, err := boolParam(r, "validate_only", false)
	if err != nil {
		return err
	}
	if err := s.m.DeleteLink(r.Context(), r.PathValue("link_name"), force, validateOnly); err != nil {
		return err
	}
	// The spec documents 200 with no content for this one operation.
	w.WriteHeader(http.StatusOK)
	return nil
}
