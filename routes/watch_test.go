package routes

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 5 seconds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("after 5s: %s", what)
}

// Editing a route file while Busbar runs reloads the routes; a broken edit
// keeps the old routes serving and reports file:line:col.
func TestHotReload(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, examples, dir)
	b := start(t, dir)
	w := watch(t, b)

	route := filepath.Join(dir, "routes", "expense-voucher-to-sap.yaml")
	orig, _ := os.ReadFile(route)
	broken := strings.Replace(string(orig), "  connector: sap-ecc", "  connector: sap-ecc\n  retries: 3", 1)
	if err := os.WriteFile(route, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken edit is reported", func() bool { return len(w.get().rejected) > 0 })
	if want, got := `routes/expense-voucher-to-sap.yaml:21:3: route "expense-voucher-to-sap": unknown field "retries"`, w.get().rejected[0]; !strings.Contains(got, want) {
		t.Errorf("reported %q, want it to contain %q", got, want)
	}
	if r := b.postJSON(t, "/api/v1/vouchers", balancedVoucher); r.Status != 200 {
		t.Fatalf("after a broken edit the old route must keep serving, got %d %s", r.Status, r.Body)
	}

	// Editors save by writing a new file and renaming it over the old one.
	moved := strings.Replace(string(orig), "path: /api/v1/vouchers", "path: /api/v2/vouchers", 1)
	tmp := filepath.Join(dir, "routes", ".expense.tmp")
	os.WriteFile(tmp, []byte(moved), 0o644)
	if err := os.Rename(tmp, route); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the new path serves", func() bool {
		return b.postJSON(t, "/api/v2/vouchers", balancedVoucher).Status == 200
	})
	if r := b.postJSON(t, "/api/v1/vouchers", balancedVoucher); r.Status != 404 {
		t.Errorf("the old path should be gone, got %d", r.Status)
	}
}

// watchLog records what Watch did.
type watchLog struct {
	mu       sync.Mutex
	applied  int
	rejected []string
}

// get returns a copy, safe to read while Watch goes on.
func (w *watchLog) get() watchLog {
	w.mu.Lock()
	defer w.mu.Unlock()
	return watchLog{applied: w.applied, rejected: append([]string(nil), w.rejected...)}
}

// watch runs Watch on b's configuration, swapping good loads into b's
// server, until the test ends.
func watch(t *testing.T, b *busbar) *watchLog {
	t.Helper()
	w := &watchLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, b.cfg, func(c *Config) {
			if err := b.srv.Swap(c.Endpoints()); err != nil {
				t.Error(err)
			}
			c.Close()
			w.mu.Lock()
			w.applied++
			w.mu.Unlock()
		}, func(err error) {
			w.mu.Lock()
			w.rejected = append(w.rejected, err.Error())
			w.mu.Unlock()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	time.Sleep(100 * time.Millisecond) // let the watcher register its folders
	return w
}

// Only the files a load reads reload the routes: a log file written again
// and again in the configuration directory, a new test case or an unused
// table does not; a route edit reloads once after the quiet period, and so
// does a table file a map reads.
func TestHotReloadOnlyForFilesRead(t *testing.T) {
	dir := t.TempDir()
	copyTree(t, examples, dir)
	b := start(t, dir)
	w := watch(t, b)
	noise := []string{"busbar.log", "routes/notes.txt", "tests/new-case.yaml", "tables/unused.csv", ".editor.swp"}
	for i := range 20 {
		for _, n := range noise {
			f, err := os.OpenFile(filepath.Join(dir, n), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(f, "line %d\n", i)
			f.Close()
		}
		time.Sleep(25 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond) // more than the quiet period
	if l := w.get(); l.applied != 0 || len(l.rejected) != 0 {
		t.Fatalf("files no load reads caused %d reloads and %d failed ones %q", l.applied, len(l.rejected), l.rejected)
	}

	route := filepath.Join(dir, "routes", "expense-voucher-to-sap.yaml")
	orig, _ := os.ReadFile(route)
	for range 3 { // an editor writing in several steps
		os.WriteFile(route, []byte(strings.Replace(string(orig), "/api/v1/vouchers", "/api/v2/vouchers", 1)), 0o644)
		time.Sleep(20 * time.Millisecond)
	}
	eventually(t, "the edited route reloads", func() bool { return w.get().applied > 0 })
	time.Sleep(500 * time.Millisecond)
	if l := w.get(); l.applied != 1 {
		t.Errorf("one edit: want 1 reload, got %d (failed: %q)", l.applied, l.rejected)
	}
	if r := b.postJSON(t, "/api/v2/vouchers", balancedVoucher); r.Status != 200 {
		t.Errorf("after the reload: %d %s", r.Status, r.Body)
	}

	table := filepath.Join(dir, "tables", "oa-expense-types.csv")
	csv, _ := os.ReadFile(table)
	os.WriteFile(table, csv, 0o644)
	eventually(t, "a table a map reads reloads", func() bool { return w.get().applied == 2 })
}
