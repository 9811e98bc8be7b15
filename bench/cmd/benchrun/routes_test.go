package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busbar/busbar/routes"
)

const routesDir = "../../routes"

// TestRouteConfigs: every scenario's Busbar config is valid, or — for a
// scenario marked pending — refused only because its feature is missing.
// When the feature lands, a config that is wrong in any other way fails here.
func TestRouteConfigs(t *testing.T) {
	t.Setenv("BENCH_BACKEND", "http://127.0.0.1:9")
	seen := map[string]bool{}
	for _, tg := range targets {
		if tg.Kind != busbar {
			continue
		}
		seen[tg.Config] = true
		t.Run(tg.Name, func(t *testing.T) {
			cfg, err := routes.Load(filepath.Join(routesDir, tg.Config))
			if err == nil {
				cfg.Close()
				if tg.Pending != "" {
					t.Logf("%s validates now: its pending mark (%s) matters only for flags such as TLS", tg.Name, tg.Pending)
				}
				return
			}
			if tg.Pending == "" {
				t.Fatalf("bench/routes/%s: %v", tg.Config, err)
			}
			for line := range strings.SplitSeq(err.Error(), "\n") {
				if line == "" {
					continue
				}
				pending := false
				for _, want := range tg.PendingErrors {
					pending = pending || strings.Contains(line, want)
				}
				if !pending {
					t.Errorf("bench/routes/%s is refused for another reason than its pending feature (%s): %s", tg.Config, tg.Pending, line)
				}
			}
		})
	}
	ents, err := os.ReadDir(routesDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() && !seen[e.Name()] {
			t.Errorf("bench/routes/%s belongs to no target in matrix.go", e.Name())
		}
	}
}
