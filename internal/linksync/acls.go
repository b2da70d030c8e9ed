package linksync

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// ACL sync: the source's ACL bindings that acl.filters select appear on the
// destination, and disappear there when they are removed at the source.
// Only bindings the sync created itself (SyncedACLs, recorded before they
// are created) are ever removed: an ACL someone made on the destination is
// never touched, even if it equals a synced one.

// ACL is one ACL binding, with Kafka's enum numbers.
type ACL struct {
	ResourceType int8   `json:"resource_type"`
	Name         string `json:"name"`
	Pattern      int8   `json:"pattern"`
	Principal    string `json:"principal"`
	Host         string `json:"host"`
	Operation    int8   `json:"operation"`
	Permission   int8   `json:"permission"`
}

func (a ACL) String() string {
	return fmt.Sprintf("%s %s on %s:%s(%s) from %s for %s", kmsg.ACLPermissionType(a.Permission), kmsg.ACLOperation(a.Operation),
		kmsg.ACLResourceType(a.ResourceType), a.Name, kmsg.ACLResourcePatternType(a.Pattern), a.Host, a.Principal)
}

// syncACLs is one round of the ACL sync.
func (s *Syncer) syncACLs(ctx context.Context, cfg linkconfig.Set) []TaskError {
	filters, err := linkconfig.ParseACLFilters(cfg.Get(linkconfig.ACLFilters))
	if err != nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", err.Error()}}
	}
	src := s.l.Source()
	if src == nil {
		return []TaskError{{"MISCONFIGURATION_ERROR", "the link has no usable connection to its source"}}
	}
	var want []ACL
	for _, f := range filters {
		req, err := describeFilter(f)
		if err != nil {
			return []TaskError{{"MISCONFIGURATION_ERROR", err.Error()}}
		}
		got, err := describeACLs(ctx, src, req)
		if err != nil {
			return []TaskError{{"AUTHORIZATION_ERROR", fmt.Sprintf("describe source ACLs: %v", err)}}
		}
		for _, a := range got {
			if !slices.Contains(want, a) {
				want = append(want, a)
			}
		}
	}
	dst := s.l.Dest()
	all := kmsg.NewPtrDescribeACLsRequest()
	all.ResourceType, all.ResourcePatternType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny
	all.Operation, all.PermissionType = kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	have, err := describeACLs(ctx, dst, all)
	if err != nil {
		return []TaskError{{"AUTHORIZATION_ERROR", fmt.Sprintf("describe destination ACLs: %v", err)}}
	}
	owned := s.l.SyncedACLs()
	var create, remove, keep []ACL
	for _, a := range want {
		if !slices.Contains(have, a) {
			create = append(create, a)
		}
	}
	for _, a := range owned {
		if slices.Contains(want, a) {
			keep = append(keep, a)
		} else {
			remove = append(remove, a)
		}
	}
	if len(create) == 0 && len(remove) == 0 {
		return nil
	}
	// Record what is about to be created first: a binding created but not
	// recorded would never be removed.
	if len(create) > 0 {
		if err := s.l.SaveSyncedACLs(ctx, append(slices.Clone(owned), create...)); err != nil {
			return []TaskError{{"INTERNAL_ERROR", fmt.Sprintf("record synced ACLs: %v", err)}}
		}
	}
	var errs []TaskError
	if err := createACLs(ctx, dst, create); err != nil {
		errs = append(errs, TaskError{"AUTHORIZATION_ERROR", fmt.Sprintf("create ACLs on the destination: %v", err)})
	}
	if err := deleteACLs(ctx, dst, remove); err != nil {
		errs = append(errs, TaskError{"AUTHORIZATION_ERROR", fmt.Sprintf("delete ACLs on the destination: %v", err)})
		return errs
	}
	if err := s.l.SaveSyncedACLs(ctx, append(keep, create...)); err != nil {
		errs = append(errs, TaskError{"INTERNAL_ERROR", fmt.Sprintf("record synced ACLs: %v", err)})
	}
	s.log.Info("ACLs synced", "created", len(create), "removed", len(remove))
	return errs
}

// describeFilter turns an acl.filters entry into a DescribeACLs request.
func describeFilter(f linkconfig.ACLFilter) (*kmsg.DescribeACLsRequest, error) {
	req := kmsg.NewPtrDescribeACLsRequest()
	var err error
	if req.ResourceType, err = kmsg.ParseACLResourceType(strings.ReplaceAll(f.ResourceFilter.ResourceType, "_", "")); err != nil {
		return nil, err
	}
	if req.ResourcePatternType, err = kmsg.ParseACLResourcePatternType(f.ResourceFilter.PatternType); err != nil {
		return nil, err
	}
	if req.Operation, err = kmsg.ParseACLOperation(strings.ReplaceAll(f.AccessFilter.Operation, "_", "")); err != nil {
		return nil, err
	}
	if req.PermissionType, err = kmsg.ParseACLPermissionType(f.AccessFilter.PermissionType); err != nil {
		return nil, err
	}
	if f.ResourceFilter.Name != "" {
		req.ResourceName = kmsg.StringPtr(f.ResourceFilter.Name)
	}
	if f.AccessFilter.Principal != "" {
		req.Principal = kmsg.StringPtr(f.AccessFilter.Principal)
	}
	if f.AccessFilter.Host != "" {
		req.Host = kmsg.StringPtr(f.AccessFilter.Host)
	}
	return req, nil
}

func describeACLs(ctx context.Context, cl *kgo.Client, req *kmsg.DescribeACLsRequest) ([]ACL, error) {
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, err
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return nil, err
	}
	var out []ACL
	for _, r := range resp.Resources {
		for _, a := range r.ACLs {
			out = append(out, ACL{
				ResourceType: int8(r.ResourceType), Name: r.ResourceName, Pattern: int8(r.ResourcePatternType),
				Principal: a.Principal, Host: a.Host, Operation: int8(a.Operation), Permission: int8(a.PermissionType),
			})
		}
	}
	return out, nil
}

func createACLs(ctx context.Context, cl *kgo.Client, acls []ACL) error {
	if len(acls) == 0 {
		return nil
	}
	req := kmsg.NewPtrCreateACLsRequest()
	for _, a := range acls {
		c := kmsg.NewCreateACLsRequestCreation()
		c.ResourceType, c.ResourceName, c.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), a.Name, kmsg.ACLResourcePatternType(a.Pattern)
		c.Principal, c.Host = a.Principal, a.Host
		c.Operation, c.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		req.Creations = append(req.Creations, c)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("%s: %w", acls[i], err)
		}
	}
	return nil
}

func deleteACLs(ctx context.Context, cl *kgo.Client, acls []ACL) error {
	if len(acls) == 0 {
		return nil
	}
	req := kmsg.NewPtrDeleteACLsRequest()
	for _, a := range acls {
		f := kmsg.NewDeleteACLsRequestFilter()
		f.ResourceType, f.ResourceName, f.ResourcePatternType = kmsg.ACLResourceType(a.ResourceType), kmsg.StringPtr(a.Name), kmsg.ACLResourcePatternType(a.Pattern)
		f.Principal, f.Host = kmsg.StringPtr(a.Principal), kmsg.StringPtr(a.Host)
		f.Operation, f.PermissionType = kmsg.ACLOperation(a.Operation), kmsg.ACLPermissionType(a.Permission)
		req.Filters = append(req.Filters, f)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	for i, r := range resp.Results {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			return fmt.Errorf("%s: %w", acls[i], err)
		}
	}
	return nil
}
