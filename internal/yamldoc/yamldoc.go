// Package yamldoc checks that a reference document names every YAML key of
// a file format, for the tests that keep docs/ and the config structs in step.
package yamldoc

import (
	"fmt"
	"reflect"
	"strings"
)

// Undocumented lists the yaml keys of the given struct types (and the
// structs they contain) that doc does not mention as `key`.
func Undocumented(doc string, types ...reflect.Type) []string {
	var missing []string
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag != "" && !strings.Contains(doc, "`"+tag+"`") {
				missing = append(missing, fmt.Sprintf("key %q (%s.%s)", tag, typ.Name(), f.Name))
			}
			walk(f.Type)
		}
	}
	for _, t := range types {
		walk(t)
	}
	return missing
}
