package routes

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// python3 is Debian's: python3-zeep is installed for it, not for another
// python3 that may come first on PATH.
const debianPython = "/usr/bin/python3"

// requireInterop makes a missing SOAP client a failure instead of a skip;
// CI sets it, since .ci/run installs the clients.
func requireInterop(t *testing.T, what string) {
	t.Helper()
	msg := what + " is not installed (Debian: apt-get install python3-zeep); the interoperability test is skipped"
	if os.Getenv("BUSBAR_REQUIRE_INTEROP") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// A real third-party SOAP client reads the facade's WSDL from ?wsdl and
// calls its operations over both SOAP versions.
func TestZeepClient(t *testing.T) {
	if err := exec.Command(debianPython, "-c", "import zeep").Run(); err != nil {
		requireInterop(t, "python3-zeep")
	}
	b := start(t, examples)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, debianPython, "testdata/zeep_client.py", b.URL+"/soap/expense?wsdl").CombinedOutput()
	if err != nil {
		t.Fatalf("zeep: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	want := strings.Join([]string{
		"OK ExpenseSoap11Port CLM-ZEEP-11 RECEIVED Decimal('380.50')",
		"FAULT ExpenseSoap11Port soap:Client Backend rejected the request: connector \"expense-platform\": HTTP 422: Claim exceeds the approval limit: claim ZEEP-BIG is above 50000 CNY",
		"STATUS ExpenseSoap11Port CLM-ZEEP-1 APPROVED",
		"OK ExpenseSoap12Port CLM-ZEEP-12 RECEIVED Decimal('380.50')",
		"FAULT ExpenseSoap12Port soap:Sender Backend rejected the request: connector \"expense-platform\": HTTP 422: Claim exceeds the approval limit: claim ZEEP-BIG is above 50000 CNY",
		"STATUS ExpenseSoap12Port CLM-ZEEP-1 APPROVED",
	}, "\n")
	if got != want {
		t.Errorf("zeep printed\n%s\nwant\n%s", got, want)
	}
}
