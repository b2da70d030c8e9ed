package link

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/strait-dev/strait/internal/kafkaclient"
	"github.com/strait-dev/strait/internal/linkconfig"
)

// LinkView is a link as the API reports it.
type LinkView struct {
	Name          string
	ClusterLinkID string
	LinkID        string
	// SourceClusterID is the remote cluster: the source, or for a
	// bidirectional link the other side.
	SourceClusterID string
	Bidirectional   bool
	TopicNames      []string
	// State is ACTIVE, PAUSED, UNAVAILABLE or FAILED.
	State string
	// Error is a LinkError name; NO_ERROR when healthy.
	Error        string
	ErrorMessage *string
	// Categories counts mirror partitions by state category.
	Categories []CategoryCount
	// Tasks is the link's sync tasks.
	Tasks []Task
}

// CategoryCount is one entry of category_counts.
type CategoryCount struct {
	Category string
	Count    int
}

// Task is a link's background task and its state.
type Task struct {
	Name   string
	State  string
	Errors []TaskError
}

// TaskError is one error of a task.
type TaskError struct {
	Code    string
	Message string
}

// CreateLinkRequest is what creating a link takes.
type CreateLinkRequest struct {
	Name            string
	SourceClusterID string
	// RemoteClusterID is the expected remote id of a BIDIRECTIONAL link.
	RemoteClusterID string
	// ClusterLinkID is the expected link id when creating the second side
	// of a bidirectional link.
	ClusterLinkID string
	// DestinationClusterID is accepted only to refuse source-initiated
	// links with a clear message.
	DestinationClusterID string
	Configs              []ConfigValue
	ValidateOnly         bool
	ValidateLink         bool
}

// ConfigValue is a name and an optional value.
type ConfigValue struct {
	Name  string
	Value *string
}

var linkNameRE = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)

// validLinkName checks a link name. "-" is reserved: it means "every link"
// in the mirror listing path.
func validLinkName(name string) error {
	if name == "-" || name == "." || name == ".." || !linkNameRE.MatchString(name) {
		return errorf(ErrInvalid, "Invalid cluster link name '%s': use 1 to 249 characters of [a-zA-Z0-9._-], and not '-', '.' or '..'.", name)
	}
	return nil
}

// Links lists every link, sorted by name.
func (m *Manager) Links() []LinkView {
	m.mu.RLock()
	names := make([]string, 0, len(m.links))
	for n := range m.links {
		names = append(names, n)
	}
	m.mu.RUnlock()
	sort.Strings(names)
	out := make([]LinkView, 0, len(names))
	for _, n := range names {
		if v, err := m.Link(n, false); err == nil {
			out = append(out, v)
		}
	}
	return out
}

// Link describes one link; withTasks adds its tasks.
func (m *Manager) Link(name string, withTasks bool) (LinkView, error) {
	m.mu.RLock()
	l, ok := m.links[name]
	run := m.runs[name]
	m.mu.RUnlock()
	if !ok {
		return LinkView{}, linkNotFound(name)
	}
	v := LinkView{
		Name:            l.Name,
		ClusterLinkID:   l.ClusterLinkID(),
		LinkID:          l.UUID(),
		SourceClusterID: l.SourceClusterID,
		Bidirectional:   l.Configs.Bidirectional(),
		TopicNames:      []string{},
		State:           "ACTIVE",
		Error:           "NO_ERROR",
	}
	unavailable, lastErr := false, error(nil)
	if run != nil {
		unavailable, lastErr = run.availability()
	}
	switch {
	case run != nil && run.buildErr != nil:
		v.State = "FAILED"
		v.Error = "MISCONFIGURATION_ERROR"
	case unavailable:
		v.State = "UNAVAILABLE"
		v.Error = describeError(lastErr)
	case l.Configs.Paused():
		v.State = "PAUSED"
	}
	if v.State == "FAILED" || v.State == "UNAVAILABLE" {
		msg := linkErrorMessage(v.Error)
		v.ErrorMessage = &msg
	}
	counts := map[string]int{}
	for _, mir := range m.mirrorsOf(name) {
		v.TopicNames = append(v.TopicNames, mir.Topic)
		c, stalled := category(m.status(mir)), 0
		if c == "ACTIVE" {
			stalled = len(mir.Stalls)
		}
		counts[c] += int(mir.Partitions) - stalled
		counts["IN_ERROR"] += stalled
	}
	for _, c := range []string{"ACTIVE", "PAUSED", "PENDING", "IN_ERROR", "NOT_APPLICABLE"} {
		v.Categories = append(v.Categories, CategoryCount{Category: c, Count: counts[c]})
	}
	if withTasks && run != nil && run.sync != nil {
		for _, st := range run.sync.Status() {
			t := Task{Name: st.Name, State: st.State, Errors: []TaskError{}}
			for _, e := range st.Errors {
				t.Errors = append(t.Errors, TaskError{Code: e.Code, Message: e.Message})
			}
			v.Tasks = append(v.Tasks, t)
		}
		v.Tasks = append(v.Tasks, m.copyTask(name, v.State))
		if t, ok := m.verifyTask(name, v.State); ok {
			v.Tasks = append(v.Tasks, t)
		}
		sort.Slice(v.Tasks, func(i, j int) bool { return v.Tasks[i].Name < v.Tasks[j].Name })
	}
	return v, nil
}

