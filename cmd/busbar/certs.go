package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/busbar/busbar/certs"
)

const certsDevUsage = "usage: busbar certs dev --out DIR [--days N]"

func newCertsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "certs",
		Short: "Make TLS certificates for local set-ups",
		Long:  "Make TLS certificates for development and tests; production certificates come from your own CA.",
		// 'busbar certs' alone names no certificates to make: a usage
		// error, as it was before cobra, rather than help and success.
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("busbar certs: unknown command %q\n%s", args[0], certsDevUsage))
			}
			return usageError(certsDevUsage)
		},
	}
	cmd.AddCommand(newCertsDevCmd())
	return cmd
}

func newCertsDevCmd() *cobra.Command {
	var out string
	var days int
	cmd := &cobra.Command{
		Use:   "dev --out DIR [--days N]",
		Short: "Write a development CA and server and client certificates signed by it",
		Long: fmt.Sprintf(`Write a development CA and a server and a client certificate it signed, with their
keys, to --out: %s. The server certificate is for %s.
It prints the 'busbar serve' flags that use them for mutual TLS.`,
			strings.Join(certs.DevFiles, ", "), strings.Join(certs.DevHosts, ", ")),
		Example: `  busbar certs dev --out dev-certs
  busbar certs dev --out dev-certs --days 7`,
		Args:              argsBetween(0, 0, certsDevUsage),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" || days < 1 || days > 397 {
				return usageError(certsDevUsage + "  (1 ≤ N ≤ 397)")
			}
			return status(certsDev(out, days, cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "the `DIR` to write ca.pem, server.pem, client.pem and their keys into")
	cmd.Flags().IntVar(&days, "days", 30, "validity in days (`N`; development certificates should not live long)")
	cmd.MarkFlagDirname("out")
	noFiles(cmd, "days")
	return cmd
}

func certsDev(out string, days int, stdout, stderr io.Writer) int {
	if err := certs.WriteDevSet(out, time.Duration(days)*24*time.Hour); err != nil {
		fmt.Fprintf(stderr, "busbar: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote a development CA and certificates for %s to %s (valid %d days):\n", strings.Join(certs.DevHosts, ", "), out, days)
	for _, name := range certs.DevFiles {
		fmt.Fprintf(stdout, "  %s\n", filepath.Join(out, name))
	}
	fmt.Fprintf(stdout, "serve with:  busbar serve --tls-cert %s --tls-key %s --client-ca %s --client-auth require\n",
		filepath.Join(out, "server.pem"), filepath.Join(out, "server-key.pem"), filepath.Join(out, "ca.pem"))
	return 0
}
