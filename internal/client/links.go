package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/strait-dev/strait/api"
)

// ListLinks lists the links (GET /links).
func (c *Client) ListLinks(ctx context.Context) ([]api.LinkData, error) {
	p, err := c.cluster(ctx)
	if err != nil {
		return nil, err
	}
	var list api.LinkDataList
	if err := c.do(ctx, http.MethodGet, p+"/links", nil, nil, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

// GetLink describes one link; includeTasks adds its tasks.
func (c *Client) GetLink(ctx context.Context, name string, includeTasks bool) (api.LinkData, error) {
	var d api.LinkData
	p, err := c.linkPath(ctx, name)
	if err != nil {
		return d, err
	}
	var q url.Values
	if includeTasks {
		q = url.Values{"include_tasks": {"true"}}
	}
	err = c.do(ctx, http.MethodGet, p, q, nil, &d)
	return d, err
}

// CreateLinkOptions are the query options of a link create.
type CreateLinkOptions struct {
	// ValidateOnly checks everything and creates nothing.
	ValidateOnly bool
	// NoValidateLink creates the link even if the source cannot be
	// reached now (validate_link=false).
	NoValidateLink bool
}

// CreateLink creates a link (POST /links?link_name=).
func (c *Client) CreateLink(ctx context.Context, name string, body api.CreateLinkRequest, opt CreateLinkOptions) error {
	p, err := c.cluster(ctx)
	if err != nil {
		return err
	}
	q := url.Values{"link_name": {name}}
	if opt.ValidateOnly {
		q.Set("validate_only", "true")
	}
	if opt.NoValidateLink {
		q.Set("validate_link", "false")
	}
	if body.Configs == nil {
		body.Configs = []api.ConfigValue{}
	}
	return c.do(ctx, http.MethodPost, p+"/links", q, body, nil)
}

// DeleteLinkOptions are the query options of a link delete.
type DeleteLinkOptions struct {
	// Force deletes a link whose mirrors are not all stopped.
	Force        bool
	ValidateOnly bool
}

// DeleteLink deletes a link.
func (c *Client) DeleteLink(ctx context.Context, name string, opt DeleteLinkOptions) error {
	p, err := c.linkPath(ctx, name)
	if err != nil {
		return err
	}
	q := url.Values{}
	if opt.Force {
		q.Set("force", strconv.FormatBool(true))
	}
	if opt.ValidateOnly {
		q.Set("validate_only", strconv.FormatBool(true))
	}
	return c.do(ctx, http.MethodDelete, p, q, nil, nil)
}

// ListLinkConfigs lists a link's configs.
func (c *Client) ListLinkConfigs(ctx context.Context, name string) ([]api.LinkConfigData, error) {
	p, err := c.linkPath(ctx, name)
	if err != nil {
		return nil, err
	}
	var list api.LinkConfigDataList
	if err := c.do(ctx, http.MethodGet, p+"/configs", nil, nil, &list); err != nil {
		return nil, err
	}
	return list.Data, nil
}

// AlterLinkConfigs changes a link's configs, all or none
// (PUT /configs:alter).
func (c *Client) AlterLinkConfigs(ctx context.Context, name string, entries []api.AlterConfigEntry, validateOnly bool) error {
	p, err := c.linkPath(ctx, name)
	if err != nil {
		return err
	}
	var q url.Values
	if validateOnly {
		q = url.Values{"validate_only": {"true"}}
	}
	if entries == nil {
		entries = []api.AlterConfigEntry{}
	}
	return c.do(ctx, http.MethodPut, p+"/configs:alter", q, api.AlterConfigsRequest{Data: entries}, nil)
}
