package devcluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestResponseDelay: with a response delay every answer comes at least
// that late, and requests still work, pipelined, in order.
func TestResponseDelay(t *testing.T) {
	for _, delay := range []time.Duration{0, 100 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			c, err := Start(Options{Listen: "127.0.0.1:0", ResponseDelay: delay, AutoCreateTopics: true})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("t"), kgo.ProducerLinger(0), kgo.AllowAutoTopicCreation())
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			start := time.Now()
			if _, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl); err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took < delay {
				t.Fatalf("answered after %v, want at least %v", took, delay)
			}
			// 20 records produced without waiting, then read back in order.
			const n = 20
			errs := make(chan error, n)
			for i := range n {
				cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) { errs <- err })
			}
			for range n {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			cons, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("t"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			if err != nil {
				t.Fatal(err)
			}
			defer cons.Close()
			for got := 0; got < n; {
				fs := cons.PollFetches(ctx)
				if err := fs.Err0(); err != nil {
					t.Fatal(err)
				}
				for _, r := range fs.Records() {
					if string(r.Value) != fmt.Sprint(got) {
						t.Fatalf("record %d is %q", got, r.Value)
					}
					got++
				}
			}
		})
	}
}
