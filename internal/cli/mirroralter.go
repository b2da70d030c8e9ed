package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/api"
	"github.com/strait-dev/strait/internal/client"
)

// alterVerb is a mirror command that alters mirror topics
// (POST mirrors:<op>).
type alterVerb struct {
	use   string // the command's name, as the Confluent CLI's
	op    client.Op
	short string
	// arg names the topic arguments in the usage line.
	arg string
	// warning, if set, makes the verb destructive: it asks for
	// confirmation (unless --force), saying this.
	warning string
	// wait, if set, is what the verb waits for after the request.
	wait *waitSpec
	// truncation is truncate-and-restore's: --include-partitions and its
	// columns.
	truncation bool
}

// What a topic that is no longer a mirror (GET answers 404) means while
// waiting.
const (
	goneFails = iota
	goneDone
	goneWaits
)

// waitSpec says when a topic an operation was accepted for has got where
// the operation takes it.
type waitSpec struct {
	done   []string // statuses that end the wait
	failed []string // statuses that say the operation did not take
	gone   int
}

var alterVerbs = []alterVerb{
	{use: "pause", op: client.OpPause, short: "Pause mirror topics", arg: "destination-topic"},
	{use: "resume", op: client.OpResume, short: "Resume mirror topics", arg: "destination-topic"},
	{
		use: "promote", op: client.OpPromote, arg: "destination-topic",
		short:   "Promote mirror topics: copy what the source has, then stop mirroring",
		warning: "Each stops mirroring for good once it holds everything its source has, and then takes writes.",
		wait:    &waitSpec{done: []string{"STOPPED"}, failed: []string{"ACTIVE", "PAUSED", "FAILED", "LINK_FAILED"}},
	},
	{
		use: "failover", op: client.OpFailover, arg: "destination-topic",
		short:   "Failover mirror topics: stop mirroring now, whatever is not copied yet",
		warning: "Each stops mirroring for good at once, leaving behind what it has not copied yet, and then takes writes.",
		wait:    &waitSpec{done: []string{"STOPPED"}},
	},
	{
		use: "reverse-and-start", op: client.OpReverseAndStart, arg: "destination-topic",
		short:   "Reverse local mirror topics and start remote mirror topics",
		warning: "Each becomes a writable topic here, and its remote counterpart an active mirror of it.",
		wait:    &waitSpec{failed: []string{"ACTIVE", "PAUSED", "FAILED"}, gone: goneDone},
	},
	{
		use: "reverse-and-pause", op: client.OpReverseAndPause, arg: "destination-topic",
		short:   "Reverse local mirror topics and pause remote mirror topics",
		warning: "Each becomes a writable topic here, and its remote counterpart a paused mirror of it.",
		wait:    &waitSpec{failed: []string{"ACTIVE", "PAUSED", "FAILED"}, gone: goneDone},
	},
	{
		use: "truncate-and-restore", op: client.OpTruncateRestore, arg: "local-topic",
		short:      "Truncate topics and restore mirroring",
		warning:    "The records each got after the failover are deleted (the topic is re-created and copied again from the remote cluster), and it becomes a mirror again.",
		wait:       &waitSpec{done: []string{"ACTIVE"}, failed: []string{"FAILED", "STOPPED"}, gone: goneWaits},
		truncation: true,
	},
}

// pollInterval is how often waiting polls the server.
var pollInterval = 250 * time.Millisecond

type alterOptions struct {
	link, pattern, format string
	all, dryRun, force    bool
	noWait                bool
	timeout               time.Duration
	includePartitions     bool
}

