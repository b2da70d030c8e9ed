package linkconfig

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Fuzz targets for the link config values a client sends (POST links,
// PUT configs): Check for every config name, and the filter parsers behind
// consumer.offset.group.filters, auto.create.mirror.topics.filters and
// acl.filters. FuzzParseJAAS is in linkconfig_test.go. The seed corpus is
// in testdata/fuzz/<FuzzName>/; docs/security.md says how to run them.

const (
	groupFiltersSeed = `{"groupFilters":[{"name":"*","patternType":"LITERAL","filterType":"INCLUDE"},` +
		`{"name":"internal-","patternType":"PREFIXED","filterType":"EXCLUDE"}]}`
	topicFiltersSeed = `{"topicFilters":[{"name":"orders","patternType":"literal","filterType":"include"},` +
		`{"name":"app.","patternType":"PREFIXED","filterType":"INCLUDE"}]}`
	aclFiltersSeed = `{"aclFilters":[{"resourceFilter":{"resourceType":"TOPIC","name":"orders","patternType":"LITERAL"},` +
		`"accessFilter":{"principal":"User:alice","host":"*","operation":"READ","permissionType":"ALLOW"}},` +
		`{"resourceFilter":{"resourceType":"any","patternType":"any"},"accessFilter":{"operation":"any","permissionType":"any"}}]}`
)

// nameFilterSeeds are inputs for the name filter parsers; field is
// groupFilters or topicFilters.
func nameFilterSeeds(field, valid string) []string {
	return []string{
		valid, "", "  ", "{}", "null", "[]", `{"` + field + `":[]}`, `{"` + field + `":null}`,
		`{"` + field + `":[{"name":"a","patternType":"LITERAL","filterType":"INCLUDE"}]} {}`,
		`{"` + field + `":[{"name":"","patternType":"LITERAL","filterType":"INCLUDE"}]}`,
		`{"` + field + `":[{"name":"a","patternType":"MATCH","filterType":"INCLUDE"}]}`,
		`{"` + field + `":[{"name":"a","patternType":"LITERAL","filterType":"INCLUDE","extra":1}]}`,
		`{"` + field + `":[{"name":"a","patternType":"LITERAL","filterType":"INCLUDE"}],"other":[]}`,
		`{"` + field + `":{"name":"a"}}`,
	}
}

// checkNameFilters checks what the name filter parsers promise about a
// value they accept: every entry complete and valid, the value's meaning
// survives a round trip through JSON, and Match follows the documented
// rule (an INCLUDE entry matches and no EXCLUDE entry does).
func checkNameFilters(t *testing.T, field string, parse func(string) (NameFilters, error), v, name string) {
	fs, err := parse(v)
	if err != nil {
		if fs != nil {
			t.Fatalf("error %v with filters %+v", err, fs)
		}
		return
	}
	for i, f := range fs {
		if f.Name == "" || !asciiOneOf(f.PatternType, "LITERAL", "PREFIXED") || !asciiOneOf(f.FilterType, "INCLUDE", "EXCLUDE") {
			t.Fatalf("accepted entry %d: %+v", i, f)
		}
	}
	again, err := json.Marshal(map[string]NameFilters{field: fs})
	if err != nil {
		t.Fatal(err)
	}
	fs2, err := parse(string(again))
	if err != nil || !reflect.DeepEqual(fs, fs2) {
		t.Fatalf("round trip of %+v through %s: %+v, %v", fs, again, fs2, err)
	}
	include, exclude := false, false
	for _, f := range fs {
		m := f.Name == "*" || f.Name == name
		if strings.EqualFold(f.PatternType, "PREFIXED") {
			m = strings.HasPrefix(name, f.Name)
		}
		if m && strings.EqualFold(f.FilterType, "EXCLUDE") {
			exclude = true
		} else if m {
			include = true
		}
	}
	if got := fs.Match(name); got != (include && !exclude) {
		t.Fatalf("Match(%q) = %v; an INCLUDE entry matches: %v, an EXCLUDE entry matches: %v", name, got, include, exclude)
	}
	if ex := append(slicesClone(fs), NameFilter{Name: name, PatternType: "LITERAL", FilterType: "EXCLUDE"}); ex.Match(name) {
		t.Fatalf("Match(%q) with an EXCLUDE entry for it is true", name)
	}
}

func slicesClone(fs NameFilters) NameFilters { return append(NameFilters(nil), fs...) }

// asciiOneOf reports whether v is one of vals in ASCII upper or lower
// case, which is what the documented values are.
func asciiOneOf(v string, vals ...string) bool {
	for _, ok := range vals {
		if len(v) == len(ok) && strings.ToUpper(v) == strings.ToUpper(ok) && isASCII(v) {
			return true
		}
	}
	return false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

func FuzzParseGroupFilters(f *testing.F) {
	for _, s := range nameFilterSeeds("groupFilters", groupFiltersSeed) {
		f.Add(s, "internal-orders")
	}
	f.Add(groupFiltersSeed, "app")
	f.Fuzz(func(t *testing.T, v, name string) {
		checkNameFilters(t, "groupFilters", ParseGroupFilters, v, name)
	})
}

func FuzzParseTopicFilters(f *testing.F) {
	for _, s := range nameFilterSeeds("topicFilters", topicFiltersSeed) {
		f.Add(s, "app.orders")
	}
	f.Add(topicFiltersSeed, "orders")
	f.Fuzz(func(t *testing.T, v, name string) {
		checkNameFilters(t, "topicFilters", ParseTopicFilters, v, name)
	})
}

// FuzzParseACLFilters checks that every ACL filter acl.filters accepts is
// one the ACL sync can send: each enum value is one franz-go's kmsg parses
// the way linksync's describeFilter does, and the value survives a round
// trip through JSON.
func FuzzParseACLFilters(f *testing.F) {
	for _, s := range []string{
		aclFiltersSeed, "", "{}", `{"aclFilters":[]}`, `{"aclFilters":null}`,
		`{"aclFilters":[{"resourceFilter":{"resourceType":"transactional_id","patternType":"prefixed"},"accessFilter":{"operation":"idempotent_write","permissionType":"deny"}}]}`,
		`{"aclFilters":[{"resourceFilter":{"resourceType":"DELEGATION_TOKEN","patternType":"MATCH"},"accessFilter":{"operation":"DESCRIBE_CONFIGS","permissionType":"ALLOW"}}]}`,
		`{"aclFilters":[{"resourceFilter":{"resourceType":"user","patternType":"any"},"accessFilter":{"operation":"any","permissionType":"any"}}]}`,
		`{"aclFilters":[{"resourceFilter":{"resourceType":"topic","patternType":"any"},"accessFilter":{"operation":"any","permissionType":"maybe"}}]}`,
		`{"aclFilters":[{"resourceFilter":{"resourceType":"topic","patternType":"any","extra":1},"accessFilter":{"operation":"any","permissionType":"any"}}]}`,
		`{"aclFilters":[{}]}`,
		`{"aclFilters":[]}[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		fs, err := ParseACLFilters(v)
		if err != nil {
			if fs != nil {
				t.Fatalf("error %v with filters %+v", err, fs)
			}
			return
		}
		for i, a := range fs {
			fields := []struct{ what, v string }{
				{"resourceType", a.ResourceFilter.ResourceType}, {"patternType", a.ResourceFilter.PatternType},
				{"operation", a.AccessFilter.Operation}, {"permissionType", a.AccessFilter.PermissionType},
			}
			for _, fl := range fields {
				if !isASCII(fl.v) {
					// strings.EqualFold would fold U+017F (ſ) to s and
					// U+212A (Kelvin sign) to k; the ACL sync's parser
					// would then refuse what was accepted.
					t.Fatalf("accepted %s %q: not ASCII", fl.what, fl.v)
				}
			}
			if _, err := kmsg.ParseACLResourceType(strings.ReplaceAll(a.ResourceFilter.ResourceType, "_", "")); err != nil {
				t.Fatalf("entry %d: accepted %v", i, err)
			}
			if _, err := kmsg.ParseACLResourcePatternType(a.ResourceFilter.PatternType); err != nil {
				t.Fatalf("entry %d: accepted %v", i, err)
			}
			if _, err := kmsg.ParseACLOperation(strings.ReplaceAll(a.AccessFilter.Operation, "_", "")); err != nil {
				t.Fatalf("entry %d: accepted %v", i, err)
			}
			if _, err := kmsg.ParseACLPermissionType(a.AccessFilter.PermissionType); err != nil {
				t.Fatalf("entry %d: accepted %v", i, err)
			}
		}
		again, err := json.Marshal(map[string][]ACLFilter{"aclFilters": fs})
		if err != nil {
			t.Fatal(err)
		}
		fs2, err := ParseACLFilters(string(again))
		if err != nil || !reflect.DeepEqual(fs, fs2) {
			t.Fatalf("round trip of %+v through %s: %+v, %v", fs, again, fs2, err)
		}
	})
}

// FuzzCheck checks Check for every config name with a fuzzed value:
// unknown names and read-only configs are refused with their sentinel
// errors, and a value Check accepts is one the typed accessors and the
// parsers behind the config read without error.
func FuzzCheck(f *testing.F) {
	names := Names()
	for i, n := range names {
		d, _ := Lookup(n)
		f.Add(uint16(i), d.Default, true)
	}
	for _, s := range []struct {
		name, value string
		creating    bool
	}{
		{BootstrapServers, "kafka-1:9092, SASL_SSL://kafka-2:9093,[::1]:9094", true},
		{BootstrapServers, "host:0", true},
		{BootstrapServers, " , ", true},
		{LinkMode, ModeBidirectional, true},
		{LinkMode, ModeBidirectional, false},
		{SASLJAASConfig, plainJAAS, false},
		{SASLJAASConfig, scramJAAS, false},
		{SASLJAASConfig, OAuthBearerModule + ` required clientId="c" clientSecret="s" scope="x" extension_logicalCluster="lkc-1";`, false},
		{SASLMechanism, "OAUTHBEARER", false},
		{SASLOAuthTokenURL, "https://idp.example.com/oauth2/token", false},
		{ConsumerOffsetFilters, groupFiltersSeed, false},
		{AutoCreateFilters, topicFiltersSeed, false},
		{ACLFilters, aclFiltersSeed, false},
		{MirrorStartOffsetSpec, "2024-01-02T15:04:05.123+02:00", false},
		{ClusterLinkPrefix, "dc1.", true},
		{AvailabilityCheckMs, "3600000", false},
		{AvailabilityCheckMs, "+100", false},
		{ReplicaFetchWaitMaxMs, "-0", false},
		{TopicConfigSyncInclude, "retention.ms, cleanup.policy", false},
		{SSLTruststoreCerts, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", false},
		{"cluster.link.retry.timeout.ms", "1", true},
	} {
		f.Add(uint16(indexOf(names, s.name)), s.value, s.creating)
	}
	f.Fuzz(func(t *testing.T, i uint16, value string, creating bool) {
		name := names[int(i)%len(names)]
		d, _ := Lookup(name)
		err := Check(name, value, creating)
		if readOnly := d.ReadOnly || (d.CreateOnly && !creating); readOnly != errors.Is(err, ErrReadOnly) {
			t.Fatalf("Check(%q, %q, %v) = %v; read-only %v", name, value, creating, err, readOnly)
		}
		if err := Check(name+"x", value, creating); !errors.Is(err, ErrUnknown) {
			t.Fatalf("Check of unknown name %q = %v", name+"x", err)
		}
		if err != nil {
			return
		}
		if !creating && Check(name, value, true) != nil {
			t.Fatalf("%q=%q accepted on a link but not at creation", name, value)
		}
		set := Set{name: value}
		var perr error
		switch name {
		case ConsumerOffsetFilters:
			_, perr = ParseGroupFilters(value)
		case AutoCreateFilters:
			_, perr = ParseTopicFilters(value)
		case ACLFilters:
			_, perr = ParseACLFilters(value)
		case SASLJAASConfig:
			_, perr = ParseJAAS(value)
		case BootstrapServers:
			if len(set.Bootstrap()) == 0 {
				perr = errors.New("no servers")
			}
		}
		if perr != nil {
			t.Fatalf("Check accepted %q=%q, which does not parse: %v", name, value, perr)
		}
		switch d.Default {
		case "true", "false":
			if value != "true" && value != "false" {
				t.Fatalf("boolean %q accepted %q", name, value)
			}
			if set.Bool(name) != (value == "true") {
				t.Fatalf("%q=%q reads as %v", name, value, set.Bool(name))
			}
		}
		if _, derr := strconv.ParseInt(d.Default, 10, 64); derr == nil && d.Validate != nil {
			n, err := strconv.ParseInt(value, 10, 64)
			if err != nil || set.Int(name) != n {
				t.Fatalf("integer %q accepted %q, which reads as %d (%v)", name, value, set.Int(name), err)
			}
			if strings.HasSuffix(name, ".ms") && (n < 0 || set.Duration(name).Milliseconds() != n) {
				t.Fatalf("%q=%q reads as the duration %v", name, value, set.Duration(name))
			}
		}
	})
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic("no config " + name)
}
