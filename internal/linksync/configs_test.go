package linksync

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strait-dev/strait/internal/testutil"
)

func TestConfigChanges(t *testing.T) {
	names := []string{"cleanup.policy", "max.message.bytes", "retention.ms"}
	for _, tc := range []struct {
		name       string
		want, have map[string]string
		out        string
	}{
		{"in step", map[string]string{"retention.ms": "1"}, map[string]string{"retention.ms": "1"}, "[]"},
		{"set", map[string]string{"retention.ms": "1"}, map[string]string{}, "[set retention.ms=1]"},
		{"changed", map[string]string{"retention.ms": "2"}, map[string]string{"retention.ms": "1"}, "[set retention.ms=2]"},
		{"reset", map[string]string{}, map[string]string{"cleanup.policy": "compact"}, "[delete cleanup.policy]"},
		{"size limit is never reset", map[string]string{}, map[string]string{"max.message.bytes": "9"}, "[]"},
		{"not synced", map[string]string{"segment.ms": "1"}, map[string]string{}, "[]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, c := range configChanges(names, tc.want, tc.have) {
				if c.Op == kadm.SetConfig {
					got = append(got, "set "+c.Name+"="+*c.Value)
				} else {
					got = append(got, "delete "+c.Name)
				}
			}
			if fmt.Sprint(got) != tc.out && !(len(got) == 0 && tc.out == "[]") {
				t.Fatalf("changes %v, want %s", got, tc.out)
			}
		})
	}
}

// TestDescribeSynced asks for the synced configs of more topics than one
// request holds: every topic comes back with what it sets itself (and the
// size limit, whatever sets it), a missing topic is left out, and only the
// named configs are asked for.
func TestDescribeSynced(t *testing.T) {
	c := testutil.NewCluster(t)
	cl := testutil.Client(t, c.ListenAddrs())
	n := describeBatch + 20
	var topics []string
	for i := range n {
		topic := fmt.Sprintf("t%04d", i)
		var cfg map[string]*string
		if i%2 == 0 {
			cfg = map[string]*string{"retention.ms": kadm.StringPtr(fmt.Sprint(1000 + i))}
		}
		testutil.CreateTopic(t, cl, topic, 1, cfg)
		topics = append(topics, topic)
	}
	var asked []string
	c.ControlKey(int16(kmsg.DescribeConfigs), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		for _, r := range req.(*kmsg.DescribeConfigsRequest).Resources {
			asked = append(asked, fmt.Sprint(r.ConfigNames))
		}
		return nil, nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	names := []string{"max.message.bytes", "retention.ms"}
	got, err := describeSynced(ctx, cl, append(topics, "missing"), names)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("described %d topics, want %d", len(got), n)
	}
	for i, topic := range topics {
		v, ok := got[topic]["retention.ms"]
		if (i%2 == 0) != ok || (ok && v != fmt.Sprint(1000+i)) {
			t.Fatalf("%s: retention.ms %q (%v)", topic, v, ok)
		}
		if _, ok := got[topic]["max.message.bytes"]; !ok {
			t.Fatalf("%s: no size limit", topic)
		}
	}
	if len(asked) != n+1 || asked[0] != fmt.Sprint(names) {
		t.Fatalf("asked for %d resources, the first for %s", len(asked), asked[0])
	}
}
