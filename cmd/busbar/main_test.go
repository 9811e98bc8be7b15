package main

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateCommand(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	cases := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"validate", "../../examples"}, 0, "../../examples: 15 routes and 4 connectors are valid\n", ""},
		{[]string{"validate", "../../routes/testdata/invalid/missing-connector"}, 1, "",
			`../../routes/testdata/invalid/missing-connector/route.yaml:5:14: route "calls-nothing": connector "sap-ecx" is not defined (defined: sap-ecc)` + "\n"},
		// A route's request schema, missing or broken, is the route's error.
		{[]string{"validate", "../../routes/testdata/invalid/bad-schema"}, 1, "",
			`bad-schema/routes.yaml:5:13: route "missing-schema": schema schemas/nowhere.json: open schemas/nowhere.json: no such file or directory`},
		{[]string{"validate", "../../routes/testdata/invalid/bad-schema"}, 1, "",
			`bad-schema/broken.yaml:3:22: route "broken-schema": schema schemas/broken.json: line 3, column 43: invalid character`},
		{[]string{"validate"}, 2, "", "usage: busbar validate DIR\n"},
		{[]string{"frobnicate"}, 2, "", `busbar: unknown command "frobnicate"`},
		// No command: what there is to do, on stderr, and a usage error.
		{nil, 2, "", "Available Commands:\n  certs "},
		{[]string{"serve", "--config", "../../routes/testdata/invalid/unknown-key"}, 1, "", `unknown field "requst"`},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != c.code || out.String() != c.out || !strings.Contains(errOut.String(), c.errOut) {
			t.Errorf("busbar %s: want exit %d, stdout %q, stderr containing %q; got %d, %q, %q",
				strings.Join(c.args, " "), c.code, c.out, c.errOut, code, out.String(), errOut.String())
		}
	}
}

// The dependency rules of DESIGN.md: data flows one way between packages.
func TestPackageDependencies(t *testing.T) {
	const mod = "github.com/busbar/busbar/"
	forbidden := map[string][]string{
		"bus":        {"routes", "connectors", "transforms", "wsdl", "certs"},
		"transforms": {"routes", "connectors", "wsdl"},
		"connectors": {"routes", "delivery"},
		"delivery":   {"routes", "connectors"},
		"wsdl":       {"routes", "connectors"},
	}
	for pkg, banned := range forbidden {
		out, err := exec.Command("go", "list", "-deps", mod+pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := "\n" + string(out)
		for _, b := range banned {
			if strings.Contains(deps, "\n"+mod+b+"\n") {
				t.Errorf("package %s must not import %s", pkg, b)
			}
		}
	}
}

// startServe runs `busbar serve` on the examples on a random loopback port
// with the given extra flags, and returns the URL it says it listens on and
// a function that stops it with SIGTERM, as systemd would, and checks it
// exits cleanly.
func startServe(t *testing.T, flags ...string) (url string, stop func()) {
	t.Helper()
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	var serveErr bytes.Buffer
	// The demo has an async route: its message store goes in a fresh
	// directory unless the test names one.
	args := append([]string{"serve", "--config", "../../examples", "--listen", "127.0.0.1:0", "--log-level", "error",
		"--data-dir", t.TempDir()}, flags...)
	go func() {
		done <- run(args, pw, &serveErr)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	go io.Copy(io.Discard, pr)
	if err != nil || !strings.HasPrefix(line, "busbar listening on ") {
		t.Fatalf("serve said %q (%v); stderr: %s", line, err, serveErr.String())
	}
	return strings.Fields(line)[3], func() {
		t.Helper()
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, serveErr.String())
			}
		case <-time.After(10 * time.Second):
			t.Fatal("serve did not stop on SIGTERM")
		}
	}
}

// The demo's connectors call the demo backends this same process serves,
// on whatever port it listens: without BUSBAR_DEMO_URL a bridged route
// answers 200 on a port other than 8080.
func TestServeDemoFollowsListenAddress(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "") // restored after the test; serve sets it
	os.Unsetenv("BUSBAR_DEMO_URL")
	base, stop := startServe(t)
	defer stop()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(base+"/api/v1/suppliers", "application/json",
		strings.NewReader(`{"companyCode": "1000"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"LIFNR":"0000100001"`) {
		t.Errorf("POST /api/v1/suppliers through the demo SAP: %d %s", resp.StatusCode, body)
	}
}

// validate reports every problem of every file, route test cases included,
// each at its file:line:col, and exits 1: testdata/validate holds files with
// several problems each, validate.err what validate prints for them.
func TestValidateReportsEveryProblem(t *testing.T) {
	var out, errOut bytes.Buffer
	code := run([]string{"validate", "testdata/validate"}, &out, &errOut)
	golden := "testdata/validate.err"
	if *update {
		os.WriteFile(golden, errOut.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if code != 1 || out.Len() != 0 || errOut.String() != string(want) {
		t.Errorf("want exit 1 and stderr\n%s\ngot exit %d, stdout %q, stderr\n%s", want, code, out.String(), errOut.String())
	}
}

// --debug-errors shows callers where a mapping failed, which otherwise
// only the log says.
func TestServeDebugErrors(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	const badDate = `{"companyCode":"1000","date":"20.11.2026","currency":"CNY","voucherNo":"EXP-4","lines":[]}`
	for _, debug := range []bool{false, true} {
		var flags []string
		if debug {
			flags = []string{"--debug-errors"}
		}
		base, stop := startServe(t, flags...)
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Post(base+"/api/v1/vouchers", "application/json", strings.NewReader(badDate))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		stop()
		shown := strings.Contains(string(body), `"internalDetail":"../../examples/maps/voucher-to-bapi.yaml:`)
		if resp.StatusCode != 422 || shown != debug {
			t.Errorf("--debug-errors=%v: want 422 with the internal detail shown %v, got %d %s", debug, debug, resp.StatusCode, body)
		}
	}
}
