package restapi

import (
	"net/http"

	"github.com/strait-dev/strait/api"
)

func (s *Server) clusterData(r *http.Request, c *call) api.ClusterData {
	id := s.m.ClusterID()
	self := c.baseURL(r) + "/clusters/" + id
	crn := "crn:///kafka=" + id
	return api.ClusterData{
		Kind:                   "KafkaCluster",
		Metadata:               api.ResourceMetadata{Self: self, ResourceName: &crn},
		ClusterID:              id,
		ACLs:                   api.Relationship{Related: self + "/acls"},
		Brokers:                api.Relationship{Related: self + "/brokers"},
		BrokerConfigs:          api.Relationship{Related: self + "/broker-configs"},
		ConsumerGroups:         api.Relationship{Related: self + "/consumer-groups"},
		Topics:                 api.Relationship{Related: self + "/topics"},
		PartitionReassignments: api.Relationship{Related: self + "/topics/-/partitions/-/reassignment"},
	}
}

// listClusters answers GET /clusters with the one destination cluster, as
// Confluent Server does.
func (s *Server) listClusters(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, api.ClusterDataList{
		Kind:     "KafkaClusterList",
		Metadata: api.CollectionMetadata{Self: c.baseURL(r) + "/clusters"},
		Data:     []api.ClusterData{s.clusterData(r, c)},
	})
	return nil
}

func (s *Server) getCluster(w http.ResponseWriter, r *http.Request, c *call) error {
	if err := s.checkCluster(r); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.clusterData(r, c))
	return nil
}
