package main

import (
	"bytes"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// `busbar completion SHELL` prints a script the shell can source.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash":       "__start_busbar",
		"zsh":        "#compdef busbar",
		"fish":       "complete -c busbar",
		"powershell": "Register-ArgumentCompleter",
	} {
		var out, errOut bytes.Buffer
		code := run([]string{"completion", shell}, &out, &errOut)
		if code != 0 || !strings.Contains(out.String(), want) || errOut.Len() > 0 {
			t.Errorf("busbar completion %s: want exit 0 and a script with %q; got %d, %d bytes, stderr %q",
				shell, want, code, out.Len(), errOut.String())
		}
	}
}

// What the shell offers after a flag: the script asks the binary
// (`busbar __complete ARGS… PARTIAL`), which answers one candidate a line
// and then ":DIRECTIVE" (16: directories only, 8: files with these
// extensions, 4: no files).
func TestFlagCompletion(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--config", ""}, ":16\n"},
		{[]string{"serve", "--client-auth", ""}, "require\nverify-if-given\n:4\n"},
		{[]string{"serve", "--log-level", ""}, "debug\ninfo\nwarn\nerror\n:4\n"},
		{[]string{"serve", "--tls-cert", ""}, ":0\n"},
		{[]string{"map", "--map", ""}, "yaml\nyml\n:8\n"},
		{[]string{"map", "--schema", ""}, "wsdl\nxsd\n:8\n"},
		{[]string{"map", "--table-dir", ""}, ":16\n"},
		{[]string{"validate", ""}, ":16\n"},
		{[]string{"certs", "dev", "--out", ""}, ":16\n"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		run(append([]string{"__completeNoDesc"}, c.args...), &out, &errOut)
		if out.String() != c.want {
			t.Errorf("busbar %s<TAB>: want %q, got %q (%s)", strings.Join(c.args, " "), c.want, out.String(), errOut.String())
		}
	}
}

// A flag the command does not have is a usage error that names it.
func TestUnknownFlag(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--config", "examples", "--frobnicate"}, "--frobnicate"},
		{[]string{"serve", "-frobnicate"}, "-frobnicate"},
		{[]string{"validate", "--strict", "examples"}, "--strict"},
		{[]string{"map", "--mapp", "x.yaml"}, "--mapp"},
		{[]string{"certs", "dev", "--days", "3", "--ca", "x"}, "--ca"},
		{[]string{"test", "--verbos"}, "--verbos"},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), c.want) || out.Len() > 0 {
			t.Errorf("busbar %s: want exit 2 and a message naming %s; got %d, stdout %q, stderr %q",
				strings.Join(c.args, " "), c.want, code, out.String(), errOut.String())
		}
	}
}

// `busbar help serve` documents every flag serve has ever had, each with
// its default where it has one.
func TestHelpServeListsEveryFlag(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"help", "serve"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	help := out.String()
	for _, want := range []string{
		`--config DIR `, `(default "examples")`,
		`--listen ADDR `, `(default "127.0.0.1:8080")`,
		`--log-level LEVEL `, `(default "info")`,
		`--tls-cert FILE `, `--tls-key FILE `, `--client-ca FILE `,
		`--client-auth require|verify-if-given `,
		`--gc-percent N|off `, `--memory-limit SIZE|off `, `--body-budget SIZE|off `,
		`--work-slots N `, `--debug-errors `,
		`--read-timeout DURATION `, `(default 30s)`,
		`Examples:`, `busbar serve --config examples --listen 127.0.0.1:8080`,
	} {
		if !strings.Contains(help, want) {
			t.Errorf("busbar help serve does not say %q:\n%s", want, help)
		}
	}
	// And every flag serve has now, so that a new one cannot go unlisted.
	serve, _, err := newRootCmd(&out, &errOut).Find([]string{"serve"})
	if err != nil {
		t.Fatal(err)
	}
	serve.Flags().VisitAll(func(f *pflag.Flag) {
		if !strings.Contains(help, "--"+f.Name+" ") {
			t.Errorf("busbar help serve does not list --%s", f.Name)
		}
	})
	for _, args := range [][]string{{"serve", "--help"}, {"serve", "-h"}, {"serve", "-help"}} {
		var other bytes.Buffer
		if code := run(args, &other, &errOut); code != 0 || other.String() != help {
			t.Errorf("busbar %s: exit %d, and it differs from busbar help serve:\n%s", strings.Join(args, " "), code, other.String())
		}
	}
}

