package transforms

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// voucherSchema is a small SAP-style schema: a qualified root, unqualified
// children, a table whose item repeats, decimals, a leading-zero account
// kept as a string, a boolean and a nillable date.
func voucherSchema() *Schema {
	item := &ElementType{Local: "item", Repeats: true, Children: []*ElementType{
		{Local: "ITEMNO", Type: "unsignedInt", Required: true},
		{Local: "GL_ACCOUNT", Type: "string", Required: true},
		{Local: "AMOUNT", Type: "decimal", Required: true},
		{Local: "TAXED", Type: "boolean"},
		{Local: "RATE", Type: "double"},
	}}
	return NewSchema(&ElementType{Space: "urn:sap", Local: "Voucher", Children: []*ElementType{
		{Local: "DOC_NO", Type: "string", Required: true},
		{Local: "POSTED", Type: "date", Nillable: true},
		{Local: "LINES", Required: true, Children: []*ElementType{item}},
		{Local: "RETURN", Children: []*ElementType{{Local: "item", Repeats: true, Children: []*ElementType{{Local: "MESSAGE", Type: "string"}}}}},
		{Local: "EXTRA", Type: "anyType"},
	}})
}

func parseRoot(t *testing.T, s string) *etree.Element {
	t.Helper()
	doc, err := ParseXML([]byte(s), "")
	if err != nil {
		t.Fatal(err)
	}
	return doc.Root()
}

func TestSchemaXMLToJSON(t *testing.T) {
	s := voucherSchema()
	cases := []struct{ name, xml, want string }{
		{"one item stays an array, empty table is []",
			`<v:Voucher xmlns:v="urn:sap"><DOC_NO>0000012345</DOC_NO><LINES><item><ITEMNO>0001</ITEMNO><GL_ACCOUNT>0010010000</GL_ACCOUNT><AMOUNT>0010.50</AMOUNT><TAXED>1</TAXED><RATE>1.5E3</RATE></item></LINES><RETURN/></v:Voucher>`,
			`{"Voucher":{"DOC_NO":"0000012345","LINES":{"item":[{"ITEMNO":1,"GL_ACCOUNT":"0010010000","AMOUNT":10.50,"TAXED":true,"RATE":1.5E3}]},"RETURN":{"item":[]}}}`},
		{"schema order wins over document order; exact big decimals",
			`<v:Voucher xmlns:v="urn:sap"><LINES><item><AMOUNT>-12345678901234567890.01</AMOUNT><GL_ACCOUNT>1</GL_ACCOUNT><ITEMNO>2</ITEMNO></item><item><ITEMNO>3</ITEMNO><GL_ACCOUNT>2</GL_ACCOUNT><AMOUNT>+.5</AMOUNT></item></LINES><DOC_NO>7</DOC_NO></v:Voucher>`,
			`{"Voucher":{"DOC_NO":"7","LINES":{"item":[{"ITEMNO":2,"GL_ACCOUNT":"1","AMOUNT":-12345678901234567890.01},{"ITEMNO":3,"GL_ACCOUNT":"2","AMOUNT":0.5}]}}}`},
		{"nil, empty and invalid numbers",
			`<v:Voucher xmlns:v="urn:sap" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><POSTED xsi:nil="true"/><LINES><item><ITEMNO/><GL_ACCOUNT></GL_ACCOUNT><AMOUNT>12,50</AMOUNT><TAXED>yes</TAXED><RATE>INF</RATE></item></LINES></v:Voucher>`,
			`{"Voucher":{"POSTED":null,"LINES":{"item":[{"ITEMNO":null,"GL_ACCOUNT":"","AMOUNT":"12,50","TAXED":"yes","RATE":"INF"}]}}}`},
		{"undeclared children and attributes are kept; anyType is generic",
			`<v:Voucher xmlns:v="urn:sap" id="9"><DOC_NO lang="zh">凭证</DOC_NO><NEW>x</NEW><LINES/><EXTRA><a>1</a><a>2</a></EXTRA><NEW>y</NEW></v:Voucher>`,
			`{"Voucher":{"@id":"9","DOC_NO":{"@lang":"zh","#text":"凭证"},"LINES":{"item":[]},"EXTRA":{"a":["1","2"]},"NEW":["x","y"]}}`},
		{"a simple element with children keeps them",
			`<v:Voucher xmlns:v="urn:sap"><DOC_NO><part>1</part></DOC_NO><LINES/></v:Voucher>`,
			`{"Voucher":{"DOC_NO":{"part":"1"},"LINES":{"item":[]}}}`},
		{"an element the schema does not know: generic",
			`<Other><a>1</a></Other>`,
			`{"Other":{"a":"1"}}`},
	}
	for _, c := range cases {
		got, err := s.XMLToJSON(parseRoot(t, c.xml))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("%s:\nwant %s\n got %s", c.name, c.want, got)
		}
	}
	// A nil schema is the generic conversion.
	var none *Schema
	got, _ := none.XMLToJSON(parseRoot(t, `<a><b>01</b></a>`))
	if string(got) != `{"a":{"b":"01"}}` {
		t.Errorf("nil schema: %s", got)
	}
}