func newMirrorAlter(o *connOptions, v alterVerb) *cobra.Command {
	var a alterOptions
	long := v.short + "."
	if v.warning != "" {
		long += "\n\n" + v.warning + "\nIt asks for confirmation first, unless --force or --dry-run."
	}
	if v.wait != nil {
		long += "\nIt then waits until each topic has got there, showing progress on stderr\n(--no-wait, --timeout)."
	}
	long += `

Name the topics, or give --all or --topic-pattern. Each topic gets its own
result; the exit code is 1 when any was refused.`
	cmd := &cobra.Command{
		Use:               v.use + " <" + v.arg + "-1> [" + v.arg + "-2] ... [" + v.arg + "-N]",
		Short:             v.short,
		Long:              long,
		Example:           fmt.Sprintf("  strait mirror %s my-topic-1 my-topic-2 --link my-link", v.use),
		Args:              cobra.ArbitraryArgs,
		ValidArgsFunction: o.completeMirrors(&a.link, true),
		RunE:              func(cmd *cobra.Command, args []string) error { return a.run(cmd, o, v, args) },
	}
	f := cmd.Flags()
	addLinkFlag(cmd, o, &a.link, "name of the cluster link (required)")
	f.BoolVar(&a.dryRun, "dry-run", false, "validate the operation on each topic, but change nothing")
	f.BoolVar(&a.all, "all", false, "every mirror topic of the link (Strait only)")
	f.StringVar(&a.pattern, "topic-pattern", "", "the mirror topics of the link whose whole name matches this regular expression (Strait only)")
	if v.warning != "" {
		f.BoolVar(&a.force, "force", false, "skip the confirmation prompt")
	}
	if v.wait != nil {
		f.BoolVar(&a.noWait, "no-wait", false, "return once the server has answered, without waiting (promote and reverse answer only when done)")
		f.DurationVar(&a.timeout, "timeout", 10*time.Minute, "how long to wait for the topics to get there (0: no limit)")
	}
	if v.truncation {
		f.BoolVar(&a.includePartitions, "include-partitions", false, "show what was truncated, partition by partition")
	}
	addOutputFlag(cmd, &a.format)
	return cmd
}

// selection turns the topic arguments, --all or --topic-pattern into the
// request body, and says what it selects in words.
func (a *alterOptions) selection(args []string) (api.AlterMirrorsRequest, string, error) {
	n := 0
	for _, given := range []bool{len(args) > 0, a.all, a.pattern != ""} {
		if given {
			n++
		}
	}
	if n != 1 {
		return api.AlterMirrorsRequest{}, "", usagef("name the mirror topics, or give --all or --topic-pattern: one of the three")
	}
	switch {
	case a.all:
		p := ".*"
		return api.AlterMirrorsRequest{MirrorTopicNamePattern: &p}, fmt.Sprintf("every mirror topic of cluster link %q", a.link), nil
	case a.pattern != "":
		p := a.pattern
		return api.AlterMirrorsRequest{MirrorTopicNamePattern: &p}, fmt.Sprintf("the mirror topics of cluster link %q matching %q", a.link, p), nil
	}
	names := slices.Clone(args)
	what := "mirror topic "
	if len(names) > 1 {
		what = "mirror topics "
	}
	return api.AlterMirrorsRequest{MirrorTopicNames: &names}, what + quoteList(names) + fmt.Sprintf(" of cluster link %q", a.link), nil
}

// selected returns whether a topic is in the selection, for progress.
func selected(sel api.AlterMirrorsRequest) func(string) bool {
	if sel.MirrorTopicNames != nil {
		names := *sel.MirrorTopicNames
		return func(t string) bool { return slices.Contains(names, t) }
	}
	re, err := regexp.Compile(`^(?:` + *sel.MirrorTopicNamePattern + `)$`)
	if err != nil {
		return func(string) bool { return false } // the server refuses it
	}
	return re.MatchString
}

