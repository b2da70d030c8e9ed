package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/client"
)

// completionTimeout bounds the requests shell completion makes: a server
// that does not answer gives no completions, never a hung shell.
var completionTimeout = 2 * time.Second

// completionClient returns a client for the command line being completed,
// and a context bounded by completionTimeout.
func (o *connOptions) completionClient(cmd *cobra.Command) (*client.Client, context.Context, context.CancelFunc, bool) {
	cl, err := o.client(cmd)
	if err != nil {
		return nil, nil, nil, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), completionTimeout)
	return cl, ctx, cancel, true
}

// candidates keeps the names that start with prefix and are not in taken.
func candidates(names, taken []string, prefix string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && !slices.Contains(taken, n) {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// completeNames completes the names list gets from the server: one
// argument, or with multi any number of them. A server that fails or does
// not answer in time gives no candidates.
func (o *connOptions) completeNames(multi bool, list func(context.Context, *client.Client) ([]string, error)) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		none := cobra.ShellCompDirectiveNoFileComp
		if !multi && len(args) > 0 {
			return nil, none
		}
		cl, ctx, cancel, ok := o.completionClient(cmd)
		if !ok {
			return nil, none
		}
		defer cancel()
		names, err := list(ctx, cl)
		if err != nil {
			return nil, none
		}
		return candidates(names, args, toComplete), none
	}
}

// completeLinks completes link names from the server: one argument, or
// with multi any number of them (and the --link flag).
func (o *connOptions) completeLinks(multi bool) cobra.CompletionFunc {
	return o.completeNames(multi, func(ctx context.Context, cl *client.Client) ([]string, error) {
		links, err := cl.ListLinks(ctx)
		names := make([]string, 0, len(links))
		for _, l := range links {
			names = append(names, l.LinkName)
		}
		return names, err
	})
}

// completeMirrors completes mirror topic names from the server: of the
// link in *link, or of every link when it is not given yet.
func (o *connOptions) completeMirrors(link *string, multi bool) cobra.CompletionFunc {
	return o.completeNames(multi, func(ctx context.Context, cl *client.Client) ([]string, error) {
		mirrors, err := cl.ListMirrors(ctx, *link, "")
		names := make([]string, 0, len(mirrors))
		for _, m := range mirrors {
			names = append(names, m.MirrorTopicName)
		}
		return names, err
	})
}