// category maps a mirror status to its state category.
func category(s Status) string {
	switch s {
	case StatusActive:
		return "ACTIVE"
	case StatusPaused, StatusLinkPaused:
		return "PAUSED"
	case StatusFailed, StatusSourceUnavailable, StatusLinkFailed:
		return "IN_ERROR"
	case StatusStopped:
		return "NOT_APPLICABLE"
	default:
		return "PENDING"
	}
}

// CreateLink validates and creates a link.
func (m *Manager) CreateLink(ctx context.Context, req CreateLinkRequest) error {
	if err := validLinkName(req.Name); err != nil {
		return err
	}
	if req.DestinationClusterID != "" {
		return errorf(ErrInvalid, "Source-initiated links (link.mode=SOURCE with destination_cluster_id) are not supported: create the link on the destination with source_cluster_id.")
	}
	set := linkconfig.Set{}
	for _, c := range req.Configs {
		if c.Value == nil {
			return errorf(ErrInvalid, "Config '%s' has no value.", c.Name)
		}
		if err := linkconfig.Check(c.Name, *c.Value, true); err != nil {
			return configError(err)
		}
		set[c.Name] = *c.Value
	}
	if err := linkconfig.CheckSet(set); err != nil {
		return errorf(ErrInvalid, "%s", capitalize(err.Error()))
	}
	if _, err := m.sealLink(&Link{Configs: set}); err != nil {
		return err // credentials and no secrets key: refused even for validate_only
	}
	expected, idField := req.SourceClusterID, "source_cluster_id"
	if set.Bidirectional() {
		if req.SourceClusterID != "" {
			return errorf(ErrInvalid, "A BIDIRECTIONAL link takes remote_cluster_id, not source_cluster_id.")
		}
		expected, idField = req.RemoteClusterID, "remote_cluster_id"
	} else if req.RemoteClusterID != "" {
		return errorf(ErrInvalid, "remote_cluster_id is for link.mode=BIDIRECTIONAL; this link is %s and takes source_cluster_id.", set.Get(linkconfig.LinkMode))
	}
	if !req.ValidateLink && expected == "" {
		return errorf(ErrInvalid, "%s is required when validate_link is false.", idField)
	}

	unlock, err := m.lockLink(ctx, req.Name)
	if err != nil {
		return err
	}
	defer unlock()
	m.mu.RLock()
	_, exists := m.links[req.Name]
	m.mu.RUnlock()
	if exists {
		return errorf(ErrLinkExists, "Cluster link '%s' already exists.", req.Name)
	}
	srcID := expected
	if req.ValidateLink {
		id, err := m.sourceClusterID(ctx, set)
		if err != nil {
			return err
		}
		if srcID != "" && srcID != id {
			return errorf(ErrInvalid, "Expected cluster ID '%s' does not match resolved cluster ID '%s'.", srcID, id)
		}
		srcID = id
	}
	if srcID == m.cfg.ClusterID {
		return errorf(ErrInvalid, "Requested cluster ID matches local cluster ID '%s' - cannot create cluster link to self.", srcID)
	}
	id, err := m.bidirectionalLinkID(ctx, req, set)
	if err != nil {
		return err
	}
	if req.ValidateOnly {
		return nil
	}
	l := &Link{Name: req.Name, ID: id, SourceClusterID: srcID, Configs: set, CreatedMs: m.nowMs()}
	m.writeMu.Lock()
	err = m.putLinkLocked(ctx, l)
	m.writeMu.Unlock()
	if err != nil {
		return err
	}
	run := m.startRun(l)
	m.mu.Lock()
	m.runs[l.Name] = run
	m.mu.Unlock()
	m.log.Info("link created", "link", l.Name, "source_cluster_id", srcID)
	return nil
}

// bidirectionalLinkID returns the id of a new link: the one the other side
// of a bidirectional link already has, so both sides share it as
// Confluent's do, or a new one. A given cluster_link_id must match.
func (m *Manager) bidirectionalLinkID(ctx context.Context, req CreateLinkRequest, set linkconfig.Set) (string, error) {
	if !set.Bidirectional() || !req.ValidateLink {
		if req.ClusterLinkID != "" {
			return linkIDFromClusterLinkID(req.ClusterLinkID)
		}
		return newLinkID(), nil
	}
	cs, err := m.linkClient(set)
	if err != nil {
		return "", errorf(ErrInvalid, "%s", capitalize(err.Error()))
	}
	cl, err := kafkaclient.New(cs, nil)
	if err != nil {
		return "", errorf(ErrInvalid, "%s", capitalize(err.Error()))
	}
	defer cl.Close()
	rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	remote, _, err := m.remoteState(rctx, cl, set)
	var remoteID string
	if err == nil {
		if rl := remote.links[req.Name]; rl != nil && rl.Configs.Bidirectional() {
			remoteID = rl.ID
		}
	}
	if req.ClusterLinkID != "" {
		want, err := linkIDFromClusterLinkID(req.ClusterLinkID)
		if err != nil {
			return "", err
		}
		if remoteID != "" && want != remoteID {
			return "", errorf(ErrInvalid, "Expected cluster link ID '%s' does not match the remote link's '%s'.", req.ClusterLinkID, (&Link{ID: remoteID}).ClusterLinkID())
		}
		return want, nil
	}
	if remoteID != "" {
		return remoteID, nil
	}
	return newLinkID(), nil
}

