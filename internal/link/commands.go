package link

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/strait-dev/strait/internal/store"
)

// Commands: how an instance that is not the active one gets a change made.
//
// Several instances of one destination share the copy, but one of them,
// the active instance (internal/group), makes every change to the state:
// the REST API's changes and what the copy reports (a partition set up, a
// writer identity, a failure). The others ask it through the state topic,
// the one place every instance reads: a command record cmd/<id> that the
// active instance carries out, answered by a reply record reply/<id> that
// the asker reads; the asker then deletes both. Nothing but the
// destination cluster is needed between instances (no instance has to
// reach another over the network), a command outlives a change of the
// active instance (the next one carries out what has no reply yet), and
// each command has a deadline past which it is not started.

const (
	cmdKeyPrefix   = "cmd/"
	replyKeyPrefix = "reply/"
)

// CommandHandler carries out a command of one kind on the active instance
// and returns the reply's body.
type CommandHandler func(ctx context.Context, body []byte) ([]byte, error)

// ErrNoActive is returned by Request when no instance answered before the
// deadline.
var ErrNoActive = errors.New("no active Strait instance answered")

type command struct {
	Kind string `json:"kind"`
	// From names the asking instance, for the log.
	From       string          `json:"from"`
	DeadlineMs int64           `json:"deadline_ms"`
	Body       json.RawMessage `json:"body"`
}

type commandReply struct {
	Body  json.RawMessage `json:"body,omitempty"`
	Error string          `json:"error,omitempty"`
}

// commands is the Manager's side of the channel.
type commands struct {
	mu       sync.Mutex
	handlers map[string]CommandHandler
	// waiting are this instance's requests, by id.
	waiting map[string]chan commandReply
	// pending are commands seen without a reply, by id: what an instance
	// that becomes active carries out.
	pending map[string]command
	// running are the ids being carried out here.
	running map[string]bool
}

// HandleCommands registers what the active instance does with commands of
// kind. Register before the instance can become active.
func (m *Manager) HandleCommands(kind string, h CommandHandler) {
	m.cmds.mu.Lock()
	defer m.cmds.mu.Unlock()
	if m.cmds.handlers == nil {
		m.cmds.handlers = map[string]CommandHandler{}
	}
	m.cmds.handlers[kind] = h
}

// Request has the active instance carry out a command and returns its
// reply. On the active instance it runs here. It gives up when ctx ends;
// a command that was written may still be carried out (as with any
// request whose answer was lost), but not after ctx's deadline.
func (m *Manager) Request(ctx context.Context, kind string, body []byte) ([]byte, error) {
	if m.Leading() {
		h := m.handler(kind)
		if h == nil {
			return nil, fmt.Errorf("no handler for %s commands", kind)
		}
		return h(ctx, body)
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(2 * time.Minute)
	}
	c := command{Kind: kind, From: m.cfg.Instance, DeadlineMs: deadline.UnixMilli(), Body: body}
	b, err := json.Marshal(c)
	if err != nil {
		return nil, err
	}
	id := newCommandID()
	ch := make(chan commandReply, 1)
	m.cmds.mu.Lock()
	if m.cmds.waiting == nil {
		m.cmds.waiting = map[string]chan commandReply{}
	}
	m.cmds.waiting[id] = ch
	m.cmds.mu.Unlock()
	defer func() {
		m.cmds.mu.Lock()
		delete(m.cmds.waiting, id)
		m.cmds.mu.Unlock()
		m.forgetCommand(id)
	}()
	if _, err := m.cfg.Store.Put(ctx, cmdKeyPrefix+id, b); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.Error != "" {
			return nil, &CommandError{Message: r.Error}
		}
		return r.Body, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrNoActive, ctx.Err())
	}
}

// CommandError is a command the active instance carried out and refused.
type CommandError struct{ Message string }

func (e *CommandError) Error() string { return e.Message }

// forgetCommand deletes a command and its reply from the state topic, in
// the background: both have served.
func (m *Manager) forgetCommand(id string) {
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, k := range []string{cmdKeyPrefix + id, replyKeyPrefix + id} {
			if _, err := m.cfg.Store.Delete(ctx, k); err != nil {
				m.log.Debug("forget command", "key", k, "err", err)
			}
		}
	}()
}

