package routes

import (
	"os"
	"path/filepath"
	"testing"
)

// Each folder under testdata/invalid is a broken configuration; expected.err
// is the exact text `busbar validate` prints for it.
func TestInvalidConfigurations(t *testing.T) {
	dirs, _ := filepath.Glob(filepath.Join("testdata", "invalid", "*"))
	if len(dirs) == 0 {
		t.Fatal("no cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			cfg, err := Load(dir)
			if err == nil {
				cfg.Close()
				t.Fatal("want errors, the configuration loaded")
			}
			got := err.Error() + "\n"
			path := filepath.Join(dir, "expected.err")
			if *update {
				os.WriteFile(path, []byte(got), 0o644)
			}
			want, _ := os.ReadFile(path)
			if got != string(want) {
				t.Errorf("want\n%s\ngot\n%s", want, got)
			}
		})
	}
}