func (a *alterOptions) run(cmd *cobra.Command, o *connOptions, v alterVerb, args []string) error {
	if err := requireLink(a.link); err != nil {
		return err
	}
	sel, what, err := a.selection(args)
	if err != nil {
		return err
	}
	p, err := newPrinter(cmd, a.format)
	if err != nil {
		return err
	}
	cl, err := o.client(cmd)
	if err != nil {
		return err
	}
	if v.warning != "" && !a.dryRun {
		ok, err := confirm(cmd, a.force, fmt.Sprintf("Are you sure you want to %s %s? %s", v.use, what, v.warning))
		if err != nil || !ok {
			return err
		}
	}
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	waiting := v.wait != nil && !a.noWait && !a.dryRun
	w := &progress{out: cmd.ErrOrStderr(), last: map[string]string{}}
	var stopWatch func()
	if waiting {
		// Promote and reverse answer only when done: show how the topics
		// get there meanwhile.
		stopWatch = w.watch(ctx, cl, a.link, selected(sel))
	}
	results, err := cl.AlterMirrors(ctx, a.link, v.op, sel, client.AlterOptions{ValidateOnly: a.dryRun, IncludePartitionTruncation: a.includePartitions})
	if stopWatch != nil {
		stopWatch()
	}
	if err != nil {
		return err
	}
	slices.SortFunc(results, func(x, y api.AlterMirrorsData) int { return strings.Compare(x.MirrorTopicName, y.MirrorTopicName) })
	if err := printAlterResults(p, v, a.includePartitions, results); err != nil {
		return err
	}
	if v.op == "failover" && a.dryRun && p.format == formatHuman {
		// A failover's dry run says what it would lose (the same report
		// as strait mirror failover-report).
		var topics []string
		for _, r := range results {
			if r.ErrorCode == nil {
				topics = append(topics, r.MirrorTopicName)
			}
		}
		if len(topics) > 0 {
			rep, err := cl.FailoverReport(ctx, a.link, topics)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout())
			if err := printFailoverReport(p, rep); err != nil {
				return err
			}
		}
	}
	var errs []error
	var accepted []string
	refused := 0
	for _, r := range results {
		if r.ErrorCode != nil {
			refused++
		} else {
			accepted = append(accepted, r.MirrorTopicName)
		}
	}
	if refused > 0 {
		errs = append(errs, fmt.Errorf("%d of %d mirror topics refused to %s", refused, len(results), v.use))
	}
	if waiting && len(accepted) > 0 {
		if err := w.await(ctx, cl, a.link, v, accepted, start, a.timeout); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// alterRow is a row of an alter verb's result, as the Confluent CLI
// prints it: one per partition, or one with partition -1 for a refused
// topic.
type alterRow struct {
	MirrorTopicName       string `json:"mirror_topic_name" yaml:"mirror_topic_name"`
	Partition             int32  `json:"partition" yaml:"partition"`
	PartitionMirrorLag    int64  `json:"partition_mirror_lag" yaml:"partition_mirror_lag"`
	ErrorMessage          string `json:"error_message" yaml:"error_message"`
	ErrorCode             string `json:"error_code" yaml:"error_code"`
	LastSourceFetchOffset int64  `json:"last_source_fetch_offset" yaml:"last_source_fetch_offset"`
}

// truncateRow is a row of truncate-and-restore's result: one per topic, or
// with --include-partitions one per partition truncated.
type truncateRow struct {
	MirrorTopicName   string `json:"mirror_topic_name" yaml:"mirror_topic_name"`
	Partition         *int32 `json:"partition,omitempty" yaml:"partition,omitempty"`
	ErrorMessage      string `json:"error_message" yaml:"error_message"`
	ErrorCode         string `json:"error_code" yaml:"error_code"`
	OffsetTruncatedTo string `json:"offset_truncated_to,omitempty" yaml:"offset_truncated_to,omitempty"`
	MessagesTruncated int64  `json:"messages_truncated" yaml:"messages_truncated"`
}

func resultError(r api.AlterMirrorsData) (code, msg string) {
	if r.ErrorCode != nil {
		code = strconv.Itoa(*r.ErrorCode)
	}
	if r.ErrorMessage != nil {
		msg = *r.ErrorMessage
	}
	return code, msg
}

func printAlterResults(p printer, v alterVerb, perPartition bool, results []api.AlterMirrorsData) error {
	if v.truncation {
		return printTruncation(p, perPartition, results)
	}
	rows := []alterRow{}
	for _, r := range results {
		code, msg := resultError(r)
		if code != "" || len(r.MirrorLags) == 0 {
			// A refused topic, or one that is no longer a mirror here
			// (reversed): one row, without partitions.
			rows = append(rows, alterRow{MirrorTopicName: r.MirrorTopicName, Partition: -1, PartitionMirrorLag: -1, ErrorMessage: msg, ErrorCode: code, LastSourceFetchOffset: -1})
			continue
		}
		for _, l := range r.MirrorLags {
			rows = append(rows, alterRow{MirrorTopicName: r.MirrorTopicName, Partition: l.Partition, PartitionMirrorLag: l.Lag, LastSourceFetchOffset: l.LastSourceFetchOffset})
		}
	}
	var cells [][]string
	for _, r := range rows {
		cells = append(cells, []string{r.MirrorTopicName, itoa(r.Partition), itoa(r.PartitionMirrorLag), r.ErrorMessage, r.ErrorCode, itoa(r.LastSourceFetchOffset)})
	}
	cols := []column{{header: "Mirror Topic Name"}, {header: "Partition", numeric: true}, {header: "Partition Mirror Lag", numeric: true},
		{header: "Error Message"}, {header: "Error Code"}, {header: "Last Source Fetch Offset", numeric: true}}
	return p.list(rows, cols, cells)
}

func printTruncation(p printer, perPartition bool, results []api.AlterMirrorsData) error {
	rows := []truncateRow{}
	for _, r := range results {
		code, msg := resultError(r)
		if !perPartition || code != "" {
			row := truncateRow{MirrorTopicName: r.MirrorTopicName, ErrorMessage: msg, ErrorCode: code}
			if r.MessagesTruncated != nil {
				row.MessagesTruncated = *r.MessagesTruncated
			}
			if perPartition {
				row.Partition = new(int32(-1))
			}
			rows = append(rows, row)
			continue
		}
		for _, t := range r.PartitionLevelTruncationData {
			rows = append(rows, truncateRow{MirrorTopicName: r.MirrorTopicName, Partition: new(t.PartitionID),
				OffsetTruncatedTo: strconv.FormatInt(t.OffsetTruncatedTo, 10), MessagesTruncated: t.MessagesTruncated})
		}
	}
	cols := []column{{header: "Mirror Topic Name"}}
	if perPartition {
		cols = append(cols, column{header: "Partition", numeric: true})
	}
	cols = append(cols, column{header: "Error Message"}, column{header: "Error Code"})
	if perPartition {
		cols = append(cols, column{header: "Offset Truncated To", numeric: true})
	}
	cols = append(cols, column{header: "Messages Truncated", numeric: true})
	var cells [][]string
	for _, r := range rows {
		row := []string{r.MirrorTopicName}
		if perPartition {
			row = append(row, itoa(*r.Partition))
		}
		row = append(row, r.ErrorMessage, r.ErrorCode)
		if perPartition {
			row = append(row, r.OffsetTruncatedTo)
		}
		cells = append(cells, append(row, itoa(r.MessagesTruncated)))
	}
	return p.list(rows, cols, cells)
}

// progress prints, on stderr, each topic's status whenever it changes.
type progress struct {
	out  io.Writer
	last map[string]string // the line last printed per topic
}

func (w *progress) note(topic, line string) {
	if w.last[topic] != line {
		w.last[topic] = line
		fmt.Fprintf(w.out, "%s: %s\n", topic, line)
	}
}

func statusLine(m api.MirrorData) string {
	var lag int64
	for _, l := range m.MirrorLags {
		lag += l.Lag
	}
	s := fmt.Sprintf("%s, lag %d", m.MirrorStatus, lag)
	if m.MirrorTopicError != "" && m.MirrorTopicError != "NO_ERROR" {
		s += ", error " + m.MirrorTopicError
	}
	return s
}

// watch polls the link's mirrors until the returned stop is called,
// noting the selected ones.
func (w *progress) watch(ctx context.Context, cl *client.Client, link string, in func(string) bool) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			if ms, err := cl.ListMirrors(ctx, link, ""); err == nil {
				sortMirrors(ms)
				for _, m := range ms {
					if in(m.MirrorTopicName) {
						w.note(m.MirrorTopicName, statusLine(m))
					}
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(pollInterval):
			}
		}
	})
	return func() {
		cancel()
		wg.Wait()
	}
}

