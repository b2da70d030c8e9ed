package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
)

// newGroup returns a command that only groups others; a word after it
// that is none of them is a usage error (cobra would print help and exit
// 0).
func newGroup(use, short string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
			}
			return cmd.Help()
		},
	}
}

func newLink() *cobra.Command {
	o := &connOptions{}
	cmd := newGroup("link", "Manage cluster links through Strait's REST API")
	cmd.Long = `Manage cluster links through Strait's REST API, with the arguments, flags
and columns of 'confluent kafka link'. The commands talk to the daemon at
--url (or STRAIT_URL, default ` + client.DefaultURL + `).`
	o.register(cmd)
	cfg := newGroup("configuration", "Manage cluster link configurations")
	cfg.AddCommand(newLinkConfigList(o), newLinkConfigUpdate(o))
	task := newGroup("task", "Manage a cluster link's tasks")
	task.AddCommand(newLinkTaskList(o))
	cmd.AddCommand(newLinkCreate(o), newLinkList(o), newLinkDescribe(o), newLinkDelete(o), cfg, task)
	return cmd
}

// Names of the link configs the Confluent CLI's flags set.
const (
	cfgBootstrap     = "bootstrap.servers"
	cfgLinkMode      = "link.mode"
	cfgSecurity      = "security.protocol"
	cfgSASLMechanism = "sasl.mechanism"
	cfgJAAS          = "sasl.jaas.config"
)

// printableConfigs are the link configs link create shows back; the others
// may hold credentials.
var printableConfigs = []string{
	cfgBootstrap, "connection.mode", cfgLinkMode, "consumer.offset.sync.enable", "consumer.offset.group.filters",
	"consumer.offset.sync.ms", "consumer.group.prefix.enable", "acl.sync.enable", "acl.filters", "acl.sync.ms",
	"auto.create.mirror.topics.enable", "auto.create.mirror.topics.filters", "cluster.link.prefix",
	"topic.config.sync.ms", "topic.config.sync.include", "mirror.start.offset.spec", cfgSecurity, cfgSASLMechanism,
	"local.security.protocol", "local.sasl.mechanism", "cluster.link.paused", "availability.check.ms",
	"availability.check.consecutive.failure.threshold", "strait.remote.state.topic", "strait.mirror.write.protection.enable",
}

// plainJAAS is the JAAS line of SASL PLAIN credentials.
func plainJAAS(key, secret string) string {
	return fmt.Sprintf(`org.apache.kafka.common.security.plain.PlainLoginModule required username="%s" password="%s";`, key, secret)
}

type linkCreateOptions struct {
	sourceCluster, sourceBootstrap, sourceKey, sourceSecret string
	remoteCluster, remoteBootstrap, remoteKey, remoteSecret string
	localKey, localSecret                                   string
	config                                                  []string
	dryRun, noValidate                                      bool
}

func newLinkCreate(o *connOptions) *cobra.Command {
	var c linkCreateOptions
	cmd := &cobra.Command{
		Use:   "create <link>",
		Short: "Create a new cluster link",
		Long: `Create a new cluster link on the destination cluster Strait serves. The
source is given by --source-bootstrap-server (or bootstrap.servers in
--config); a bidirectional link (--config link.mode=BIDIRECTIONAL) by the
--remote-* flags.`,
		Example: `  strait link create my-link --source-cluster src-id --source-bootstrap-server src:9092
  strait link create my-link --config link.properties --dry-run`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE:              func(cmd *cobra.Command, args []string) error { return c.run(cmd, o, args[0]) },
	}
	f := cmd.Flags()
	f.StringVar(&c.sourceCluster, "source-cluster", "", "source cluster ID; when given, Strait checks at creation that the source has it")
	f.StringVar(&c.sourceBootstrap, "source-bootstrap-server", "", `bootstrap server address of the source cluster; or "bootstrap.servers" in --config`)
	f.StringVar(&c.sourceKey, "source-api-key", "", "API key for the source cluster: sets SASL_SSL with PLAIN; for other mechanisms put the security configs in --config")
	f.StringVar(&c.sourceSecret, "source-api-secret", "", "API secret for the source cluster (with --source-api-key)")
	f.StringVar(&c.remoteCluster, "remote-cluster", "", "remote cluster ID, for bidirectional links")
	f.StringVar(&c.remoteBootstrap, "remote-bootstrap-server", "", "bootstrap server address of the remote cluster, for bidirectional links")
	f.StringVar(&c.remoteKey, "remote-api-key", "", "API key for the remote cluster of a bidirectional link (SASL_SSL with PLAIN)")
	f.StringVar(&c.remoteSecret, "remote-api-secret", "", "API secret for the remote cluster of a bidirectional link")
	f.StringVar(&c.localKey, "local-api-key", "", "API key for the local cluster of a bidirectional link (stored as local.* configs; Strait reaches its own cluster with the daemon's settings)")
	f.StringVar(&c.localSecret, "local-api-secret", "", "API secret for the local cluster of a bidirectional link")
	addConfigFlag(cmd, &c.config, "link configs")
	f.BoolVar(&c.dryRun, "dry-run", false, "validate the link, but do not create it")
	f.BoolVar(&c.noValidate, "no-validate", false, "create the link even if the source cluster cannot be reached")
	return cmd
}

