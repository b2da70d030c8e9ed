package link

import (
	"context"
	"fmt"
	"time"
)

// The background verifier: with Config.VerifyInterval set, the active
// instance verifies every mirror topic that is copying (or failed) every
// interval, one topic after the other, within Config.VerifyBytesPerSecond
// per cluster. Its results are the checkpoints (verify.go): the metrics
// export them and a divergence shows in the link's MirrorTopicVerify task.

// TaskMirrorTopicVerify is the link task that reports the background
// verifier's divergences.
const TaskMirrorTopicVerify = "MirrorTopicVerify"

func (m *Manager) verifyLoop(ctx context.Context) {
	defer m.bg.Done()
	every := m.cfg.VerifyInterval
	if every <= 0 {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
		if m.Leading() {
			m.verifyAll(ctx)
		}
	}
}

// verifyAll runs one verification of every mirror topic that has data to
// compare.
func (m *Manager) verifyAll(ctx context.Context) {
	for _, mir := range m.mirrorsOf("") {
		switch mir.Status {
		case StatusActive, StatusPaused, StatusFailed:
		default:
			continue // stopped, or being set up, promoted or restored
		}
		if ctx.Err() != nil || !m.Leading() {
			return
		}
		res, err := m.VerifyMirror(ctx, mir.Link, mir.Topic, VerifyOptions{BytesPerSecond: m.cfg.VerifyBytesPerSecond})
		if err != nil {
			m.log.Warn("background verification", "link", mir.Link, "topic", mir.Topic, "err", err)
			continue
		}
		for _, p := range res.Partitions {
			if d := p.Divergence; d != nil {
				m.log.Error("mirror differs from its source", "link", mir.Link, "topic", mir.Topic, "partition", p.Partition, "offset", d.Offset, "code", d.Code, "err", d.Message)
			}
		}
	}
}

// verifyTask is the MirrorTopicVerify task of a link in state: shown when
// the background verifier runs or a verification found a difference;
// IN_ERROR with one error per partition that differs.
func (m *Manager) verifyTask(linkName, state string) (Task, bool) {
	t := Task{Name: TaskMirrorTopicVerify, State: "ACTIVE", Errors: []TaskError{}}
	for _, cp := range m.Checkpoints() {
		if cp.Link != linkName || cp.Divergence == nil {
			continue
		}
		t.State = "IN_ERROR"
		t.Errors = append(t.Errors, TaskError{Code: "INTERNAL_ERROR", Message: fmt.Sprintf("mirror topic '%s' partition %d differs from its source at offset %d (%s): %s",
			cp.Topic, cp.Partition, cp.Divergence.Offset, cp.Divergence.Code, cp.Divergence.Message)})
	}
	if t.State == "ACTIVE" {
		if m.cfg.VerifyInterval <= 0 {
			return t, false
		}
		switch state {
		case "PAUSED":
			t.State = "LINK_PAUSED"
		case "UNAVAILABLE":
			t.State = "LINK_UNAVAILABLE"
		case "FAILED":
			t.State = "LINK_FAILED"
		}
	}
	return t, true
}
