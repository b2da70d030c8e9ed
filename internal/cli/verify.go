package cli

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
)

// Strait's own verbs, on its /strait/v1 endpoints (docs/verify.md):
// `strait mirror verify`, `strait mirror failover-report`, `strait group
// readiness` and `strait switchover`.

// errDiverged is a verification that found a difference: the command
// printed it, and exits 1.
var errDiverged = errors.New("the mirror differs from its source")

func newMirrorVerify(o *connOptions) *cobra.Command {
	var (
		format, link, partitions string
		fromStart                bool
		rate                     int64
	)
	cmd := &cobra.Command{
		Use:   "verify <mirror-topic-name>",
		Short: "Compare a mirror topic with its source, batch by batch",
		Long: `Compare a mirror topic with its source, partition by partition and batch by
batch, from each partition's checkpoint (where the last verification got)
up to the mirror's end. It prints, per partition, the offset verified up to,
or the first offset that differs and how, and exits 1 if one differs.`,
		Example: `  strait mirror verify orders --link my-link
  strait mirror verify orders --link my-link --from-start --partitions 0,3 --bytes-per-second 0`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			p, err := newPrinter(cmd, format)
			if err != nil {
				return err
			}
			opt := client.VerifyOptions{FromStart: fromStart}
			if cmd.Flags().Changed("bytes-per-second") {
				opt.BytesPerSecond = &rate
			}
			for _, f := range splitList(partitions) {
				n, err := strconv.ParseInt(f, 10, 32)
				if err != nil || n < 0 {
					return usagef("invalid --partitions %q: give partition numbers separated by commas", partitions)
				}
				opt.Partitions = append(opt.Partitions, int32(n))
			}
			v, err := request(cmd, o, func(ctx context.Context, cl *client.Client) (api.MirrorVerification, error) {
				return cl.VerifyMirror(ctx, link, args[0], opt)
			})
			if err != nil {
				return err
			}
			if err := printVerification(p, v); err != nil {
				return err
			}
			if v.Diverged {
				return errDiverged
			}
			return nil
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	cmd.Flags().StringVar(&partitions, "partitions", "", "comma-separated partitions to verify (default: all)")
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "ignore the checkpoints: compare everything the logs hold")
	cmd.Flags().Int64Var(&rate, "bytes-per-second", 0, "cap on the bytes read from each cluster, 0 for none (default: the server's, 32 MiB/s)")
	addOutputFlag(cmd, &format)
	return cmd
}

func printVerification(p printer, v api.MirrorVerification) error {
	var cells [][]string
	for _, pt := range v.Partitions {
		diff := ""
		switch {
		case pt.Divergence != nil:
			diff = fmt.Sprintf("%s at %d: %s", pt.Divergence.Code, pt.Divergence.Offset, pt.Divergence.Message)
		case pt.Error != nil:
			diff = *pt.Error
		}
		cells = append(cells, []string{itoa(pt.Partition), itoa(pt.FromOffset), itoa(pt.VerifiedOffset), itoa(pt.SourceEndOffset), itoa(pt.MirrorEndOffset), itoa(pt.SourceBatches), itoa(pt.DecompressedBatches), diff})
	}
	cols := []column{{header: "Partition", numeric: true}, {header: "From", numeric: true}, {header: "Verified", numeric: true},
		{header: "Source End", numeric: true}, {header: "Mirror End", numeric: true}, {header: "Batches", numeric: true},
		{header: "Decompressed", numeric: true}, {header: "Difference"}}
	return p.report(v, v.Summary, cols, cells)
}

func newMirrorFailoverReport(o *connOptions) *cobra.Command {
	var format, link string
	cmd := &cobra.Command{
		Use:   "failover-report [mirror-topic-name ...]",
		Short: "Say what failing the link's mirror topics over would lose now",
		Long: `Say what failing the link's mirror topics (those named, or every one not
stopped) over would lose now, without failing anything over: per partition
the records not yet copied and the age of the oldest of them, the
transactions the failover would abort, and for the consumer groups whose
offsets the link syncs, the records their consumers would see again or miss.`,
		Example:           `  strait mirror failover-report --link my-link`,
		Args:              usageArgs(cobra.ArbitraryArgs),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			p, rep, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) (api.FailoverReport, error) {
				return cl.FailoverReport(ctx, link, args)
			})
			if err != nil {
				return err
			}
			return printFailoverReport(p, rep)
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	addOutputFlag(cmd, &format)
	return cmd
}

// printFailoverReport prints a failover report: as JSON or YAML, or as a
// table, its verdict first.
func printFailoverReport(p printer, rep api.FailoverReport) error {
	var cells [][]string
	for _, t := range rep.Topics {
		for _, pt := range t.Partitions {
			cells = append(cells, []string{t.MirrorTopicName, itoa(pt.Partition), itoa(pt.RecordsNotCopied),
				strconv.FormatFloat(pt.DataLossSeconds, 'f', 1, 64), itoa(len(pt.OpenTransactions))})
		}
		for _, g := range t.Groups {
			cells = append(cells, []string{t.MirrorTopicName, "group " + g.GroupID, "", "",
				fmt.Sprintf("sees %d again, misses %d", g.Reprocessed, g.Missed)})
		}
	}
	cols := []column{{header: "Mirror Topic Name"}, {header: "Partition", numeric: true}, {header: "Records Not Copied", numeric: true},
		{header: "Data Loss (s)", numeric: true}, {header: "Open Transactions", numeric: true}}
	return p.report(rep, rep.Verdict, cols, cells)
}

