package cli

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
)

func newMirror() *cobra.Command {
	o := &connOptions{}
	cmd := newGroup("mirror", "Manage mirror topics through Strait's REST API")
	cmd.Long = `Manage mirror topics through Strait's REST API, with the arguments, flags
and columns of 'confluent kafka mirror'. The commands talk to the daemon at
--url (or STRAIT_URL, default ` + client.DefaultURL + `).`
	o.register(cmd)
	ste := newGroup("state-transition-error", "Manage state transition errors")
	ste.AddCommand(newMirrorTransitionErrors(o))
	cmd.AddCommand(newMirrorCreate(o), newMirrorList(o), newMirrorDescribe(o), ste, newMirrorVerify(o), newMirrorFailoverReport(o))
	for _, v := range alterVerbs {
		cmd.AddCommand(newMirrorAlter(o, v))
	}
	return cmd
}

// addLinkFlag adds --link, completed with the server's link names.
func addLinkFlag(cmd *cobra.Command, o *connOptions, link *string, help string) {
	cmd.Flags().StringVar(link, "link", "", help)
	_ = cmd.RegisterFlagCompletionFunc("link", o.completeLinks(true))
}

// requireLink fails a command run without --link.
func requireLink(link string) error {
	if link == "" {
		return usagef("required flag --link not set")
	}
	return nil
}

func newMirrorCreate(o *connOptions) *cobra.Command {
	var link, sourceTopic string
	var rf int
	var config []string
	cmd := &cobra.Command{
		Use:   "create <mirror-topic-name>",
		Short: "Create a mirror topic under the link",
		Long: `Create a mirror topic under the link. The mirror topic has the source
topic's name, or on a link with a cluster.link.prefix the prefix and the
source topic's name (then give --source-topic).`,
		Example: `  strait mirror create orders --link my-link
  strait mirror create src_orders --link my-link --source-topic orders`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			configs, err := readProperties(config)
			if err != nil {
				return err
			}
			body := api.CreateMirrorRequest{SourceTopicName: sourceTopic, ReplicationFactor: rf, Configs: []api.ConfigValue{}}
			if body.SourceTopicName == "" {
				body.SourceTopicName = args[0]
			}
			// As the Confluent CLI does: the mirror name is sent only
			// when it differs from the source topic's.
			if body.SourceTopicName != args[0] {
				body.MirrorTopicName = args[0]
			}
			for _, k := range slices.Sorted(maps.Keys(configs)) {
				v := configs[k]
				body.Configs = append(body.Configs, api.ConfigValue{Name: k, Value: &v})
			}
			err = send(cmd, o, func(ctx context.Context, cl *client.Client) error { return cl.CreateMirror(ctx, link, body) })
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Created mirror topic %q.\n", args[0])
			return nil
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	cmd.Flags().IntVar(&rf, "replication-factor", 0, "replication factor of the mirror topic (default: the destination cluster's default; the Confluent CLI's is 3)")
	addConfigFlag(cmd, &config, "configs of the mirror topic")
	cmd.Flags().StringVar(&sourceTopic, "source-topic", "", "name of the source topic to mirror; needed only when the link has a prefix")
	return cmd
}

// mirrorStatuses are the values of Confluent's MirrorTopicStatus.
var mirrorStatuses = []string{"ACTIVE", "FAILED", "LINK_FAILED", "LINK_PAUSED", "PAUSED", "PENDING_STOPPED", "SOURCE_UNAVAILABLE",
	"STOPPED", "PENDING_MIRROR", "PENDING_SYNCHRONIZE", "PENDING_SETUP_FOR_RESTORE", "PENDING_RESTORE"}

// mirrorListRow is a row of mirror list, as the Confluent CLI prints it.
type mirrorListRow struct {
	LinkName                 string `json:"link_name" yaml:"link_name"`
	MirrorTopicName          string `json:"mirror_topic_name" yaml:"mirror_topic_name"`
	NumPartition             int32  `json:"num_partition" yaml:"num_partition"`
	MaxPerPartitionMirrorLag int64  `json:"max_per_partition_mirror_lag" yaml:"max_per_partition_mirror_lag"`
	SourceTopicName          string `json:"source_topic_name" yaml:"source_topic_name"`
	MirrorStatus             string `json:"mirror_status" yaml:"mirror_status"`
	StatusTimeMs             int64  `json:"status_time_ms" yaml:"status_time_ms"`
}

func sortMirrors(ms []api.MirrorData) {
	slices.SortFunc(ms, func(a, b api.MirrorData) int {
		if c := strings.Compare(a.LinkName, b.LinkName); c != 0 {
			return c
		}
		return strings.Compare(a.MirrorTopicName, b.MirrorTopicName)
	})
}

func newMirrorList(o *connOptions) *cobra.Command {
	var format, link, status string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List mirror topics in the cluster or under a cluster link",
		Example: `  strait mirror list
  strait mirror list --link my-link --mirror-status active`,
		Args:              usageArgs(cobra.NoArgs),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, mirrors, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) ([]api.MirrorData, error) {
				return cl.ListMirrors(ctx, link, strings.ToUpper(status))
			})
			if err != nil {
				return err
			}
			sortMirrors(mirrors)
			rows := []mirrorListRow{}
			var cells [][]string
			for _, m := range mirrors {
				var maxLag int64
				for _, l := range m.MirrorLags {
					maxLag = max(maxLag, l.Lag)
				}
				r := mirrorListRow{LinkName: m.LinkName, MirrorTopicName: m.MirrorTopicName, NumPartition: m.NumPartitions,
					MaxPerPartitionMirrorLag: maxLag, SourceTopicName: m.SourceTopicName, MirrorStatus: m.MirrorStatus, StatusTimeMs: m.StateTimeMs}
				rows = append(rows, r)
				cells = append(cells, []string{r.LinkName, r.MirrorTopicName, itoa(r.NumPartition), itoa(r.MaxPerPartitionMirrorLag),
					r.SourceTopicName, r.MirrorStatus, itoa(r.StatusTimeMs)})
			}
			cols := []column{{header: "Link Name"}, {header: "Mirror Topic Name"}, {header: "Num Partition", numeric: true},
				{header: "Max Per Partition Mirror Lag", numeric: true}, {header: "Source Topic Name"}, {header: "Mirror Status"},
				{header: "Status Time (ms)", numeric: true}}
			return p.list(rows, cols, cells)
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (default: every link)")
	cmd.Flags().StringVar(&status, "mirror-status", "", "list only the mirror topics in this status: "+strings.ToLower(strings.Join(mirrorStatuses, ", ")))
	_ = cmd.RegisterFlagCompletionFunc("mirror-status", cobra.FixedCompletions(lower(mirrorStatuses), cobra.ShellCompDirectiveNoFileComp))
	addOutputFlag(cmd, &format)
	return cmd
}

