package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/busbar/busbar/routes"
	"github.com/busbar/busbar/routes/routetest"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate DIR",
		Short: "Check every route, connector, mapping file and route test case in a configuration directory",
		Long: `Load the configuration directory as 'busbar serve' would, without listening or calling
any backend, and decode its route test cases (tests/*.yaml) without running them.
Every problem of every file is printed, not only the first, as
path/file.yaml:LINE:COL: route "NAME": …; the exit status is 1 when there is any.`,
		Example:           "  busbar validate examples",
		Args:              argsBetween(1, 1, "usage: busbar validate DIR"),
		ValidArgsFunction: completeDir,
		RunE: func(cmd *cobra.Command, args []string) error {
			return status(validate(args[0], cmd.OutOrStdout(), cmd.ErrOrStderr()))
		},
	}
}

func validate(dir string, stdout, stderr io.Writer) int {
	// Every problem of every file, the route test cases' included: one run
	// of validate should be enough to fix them all.
	cfg, err := routes.Load(dir)
	testErr := routetest.Check(dir)
	for _, e := range []error{err, testErr} {
		if e != nil {
			fmt.Fprintln(stderr, e)
		}
	}
	if err != nil || testErr != nil {
		if cfg != nil {
			cfg.Close()
		}
		return 1
	}
	defer cfg.Close()
	fmt.Fprintf(stdout, "%s: %d routes and %d connectors are valid\n", dir, len(cfg.Routes), len(cfg.Connectors))
	return 0
}
