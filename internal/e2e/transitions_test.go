package e2e

import (
	"net/http"
	"strings"
	"testing"

	"github.com/strait-dev/strait/internal/testutil"
)

// TestTransitionTable checks every operation from every mirror status
// Strait stores (and on topics that are not mirrors), with the per-topic
// result the contract's table gives, asserted with validate_only, which
// runs every check and changes nothing.
func TestTransitionTable(t *testing.T) {
	e := newEnv(t)
	for _, topic := range []string{"active", "paused", "stopped"} {
		testutil.CreateTopic(t, e.srcCl, topic, 1, nil)
	}
	testutil.CreateTopic(t, e.dstCl, "plain", 1, nil)
	e.createLink("l1", nil)
	e.failMirror("l1", "failed")
	for _, topic := range []string{"active", "paused", "stopped"} {
		e.createMirror("l1", topic)
	}
	e.waitStatus("l1", "active", "ACTIVE")
	e.alter("l1", "pause", names("paused"), "")
	e.alter("l1", "failover", names("stopped"), "")
	statuses := map[string]string{"active": "ACTIVE", "paused": "PAUSED", "failed": "FAILED", "stopped": "STOPPED"}
	for topic, st := range statuses {
		e.waitStatus("l1", topic, st)
	}

	const ok = ""
	stopped := "Topic 'stopped' has already stopped its mirror from 'l1'"
	cases := []struct {
		op    string
		topic string
		code  int
		msg   string // exact when it starts with "Topic '", else a substring
	}{
		{"pause", "active", 0, ok},
		{"pause", "paused", 0, ok},
		{"pause", "failed", 400, "its mirror has failed"},
		{"pause", "stopped", 400, stopped},
		{"pause", "plain", 400, "Topic 'plain' is not mirrored"},
		{"pause", "ghost", 404, "Topic 'ghost' not found"},
		{"resume", "active", 0, ok},
		{"resume", "paused", 0, ok},
		{"resume", "failed", 400, "its mirror has failed"},
		{"resume", "stopped", 400, stopped},
		{"resume", "plain", 400, "Topic 'plain' is not mirrored"},
		{"promote", "active", 0, ok},
		{"promote", "paused", 0, ok},
		{"promote", "failed", 400, "cannot be promoted in state FAILED; use failover"},
		{"promote", "stopped", 400, stopped},
		{"promote", "plain", 400, "Topic 'plain' is not mirrored"},
		{"failover", "active", 0, ok},
		{"failover", "paused", 0, ok},
		{"failover", "failed", 0, ok},
		{"failover", "stopped", 400, stopped},
		{"failover", "plain", 400, "Topic 'plain' is not mirrored"},
		{"failover", "ghost", 404, "Topic 'ghost' not found"},
		{"reverse-and-start-mirror", "active", 400, "is not bidirectional"},
		{"reverse-and-pause-mirror", "paused", 400, "is not bidirectional"},
		{"reverse-and-start-mirror", "stopped", 400, stopped},
		{"truncate-and-restore", "plain", 400, "is not bidirectional"},
	}
	for _, tc := range cases {
		t.Run(tc.op+"/"+tc.topic, func(t *testing.T) {
			var r alterResults
			e.api.With(t).JSON(http.MethodPost, "/links/l1/mirrors:"+tc.op+"?validate_only=true", names(tc.topic), http.StatusOK, &r)
			code, msg := resultErr(t, r, 0)
			exact := strings.HasPrefix(tc.msg, "Topic '")
			if code != tc.code || (exact && msg != tc.msg) || (!exact && !strings.Contains(msg, tc.msg)) {
				t.Fatalf("code %d %q, want %d %q", code, msg, tc.code, tc.msg)
			}
		})
	}
	for topic, st := range statuses {
		if v := e.describe("l1", topic); v.MirrorStatus != st {
			t.Fatalf("validate_only changed %s from %s to %s", topic, st, v.MirrorStatus)
		}
	}

	// A paused link refuses promote, which needs the copy to run.
	e.api.JSON(http.MethodPut, "/links/l1/configs/cluster.link.paused", map[string]any{"value": "true"}, http.StatusNoContent, nil)
	r := e.alter("l1", "promote", names("active"), "")
	if code, msg := resultErr(t, r, 0); code != 400 || !strings.Contains(msg, "while cluster link 'l1' is paused") {
		t.Fatalf("promote on a paused link: %d %q", code, msg)
	}
	if v := e.describe("l1", "active"); v.MirrorStatus != "LINK_PAUSED" {
		t.Fatalf("refused promote changed the status to %s", v.MirrorStatus)
	}
}