// linkIDFromClusterLinkID decodes a cluster_link_id (URL-safe base64 of 16
// bytes) into the stored hex form.
func linkIDFromClusterLinkID(s string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 16 {
		return "", errorf(ErrInvalid, "Invalid cluster_link_id '%s': expected 22 characters of URL-safe base64.", s)
	}
	return hex.EncodeToString(b), nil
}

// sourceClusterID connects to the source described by set and returns its
// cluster id.
func (m *Manager) sourceClusterID(ctx context.Context, set linkconfig.Set) (string, error) {
	cs, err := m.linkClient(set)
	if err != nil {
		return "", errorf(ErrInvalid, "%s", capitalize(err.Error()))
	}
	cs.RequestTimeout = 10 * time.Second
	cl, err := kafkaclient.New(cs, nil)
	if err != nil {
		return "", errorf(ErrInvalid, "%s", capitalize(err.Error()))
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
	if err != nil {
		// What answered where is for the log, not for the caller: the
		// caller chose the address, and the error text would make Strait
		// a port scanner.
		m.log.Warn("validate link: source cluster not reachable", "bootstrap", strings.Join(set.Bootstrap(), ","), "err", err)
		var oe *kafkaclient.OAuthError
		if errors.As(err, &oe) {
			return "", errorf(ErrInvalid, "Unable to validate cluster link: the OAuth token endpoint refused the link's client credentials (%s).", oe.Msg)
		}
		if describeError(err) == "AUTHENTICATION_ERROR" {
			return "", errorf(ErrInvalid, "Unable to validate cluster link: the source cluster refused the link's credentials.")
		}
		return "", errorf(ErrInvalid, "Unable to validate cluster link: the source cluster could not be reached or did not answer as a Kafka cluster; Strait's log has the details.")
	}
	return md.Cluster, nil
}

// linkClient is the client settings of a link's source, with the network
// guard: a link may reach only the networks Strait allows for links.
func (m *Manager) linkClient(set linkconfig.Set) (kafkaclient.Settings, error) {
	cs, err := set.Client()
	cs.Guard = m.cfg.Networks
	return cs, err
}

// DeleteLink deletes a link. Without force it refuses while mirrors of the
// link are not stopped; with force it stops them first. Mirror topics stay
// on the destination as regular topics.
func (m *Manager) DeleteLink(ctx context.Context, name string, force, validateOnly bool) error {
	unlock, err := m.lockLink(ctx, name)
	if err != nil {
		return err
	}
	defer unlock()
	m.mu.RLock()
	_, ok := m.links[name]
	run := m.runs[name]
	m.mu.RUnlock()
	if !ok {
		return linkNotFound(name)
	}
	mirrors := m.mirrorsOf(name)
	var live []string
	for _, mir := range mirrors {
		if mir.Status != StatusStopped {
			live = append(live, mir.Topic)
		}
	}
	if len(live) > 0 && !force {
		return errorf(ErrLinkInUse, "Cluster link '%s' is in use by mirror topics: %s. Stop them or delete with force=true.", name, strings.Join(live, ", "))
	}
	if validateOnly {
		return nil
	}
	// The mirrors stop as a failover stops them: copy stopped, open source
	// transactions aborted, write denials lifted; the topics stay.
	if run != nil && run.runner != nil {
		hctx, cancel := context.WithTimeout(ctx, haltWait)
		for t, err := range m.haltCopy(hctx, name, run, live) {
			m.log.Warn("link delete: the copy of the mirror may still run on another instance", "topic", t, "err", err)
		}
		cancel()
		m.abortOpenTransactions(ctx, run, live)
	}
	if run != nil {
		run.close()
	}
	for _, mir := range mirrors {
		if err := m.liftDenials(ctx, mir.Topic, mir.WriteDenials); err != nil {
			m.restartRun(name)
			return err
		}
	}
	m.writeMu.Lock()
	defer m.writeMu.Unlock()
	for _, mir := range mirrors {
		if err := m.deleteMirrorLocked(ctx, mir); err != nil {
			m.restartRun(name)
			return err
		}
	}
	if err := m.deleteLinkLocked(ctx, name); err != nil {
		m.restartRun(name)
		return err
	}
	m.mu.Lock()
	delete(m.runs, name)
	m.mu.Unlock()
	m.log.Info("link deleted", "link", name, "force", force, "mirrors", len(mirrors))
	return nil
}

func configError(err error) error {
	return errorf(ErrInvalid, "%s.", capitalize(err.Error()))
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
