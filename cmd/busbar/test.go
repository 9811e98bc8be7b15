package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/busbar/busbar/routes/routetest"
)

// newTestCmd is `busbar test [DIR|FILE]`: the route test cases of DIR/tests
// run against the configuration in DIR, connectors mocked.
func newTestCmd() *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test [-v] [DIR | FILE]",
		Short: "Run the route test cases in DIR/tests/*.yaml against the routes, connectors scripted",
		Long: `Run route test cases: each case sends its request through the real routes of the
configuration in-process, the connectors answering as the case scripts them, and
compares the reply (and the calls made) with what the case expects. DIR defaults to
the current directory; a FILE runs one test file. A failure prints a diff; the last
line says "ok N passed" or "FAIL F of N", and the exit status is 1 on a failure.`,
		Example: `  busbar test examples
  busbar test -v examples/tests/vouchers.yaml`,
		Args: argsBetween(0, 1, "usage: busbar test [-v] [DIR | FILE]"),
		ValidArgsFunction: func(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
			if len(args) > 0 {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			return nil, cobra.ShellCompDirectiveDefault
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target := "."
			if len(args) == 1 {
				target = args[0]
			}
			res, err := routetest.Run(target, routetest.Options{Out: cmd.OutOrStdout(), Verbose: verbose})
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "busbar test: %v\n", err)
				return exitStatus(1)
			}
			if res.Failed > 0 {
				return exitStatus(1)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list passing cases too")
	return cmd
}
