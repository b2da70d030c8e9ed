package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/strait-dev/strait/api"
)

// Op is an alter-mirrors operation, as named in its path (mirrors:<op>).
type Op string

// The alter-mirrors operations.
const (
	OpPause           Op = "pause"
	OpResume          Op = "resume"
	OpPromote         Op = "promote"
	OpFailover        Op = "failover"
	OpReverseAndStart Op = "reverse-and-start-mirror"
	OpReverseAndPause Op = "reverse-and-pause-mirror"
	OpTruncateRestore Op = "truncate-and-restore"
)

// Ops lists every alter-mirrors operation.
var Ops = []Op{OpPause, OpResume, OpPromote, OpFailover, OpReverseAndStart, OpReverseAndPause, OpTruncateRestore}

// ListMirrors lists mirror topics: of one link, or of every link when
// link is empty; status, if not empty, keeps those in that status.
func (c *Client) ListMirrors(ctx context.Context, link, status string) ([]api.MirrorData, error) {
	if link == "" {
		link = "-"
	}
	p, err := c.linkPath(ctx, link)
	if err != nil {
		return nil, err
	}
	var q url.Values
	if status != "" {
		q = url.Values{"mirror_status": {status}}
	}
	var list api.MirrorDataList
	if err := c.do(ctx, http.MethodGet, p+"/mirrors", q, nil, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

// GetMirror describes one mirror topic; includeErrors adds its state
// transition errors.
func (c *Client) GetMirror(ctx context.Context, link, topic string, includeErrors bool) (api.MirrorData, error) {
	var d api.MirrorData
	p, err := c.linkPath(ctx, link)
	if err != nil {
		return d, err
	}
	var q url.Values
	if includeErrors {
		q = url.Values{"include_state_transition_errors": {"true"}}
	}
	err = c.do(ctx, http.MethodGet, p+"/mirrors/"+url.PathEscape(topic), q, nil, &d)
	return d, err
}

// CreateMirror creates a mirror topic under a link.
func (c *Client) CreateMirror(ctx context.Context, link string, body api.CreateMirrorRequest) error {
	p, err := c.linkPath(ctx, link)
	if err != nil {
		return err
	}
	if body.Configs == nil {
		body.Configs = []api.ConfigValue{}
	}
	return c.do(ctx, http.MethodPost, p+"/mirrors", nil, body, nil)
}

// AlterOptions are the query options of an alter-mirrors operation.
type AlterOptions struct {
	ValidateOnly bool
	// IncludePartitionTruncation asks truncate-and-restore for figures
	// per partition.
	IncludePartitionTruncation bool
}

// AlterMirrors applies op to the mirror topics sel names or matches. The
// answer has one result per topic, each with its own error; an error is
// returned only when the request as a whole was refused.
func (c *Client) AlterMirrors(ctx context.Context, link string, op Op, sel api.AlterMirrorsRequest, opt AlterOptions) ([]api.AlterMirrorsData, error) {
	p, err := c.linkPath(ctx, link)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if opt.ValidateOnly {
		q.Set("validate_only", "true")
	}
	if opt.IncludePartitionTruncation {
		q.Set("include_partition_level_truncation_data", "true")
	}
	var list api.AlterMirrorsDataList
	if err := c.do(ctx, http.MethodPost, p+"/mirrors:"+string(op), q, sel, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}