func (m *Manager) handler(kind string) CommandHandler {
	m.cmds.mu.Lock()
	defer m.cmds.mu.Unlock()
	return m.cmds.handlers[kind]
}

// applyCommandRecord takes cmd/ and reply/ records off the state topic; it
// reports whether key was one.
func (m *Manager) applyCommandRecord(key string, e store.Entry) bool {
	switch {
	case strings.HasPrefix(key, cmdKeyPrefix):
		id := key[len(cmdKeyPrefix):]
		m.cmds.mu.Lock()
		if m.cmds.pending == nil {
			m.cmds.pending = map[string]command{}
		}
		var c command
		if e.Value == nil || json.Unmarshal(e.Value, &c) != nil {
			delete(m.cmds.pending, id)
			m.cmds.mu.Unlock()
			return true
		}
		m.cmds.pending[id] = c
		m.cmds.mu.Unlock()
		if m.Leading() {
			m.runCommand(id, c)
		}
		return true
	case strings.HasPrefix(key, replyKeyPrefix):
		id := key[len(replyKeyPrefix):]
		m.cmds.mu.Lock()
		delete(m.cmds.pending, id)
		ch := m.cmds.waiting[id]
		m.cmds.mu.Unlock()
		var r commandReply
		if ch != nil && e.Value != nil && json.Unmarshal(e.Value, &r) == nil {
			select {
			case ch <- r:
			default:
			}
		}
		return true
	}
	return false
}

// runPending carries out the commands without a reply: this instance has
// just become active.
func (m *Manager) runPending() {
	m.cmds.mu.Lock()
	pending := make(map[string]command, len(m.cmds.pending))
	for id, c := range m.cmds.pending {
		pending[id] = c
	}
	m.cmds.mu.Unlock()
	for id, c := range pending {
		m.runCommand(id, c)
	}
}

// runCommand carries out one command, once, in the background, and writes
// its reply.
func (m *Manager) runCommand(id string, c command) {
	deadline := time.UnixMilli(c.DeadlineMs)
	if time.Now().After(deadline) {
		return // the asker has given up
	}
	m.cmds.mu.Lock()
	if m.cmds.running == nil {
		m.cmds.running = map[string]bool{}
	}
	if m.cmds.running[id] {
		m.cmds.mu.Unlock()
		return
	}
	m.cmds.running[id] = true
	h := m.cmds.handlers[c.Kind]
	m.cmds.mu.Unlock()
	m.bg.Add(1)
	go func() {
		defer m.bg.Done()
		defer func() {
			m.cmds.mu.Lock()
			delete(m.cmds.running, id)
			m.cmds.mu.Unlock()
		}()
		ctx, cancel := context.WithDeadline(m.bgCtx, deadline)
		defer cancel()
		var r commandReply
		if h == nil {
			r.Error = fmt.Sprintf("the active Strait instance does not know %q commands (another version?)", c.Kind)
		} else if body, err := h(ctx, c.Body); err != nil {
			r.Error = err.Error()
		} else {
			r.Body = body
		}
		b, _ := json.Marshal(r)
		wctx, wcancel := context.WithTimeout(m.bgCtx, 30*time.Second)
		defer wcancel()
		if _, err := m.cfg.Store.Put(wctx, replyKeyPrefix+id, b); err != nil {
			m.log.Warn("answer a command", "kind", c.Kind, "from", c.From, "err", err)
		}
	}()
}

// sweepCommands deletes commands and replies whose deadline passed long
// ago: their asker is gone.
func (m *Manager) sweepCommands(ctx context.Context) {
	m.cmds.mu.Lock()
	var stale []string
	for id, c := range m.cmds.pending {
		if time.Since(time.UnixMilli(c.DeadlineMs)) > 10*time.Minute {
			stale = append(stale, id)
		}
	}
	m.cmds.mu.Unlock()
	for _, id := range stale {
		for _, k := range []string{cmdKeyPrefix + id, replyKeyPrefix + id} {
			if _, err := m.cfg.Store.Delete(ctx, k); err != nil {
				return
			}
		}
		m.cmds.mu.Lock()
		delete(m.cmds.pending, id)
		m.cmds.mu.Unlock()
	}
}

func newCommandID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
