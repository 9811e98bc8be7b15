package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// serve opens the message store for the demo's async route under
// --data-dir, answers 202 with a Location it serves, and closes the store
// on SIGTERM: a second serve on the same directory opens it again (the
// data directory's lock was released) and still knows the message.
func TestServeAsyncRoute(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "") // serve sets it to its own address
	os.Unsetenv("BUSBAR_DEMO_URL")
	form, err := os.ReadFile("../../examples/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	client := &http.Client{Timeout: 10 * time.Second}
	base, stop := startServe(t, "--data-dir", data)
	req, _ := http.NewRequest(http.MethodPost, base+"/soap/oa/reimbursement/async", strings.NewReader(string(form)))
	req.Header.Set("Content-Type", "text/xml; charset=GBK")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusAccepted || !strings.HasPrefix(loc, "/busbar/messages/") {
		t.Fatalf("want 202 with a Location, got %d %q", resp.StatusCode, loc)
	}
	state := func(base string) string {
		resp, err := client.Get(base + loc)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var st struct{ State string }
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &st)
		return st.State
	}
	deadline := time.Now().Add(10 * time.Second)
	for state(base) != "delivered" && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if s := state(base); s != "delivered" {
		t.Fatalf("the form was not delivered to the demo SAP: state %q", s)
	}
	stop()
	base, stop = startServe(t, "--data-dir", data)
	defer stop()
	if s := state(base); s != "delivered" {
		t.Errorf("after a restart on the same data directory: state %q", s)
	}
}
