package transforms

import (
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

func TestBoolInFragment(t *testing.T) {
	doc := etree.NewDocument()
	if err := doc.ReadFromString(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:h="urn:h"><s:Header>
  <w:Security xmlns:w="urn:wsse"><w:User>u</w:User></w:Security>
  <h:Routing><h:Target>a</h:Target></h:Routing>
</s:Header><s:Body><X/></s:Body></s:Envelope>`); err != nil {
		t.Fatal(err)
	}
	header := doc.Root().SelectElement("Header")
	ns := map[string]string{"h": "urn:h", "w": "urn:wsse"}
	cases := []struct {
		src  string
		want bool
	}{
		{"/h:Routing/h:Target == 'a'", true},
		{"./h:Routing/h:Target == 'a'", true},
		{"/h:Routing/h:Target == 'b'", false},
		{"/w:Security/w:User == 'u' && /h:Routing/h:Target == 'a'", true},
		{"count(/*) == 2", true},
		{"/Header", false}, // the Header itself is the document node, not an element under it
		{"count(//h:Target) == 1", true},
		{"/h:Routing/h:Target/../../w:Security/w:User == 'u'", true},
	}
	for i, c := range cases {
		e, err := CompileExpr(c.src, "r.yaml", 1, 1, ns)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		got, err := e.BoolIn(header, bus.NewMessage())
		if err != nil {
			t.Fatalf("case %d %s: %v", i, c.src, err)
		}
		if got != c.want {
			t.Errorf("case %d: %s: want %v, got %v", i, c.src, c.want, got)
		}
	}
}
