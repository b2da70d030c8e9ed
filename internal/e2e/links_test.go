package e2e

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestClustersAndPrefixes checks cluster discovery and that the API answers
// the same under /v3 as under /kafka/v3, including kcp's trailing-slash
// link create.
func TestClustersAndPrefixes(t *testing.T) {
	e := newEnv(t)
	var clusters struct {
		Data []struct {
			ClusterID string `json:"cluster_id"`
		} `json:"data"`
	}
	v3 := testutil.NewAPI(t, e.api.Root, "/v3", e.clusterID)
	for _, prefix := range []string{"/v3", "/kafka/v3"} {
		status, body := v3.DoURL("GET", e.api.Root+prefix+"/clusters", nil)
		if status != http.StatusOK {
			t.Fatalf("GET %s/clusters: %d %s", prefix, status, body)
		}
		if err := json.Unmarshal(body, &clusters); err != nil || len(clusters.Data) != 1 || clusters.Data[0].ClusterID != "destination-cluster" {
			t.Fatalf("GET %s/clusters: %s", prefix, body)
		}
	}
	var one struct {
		ClusterID string `json:"cluster_id"`
	}
	v3.JSON("GET", "", nil, http.StatusOK, &one)
	if one.ClusterID != "destination-cluster" {
		t.Fatalf("cluster: %+v", one)
	}

	testutil.CreateTopic(t, e.srcCl, "t", 1, nil)
	v3.JSON("POST", "/links/?link_name=slash", map[string]any{"configs": []any{
		map[string]any{"name": "bootstrap.servers", "value": e.src.ListenAddrs()[0]},
	}}, http.StatusNoContent, nil)
	var link struct {
		LinkName        string   `json:"link_name"`
		SourceClusterID string   `json:"source_cluster_id"`
		ClusterLinkID   string   `json:"cluster_link_id"`
		LinkID          string   `json:"link_id"`
		TopicNames      []string `json:"topic_names"`
		Tasks           []struct {
			TaskName string `json:"task_name"`
			State    string `json:"state"`
		} `json:"tasks"`
	}
	e.api.JSON("GET", "/links/slash?include_tasks=true", nil, http.StatusOK, &link)
	if link.SourceClusterID != "source-cluster" || len(link.ClusterLinkID) != 22 || len(link.LinkID) != 36 || len(link.Tasks) != 5 {
		t.Fatalf("link: %+v", link)
	}
	v3.JSON("POST", "/links/slash/mirrors", map[string]any{"source_topic_name": "t"}, http.StatusNoContent, nil)
	e.waitStatus("slash", "t", "ACTIVE")
}

// TestListFilterAndDelete covers listing across links with a status
// filter, and link deletion with and without force.
func TestListFilterAndDelete(t *testing.T) {
	e := newEnv(t)
	for _, topic := range []string{"a", "b", "c"} {
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
	}
	e.createLink("one", nil)
	e.createLink("two", nil)
	e.createMirror("one", "a")
	e.createMirror("one", "b")
	e.createMirror("two", "c")
	e.alter("one", "pause", map[string]any{"mirror_topic_name_pattern": "b"}, "")
	e.waitStatus("one", "a", "ACTIVE")
	e.waitStatus("two", "c", "ACTIVE")

	var list struct {
		Data []mirrorView `json:"data"`
	}
	e.api.JSON("GET", "/links/-/mirrors", nil, http.StatusOK, &list)
	if len(list.Data) != 3 {
		t.Fatalf("all mirrors: %d", len(list.Data))
	}
	e.api.JSON("GET", "/links/-/mirrors?mirror_status=PAUSED", nil, http.StatusOK, &list)
	if len(list.Data) != 1 || list.Data[0].MirrorTopicName != "b" {
		t.Fatalf("paused mirrors: %+v", list.Data)
	}
	e.api.JSON("GET", "/links/one/mirrors?mirror_status=active", nil, http.StatusOK, &list)
	if len(list.Data) != 1 || list.Data[0].MirrorTopicName != "a" {
		t.Fatalf("active mirrors of one: %+v", list.Data)
	}

	e.api.JSON("DELETE", "/links/two?validate_only=true&force=true", nil, http.StatusOK, nil)
	e.api.JSON("GET", "/links/two", nil, http.StatusOK, nil)
	e.api.JSON("DELETE", "/links/two?force=true", nil, http.StatusOK, nil)
	e.api.JSON("GET", "/links/two", nil, http.StatusNotFound, nil)
	e.api.JSON("GET", "/links/two/mirrors/c", nil, http.StatusNotFound, nil)
	// The topic stays on the destination, with its data.
	if _, ends := testutil.Offsets(t, e.dstCl, "c"); len(ends) != 1 {
		t.Fatalf("mirror topic c is gone after the link delete")
	}
	e.api.JSON("GET", "/links/-/mirrors", nil, http.StatusOK, &list)
	if len(list.Data) != 2 {
		t.Fatalf("mirrors after delete: %d", len(list.Data))
	}
}