func TestSchemaJSONToXML(t *testing.T) {
	s := voucherSchema()
	cases := []struct{ name, json, want string }{
		{"sequence order and namespaces, whatever the JSON order",
			`{"LINES":{"item":{"AMOUNT":1.50,"GL_ACCOUNT":"0010010000","ITEMNO":1}},"DOC_NO":"A1","unknown":1}`,
			`<ns0:Voucher xmlns:ns0="urn:sap"><DOC_NO>A1</DOC_NO><LINES><item><ITEMNO>1</ITEMNO><GL_ACCOUNT>0010010000</GL_ACCOUNT><AMOUNT>1.50</AMOUNT></item></LINES></ns0:Voucher>`},
		{"the XMLToJSON shape is accepted; arrays repeat; exponents expanded; null nillable",
			`{"Voucher":{"DOC_NO":"A2","POSTED":null,"LINES":{"item":[{"ITEMNO":1e2,"GL_ACCOUNT":"1","AMOUNT":"0010.50","TAXED":true},{"ITEMNO":"0002","GL_ACCOUNT":"2","AMOUNT":1.5E-1,"RATE":2E3}]},"RETURN":{"item":[]}}}`,
			`<ns0:Voucher xmlns:ns0="urn:sap" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><DOC_NO>A2</DOC_NO><POSTED xsi:nil="true"/><LINES><item><ITEMNO>100</ITEMNO><GL_ACCOUNT>1</GL_ACCOUNT><AMOUNT>0010.50</AMOUNT><TAXED>true</TAXED></item><item><ITEMNO>0002</ITEMNO><GL_ACCOUNT>2</GL_ACCOUNT><AMOUNT>0.15</AMOUNT><RATE>2E3</RATE></item></LINES><RETURN/></ns0:Voucher>`},
		{"anyType content by the generic rules, attributes and text",
			`{"@id":"7","DOC_NO":{"@lang":"zh","#text":"凭证"},"LINES":{},"EXTRA":{"a":[1,2]}}`,
			`<ns0:Voucher xmlns:ns0="urn:sap" id="7"><DOC_NO lang="zh">凭证</DOC_NO><LINES/><EXTRA><a>1</a><a>2</a></EXTRA></ns0:Voucher>`},
	}
	for _, c := range cases {
		el, err := s.JSONToXML([]byte(c.json), "urn:sap", "Voucher")
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got := xmlString(el); got != c.want {
			t.Errorf("%s:\nwant %s\n got %s", c.name, c.want, got)
		}
	}
	errs := []struct{ json, want string }{
		{`{"LINES":{}}`, `json to xml: Voucher/DOC_NO: required element is missing`},
		{`{"DOC_NO":"1","LINES":{"item":{"ITEMNO":1.5,"GL_ACCOUNT":"1","AMOUNT":1}}}`, `json to xml: Voucher/LINES/item/ITEMNO: 1.5 is not an xsd:unsignedInt (it has a fraction)`},
		{`{"DOC_NO":"1","LINES":{"item":[{"ITEMNO":1,"GL_ACCOUNT":"1","AMOUNT":1},{"ITEMNO":2,"GL_ACCOUNT":"1","AMOUNT":"1,5"}]}}`, `json to xml: Voucher/LINES/item[2]/AMOUNT: "1,5" is not an xsd:decimal`},
		{`{"DOC_NO":["1","2"],"LINES":{}}`, `json to xml: Voucher/DOC_NO occurs at most once, got an array of 2`},
		{`{"DOC_NO":"1","LINES":"x"}`, `json to xml: Voucher/LINES: a string where an object is expected (the element has child elements)`},
		{`{"DOC_NO":"1","LINES":{"item":{"ITEMNO":1,"GL_ACCOUNT":"1","AMOUNT":1,"TAXED":"yes"}}}`, `json to xml: Voucher/LINES/item/TAXED: "yes" is not an xsd:boolean`},
		{`{"DOC_NO":{"x":1},"LINES":{}}`, ``}, // an object for a simple type: its members are attributes and #text only
		{`{`, `json to xml: the body is not valid JSON`},
	}
	for _, c := range errs {
		_, err := s.JSONToXML([]byte(c.json), "urn:sap", "Voucher")
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.json, err)
		case c.want != "" && (err == nil || err.Error() != c.want):
			t.Errorf("%s:\nwant %s\n got %v", c.json, c.want, err)
		}
	}
}

