package cli

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/strait-dev/strait/internal/auth"
	"github.com/strait-dev/strait/internal/secret"
)

func newAuth() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "auth",
		Short: "Make the secrets Strait's configuration holds",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "hash-secret",
		Short: "Read an API key secret on stdin and print the salted hash for auth.api_keys[].secret_hash",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
			line = strings.TrimRight(line, "\r\n")
			if line == "" {
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read the secret from stdin: %w", err)
				}
				return errors.New("the secret is empty: give it on stdin, e.g. printf %s \"$SECRET\" | strait auth hash-secret")
			}
			h, err := auth.HashSecret(line)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h)
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "new-secrets-key",
		Short: "Print a new random key for secrets_key / secrets_key_file",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := secret.NewKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), k)
			return nil
		},
	})
	return cmd
}