func newGroupCmd() *cobra.Command {
	o := &connOptions{}
	cmd := newGroup("group", "Consumer groups and the move to the destination")
	o.register(cmd)
	cmd.AddCommand(newGroupReadiness(o))
	return cmd
}

func newGroupReadiness(o *connOptions) *cobra.Command {
	var (
		format, link string
		maxLag       int64
	)
	cmd := &cobra.Command{
		Use:   "readiness [group]",
		Short: "Say whether consumer groups can move to the destination now",
		Long: `Say, per consumer group and link, whether the group can move to the
destination now: every topic it reads is mirrored, the mirrors have caught
up (within --max-lag records), and its committed offsets on the destination
equal those on the source. Otherwise it says why. Without a group, every
group with offsets on a mirrored topic.`,
		Example: `  strait group readiness
  strait group readiness billing --link my-link --max-lag 100`,
		Args:              usageArgs(cobra.MaximumNArgs(1)),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			group := ""
			if len(args) == 1 {
				group = args[0]
			}
			p, rs, err := fetch(cmd, o, format, func(ctx context.Context, cl *client.Client) ([]api.GroupReadiness, error) {
				return cl.GroupReadiness(ctx, group, link, maxLag)
			})
			if err != nil {
				return err
			}
			var cells [][]string
			for _, g := range rs {
				var lag int64
				for _, t := range g.Topics {
					lag += t.Lag
				}
				cells = append(cells, []string{g.LinkName, g.GroupID, strconv.FormatBool(g.Ready), itoa(lag), strings.Join(g.Reasons, "; ")})
			}
			cols := []column{{header: "Link Name"}, {header: "Group"}, {header: "Ready"}, {header: "Lag", numeric: true}, {header: "Why Not"}}
			return p.list(rs, cols, cells)
		},
	}
	addLinkFlag(cmd, o, &link, "name of the cluster link (default: every link)")
	cmd.Flags().Int64Var(&maxLag, "max-lag", 0, "records a topic may still be behind and count as caught up")
	addOutputFlag(cmd, &format)
	return cmd
}

func newSwitchover() *cobra.Command {
	o := &connOptions{}
	var (
		format, link, pattern string
		groups                []string
		quiet, timeout        time.Duration
		rate                  int64
	)
	cmd := &cobra.Command{
		Use:   "switchover [mirror-topic-name ...]",
		Short: "Move mirror topics and consumer groups to the destination without losing a record",
		Long: `Move mirror topics (named, or matching --pattern) and consumer groups of a
link to the destination without losing a record: wait until the producers
on the source have stopped writing those topics (no new offset for --quiet)
and the mirrors have copied everything, verify the mirrors against their
sources, commit the groups' offsets on the destination, and promote. If a
step fails it refuses, says why, and leaves the mirrors as they were.`,
		Example: `  strait switchover orders payments --link my-link --group billing --quiet 10s
  strait switchover --link my-link --pattern 'orders.*' --timeout 5m`,
		Args:              usageArgs(cobra.ArbitraryArgs),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireLink(link); err != nil {
				return err
			}
			if (len(args) == 0) == (pattern == "") {
				return usagef("give mirror topic names or --pattern, not both")
			}
			p, err := newPrinter(cmd, format)
			if err != nil {
				return err
			}
			req := api.SwitchoverRequest{GroupIDs: groups}
			if pattern != "" {
				req.MirrorTopicNamePattern = &pattern
			} else {
				req.MirrorTopicNames = &args
			}
			q, t := quiet.Milliseconds(), timeout.Milliseconds()
			req.QuietMs, req.TimeoutMs = &q, &t
			if cmd.Flags().Changed("verify-bytes-per-second") {
				req.VerifyBytesPerSecond = &rate
			}
			rep, err := request(cmd, o, func(ctx context.Context, cl *client.Client) (api.SwitchoverReport, error) {
				return cl.Switchover(ctx, link, req)
			})
			if err != nil {
				return err
			}
			var cells [][]string
			for _, t := range rep.Topics {
				for _, pt := range t.Partitions {
					cells = append(cells, []string{t.MirrorTopicName, itoa(pt.Partition), itoa(pt.EndOffset), itoa(pt.VerifiedOffset), t.MirrorStatus})
				}
			}
			for _, g := range rep.Groups {
				for _, off := range g.Offsets {
					cells = append(cells, []string{off.MirrorTopicName, itoa(off.Partition), itoa(off.Offset), "", "group " + g.GroupID})
				}
			}
			cols := []column{{header: "Mirror Topic Name"}, {header: "Partition", numeric: true}, {header: "Offset", numeric: true},
				{header: "Verified", numeric: true}, {header: "Status"}}
			return p.report(rep, rep.Summary, cols, cells)
		},
	}
	o.register(cmd)
	addLinkFlag(cmd, o, &link, "name of the cluster link (required)")
	cmd.Flags().StringVar(&pattern, "pattern", "", "regular expression of the mirror topic names (instead of names)")
	cmd.Flags().StringSliceVar(&groups, "group", nil, "consumer group that moves with the topics (repeat, or comma-separated)")
	cmd.Flags().DurationVar(&quiet, "quiet", 5*time.Second, "how long the source topics must take no new offset")
	cmd.Flags().DurationVar(&timeout, "timeout", time.Minute, "how long to wait for quiet and zero lag")
	cmd.Flags().Int64Var(&rate, "verify-bytes-per-second", 0, "cap on what the verification reads from each cluster, 0 for none (default: none)")
	addOutputFlag(cmd, &format)
	return cmd
}