// Every element qualified: the root's namespace becomes the default one.
func TestSchemaJSONToXMLQualified(t *testing.T) {
	s := NewSchema(&ElementType{Space: "urn:e", Local: "Resp", Children: []*ElementType{
		{Space: "urn:e", Local: "id", Type: "string", Required: true},
		{Space: "urn:t", Local: "amount", Type: "decimal"},
	}})
	el, err := s.JSONToXML([]byte(`{"amount":12.50,"id":"0042"}`), "urn:e", "Resp")
	if err != nil {
		t.Fatal(err)
	}
	want := `<Resp xmlns="urn:e" xmlns:ns1="urn:t"><id>0042</id><ns1:amount>12.50</ns1:amount></Resp>`
	if got := xmlString(el); got != want {
		t.Errorf("want %s\n got %s", want, got)
	}
	// Read back, the namespaces match the schema's.
	root := parseRoot(t, want)
	got, _ := s.XMLToJSON(root)
	if string(got) != `{"Resp":{"id":"0042","amount":12.50}}` {
		t.Errorf("round trip: %s", got)
	}
	// An unknown element: generic, with the namespace as default namespace.
	el, err = s.JSONToXML([]byte(`{"a":1}`), "urn:x", "Other")
	if err != nil || xmlString(el) != `<Other xmlns="urn:x"><a>1</a></Other>` {
		t.Errorf("unknown element: %v %s", err, xmlString(el))
	}
}

// A recursive type: a tree of nodes, resolved lazily through a cycle.
func TestSchemaRecursive(t *testing.T) {
	node := &ElementType{Local: "node", Repeats: true}
	node.Children = []*ElementType{{Local: "name", Type: "string"}, {Local: "size", Type: "long"}, node}
	calls := 0
	s := NewSchemaFunc(func(space, local string) *ElementType {
		calls++
		if local == "Tree" {
			return &ElementType{Local: "Tree", Children: []*ElementType{node}}
		}
		return nil
	})
	root := parseRoot(t, `<Tree><node><name>a</name><node><name>b</name><size>007</size></node></node></Tree>`)
	for range 2 {
		got, err := s.XMLToJSON(root)
		if err != nil {
			t.Fatal(err)
		}
		if want := `{"Tree":{"node":[{"name":"a","node":[{"name":"b","size":7,"node":[]}]}]}}`; string(got) != want {
			t.Errorf("want %s\n got %s", want, got)
		}
	}
	first, again := s.Element("", "Nope"), s.Element("", "Nope") // the miss is remembered too
	if first != nil || again != nil || calls != 2 {
		t.Errorf("resolve was called %d times, want once per name", calls)
	}
}

