package routes

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/busbar/busbar/bus"
)

// A reload keeps the state of connectors whose configuration did not
// change: an open breaker stays open through an unrelated edit (a new
// route, a comment in the connector's own file); a changed url starts afresh.
func TestReloadKeepsConnectorState(t *testing.T) {
	var calls atomic.Int32
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer backend.Close()
	t.Setenv("ERP_URL", backend.URL)
	connector := "connector: erp\ntype: http\nurl: ${ERP_URL}\nbreaker: { failures: 1, open-for: 1m }\n"
	dir := writeConfig(t, map[string]string{
		"erp.yaml":   connector,
		"route.yaml": "route: post\nfrom: { rest: { method: POST, path: /post } }\nto: { connector: erp, path: /post }\n",
	})
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Each reload goes through Watch, as `busbar serve` reloads.
	first, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	reloads := make(chan *Config, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, first, func(c *Config) { reloads <- c }, func(err error) { t.Error(err) })
	time.Sleep(100 * time.Millisecond) // let the watcher start
	// reload waits for the reload after an edit; editing twice inside the
	// quiet period makes one reload, so the latest one is taken.
	reload := func() *Config {
		t.Helper()
		var c *Config
		select {
		case c = <-reloads:
		case <-time.After(5 * time.Second):
			t.Fatal("no reload within 5s")
		}
		for {
			select {
			case next := <-reloads:
				c = next
			case <-time.After(400 * time.Millisecond):
				return c
			}
		}
	}
	callErp := func(cfg *Config) string {
		m := bus.NewMessage()
		m.SetJSON([]byte(`{}`))
		_, err := cfg.Connectors["erp"].Call(context.Background(), m)
		return bus.AsFault(err).Title
	}
	if got := callErp(first); got != "Backend error" {
		t.Fatalf("first call: %s", got)
	}
	if got := callErp(first); got != "Backend circuit open" {
		t.Fatalf("breaker not open after a failure: %s", got)
	}

	write("other.yaml", "route: other\nfrom: { rest: { method: POST, path: /other } }\nto: { connector: erp, path: /other }\n")
	write("erp.yaml", "# the ERP system\n"+connector)
	second := reload()
	defer second.Close()
	if len(second.Routes) != 2 {
		t.Fatalf("the reload did not see the new route: %d routes", len(second.Routes))
	}
	if got := callErp(second); got != "Backend circuit open" || calls.Load() != 1 {
		t.Errorf("after an unrelated reload: want the breaker still open (1 backend call), got %s (%d calls)", got, calls.Load())
	}
	first.Close() // as serve does once the new routes serve; the connector is second's now
	if got := callErp(second); got != "Backend circuit open" {
		t.Errorf("closing the previous configuration touched a connector it handed on: %s", got)
	}

	write("erp.yaml", "connector: erp\ntype: http\nurl: ${ERP_URL}/v2\nbreaker: { failures: 1, open-for: 1m }\n")
	third := reload()
	defer third.Close()
	if got := callErp(third); got != "Backend error" || calls.Load() != 2 {
		t.Errorf("after changing the url: want a fresh breaker that calls the backend, got %s (%d calls)", got, calls.Load())
	}
}
