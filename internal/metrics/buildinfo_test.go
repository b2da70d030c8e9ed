package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait-dev/strait/internal/buildinfo"
)

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(BuildInfo(buildinfo.Info{Version: "v1.2.3", Commit: "abc", Modified: true, GoVersion: "go1.99"}))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "strait_build_info" || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gathered %v, want one strait_build_info series", mfs)
	}
	m := mfs[0].GetMetric()[0]
	if v := m.GetGauge().GetValue(); v != 1 {
		t.Errorf("value %v, want 1", v)
	}
	got := map[string]string{}
	for _, l := range m.GetLabel() {
		got[l.GetName()] = l.GetValue()
	}
	want := map[string]string{"version": "v1.2.3", "commit": "abc-dirty", "goversion": "go1.99"}
	if len(got) != len(want) {
		t.Errorf("labels %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("label %s=%q, want %q", k, got[k], v)
		}
	}
}
