package routes

import (
	"context"
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
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var rejected []string
	watching := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		close(watching)
		Watch(ctx, dir, func(c *Config) {
			if err := b.srv.Swap(c.Endpoints()); err != nil {
				t.Error(err)
			}
		}, func(err error) {
			mu.Lock()
			rejected = append(rejected, err.Error())
			mu.Unlock()
		})
	}()
	defer func() { cancel(); <-done }()
	<-watching
	time.Sleep(100 * time.Millisecond) // let the watcher register its folders

	route := filepath.Join(dir, "routes", "expense-voucher-to-sap.yaml")
	orig, _ := os.ReadFile(route)
	broken := strings.Replace(string(orig), "  connector: sap-ecc", "  connector: sap-ecc\n  retries: 3", 1)
	if err := os.WriteFile(route, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the broken edit is reported", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(rejected) > 0
	})
	mu.Lock()
	if want := `routes/expense-voucher-to-sap.yaml:18:3: route "expense-voucher-to-sap": unknown field "retries"`; !strings.Contains(rejected[0], want) {
		t.Errorf("reported %q, want it to contain %q", rejected[0], want)
	}
	mu.Unlock()
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