func lower(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strings.ToLower(s)
	}
	return out
}

// mirrorPartitionRow is a row of mirror describe: one partition, as the
// Confluent CLI prints it.
type mirrorPartitionRow struct {
	LinkName              string `json:"link_name" yaml:"link_name"`
	MirrorTopicName       string `json:"mirror_topic_name" yaml:"mirror_topic_name"`
	Partition             int32  `json:"partition" yaml:"partition"`
	PartitionMirrorLag    int64  `json:"partition_mirror_lag" yaml:"partition_mirror_lag"`
	SourceTopicName       string `json:"source_topic_name" yaml:"source_topic_name"`
	MirrorStatus          string `json:"mirror_status" yaml:"mirror_status"`
	MirrorTopicError      string `json:"mirror_topic_error" yaml:"mirror_topic_error"`
	StatusTimeMs          int64  `json:"status_time_ms" yaml:"status_time_ms"`
	LastSourceFetchOffset int64  `json:"last_source_fetch_offset" yaml:"last_source_fetch_offset"`
}

func newMirrorDescribe(o *connOptions) *cobra.Command {
	var format, link string
	cmd := &cobra.Command{
		Use:               "describe <destination-topic-name>",
		Short:             "Describe a mirror topic, partition by partition",
		Example:           "  strait mirror describe orders --link my-link",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeMirrors(&link, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			p, m, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) (api.MirrorData, error) {
				return cl.GetMirror(ctx, link, args[0], false)
			})
			if err != nil {
				return err
			}
			rows := []mirrorPartitionRow{}
			var cells [][]string
			for _, l := range m.MirrorLags {
				r := mirrorPartitionRow{LinkName: m.LinkName, MirrorTopicName: m.MirrorTopicName, Partition: l.Partition, PartitionMirrorLag: l.Lag,
					SourceTopicName: m.SourceTopicName, MirrorStatus: m.MirrorStatus, MirrorTopicError: m.MirrorTopicError,
					StatusTimeMs: m.StateTimeMs, LastSourceFetchOffset: l.LastSourceFetchOffset}
				rows = append(rows, r)
				cells = append(cells, []string{r.LinkName, r.MirrorTopicName, itoa(r.Partition), itoa(r.PartitionMirrorLag), r.SourceTopicName,
					r.MirrorStatus, r.MirrorTopicError, itoa(r.StatusTimeMs), itoa(r.LastSourceFetchOffset)})
			}
			cols := []column{{header: "Link Name"}, {header: "Mirror Topic Name"}, {header: "Partition", numeric: true},
				{header: "Partition Mirror Lag", numeric: true}, {header: "Source Topic Name"}, {header: "Mirror Status"},
				{header: "Mirror Topic Error"}, {header: "Status Time (ms)", numeric: true}, {header: "Last Source Fetch Offset", numeric: true}}
			return p.list(rows, cols, cells)
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	addOutputFlag(cmd, &format)
	return cmd
}

// transitionErrorRow is a row of mirror state-transition-error list.
type transitionErrorRow struct {
	ErrorCode    string `json:"error_code" yaml:"error_code"`
	ErrorMessage string `json:"error_message" yaml:"error_message"`
}

func newMirrorTransitionErrors(o *connOptions) *cobra.Command {
	var format, link string
	cmd := &cobra.Command{
		Use:               "list <destination-topic-name>",
		Short:             "List the mirror topic's state transition errors",
		Example:           "  strait mirror state-transition-error list orders --link my-link",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: o.completeMirrors(&link, false),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			p, m, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) (api.MirrorData, error) {
				return cl.GetMirror(ctx, link, args[0], true)
			})
			if err != nil {
				return err
			}
			rows := []transitionErrorRow{}
			var cells [][]string
			if m.TransitionErrors != nil {
				for _, e := range *m.TransitionErrors {
					rows = append(rows, transitionErrorRow(e))
					cells = append(cells, []string{e.ErrorCode, e.ErrorMessage})
				}
			}
			cols := []column{{header: "Mirror State Transition Error Code"}, {header: "Mirror State Transition Error Message"}}
			return p.list(rows, cols, cells)
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	addOutputFlag(cmd, &format)
	return cmd
}
