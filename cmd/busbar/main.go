// Command busbar is the Busbar enterprise service bus.
//
//	busbar serve    --config DIR [--listen ADDR]   serve the routes in DIR, reloading on change
//	busbar validate DIR                            check every route, connector and map file
//	busbar certs dev --out DIR                     write a development CA and certificates
//	busbar map --map FILE --input FILE             dry-run one mapping over one document
//	busbar test [DIR]                              run the route test cases in DIR/tests/*.yaml
//	busbar completion bash|zsh|fish|powershell     print a shell completion script
//	busbar version                                 print the build's version
//
// Each command is in a file of its name; flags are spf13/pflag's, with the
// single-dash long forms of Go's flag package still accepted (legacyflags.go).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command line: args without the program name; it
// returns the exit status (0 ok, 1 failure, 2 usage error).
func run(args []string, stdout, stderr io.Writer) int {
	return execute(newRootCmd(stdout, stderr), args)
}

// exitStatus is what a command returns when it has already told the user
// why it failed: only the status is left to give.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// status turns a command's exit status into what cobra's RunE returns.
func status(code int) error {
	if code == 0 {
		return nil
	}
	return exitStatus(code)
}

// usageError is a wrong invocation a command has spelled out itself
// ("usage: …"); it is printed as it is.
type usageError string

func (e usageError) Error() string { return string(e) }

// execute runs the command line on root. Errors that cobra or pflag return
// (an unknown command or flag, a bad flag value, wrong arguments) are all
// mistakes in the invocation: exit status 2, as Go's flag package gave.
func execute(root *cobra.Command, args []string) int {
	stderr := root.ErrOrStderr()
	root.SetArgs(normalizeLegacyFlags(root, args))
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	var st exitStatus
	if errors.As(err, &st) {
		return int(st)
	}
	var u usageError
	if errors.As(err, &u) {
		fmt.Fprintln(stderr, u)
	} else {
		fmt.Fprintf(stderr, "busbar: %v\n", strings.TrimSpace(err.Error()))
	}
	fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
	return 2
}

func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "busbar",
		Short: "An enterprise service bus between SOAP/XML and REST/JSON systems",
		Long: `Busbar is an enterprise service bus between SOAP/XML and REST/JSON systems.

A configuration directory holds routes, connectors and mapping files; 'busbar serve'
serves it, 'busbar validate' checks it, 'busbar map' and 'busbar test' try its
mappings and routes offline, without any backend.`,
		Version: version(),
		// Usage errors get one line and a pointer to --help (execute),
		// not cobra's message followed by the whole usage.
		SilenceErrors: true,
		SilenceUsage:  true,
		// Without a command there is nothing to do: the usage on stderr
		// and status 2, as before cobra (cobra alone would print the help
		// on stdout and succeed).
		RunE: func(cmd *cobra.Command, args []string) error {
			fmt.Fprint(cmd.ErrOrStderr(), cmd.UsageString())
			return exitStatus(2)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetVersionTemplate("busbar {{.Version}}\n")
	root.AddCommand(newServeCmd(), newValidateCmd(), newCertsCmd(), newMapCmd(), newTestCmd(), newMessagesCmd(), newVersionCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:               "version",
		Short:             "Print Busbar's version: the module version, VCS revision and Go release it was built from",
		Args:              cobra.NoArgs,
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "busbar %s\n", version())
			return err
		},
	}
}

// version is the build's own account of itself: the module version
// ("(devel)" for a build from a checkout), the VCS revision when the build
// recorded it, and the Go release.
func version() string {
	v := "(devel)"
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return v + " " + runtime.Version()
	}
	if info.Main.Version != "" {
		v = info.Main.Version
	}
	var rev, at, dirty string
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = ", modified"
			}
		}
	}
	if rev != "" {
		v += fmt.Sprintf(" (%.12s %s%s)", rev, at, dirty)
	}
	return v + " " + info.GoVersion
}

// noFiles is the completion of a flag whose value is no file name.
func noFiles(cmd *cobra.Command, names ...string) {
	for _, n := range names {
		cmd.RegisterFlagCompletionFunc(n, cobra.NoFileCompletions)
	}
}

// choices completes a flag to one of a fixed set of values.
func choices(cmd *cobra.Command, name string, values ...string) {
	cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}

// completeDir completes a command's one positional argument to a directory.
func completeDir(_ *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return nil, cobra.ShellCompDirectiveFilterDirs
}

// argsBetween accepts least to most positional arguments; other counts are
// a usage error that prints the command's usage line, as each command did
// before cobra.
func argsBetween(least, most int, usage string) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < least || len(args) > most {
			return usageError(usage)
		}
		return nil
	}
}
