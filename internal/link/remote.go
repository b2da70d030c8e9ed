package link

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/strait-dev/strait/internal/linkconfig"
	"github.com/strait-dev/strait/internal/store"
)

// remoteView is the state of the Strait on the other side of a
// bidirectional link, read from its state topic.
type remoteView struct {
	links   map[string]*Link
	mirrors map[string]*Mirror
}

// remoteState reads the state topic of the cluster cl reaches. The two
// Strait instances of a bidirectional link coordinate through each other's
// state topics: what one writes there, the other follows and applies.
func (m *Manager) remoteState(ctx context.Context, cl *kgo.Client, set linkconfig.Set) (remoteView, *store.Remote, error) {
	r := store.NewRemote(cl, set.Get(linkconfig.RemoteStateTopic))
	kv, err := r.Load(ctx)
	if err != nil {
		return remoteView{}, r, err
	}
	links, mirrors, _, err := decodeState(kv)
	if err != nil {
		return remoteView{}, r, err
	}
	return remoteView{links: links, mirrors: mirrors}, r, nil
}

// remoteLink reads the remote state and checks that the other side has the
// same bidirectional link.
func (m *Manager) remoteLink(ctx context.Context, l *Link, run *linkRun) (remoteView, *store.Remote, error) {
	if run == nil || run.src == nil {
		return remoteView{}, nil, errors.New("the link has no usable connection to the remote cluster")
	}
	rv, r, err := m.remoteState(ctx, run.src, l.Configs)
	if errors.Is(err, store.ErrNoStateTopic) {
		return rv, r, fmt.Errorf("the remote cluster is not managed by Strait (no state topic '%s' there)", l.Configs.Get(linkconfig.RemoteStateTopic))
	}
	if err != nil {
		return rv, r, fmt.Errorf("cannot read the remote cluster's Strait state: %w", err)
	}
	rl := rv.links[l.Name]
	if rl == nil || !rl.Configs.Bidirectional() {
		return rv, r, fmt.Errorf("the remote cluster has no bidirectional link named '%s' (REMOTE_LINK_NOT_FOUND)", l.Name)
	}
	return rv, r, nil
}

// putRemoteMirror writes a mirror record into the remote state topic.
func putRemoteMirror(ctx context.Context, r *store.Remote, mir *Mirror) error {
	b, err := json.Marshal(mir)
	if err != nil {
		return err
	}
	return r.Put(ctx, mirrorKey(mir.Link, mir.Topic), b)
}
