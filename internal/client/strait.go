package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/strait-dev/strait/api"
)

// Strait's own endpoints, under /strait/v1 beside the Kafka REST API:
// verification, the failover report, group readiness and switchover
// (docs/verify.md).

// strait returns a client of /strait/v1 on the same server, with the same
// credentials and transport.
func (c *Client) strait(ctx context.Context) (*Client, string, error) {
	id, err := c.ClusterID(ctx)
	if err != nil {
		return nil, "", err
	}
	root := c.base
	for _, s := range []string{"/kafka/v3", "/v3"} {
		if strings.HasSuffix(root, s) {
			root = strings.TrimSuffix(root, s)
			break
		}
	}
	return &Client{base: root + "/strait/v1", hc: c.hc, auth: c.auth, clusterID: id}, "/clusters/" + url.PathEscape(id), nil
}

// VerifyOptions are the options of VerifyMirror.
type VerifyOptions struct {
	// Partitions to verify; empty means all.
	Partitions []int32
	// FromStart ignores the checkpoints.
	FromStart bool
	// BytesPerSecond caps the reads from each cluster; nil keeps the
	// server's default, 0 means no cap.
	BytesPerSecond *int64
}

// VerifyMirror compares a mirror topic with its source from its
// checkpoints up to the mirror's end.
func (c *Client) VerifyMirror(ctx context.Context, link, topic string, opt VerifyOptions) (api.MirrorVerification, error) {
	var out api.MirrorVerification
	s, p, err := c.strait(ctx)
	if err != nil {
		return out, err
	}
	q := url.Values{}
	if len(opt.Partitions) > 0 {
		ps := make([]string, len(opt.Partitions))
		for i, n := range opt.Partitions {
			ps[i] = strconv.Itoa(int(n))
		}
		q.Set("partitions", strings.Join(ps, ","))
	}
	if opt.FromStart {
		q.Set("from_start", "true")
	}
	if opt.BytesPerSecond != nil {
		q.Set("bytes_per_second", strconv.FormatInt(*opt.BytesPerSecond, 10))
	}
	err = s.do(ctx, http.MethodPost, p+"/links/"+url.PathEscape(link)+"/mirrors/"+url.PathEscape(topic)+":verify", q, nil, &out)
	return out, err
}

// FailoverReport says what failing over the link's mirror topics (those
// named, or all) would lose now.
func (c *Client) FailoverReport(ctx context.Context, link string, topics []string) (api.FailoverReport, error) {
	var out api.FailoverReport
	s, p, err := c.strait(ctx)
	if err != nil {
		return out, err
	}
	q := url.Values{}
	if len(topics) > 0 {
		q.Set("mirror_topic_name", strings.Join(topics, ","))
	}
	err = s.do(ctx, http.MethodGet, p+"/links/"+url.PathEscape(link)+"/failover-report", q, nil, &out)
	return out, err
}

// GroupReadiness says whether consumer groups can move to the destination:
// group "" for every group, link "" for every link.
func (c *Client) GroupReadiness(ctx context.Context, group, link string, maxLag int64) ([]api.GroupReadiness, error) {
	var out api.GroupReadinessList
	s, p, err := c.strait(ctx)
	if err != nil {
		return nil, err
	}
	if group == "" {
		group = "-"
	}
	q := url.Values{}
	if link != "" {
		q.Set("link_name", link)
	}
	if maxLag > 0 {
		q.Set("max_lag", strconv.FormatInt(maxLag, 10))
	}
	err = s.do(ctx, http.MethodGet, p+"/groups/"+url.PathEscape(group)+"/readiness", q, nil, &out)
	return out.Data, err
}

// Switchover moves mirror topics and consumer groups of a link to the
// destination, or returns the server's refusal (an *Error with error code
// 40901).
func (c *Client) Switchover(ctx context.Context, link string, req api.SwitchoverRequest) (api.SwitchoverReport, error) {
	var out api.SwitchoverReport
	s, p, err := c.strait(ctx)
	if err != nil {
		return out, err
	}
	err = s.do(ctx, http.MethodPost, p+"/links/"+url.PathEscape(link)+":switchover", nil, req, &out)
	return out, err
}