func (c *linkCreateOptions) run(cmd *cobra.Command, o *connOptions, name string) error {
	configs, err := readProperties(c.config)
	if err != nil {
		return err
	}
	mode := strings.ToUpper(configs[cfgLinkMode])
	bidi := mode == "BIDIRECTIONAL"
	source := c.sourceCluster != "" || c.sourceBootstrap != "" || c.sourceKey != "" || c.sourceSecret != ""
	remote := c.remoteCluster != "" || c.remoteBootstrap != "" || c.remoteKey != "" || c.remoteSecret != "" || c.localKey != "" || c.localSecret != ""
	switch {
	case remote && !bidi:
		return usagef("the --remote-* and --local-* flags are for bidirectional links: add --config link.mode=BIDIRECTIONAL")
	case source && bidi:
		return usagef("a bidirectional link takes --remote-cluster, --remote-bootstrap-server and --remote-api-key, not the --source-* flags")
	}
	for _, pair := range [][2]string{{c.sourceKey, c.sourceSecret}, {c.remoteKey, c.remoteSecret}, {c.localKey, c.localSecret}} {
		if (pair[0] == "") != (pair[1] == "") {
			return usagef("an API key and its secret go together")
		}
	}
	var body api.CreateLinkRequest
	bootstrap, key, secret := c.sourceBootstrap, c.sourceKey, c.sourceSecret
	body.SourceClusterID = c.sourceCluster
	if bidi {
		bootstrap, key, secret = c.remoteBootstrap, c.remoteKey, c.remoteSecret
		body.SourceClusterID, body.RemoteClusterID = "", c.remoteCluster
	}
	if bootstrap != "" {
		configs[cfgBootstrap] = bootstrap
	}
	if key != "" {
		configs[cfgSecurity], configs[cfgSASLMechanism], configs[cfgJAAS] = "SASL_SSL", "PLAIN", plainJAAS(key, secret)
	}
	if c.localKey != "" {
		configs["local.listener"], configs["local.security.protocol"] = "SASL_SSL", "SASL_SSL"
		configs["local.sasl.mechanism"], configs["local.sasl.jaas.config"] = "PLAIN", plainJAAS(c.localKey, c.localSecret)
	}
	names := slices.Sorted(maps.Keys(configs))
	body.Configs = []api.ConfigValue{}
	for _, k := range names {
		v := configs[k]
		body.Configs = append(body.Configs, api.ConfigValue{Name: k, Value: &v})
	}
	err = send(cmd, o, func(ctx context.Context, cl *client.Client) error {
		return cl.CreateLink(ctx, name, body, client.CreateLinkOptions{ValidateOnly: c.dryRun, NoValidateLink: c.noValidate})
	})
	if err != nil {
		return err
	}
	msg := fmt.Sprintf("Created cluster link %q with configs:", name)
	if c.dryRun {
		msg = "[DRY RUN] " + msg
	}
	w := cmd.OutOrStdout()
	fmt.Fprintln(w, msg)
	for _, k := range names {
		if slices.Contains(printableConfigs, k) {
			fmt.Fprintf(w, "%s=%s\n", k, configs[k])
		}
	}
	return nil
}

