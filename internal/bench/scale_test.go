package bench

import (
	"fmt"
	"strings"
	"testing"
)

func TestParseProcAddr(t *testing.T) {
	for in, want := range map[string]string{
		"0100007F:1F90":                         "127.0.0.1:8080",
		"0100007F:0050":                         "127.0.0.1:80",
		"00000000000000000000000001000000:2382": "[::1]:9090",
	} {
		got, err := parseProcAddr(in)
		if err != nil || got != want {
			t.Errorf("parseProcAddr(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "0100007F", "zz00007F:0050", "0100007F:zz", "01007F:0050"} {
		if _, err := parseProcAddr(bad); err == nil {
			t.Errorf("parseProcAddr(%q): no error", bad)
		}
	}
}

// TestCountPeers counts established connections of the given sockets only,
// by remote address.
func TestCountPeers(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:9C40 0100007F:2382 01 00000000:00000000 00:00000000 00000000     0        0 111 1 0000000000000000 20 4 30 10 -1
   1: 0100007F:9C41 0100007F:2382 01 00000000:00000000 00:00000000 00000000     0        0 112 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:9C42 0100007F:2383 01 00000000:00000000 00:00000000 00000000     0        0 113 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:9C43 0100007F:2383 06 00000000:00000000 00:00000000 00000000     0        0 114 1 0000000000000000 20 4 30 10 -1
   4: 0100007F:9C44 0100007F:2384 01 00000000:00000000 00:00000000 00000000     0        0 999 1 0000000000000000 20 4 30 10 -1
`
	out := map[string]int{}
	if err := countPeers([]byte(table), map[string]bool{"111": true, "112": true, "113": true, "114": true}, out); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out); got != "map[127.0.0.1:9090:2 127.0.0.1:9091:1]" {
		t.Fatalf("peers %s", got)
	}
}

func TestScaleTargets(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	r := &ScaleReport{
		Topics: 1000, Partitions: 10, PauseTopics: 1000,
		Many: []ManyResult{
			{Label: "a", CreateSeconds: 4, IdleCPUPercent: 1.5, RSSMiB: 200, ListAllMaxMs: 50, ListLinkMaxMs: 40, RestartSeconds: 1,
				Pause: BulkResult{CallMs: 80, SettledMs: 80}, SourceConns: []int{3, 2}, DestConns: []int{5}},
			{Label: "b", CreateSeconds: 9, IdleCPUPercent: 8, RSSMiB: 2000, ListAllMaxMs: 1500, ListLinkMaxMs: 40, RestartSeconds: 1,
				Pause: BulkResult{CallMs: 700, SettledMs: 1200}, SourceConns: []int{40}},
			{Label: "c", Error: "failed"},
		},
		Throughput: []InstancesResult{{Label: "a", Instances: 3, Speedup: f(2.6)}, {Label: "a", Instances: 2, Speedup: f(1.9)}},
	}
	var got []string
	for _, tg := range scaleTargets(r) {
		got = append(got, fmt.Sprintf("%v %s", tg.Met, tg.Goal))
	}
	want := []string{
		"true a: 10,000 partitions: idle CPU under 2%",
		"true a: 10,000 partitions within 1 GiB resident",
		"true a: list all mirrors under 1 s",
		"true a: list a link's mirrors under 1 s",
		"true a: state loaded at start-up under 10 s",
		"true a: create 1,000 mirrors under 5 s",
		"true a: pause 1000 by pattern answers under 100 ms",
		"true a: copying stops within a second",
		"true a: connections per broker bounded (at most 16)",
		"false b: 10,000 partitions: idle CPU under 2%",
		"false b: 10,000 partitions within 1 GiB resident",
		"false b: list all mirrors under 1 s",
		"true b: list a link's mirrors under 1 s",
		"true b: state loaded at start-up under 10 s",
		"false b: create 1,000 mirrors under 5 s",
		"false b: pause 1000 by pattern answers under 100 ms",
		"false b: copying stops within a second",
		"false b: connections per broker bounded (at most 16)",
		"true a: 3 instances copy at least 2.5x one",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	r.Topics, r.PauseTopics = 4000, 1000
	got = nil
	for _, tg := range scaleTargets(r)[:2] {
		got = append(got, fmt.Sprintf("%v %s %s", tg.Met, tg.Goal, tg.Actual))
	}
	if want := "true a: 40,000 partitions: idle CPU under 8% 1.50%\ntrue a: create 1,000 mirrors under 5 s 1.00 s per 1,000"; strings.Join(got, "\n") != want {
		t.Fatalf("40,000 partitions:\n%s", strings.Join(got, "\n"))
	}
}

func TestScaleOptionsValidate(t *testing.T) {
	ok := ScaleOptions{Topics: 10, Partitions: 2, Brokers: 1, IdleSeconds: 1, ListRepeats: 1, Timeout: 1,
		Instances: []int{1, 2}, ThroughputMB: 1, ThroughputPartitions: 3}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid options: %v", err)
	}
	for name, f := range map[string]func(o *ScaleOptions){
		"no partitions":      func(o *ScaleOptions) { o.Partitions = 0 },
		"pause more":         func(o *ScaleOptions) { o.PauseTopics = 11 },
		"no idle window":     func(o *ScaleOptions) { o.IdleSeconds = 0 },
		"17 instances":       func(o *ScaleOptions) { o.Instances = []int{17} },
		"no backlog":         func(o *ScaleOptions) { o.ThroughputMB = 0 },
		"same label twice":   func(o *ScaleOptions) { o.Serves = []ServeBinary{{"a", "x"}, {"a", "y"}} },
		"label without path": func(o *ScaleOptions) { o.Serves = []ServeBinary{{"a", ""}} },
	} {
		o := ok
		f(&o)
		if err := o.Validate(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