// `busbar version` and `busbar --version` say which build this is.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-version"}} {
		var out, errOut bytes.Buffer
		code := run(args, &out, &errOut)
		if code != 0 || !regexp.MustCompile(`^busbar \S+.*go1\.\d+`).MatchString(out.String()) {
			t.Errorf("busbar %s: want exit 0 and the version; got %d, %q, %q", strings.Join(args, " "), code, out.String(), errOut.String())
		}
	}
}

// parsed is what the command line made of an invocation, just before the
// command would run.
type parsed struct {
	Cmd   string            // the command's path, "busbar certs dev"
	Flags map[string]string // the flags given, their values read back
	Args  []string
}

// parsedOnly is the status of an invocation stopped after parsing.
const parsedOnly = exitStatus(100)

func parse(args []string) (parsed, int, string) {
	var out, errOut bytes.Buffer
	root := newRootCmd(&out, &errOut)
	var p parsed
	root.PersistentPreRunE = func(cmd *cobra.Command, args []string) error {
		p = parsed{Cmd: cmd.CommandPath(), Flags: map[string]string{}, Args: args}
		cmd.Flags().Visit(func(f *pflag.Flag) { p.Flags[f.Name] = f.Value.String() })
		return parsedOnly
	}
	code := execute(root, args)
	return p, code, errOut.String()
}