// linkRow is a row of link list, as the Confluent CLI prints it.
type linkRow struct {
	Name               string `json:"link_name" yaml:"link_name"`
	ID                 string `json:"link_id,omitempty" yaml:"link_id,omitempty"`
	TopicName          string `json:"topic_name,omitempty" yaml:"topic_name,omitempty"`
	SourceCluster      string `json:"source_cluster,omitempty" yaml:"source_cluster,omitempty"`
	DestinationCluster string `json:"destination_cluster,omitempty" yaml:"destination_cluster,omitempty"`
	RemoteCluster      string `json:"remote_cluster,omitempty" yaml:"remote_cluster,omitempty"`
	State              string `json:"state" yaml:"state"`
	Error              string `json:"error,omitempty" yaml:"error,omitempty"`
	ErrorMessage       string `json:"error_message,omitempty" yaml:"error_message,omitempty"`
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// linkError is the link's error, blank when there is none.
func linkError(d api.LinkData) string {
	if d.LinkError == "NO_ERROR" {
		return ""
	}
	return d.LinkError
}

func newLinkRow(d api.LinkData, topic string) linkRow {
	return linkRow{
		Name: d.LinkName, ID: d.ClusterLinkID, TopicName: topic,
		SourceCluster: deref(d.SourceClusterID), DestinationCluster: deref(d.DestinationClusterID), RemoteCluster: deref(d.RemoteClusterID),
		State: d.LinkState, Error: linkError(d), ErrorMessage: deref(d.LinkErrorMessage),
	}
}

func newLinkList(o *connOptions) *cobra.Command {
	var format string
	var includeTopics bool
	cmd := &cobra.Command{
		Use:               "list",
		Short:             "List cluster links",
		Args:              usageArgs(cobra.NoArgs),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, links, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) ([]api.LinkData, error) {
				return cl.ListLinks(ctx)
			})
			if err != nil {
				return err
			}
			slices.SortFunc(links, func(a, b api.LinkData) int { return strings.Compare(a.LinkName, b.LinkName) })
			rows := []linkRow{}
			for _, l := range links {
				if !includeTopics || len(l.TopicNames) == 0 {
					rows = append(rows, newLinkRow(l, ""))
					continue
				}
				for _, t := range slices.Sorted(slices.Values(l.TopicNames)) {
					rows = append(rows, newLinkRow(l, t))
				}
			}
			cols := []column{{header: "Name"}, {header: "ID"}}
			if includeTopics {
				cols = append(cols, column{header: "Topic Name"})
			}
			cols = append(cols, column{header: "Source Cluster"}, column{header: "Destination Cluster"}, column{header: "Remote Cluster"},
				column{header: "State"}, column{header: "Error"}, column{header: "Error Message"})
			var cells [][]string
			for _, r := range rows {
				row := []string{r.Name, r.ID}
				if includeTopics {
					row = append(row, r.TopicName)
				}
				cells = append(cells, append(row, r.SourceCluster, r.DestinationCluster, r.RemoteCluster, r.State, r.Error, r.ErrorMessage))
			}
			return p.list(rows, cols, cells)
		},
	}
	cmd.Flags().BoolVar(&includeTopics, "include-topics", false, "list the mirror topics of each link, one row per topic")
	addOutputFlag(cmd, &format)
	return cmd
}

// linkDescription is link describe's object, as the Confluent CLI prints
// it.
type linkDescription struct {
	Name                       string `json:"link_name" yaml:"link_name"`
	SourceCluster              string `json:"source_cluster,omitempty" yaml:"source_cluster,omitempty"`
	DestinationCluster         string `json:"destination_cluster,omitempty" yaml:"destination_cluster,omitempty"`
	RemoteCluster              string `json:"remote_cluster,omitempty" yaml:"remote_cluster,omitempty"`
	State                      string `json:"state" yaml:"state"`
	Error                      string `json:"error,omitempty" yaml:"error,omitempty"`
	ErrorMessage               string `json:"error_message,omitempty" yaml:"error_message,omitempty"`
	MirrorPartitionStatesCount string `json:"mirror_partition_states_count,omitempty" yaml:"mirror_partition_states_count,omitempty"`
}

