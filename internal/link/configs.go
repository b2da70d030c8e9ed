package link

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/strait-dev/strait/internal/linkconfig"
)

// ConfigView is one link config as the API reports it.
type ConfigView struct {
	Name string
	// Value is the effective value; "" for sensitive configs and for
	// configs with no value.
	Value     string
	IsDefault bool
	ReadOnly  bool
	Sensitive bool
	// Source is DYNAMIC_CLUSTER_LINK_CONFIG for a value set on the link,
	// DEFAULT_CONFIG otherwise.
	Source string
}

// ConfigChange sets or, with Delete, resets one config.
type ConfigChange struct {
	Name   string
	Value  string
	Delete bool
}

// connectionConfigs change how the source is reached: the source client is
// rebuilt when one of them changes.
var connectionConfigs = map[string]bool{
	linkconfig.BootstrapServers: true, linkconfig.SecurityProtocol: true, linkconfig.SASLMechanism: true,
	linkconfig.SASLJAASConfig: true, linkconfig.SSLTruststoreType: true, linkconfig.SSLTruststoreCerts: true,
	linkconfig.SSLKeystoreType: true, linkconfig.SSLKeystoreChain: true, linkconfig.SSLKeystoreKey: true,
	linkconfig.SSLKeyPassword: true, linkconfig.SSLEndpointAlgorithm: true, linkconfig.RequestTimeoutMs: true,
	linkconfig.ReplicaFetchMaxBytes: true, linkconfig.ReplicaFetchWaitMaxMs: true, linkconfig.ReplicaFetchResponseMax: true,
	linkconfig.AvailabilityCheckMs: true, linkconfig.AvailabilityThreshold: true,
}

// targetConfigs say where the link sends its credentials: the source's
// bootstrap servers and the OAuth token endpoint.
var targetConfigs = []string{linkconfig.BootstrapServers, linkconfig.SASLOAuthTokenURL}

// checkCredentialsFollow refuses a change of where a link connects that
// does not give the link's credentials again: otherwise whoever may alter
// the link's configs could point it at a host of theirs and have Strait
// send the stored password or client secret there. Credentials given in
// the same request (or removed in it) show that the caller holds them.
func checkCredentialsFollow(cur, next linkconfig.Set, changes []ConfigChange) error {
	var moved []string
	for _, name := range targetConfigs {
		if cur.Get(name) != next.Get(name) {
			moved = append(moved, name)
		}
	}
	if len(moved) == 0 {
		return nil
	}
	given := map[string]bool{}
	for _, c := range changes {
		given[c.Name] = true
	}
	var missing []string
	for name := range cur {
		if d, _ := linkconfig.Lookup(name); d.Sensitive && !given[name] {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	sort.Strings(missing)
	return errorf(ErrInvalid, "Changing %s sends the link's credentials to a new place: give %s again in the same request (or remove them).", strings.Join(moved, " and "), strings.Join(missing, ", "))
}

// LinkConfigs lists every config of a link, set or default, by name.
func (m *Manager) LinkConfigs(linkName string) ([]ConfigView, error) {
	l, err := m.getLink(linkName)
	if err != nil {
		return nil, err
	}
	names := linkconfig.Names()
	out := make([]ConfigView, 0, len(names))
	for _, n := range names {
		out = append(out, configView(l.Configs, n))
	}
	return out, nil
}

// LinkConfig describes one config of a link.
func (m *Manager) LinkConfig(linkName, name string) (ConfigView, error) {
	l, err := m.getLink(linkName)
	if err != nil {
		return ConfigView{}, err
	}
	if _, ok := linkconfig.Lookup(name); !ok {
		return ConfigView{}, errorf(ErrConfigNotFound, "Config '%s' does not exist for cluster link '%s'.", name, linkName)
	}
	return configView(l.Configs, name), nil
}

func configView(s linkconfig.Set, name string) ConfigView {
	d, _ := linkconfig.Lookup(name)
	v := ConfigView{Name: name, Value: s.Get(name), IsDefault: !s.IsSet(name), ReadOnly: d.ReadOnly, Sensitive: d.Sensitive, Source: "DEFAULT_CONFIG"}
	if s.IsSet(name) {
		v.Source = "DYNAMIC_CLUSTER_LINK_CONFIG"
	}
	if d.Sensitive {
		v.Value = ""
	}
	return v
}

func (m *Manager) getLink(name string) (*Link, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	l, ok := m.links[name]
	if !ok {
		return nil, linkNotFound(name)
	}
	return l, nil
}

// AlterLinkConfigs validates every change, then applies them all at once, or
// none: a bad entry fails the whole request and changes nothing. Changes
// take effect without a restart.
func (m *Manager) AlterLinkConfigs(ctx context.Context, linkName string, changes []ConfigChange, validateOnly bool) error {
	unlock, err := m.lockLink(ctx, linkName)
	if err != nil {
		return err
	}
	defer unlock()
	l, err := m.getLink(linkName)
	if err != nil {
		return err
	}
	next := l.Configs.Clone()
	for _, c := range changes {
		d, ok := linkconfig.Lookup(c.Name)
		if !ok {
			return errorf(ErrInvalid, "Unknown cluster link config '%s'.", c.Name)
		}
		readOnly := d.ReadOnly || d.CreateOnly
		if c.Delete {
			if readOnly && l.Configs.IsSet(c.Name) {
				return errorf(ErrInvalid, "Config '%s' is read-only: it cannot be reset on an existing link (create a new link to change it).", c.Name)
			}
			delete(next, c.Name)
			continue
		}
		if readOnly && c.Value == l.Configs.Get(c.Name) {
			// Tools that send a link's whole config map (the Terraform
			// provider) send its read-only values as they are: no change.
			continue
		}
		if readOnly {
			return errorf(ErrInvalid, "Config '%s' is read-only: its value is '%s' and cannot be changed on an existing link (create a new link to change it).", c.Name, l.Configs.Get(c.Name))
		}
		if err := linkconfig.Check(c.Name, c.Value, false); err != nil {
			return configError(err)
		}
		next[c.Name] = c.Value
	}
	// Turning a sync feature off keeps its filters and intervals, as
	// Confluent does: a Terraform plan after apply stays empty, and
	// turning it on again restores the same sync.
	if err := linkconfig.CheckSet(next); err != nil {
		return errorf(ErrInvalid, "%s.", capitalize(err.Error()))
	}
	if err := checkCredentialsFollow(l.Configs, next, changes); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	updated := *l
	updated.Configs = next
	m.writeMu.Lock()
	err = m.putLinkLocked(ctx, &updated)
	m.writeMu.Unlock()
	if err != nil {
		return err
	}
	if changedAny(l.Configs, next, connectionConfigs) {
		m.restartRun(linkName)
	} else {
		m.reconcile(linkName)
		if _, run, err := m.linkAndRun(linkName); err == nil && run != nil && run.sync != nil {
			run.sync.Kick() // the sync tasks read the new configs now
		}
	}
	return nil
}

func changedAny(a, b linkconfig.Set, names map[string]bool) bool {
	for n := range names {
		if a.Get(n) != b.Get(n) || a.IsSet(n) != b.IsSet(n) {
			return true
		}
	}
	return false
}

// IsNotFound reports whether err is one of the not-found errors.
func IsNotFound(err error) bool {
	return errors.Is(err, ErrLinkNotFound) || errors.Is(err, ErrMirrorNotFound) || errors.Is(err, ErrClusterNotFound) || errors.Is(err, ErrConfigNotFound)
}
