package routes

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
	_ "github.com/busbar/busbar/connectors" // registers the connector kinds
	"github.com/busbar/busbar/internal/yamldoc"
)

// Every key a route or connector file accepts is documented in docs/routes.md.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../docs/routes.md")
	if err != nil {
		t.Fatal(err)
	}
	types := []reflect.Type{reflect.TypeOf(RouteFile{}), reflect.TypeOf(ConnectorFile{})}
	for _, name := range bus.ConnectorKinds() {
		k, _ := bus.LookupConnector(name)
		types = append(types, reflect.TypeOf(k.New()))
	}
	for _, m := range yamldoc.Undocumented(string(doc), types...) {
		t.Errorf("docs/routes.md does not document %s", m)
	}
	for _, name := range bus.ConnectorKinds() {
		if !strings.Contains(string(doc), "`"+name+"`") {
			t.Errorf("docs/routes.md does not mention connector type %q", name)
		}
	}
}