func newLinkDescription(d api.LinkData) linkDescription {
	counts := make([]string, len(d.CategoryCounts))
	for i, c := range d.CategoryCounts {
		counts[i] = fmt.Sprintf("%s: %d", c.StateCategory, c.Count)
	}
	return linkDescription{
		Name: d.LinkName, SourceCluster: deref(d.SourceClusterID), DestinationCluster: deref(d.DestinationClusterID),
		RemoteCluster: deref(d.RemoteClusterID), State: d.LinkState, Error: linkError(d), ErrorMessage: deref(d.LinkErrorMessage),
		MirrorPartitionStatesCount: strings.Join(counts, ", "),
	}
}

func newLinkDescribe(o *connOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:               "describe <link>",
		Short:             "Describe a cluster link",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeLinks(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, d, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) (api.LinkData, error) {
				return cl.GetLink(ctx, args[0], false)
			})
			if err != nil {
				return err
			}
			v := newLinkDescription(d)
			fields := []fieldLine{{"Name", v.Name}, {"Source Cluster", v.SourceCluster}, {"Destination Cluster", v.DestinationCluster},
				{"Remote Cluster", v.RemoteCluster}, {"State", v.State}}
			for _, f := range []fieldLine{{"Error", v.Error}, {"Error Message", v.ErrorMessage}, {"Mirror Partition States Count", v.MirrorPartitionStatesCount}} {
				if f.value != "" {
					fields = append(fields, f)
				}
			}
			return p.object(v, fields)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newLinkDelete(o *connOptions) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "delete <link-1> [link-2] ... [link-n]",
		Short: "Delete one or more cluster links",
		Long: `Delete one or more cluster links, after asking for confirmation. A link
whose mirror topics are not all stopped is refused unless --force, which
also skips the confirmation and deletes the link with its mirrors.`,
		Args:              usageArgs(cobra.MinimumNArgs(1)),
		ValidArgsFunction: o.completeLinks(true),
		RunE: func(cmd *cobra.Command, args []string) error {
			return send(cmd, o, func(ctx context.Context, cl *client.Client) error {
				// As the Confluent CLI does: an unknown link is refused
				// before anything is asked or deleted.
				for _, name := range args {
					if _, err := cl.GetLink(ctx, name, false); err != nil {
						return err
					}
				}
				what := "cluster link " + quoteList(args)
				if len(args) > 1 {
					what = "cluster links " + quoteList(args)
				}
				ok, err := confirm(cmd, force, "Are you sure you want to delete "+what+"?")
				if err != nil || !ok {
					return err
				}
				var deleted []string
				var errs []error
				for _, name := range args {
					if err := cl.DeleteLink(ctx, name, client.DeleteLinkOptions{Force: force}); err != nil {
						var ce *client.Error
						if errors.As(err, &ce) && ce.StatusCode == http.StatusForbidden && !force {
							err = fmt.Errorf("%w; pass --force to delete it with its mirrors", err)
						}
						errs = append(errs, fmt.Errorf("delete cluster link %q: %w", name, err))
						continue
					}
					deleted = append(deleted, name)
				}
				switch len(deleted) {
				case 0:
				case 1:
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted cluster link %s.\n", quoteList(deleted))
				default:
					fmt.Fprintf(cmd.OutOrStdout(), "Deleted cluster links %s.\n", quoteList(deleted))
				}
				return errors.Join(errs...)
			})
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "skip the confirmation prompt, and delete links whose mirrors are not stopped")
	return cmd
}

// configRow is a row of link configuration list.
type configRow struct {
	ConfigName  string   `json:"config_name" yaml:"config_name"`
	ConfigValue string   `json:"config_value" yaml:"config_value"`
	ReadOnly    bool     `json:"read_only" yaml:"read_only"`
	Sensitive   bool     `json:"sensitive" yaml:"sensitive"`
	Source      string   `json:"source" yaml:"source"`
	Synonyms    []string `json:"synonyms" yaml:"synonyms"`
}