func TestXSDNumbers(t *testing.T) {
	cases := []struct {
		in   string
		k    xsdKind
		want string // "" = not a number of that kind
	}{
		{"0", xsdInteger, "0"}, {"-0", xsdInteger, "-0"}, {"+0042", xsdInteger, "42"}, {"000", xsdInteger, "0"},
		{"1.0", xsdInteger, ""}, {"1e3", xsdInteger, ""}, {"", xsdInteger, ""}, {"-", xsdInteger, ""}, {"12a", xsdInteger, ""},
		{"0010.50", xsdDecimal, "10.50"}, {".5", xsdDecimal, "0.5"}, {"5.", xsdDecimal, "5"}, {"-.0", xsdDecimal, "-0.0"},
		{".", xsdDecimal, ""}, {"1e3", xsdDecimal, ""}, {"1.2.3", xsdDecimal, ""}, {" 1", xsdDecimal, ""},
		{"1.5E3", xsdFloat, "1.5E3"}, {"-1e-07", xsdFloat, "-1e-07"}, {"1e", xsdFloat, ""}, {"INF", xsdFloat, ""}, {"NaN", xsdFloat, ""},
	}
	for _, c := range cases {
		got, ok := appendXSDNumber(nil, c.in, c.k)
		if (c.want == "") == ok || string(got) != c.want {
			t.Errorf("%q as kind %d: want %q, got %q (ok %v)", c.in, c.k, c.want, got, ok)
		}
	}
}

func xmlString(el *etree.Element) string {
	if el == nil {
		return "<nil>"
	}
	var b strings.Builder
	el.WriteTo(&b, &etree.WriteSettings{CanonicalEndTags: false})
	return b.String()
}

// FuzzSchemaConversion: whatever the XML, schema-aware XMLToJSON writes
// valid JSON; whatever the JSON, JSONToXML either fails or builds XML that
// parses again.
func FuzzSchemaConversion(f *testing.F) {
	f.Add(`<v:Voucher xmlns:v="urn:sap"><DOC_NO>01</DOC_NO><LINES><item><AMOUNT>0010.50</AMOUNT><RATE>1e5</RATE></item></LINES></v:Voucher>`,
		`{"DOC_NO":"1","LINES":{"item":[{"ITEMNO":1e2,"GL_ACCOUNT":"1","AMOUNT":"0010.50"}]}}`)
	f.Add(`<v:Voucher xmlns:v="urn:sap" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><POSTED xsi:nil="true"/><EXTRA><a>1</a></EXTRA></v:Voucher>`,
		`{"Voucher":{"DOC_NO":null,"EXTRA":{"a":[1,{"@b":"c"}]},"@id":"x"}}`)
	s := voucherSchema()
	f.Fuzz(func(t *testing.T, xml, js string) {
		if doc, err := ParseXML([]byte(xml), ""); err == nil {
			out, err := s.XMLToJSON(doc.Root())
			if err != nil || !json.Valid(out) {
				t.Fatalf("%q: invalid JSON %q (%v)", xml, out, err)
			}
		}
		el, err := s.JSONToXML([]byte(js), "urn:sap", "Voucher")
		if err != nil {
			return
		}
		x := xmlString(el)
		if _, err := ParseXML([]byte(x), ""); err != nil {
			t.Fatalf("%q built XML that does not parse: %v\n%s", js, err, x)
		}
	})
}
