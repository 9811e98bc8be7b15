package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/busbar/busbar/routes/routetest"
)

// testCmd is `busbar test [DIR|FILE]`: the route test cases of DIR/tests
// run against the configuration in DIR, connectors mocked.
func testCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verbose := fs.Bool("v", false, "list passing cases too")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 1 {
		fmt.Fprintln(stderr, "usage: busbar test [-v] [DIR | FILE]")
		return 2
	}
	target := "."
	if fs.NArg() == 1 {
		target = fs.Arg(0)
	}
	res, err := routetest.Run(target, routetest.Options{Out: stdout, Verbose: *verbose})
	if err != nil {
		fmt.Fprintf(stderr, "busbar test: %v\n", err)
		return 1
	}
	if res.Failed > 0 {
		return 1
	}
	return 0
}
