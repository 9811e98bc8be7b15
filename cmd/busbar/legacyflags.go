package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// normalizeLegacyFlags keeps the command lines written before cobra
// working. Go's flag package, which busbar used until then, reads -name
// and --name alike; pflag reads -name as the shorthands -n -a -m -e, so
// `busbar serve -config DIR -listen :8080` in someone's script would break.
// A single-dash word that is the long name of one of the command's flags
// is rewritten to its double-dash form (and --v, a one-letter long form
// Go's flag package accepted, to -v) before cobra parses. Other words are
// left as they are: shorthands and their groups mean what pflag says, flag
// values are never touched, and an unknown flag is reported as written.
func normalizeLegacyFlags(root *cobra.Command, args []string) []string {
	// The shell's completion requests end with the word being typed; they
	// are the completion scripts', which write what pflag reads.
	if len(args) > 0 && (args[0] == cobra.ShellCompRequestCmd || args[0] == cobra.ShellCompNoDescRequestCmd) {
		return args
	}
	// Cobra adds these lazily at Execute; Find should know them now.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	cmd, _, err := root.Find(args)
	if err != nil {
		return args // an unknown command: cobra says so
	}
	cmd.InitDefaultHelpFlag()
	cmd.InitDefaultVersionFlag()
	flags := cmd.Flags()
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(out, args[i:]...)
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		double := strings.HasPrefix(a, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case double:
			if f = flags.Lookup(name); f == nil && len(name) == 1 {
				if f = flags.ShorthandLookup(name); f != nil {
					a = a[1:]
				}
			}
		case len(name) > 1:
			if f = flags.Lookup(name); f != nil {
				a = "-" + a
			}
		case !hasValue:
			f = flags.ShorthandLookup(name)
		}
		out = append(out, a)
		// The next word is this flag's value, whatever it looks like.
		if f != nil && !hasValue && f.NoOptDefVal == "" && i+1 < len(args) {
			i++
			out = append(out, args[i])
		}
	}
	return out
}
