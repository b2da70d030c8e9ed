package restapi

import (
	"net/http"
	"strings"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/link"
)

func (s *Server) configData(r *http.Request, c *call, linkName string, v link.ConfigView) api.LinkConfigData {
	return api.LinkConfigData{
		Kind:        "KafkaLinkConfigData",
		Metadata:    api.ResourceMetadata{Self: c.baseURL(r) + "/clusters/" + s.m.ClusterID() + "/links/" + linkName + "/configs/" + v.Name},
		ClusterID:   s.m.ClusterID(),
		LinkName:    linkName,
		Name:        v.Name,
		Value:       v.Value,
		IsDefault:   v.IsDefault,
		IsReadOnly:  v.ReadOnly,
		IsSensitive: v.Sensitive,
		Default:     v.IsDefault,
		ReadOnly:    v.ReadOnly,
		Sensitive:   v.Sensitive,
		Source:      v.Source,
		Synonyms:    []string{},
	}
}

func (s *Server) listConfigs(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	name := r.PathValue("link_name")
	views, err := s.m.LinkConfigs(name)
	if err != nil {
		return err
	}
	out := api.LinkConfigDataList{
		Kind:     "KafkaLinkConfigDataList",
		Metadata: api.CollectionMetadata{Self: c.baseURL(r) + "/clusters/" + s.m.ClusterID() + "/links/" + name + "/configs"},
		Data:     []api.LinkConfigData{},
	}
	for _, v := range views {
		out.Data = append(out.Data, s.configData(r, c, name, v))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) getConfig(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	name := r.PathValue("link_name")
	v, err := s.m.LinkConfig(name, r.PathValue("config_name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.configData(r, c, name, v))
	return nil
}

func (s *Server) putConfig(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	var body api.UpdateConfigRequest
	if err := decode(r, &body, false); err != nil {
		return err
	}
	if body.Value == nil {
		return badRequest("Field 'value' is required.")
	}
	return s.applyConfigs(w, r, []link.ConfigChange{{Name: r.PathValue("config_name"), Value: *body.Value}}, false)
}

func (s *Server) deleteConfig(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	return s.applyConfigs(w, r, []link.ConfigChange{{Name: r.PathValue("config_name"), Delete: true}}, false)
}

func (s *Server) alterConfigs(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	validateOnly, err := boolParam(r, "validate_only", false)
	if err != nil {
		return err
	}
	var body api.AlterConfigsRequest
	if err := decode(r, &body, false); err != nil {
		return err
	}
	if body.ValidateOnly != nil && *body.ValidateOnly {
		validateOnly = true
	}
	var changes []link.ConfigChange
	for i, e := range body.Data {
		if e.Name == "" {
			return badRequest("data[%d]: field 'name' is required.", i)
		}
		switch strings.ToUpper(e.Operation) {
		case "", "SET":
			if e.Value == nil {
				return badRequest("data[%d]: config '%s' needs a value to SET.", i, e.Name)
			}
			changes = append(changes, link.ConfigChange{Name: e.Name, Value: *e.Value})
		case "DELETE":
			changes = append(changes, link.ConfigChange{Name: e.Name, Delete: true})
		default:
			return badRequest("data[%d]: operation '%s' is not SET or DELETE.", i, e.Operation)
		}
	}
	return s.applyConfigs(w, r, changes, validateOnly)
}

func (s *Server) applyConfigs(w http.ResponseWriter, r *http.Request, changes []link.ConfigChange, validateOnly bool) error {
	if err := s.m.AlterLinkConfigs(r.Context(), r.PathValue("link_name"), changes, validateOnly); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
