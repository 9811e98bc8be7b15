package auth

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestDocsCoverSettings keeps docs/security.md and the specs together:
// every registered kind and every setting of its spec is documented.
func TestDocsCoverSettings(t *testing.T) {
	doc, err := os.ReadFile("../docs/security.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## Inbound authentication (policy files)")
	if !ok {
		t.Fatal(`docs/security.md has no "Inbound authentication (policy files)" section`)
	}
	for _, k := range Kinds() {
		if !strings.Contains(section, "`"+k+"`") {
			t.Errorf("kind %q is not documented", k)
		}
		newSpec, _ := kind(k)
		var walk func(reflect.Type)
		walk = func(st reflect.Type) {
			for st.Kind() == reflect.Pointer || st.Kind() == reflect.Slice {
				st = st.Elem()
			}
			if st.Kind() != reflect.Struct {
				return
			}
			for i := 0; i < st.NumField(); i++ {
				f := st.Field(i)
				name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
				if !f.IsExported() || name == "" {
					continue
				}
				if !strings.Contains(section, name+":") {
					t.Errorf("kind %q: setting %q is not documented", k, name)
				}
				walk(f.Type)
			}
		}
		walk(reflect.TypeOf(newSpec()))
	}
}
