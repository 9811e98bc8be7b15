package main

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"
)

func TestValidateCommand(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	cases := []struct {
		args        []string
		code        int
		out, errOut string
	}{
		{[]string{"validate", "../../examples"}, 0, "../../examples: 12 routes and 4 connectors are valid\n", ""},
		{[]string{"validate", "../../routes/testdata/invalid/missing-connector"}, 1, "",
			`../../routes/testdata/invalid/missing-connector/route.yaml:5:14: route "calls-nothing": connector "sap-ecx" is not defined (defined: sap-ecc)` + "\n"},
		{[]string{"validate"}, 2, "", "usage: busbar validate DIR\n"},
		{[]string{"frobnicate"}, 2, "", `busbar: unknown command "frobnicate"`},
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
		"connectors": {"routes"},
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
