package restapi

import (
	"net/http"
)

func (s *Server) clusterData(r *http.Request, c *call) clusterData {
	id := s.m.ClusterID()
	self := c.baseURL(r) + "/clusters/" + id
	crn := "crn:///kafka=" + id
	return clusterData{
		Kind:                   "KafkaCluster",
		Metadata:               resourceMeta{Self: self, ResourceName: &crn},
		ClusterID:              id,
		ACLs:                   relationship{Related: self + "/acls"},
		Brokers:                relationship{Related: self + "/brokers"},
		BrokerConfigs:          relationship{Related: self + "/broker-configs"},
		ConsumerGroups:         relationship{Related: self + "/consumer-groups"},
		Topics:                 relationship{Related: self + "/topics"},
		PartitionReassignments: relationship{Related: self + "/topics/-/partitions/-/reassignment"},
	}
}

// listClusters answers GET /clusters with the one destination cluster, as
// Confluent Server does.
func (s *Server) listClusters(w http.ResponseWriter, r *http.Request, c *call) error {
	writeJSON(w, http.StatusOK, clusterList{
		Kind:     "KafkaClusterList",
		Metadata: collectionMeta{Self: c.baseURL(r) + "/clusters"},
		Data:     []clusterData{s.clusterData(r, c)},
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