// await polls each topic until the operation v has got it where it goes,
// it shows the operation did not take, or timeout (zero: none) has passed
// since start.
func (w *progress) await(ctx context.Context, cl *client.Client, link string, v alterVerb, topics []string, start time.Time, timeout time.Duration) error {
	pending := slices.Clone(topics)
	var failures []string
	lastErr := map[string]error{}
	for len(pending) > 0 {
		var still []string
		for _, t := range pending {
			m, err := cl.GetMirror(ctx, link, t, false)
			status, gone := m.MirrorStatus, client.IsNotFound(err)
			switch {
			case gone && v.wait.gone == goneDone:
				w.note(t, "reversed: a writable topic here now, mirrored by the remote cluster")
			case gone:
				w.note(t, "not a mirror topic (now)")
			case err != nil:
				lastErr[t] = err
				still = append(still, t)
				continue
			default:
				w.note(t, statusLine(m))
			}
			delete(lastErr, t)
			switch {
			case gone && v.wait.gone == goneDone, !gone && slices.Contains(v.wait.done, status):
			case gone && v.wait.gone == goneFails:
				failures = append(failures, fmt.Sprintf("%s is no longer a mirror topic", t))
			case !gone && slices.Contains(v.wait.failed, status):
				failures = append(failures, fmt.Sprintf("%s is %s", t, statusLine(m)))
			default:
				still = append(still, t)
			}
		}
		pending = still
		if len(pending) == 0 {
			break
		}
		if timeout > 0 && time.Since(start) > timeout {
			for _, t := range pending {
				msg := fmt.Sprintf("%s is still %s after %v (--timeout)", t, w.last[t], timeout)
				if e := lastErr[t]; e != nil {
					msg = fmt.Sprintf("%s: no answer in time (%v)", t, e)
				}
				failures = append(failures, msg)
			}
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting: %w", ctx.Err())
		case <-time.After(pollInterval):
		}
	}
	if len(failures) > 0 {
		return fmt.Errorf("%s did not complete: %s", v.use, strings.Join(failures, "; "))
	}
	return nil
}
