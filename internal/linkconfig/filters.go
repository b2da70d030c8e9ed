package linkconfig

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// NameFilter is one entry of consumer.offset.group.filters or
// auto.create.mirror.topics.filters.
type NameFilter struct {
	Name        string `json:"name"`
	PatternType string `json:"patternType"`
	FilterType  string `json:"filterType"`
}

// NameFilters selects names: a name is selected when an INCLUDE entry
// matches it and no EXCLUDE entry does (EXCLUDE wins).
type NameFilters []NameFilter

// Match reports whether name is selected.
func (fs NameFilters) Match(name string) bool {
	in := false
	for _, f := range fs {
		if !f.matches(name) {
			continue
		}
		if strings.EqualFold(f.FilterType, "EXCLUDE") {
			return false
		}
		in = true
	}
	return in
}

func (f NameFilter) matches(name string) bool {
	if strings.EqualFold(f.PatternType, "PREFIXED") {
		return strings.HasPrefix(name, f.Name)
	}
	return f.Name == "*" || f.Name == name // LITERAL, "*" for all
}

// ParseGroupFilters parses consumer.offset.group.filters; "" selects none.
func ParseGroupFilters(v string) (NameFilters, error) { return parseNameFilters(v, "groupFilters") }

// ParseTopicFilters parses auto.create.mirror.topics.filters; "" selects
// none.
func ParseTopicFilters(v string) (NameFilters, error) { return parseNameFilters(v, "topicFilters") }

func parseNameFilters(v, field string) (NameFilters, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	raw := map[string]json.RawMessage{}
	if err := strictJSON(v, &raw); err != nil {
		return nil, err
	}
	list, ok := raw[field]
	if !ok || len(raw) != 1 {
		return nil, fmt.Errorf(`must be {"%s": [...]}`, field)
	}
	var fs NameFilters
	if err := strictJSON(string(list), &fs); err != nil {
		return nil, fmt.Errorf("%s: %w", field, err)
	}
	for i, f := range fs {
		switch {
		case f.Name == "":
			return nil, fmt.Errorf("%s[%d]: name is required", field, i)
		case !oneOfFold(f.PatternType, "LITERAL", "PREFIXED"):
			return nil, fmt.Errorf("%s[%d]: patternType '%s' is not LITERAL or PREFIXED", field, i, f.PatternType)
		case !oneOfFold(f.FilterType, "INCLUDE", "EXCLUDE"):
			return nil, fmt.Errorf("%s[%d]: filterType '%s' is not INCLUDE or EXCLUDE", field, i, f.FilterType)
		}
	}
	return fs, nil
}

// ACLFilter is one entry of acl.filters: Kafka's ACL binding filter.
type ACLFilter struct {
	ResourceFilter struct {
		ResourceType string `json:"resourceType"`
		Name         string `json:"name,omitempty"`
		PatternType  string `json:"patternType"`
	} `json:"resourceFilter"`
	AccessFilter struct {
		Principal      string `json:"principal,omitempty"`
		Host           string `json:"host,omitempty"`
		Operation      string `json:"operation"`
		PermissionType string `json:"permissionType"`
	} `json:"accessFilter"`
}

// Values accepted in ACL filters (lower or upper case).
var (
	aclResourceTypes = []string{"any", "topic", "group", "cluster", "transactional_id", "delegation_token"}
	aclPatternTypes  = []string{"any", "match", "literal", "prefixed"}
	aclOperations    = []string{"any", "all", "read", "write", "create", "delete", "alter", "describe", "cluster_action", "describe_configs", "alter_configs", "idempotent_write"}
	aclPermissions   = []string{"any", "allow", "deny"}
)

// ParseACLFilters parses acl.filters; "" selects none.
func ParseACLFilters(v string) ([]ACLFilter, error) {
	if strings.TrimSpace(v) == "" {
		return nil, nil
	}
	raw := map[string]json.RawMessage{}
	if err := strictJSON(v, &raw); err != nil {
		return nil, err
	}
	list, ok := raw["aclFilters"]
	if !ok || len(raw) != 1 {
		return nil, errors.New(`must be {"aclFilters": [...]}`)
	}
	var fs []ACLFilter
	if err := strictJSON(string(list), &fs); err != nil {
		return nil, fmt.Errorf("aclFilters: %w", err)
	}
	for i, f := range fs {
		checks := []struct {
			what, v string
			allowed []string
		}{
			{"resourceFilter.resourceType", f.ResourceFilter.ResourceType, aclResourceTypes},
			{"resourceFilter.patternType", f.ResourceFilter.PatternType, aclPatternTypes},
			{"accessFilter.operation", f.AccessFilter.Operation, aclOperations},
			{"accessFilter.permissionType", f.AccessFilter.PermissionType, aclPermissions},
		}
		for _, c := range checks {
			if !oneOfFold(c.v, c.allowed...) {
				return nil, fmt.Errorf("aclFilters[%d]: %s '%s' is not one of %s", i, c.what, c.v, strings.Join(c.allowed, ", "))
			}
		}
	}
	return fs, nil
}

// strictJSON decodes v into out, refusing unknown fields and trailing data.
func strictJSON(v string, out any) error {
	dec := json.NewDecoder(bytes.NewReader([]byte(v)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	// dec.More reports false before a stray ']' or '}', so it would let
	// `{...}]` through; only io.EOF says nothing but space follows.
	rest := strings.TrimSpace(v[dec.InputOffset():])
	if _, err := dec.Token(); err != io.EOF {
		if len(rest) > maxTrailingQuote {
			rest = rest[:maxTrailingQuote] + "..."
		}
		return fmt.Errorf("malformed JSON: data after the document: %q", rest)
	}
	return nil
}

// maxTrailingQuote is how much of the data after a filter document an
// error quotes.
const maxTrailingQuote = 32

// oneOfFold matches v against vals ignoring ASCII case only: Unicode
// folding would take "ſ" (U+017F) for "s", which Kafka's own parsers do
// not.
func oneOfFold(v string, vals ...string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] >= utf8.RuneSelf {
			return false
		}
	}
	for _, ok := range vals {
		if strings.EqualFold(v, ok) {
			return true
		}
	}
	return false
}
