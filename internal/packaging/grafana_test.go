package packaging

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/strait-dev/strait/internal/buildinfo"
	"github.com/strait-dev/strait/internal/link"
	"github.com/strait-dev/strait/internal/metrics"
)

const dashboardPath = "deploy/grafana/strait-dashboard.json"

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos *struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's
}

// metricName matches the series names a query uses: Strait's, and the
// process and Go runtime families every client_golang registry has.
var metricName = regexp.MustCompile(`\b(?:strait|process|go)_[a-z0-9_]+\b`)

// TestGrafanaDashboard parses the dashboard, checks it has panels for the
// lag in records and seconds, the throughput and the links' availability,
// that every metric its queries use is one the daemon exports, and prints
// them (go test -v).
func TestGrafanaDashboard(t *testing.T) {
	var d dashboard
	if err := json.Unmarshal(readRepoFile(t, dashboardPath), &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" {
		t.Errorf("title %q uid %q: a dashboard needs both to be imported and linked", d.Title, d.UID)
	}
	var all []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			all = append(all, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)

	ids := map[int]bool{}
	metrics := map[string][]string{} // metric -> panel titles
	exprOf := map[string]string{}    // panel title -> its queries
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q has no place on the grid", p.Title)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q does not use the dashboard's data source variable", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if err := balanced(tg.Expr); err != "" {
				t.Errorf("panel %q: %s in %s", p.Title, err, tg.Expr)
			}
			exprOf[p.Title] += tg.Expr + "\n"
			for _, m := range metricName.FindAllString(tg.Expr, -1) {
				if !slices.Contains(metrics[m], p.Title) {
					metrics[m] = append(metrics[m], p.Title)
				}
			}
		}
	}
	for _, v := range d.Templating.List {
		for _, m := range metricName.FindAllString(v.Definition, -1) {
			metrics[m] = append(metrics[m], "variable $"+v.Name)
		}
	}

	// The panels the dashboard is for.
	for _, need := range []struct{ what, re string }{
		{"lag in records", `strait_mirror_lag_records\b`},
		{"lag in seconds", `strait_mirror_lag_seconds\b`},
		{"throughput", `rate\(strait_mirror_copied_(records|bytes)_total\b`},
		{"link availability", `strait_link_available\b`},
	} {
		re := regexp.MustCompile(need.re)
		found := false
		for _, e := range exprOf {
			found = found || re.MatchString(e)
		}
		if !found {
			t.Errorf("no panel shows the %s (a query matching %s)", need.what, need.re)
		}
	}

	names := slices.Sorted(func(yield func(string) bool) {
		for m := range metrics {
			if !yield(m) {
				return
			}
		}
	})
	exported := exportedFamilies(t)
	var b strings.Builder
	for _, m := range names {
		mark := ""
		if !exported[m] && !exported[histogramFamily(m)] {
			mark = "  NOT EXPORTED"
			t.Errorf("the dashboard queries %s (%s), which the daemon does not export", m, strings.Join(metrics[m], "; "))
		}
		b.WriteString("  " + m + "  (" + strings.Join(metrics[m], "; ") + ")" + mark + "\n")
	}
	t.Logf("%s uses %d metrics:\n%s", dashboardPath, len(names), b.String())
}

// histogramFamily is the family of a histogram's series, "" for other
// names.
func histogramFamily(series string) string {
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		if f, ok := strings.CutSuffix(series, s); ok {
			return f
		}
	}
	return ""
}

// exportedFamilies lists the metric families of a daemon's registry, as
// internal/daemon builds it (its listen): the Go and process collectors,
// strait_build_info and internal/metrics. Their descriptions are read, so
// families without series yet count too.
func exportedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	c := &describing{Registerer: prometheus.NewRegistry(), names: map[string]bool{}}
	c.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), metrics.BuildInfo(buildinfo.Get()))
	if _, err := metrics.New(c, metrics.Options{PartitionLabels: true, Ready: func() bool { return true }}, func() *link.Manager { return nil }); err != nil {
		t.Fatal(err)
	}
	return c.names
}

// describing is a Registerer that notes the name of every metric the
// collectors registered through it describe.
type describing struct {
	prometheus.Registerer
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describing) note(c prometheus.Collector) {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	for desc := range ch {
		if m := fqName.FindStringSubmatch(desc.String()); m != nil {
			d.names[m[1]] = true
		}
	}
}

func (d *describing) Register(c prometheus.Collector) error {
	d.note(c)
	return d.Registerer.Register(c)
}

func (d *describing) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		d.note(c)
	}
	d.Registerer.MustRegister(cs...)
}

// balanced reports unbalanced brackets or quotes in a query, "" if none.
func balanced(expr string) string {
	var stack []rune
	pair := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inQuote := false
	for _, r := range expr {
		switch {
		case r == '"':
			inQuote = !inQuote
		case inQuote:
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pair[r] {
				return "unbalanced " + string(r)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inQuote {
		return "an unclosed quote"
	}
	if len(stack) > 0 {
		return "unclosed " + string(stack[len(stack)-1])
	}
	return ""
}
