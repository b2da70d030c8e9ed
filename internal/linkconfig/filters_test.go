package linkconfig

import (
	"strings"
	"testing"
)

// TestFiltersTrailingData: a filter value is one JSON document and nothing
// but space after it; the error quotes what follows, cut short.
func TestFiltersTrailingData(t *testing.T) {
	parsers := []struct {
		name  string
		field string
		parse func(string) error
	}{
		{"group", "groupFilters", func(v string) error { _, err := ParseGroupFilters(v); return err }},
		{"topic", "topicFilters", func(v string) error { _, err := ParseTopicFilters(v); return err }},
		{"acl", "aclFilters", func(v string) error { _, err := ParseACLFilters(v); return err }},
	}
	cases := []struct {
		name, after string
		want        string // "" when accepted; else in the error
	}{
		{"nothing", "", ""},
		{"space", " \n\t\r ", ""},
		{"bracket", "]", `data after the document: "]"`},
		{"brace", "}", `data after the document: "}"`},
		{"brace after space", "  }", `data after the document: "}"`},
		{"object", " {}", `data after the document: "{}"`},
		{"array", "[]", `data after the document: "[]"`},
		{"comma", ",", `data after the document: ","`},
		{"word", " x", `data after the document: "x"`},
		{"long", "]" + strings.Repeat("a", 100), `data after the document: "]` + strings.Repeat("a", maxTrailingQuote-1) + `..."`},
	}
	for _, p := range parsers {
		for _, tc := range cases {
			t.Run(p.name+"/"+tc.name, func(t *testing.T) {
				err := p.parse(`{"` + p.field + `":[]}` + tc.after)
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("refused: %v", err)
				case tc.want != "" && err == nil:
					t.Fatal("accepted")
				case tc.want != "" && !strings.Contains(err.Error(), tc.want):
					t.Fatalf("error %q, want it to contain %q", err, tc.want)
				}
			})
		}
	}
}