// Every command line the README, docs, Makefile, benchrun and the tests
// write parses as before cobra: each flag to the value it had, in the
// --name form they use and in the -name form Go's flag package accepted too.
func TestOldInvocationsParseTheSame(t *testing.T) {
	type f = map[string]string
	cases := []struct {
		from string
		args []string
		want parsed
	}{
		{"Makefile run", []string{"serve", "--config", "examples", "--listen", "127.0.0.1:8080"},
			parsed{"busbar serve", f{"config": "examples", "listen": "127.0.0.1:8080"}, []string{}}},
		{"Makefile validate, benchrun", []string{"validate", "examples"}, parsed{"busbar validate", f{}, []string{"examples"}}},
		{"benchrun startBusbar (S9)", []string{"serve", "--config", "bench/routes/s9", "--tls-cert", "/tmp/c.pem", "--tls-key", "/tmp/k.pem", "--listen", "127.0.0.1:41234"},
			parsed{"busbar serve", f{"config": "bench/routes/s9", "tls-cert": "/tmp/c.pem", "tls-key": "/tmp/k.pem", "listen": "127.0.0.1:41234"}, []string{}}},
		{"docs/security.md", []string{"serve", "--config", "examples", "--listen", "127.0.0.1:8443", "--tls-cert", "dev-certs/server.pem",
			"--tls-key", "dev-certs/server-key.pem", "--client-ca", "dev-certs/ca.pem", "--client-auth", "require"},
			parsed{"busbar serve", f{"config": "examples", "listen": "127.0.0.1:8443", "tls-cert": "dev-certs/server.pem",
				"tls-key": "dev-certs/server-key.pem", "client-ca": "dev-certs/ca.pem", "client-auth": "require"}, []string{}}},
		{"README serve flags", []string{"serve", "--log-level", "debug", "--work-slots", "8", "--gc-percent", "OFF", "--memory-limit", "1GiB",
			"--debug-errors", "--read-timeout", "10s", "--body-budget", "128MiB"},
			parsed{"busbar serve", f{"log-level": "debug", "work-slots": "8", "gc-percent": "off", "memory-limit": "1GiB",
				"debug-errors": "true", "read-timeout": "10s", "body-budget": "128MiB"}, []string{}}},
		{"cmd/busbar tests", []string{"serve", "--config", "../../examples", "--listen", "127.0.0.1:0", "--log-level", "error", "--debug-errors=false", "--memory-limit=off"},
			parsed{"busbar serve", f{"config": "../../examples", "listen": "127.0.0.1:0", "log-level": "error", "debug-errors": "false", "memory-limit": "off"}, []string{}}},
		{"docs/security.md certs", []string{"certs", "dev", "--out", "dev-certs", "--days", "30"},
			parsed{"busbar certs dev", f{"out": "dev-certs", "days": "30"}, []string{}}},
		{"README map", []string{"map", "--map", "examples/maps/oa-reimbursement-to-bapi.yaml", "--input", "examples/testdata/oa-reimbursement.gbk.xml"},
			parsed{"busbar map", f{"map": "examples/maps/oa-reimbursement-to-bapi.yaml", "input": "examples/testdata/oa-reimbursement.gbk.xml"}, []string{}}},
		// Repeated --var, a value with '=' and one that looks like a flag.
		{"docs/testing.md map", []string{"map", "--map", "maps/status.yaml", "--input", "-map", "--var", "claimId=CLM-7", "--var", "q=a=b,c",
			"--table-dir", "tables", "--schema", "s.wsdl"},
			parsed{"busbar map", f{"map": "maps/status.yaml", "input": "-map", "var": "claimId=CLM-7,q=a=b,c", "table-dir": "tables", "schema": "s.wsdl"}, []string{}}},
		{"docs/testing.md map --element", []string{"map", "--schema", "examples/wsdl/oa-reimbursement.wsdl", "--input", "reply.json",
			"--element", "{http://oa.example.cn/finance/reimbursement}SubmitReimbursementResponse"},
			parsed{"busbar map", f{"schema": "examples/wsdl/oa-reimbursement.wsdl", "input": "reply.json",
				"element": "{http://oa.example.cn/finance/reimbursement}SubmitReimbursementResponse"}, []string{}}},
		{"README test", []string{"test", "examples"}, parsed{"busbar test", f{}, []string{"examples"}}},
		{"README test -v", []string{"test", "-v", "examples/tests/vouchers.yaml"}, parsed{"busbar test", f{"verbose": "true"}, []string{"examples/tests/vouchers.yaml"}}},
		{"Go flag's --v", []string{"test", "--v"}, parsed{"busbar test", f{"verbose": "true"}, []string{}}},
		{"everything after --", []string{"test", "--", "-v"}, parsed{"busbar test", f{}, []string{"-v"}}},
	}
	for _, c := range cases {
		single := slices.Clone(c.args)
		for i, a := range single {
			if a == "--" {
				break
			}
			if strings.HasPrefix(a, "--") {
				single[i] = a[1:]
			}
		}
		for _, args := range [][]string{c.args, single} {
			got, code, errOut := parse(args)
			if code != int(parsedOnly) || !reflect.DeepEqual(got, c.want) {
				t.Errorf("%s: busbar %s:\nwant %+v\ngot  %+v (exit %d) %s", c.from, strings.Join(args, " "), c.want, got, code, errOut)
			}
		}
	}
}

// Replicas are a cluster's: a count NATS does not take, or more than one
// on the embedded server, is a usage error before anything starts.
func TestServeNATSReplicas(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--nats-replicas", "2", "--nats-url", "nats://127.0.0.1:1"}, "--nats-replicas 2: write 1, 3 or 5"},
		{[]string{"--nats-replicas", "3"}, "--nats-replicas 3 needs --nats-url"},
	} {
		var out, errOut bytes.Buffer
		args := append([]string{"serve", "--config", "examples-that-do-not-exist", "--listen", "127.0.0.1:0"}, c.args...)
		if code := run(args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), c.want) {
			t.Errorf("%v: want exit 2 saying %q, got %d %q", c.args, c.want, code, errOut.String())
		}
	}
}
