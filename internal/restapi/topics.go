package restapi

import "net/http"

// deleteTopic deletes a destination topic; for a mirror topic the mirror
// goes with it (the Terraform provider deletes mirror topics this way).
func (s *Server) deleteTopic(w http.ResponseWriter, r *http.Request, _ *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	if err := s.m.DeleteTopic(r.Context(), r.PathValue("topic_name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
