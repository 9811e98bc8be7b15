package routes

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
	_ "github.com/busbar/busbar/connectors" // registers the connector kinds
)

// Every key a route or connector file accepts is documented in docs/routes.md.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/routes.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[reflect.Type]bool{}
	var walk func(reflect.Type)
	walk = func(typ reflect.Type) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || seen[typ] {
			return
		}
		seen[typ] = true
		for i := 0; i < typ.NumField(); i++ {
			f := typ.Field(i)
			tag := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if tag != "" && !strings.Contains(string(doc), "`"+tag+"`") {
				t.Errorf("docs/routes.md does not document key %q (%s.%s)", tag, typ.Name(), f.Name)
			}
			walk(f.Type)
		}
	}
	walk(reflect.TypeOf(RouteFile{}))
	walk(reflect.TypeOf(ConnectorFile{}))
	for _, name := range bus.ConnectorKinds() {
		k, _ := bus.LookupConnector(name)
		walk(reflect.TypeOf(k.New()))
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/routes.md does not mention connector type %q", name)
		}
	}
}