func newLinkConfigList(o *connOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:               "list <link>",
		Short:             "List cluster link configurations",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeLinks(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, configs, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) ([]api.LinkConfigData, error) {
				return cl.ListLinkConfigs(ctx, args[0])
			})
			if err != nil {
				return err
			}
			slices.SortFunc(configs, func(a, b api.LinkConfigData) int { return strings.Compare(a.Name, b.Name) })
			rows := []configRow{}
			var cells [][]string
			for _, c := range configs {
				syn := c.Synonyms
				if syn == nil {
					syn = []string{}
				}
				r := configRow{ConfigName: c.Name, ConfigValue: c.Value, ReadOnly: c.IsReadOnly || c.ReadOnly, Sensitive: c.IsSensitive || c.Sensitive, Source: c.Source, Synonyms: syn}
				rows = append(rows, r)
				cells = append(cells, []string{r.ConfigName, r.ConfigValue, fmt.Sprint(r.ReadOnly), fmt.Sprint(r.Sensitive), r.Source, strings.Join(r.Synonyms, ", ")})
			}
			cols := []column{{header: "Config Name"}, {header: "Config Value"}, {header: "Read-Only"}, {header: "Sensitive"}, {header: "Source"}, {header: "Synonyms"}}
			return p.list(rows, cols, cells)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}

func newLinkConfigUpdate(o *connOptions) *cobra.Command {
	var config []string
	var dryRun bool
	cmd := &cobra.Command{
		Use:               "update <link>",
		Short:             "Update cluster link configurations",
		Long:              "Update cluster link configurations: all the given ones, or none if one is refused.",
		Example:           "  strait link configuration update my-link --config consumer.offset.sync.enable=true,consumer.offset.sync.ms=10000",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeLinks(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(config) == 0 {
				return usagef("give the configs to change with --config")
			}
			configs, err := readProperties(config)
			if err != nil {
				return err
			}
			entries := []api.AlterConfigEntry{}
			for _, k := range slices.Sorted(maps.Keys(configs)) {
				v := configs[k]
				entries = append(entries, api.AlterConfigEntry{Name: k, Value: &v})
			}
			err = send(cmd, o, func(ctx context.Context, cl *client.Client) error {
				return cl.AlterLinkConfigs(ctx, args[0], entries, dryRun)
			})
			if err != nil {
				return err
			}
			msg := fmt.Sprintf("Updated cluster link %q.", args[0])
			if dryRun {
				msg = "[DRY RUN] " + msg
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	addConfigFlag(cmd, &config, "the configs to set")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "validate the change, but do not apply it (Strait only; validate_only)")
	return cmd
}

// taskRow is a row of link task list; its errors are a list in JSON and
// YAML and one cell in the table.
type taskRow struct {
	TaskName string         `json:"task_name" yaml:"task_name"`
	State    string         `json:"state" yaml:"state"`
	Errors   []taskErrorRow `json:"errors" yaml:"errors"`
}

type taskErrorRow struct {
	ErrorCode    string `json:"error_code" yaml:"error_code"`
	ErrorMessage string `json:"error_message" yaml:"error_message"`
}

func newLinkTaskList(o *connOptions) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:               "list <link>",
		Short:             "List a cluster link's tasks",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeLinks(false),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, d, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) (api.LinkData, error) {
				return cl.GetLink(ctx, args[0], true)
			})
			if err != nil {
				return err
			}
			rows := []taskRow{}
			var cells [][]string
			for _, t := range d.Tasks {
				r := taskRow{TaskName: t.TaskName, State: t.State, Errors: []taskErrorRow{}}
				var errs []string
				for _, e := range t.Errors {
					r.Errors = append(r.Errors, taskErrorRow(e))
					errs = append(errs, fmt.Sprintf("%s: %q", e.ErrorCode, e.ErrorMessage))
				}
				rows = append(rows, r)
				cells = append(cells, []string{r.TaskName, r.State, strings.Join(errs, ", ")})
			}
			return p.list(rows, []column{{header: "Task Name"}, {header: "State"}, {header: "Errors"}}, cells)
		},
	}
	addOutputFlag(cmd, &format)
	return cmd
}
