// Package corpus finds the shared corpus of third-party WSDLs and SOAP
// messages (../shared/corpus beside the project) for tests.
package corpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the corpus's wsdl folder, walking up from the working
// directory, or skips the test with a clear message when it is absent.
func Dir(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; ; dir = filepath.Dir(dir) {
		for _, c := range []string{filepath.Join(dir, "shared", "corpus", "wsdl"), filepath.Join(dir, "..", "shared", "corpus", "wsdl")} {
			if st, err := os.Stat(c); err == nil && st.IsDir() {
				return c
			}
		}
		if filepath.Dir(dir) == dir {
			break
		}
	}
	t.Skip("third-party corpus not found: expected ../shared/corpus/wsdl beside the project; tests against real-world WSDLs and envelopes are skipped")
	return ""
}
