package wsdl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/transforms"
)

// payload is the first child of a SOAP Body, or the document element of a
// bare message.
func payload(t *testing.T, path string) *etree.Element {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := transforms.ParseXML(data, "")
	if err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root.Tag != "Envelope" {
		return root
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Body" {
			return c.ChildElements()[0]
		}
	}
	t.Fatalf("%s: no SOAP Body", path)
	return nil
}

// TestSchemaConversionGolden converts real-world messages with the hints of
// their WSDL (or XSD) both ways, into golden files: XML → JSON, then that
// JSON back to XML, which must read back to the same JSON.
func TestSchemaConversionGolden(t *testing.T) {
	corpus := corpusDir(t)
	const (
		store   = "urn:company-com:document:company:rfc:functions"
		mcStyle = "urn:sap-com:document:sap:soap:functions:mc-style"
		expense = "urn:busbar:demo:expense"
	)
	cases := []struct {
		golden string
		schema string // corpus-relative, or starting with "testdata/" or "../"
		input  string
		elem   QName // for JSON input: the element to build
	}{
		// SAP PI: two stores and one RETURN item (the node-soap fixture).
		{"convert-storedata-all.txt", "sap-pi-storedata-anon/SI_O_SYSTEM_STOREDATA.wsdl", "sap-pi-storedata-anon/GET_ALL_STORE_NUMBERS.response.xml", QName{}},
		{"convert-storedata-data.txt", "sap-pi-storedata-anon/SI_O_SYSTEM_STOREDATA.wsdl", "sap-pi-storedata-anon/GET_DATA.response.xml", QName{}},
		// One store: still an array; an empty RETURN table: [].
		{"convert-storedata-one-item.txt", "sap-pi-storedata-anon/SI_O_SYSTEM_STOREDATA.wsdl", "testdata/convert/storedata-one-item.response.xml", QName{}},
		// SAP ECC mc-style: decimals exact, NUMC/CHAR codes keep their zeros.
		{"convert-pricesimulate-response.txt", "sap-ecc-zrfcsdpricesimulate/HCI_ZRFCSDPRICESIMULATE_V3.wsdl", "testdata/convert/pricesimulate.response.xml", QName{}},
		{"convert-pricesimulate-request.txt", "sap-ecc-zrfcsdpricesimulate/HCI_ZRFCSDPRICESIMULATE_V3.wsdl", "testdata/convert/pricesimulate.request.json", QName{mcStyle, "Zrfcsdpricesimulate"}},
		// The demo facade: qualified elements, a decimal amount.
		{"convert-expense-submit.txt", "../examples/wsdl/expense.wsdl", "testdata/convert/expense-submit.request.xml", QName{}},
		{"convert-expense-reply.txt", "../examples/wsdl/expense.wsdl", "testdata/convert/expense-submit.reply.json", QName{expense, "SubmitExpenseResponse"}},
		// A plain XSD with a recursive type and an element-reference cycle.
		{"convert-tree.txt", "testdata/convert/tree.xsd", "testdata/convert/tree.xml", QName{}},
	}
	local := func(p string) string {
		if strings.HasPrefix(p, "testdata/") || strings.HasPrefix(p, "../") {
			return p
		}
		return filepath.Join(corpus, p)
	}
	for _, c := range cases {
		t.Run(c.golden, func(t *testing.T) {
			s, err := LoadSchema(local(c.schema))
			if err != nil {
				t.Fatal(err)
			}
			var out strings.Builder
			var js []byte
			if c.elem.Local != "" {
				js, err = os.ReadFile(local(c.input))
				if err != nil {
					t.Fatal(err)
				}
			} else {
				js, err = s.XMLToJSON(payload(t, local(c.input)))
				if err != nil {
					t.Fatal(err)
				}
				out.WriteString("XML → JSON\n" + string(js) + "\n\n")
				root := payload(t, local(c.input))
				c.elem = QName{root.NamespaceURI(), root.Tag}
			}
			el, err := s.JSONToXML(js, c.elem.Space, c.elem.Local)
			if err != nil {
				t.Fatal(err)
			}
			doc := etree.NewDocument()
			doc.SetRoot(el)
			x, _ := doc.WriteToString()
			out.WriteString("JSON → XML\n" + x + "\n")
			back, err := s.XMLToJSON(el)
			if err != nil {
				t.Fatal(err)
			}
			if strings.HasPrefix(out.String(), "XML → JSON") && string(back) != string(js) {
				t.Errorf("the XML read back differs:\nfirst %s\nthen  %s", js, back)
			}
			golden(t, c.golden, out.String())
		})
	}
}

// Facts the golden files show, asserted so that an -update cannot bless a
// regression by accident.
func TestSchemaConversionFacts(t *testing.T) {
	corpus := corpusDir(t)
	s, err := LoadSchema(filepath.Join(corpus, "sap-pi-storedata-anon", "SI_O_SYSTEM_STOREDATA.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	js, err := s.XMLToJSON(payload(t, "testdata/convert/storedata-one-item.response.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"Z_STORE_TEMPLATE_GET_ALL.Response":{"ET_ALL_STORES":{"item":[{"STORE_ID":"0042"}]},"ET_RETURN":{"item":[]}}}`; string(js) != want {
		t.Errorf("want %s\n got %s", want, js)
	}
	s, err = LoadSchema(filepath.Join(corpus, "sap-ecc-zrfcsdpricesimulate", "HCI_ZRFCSDPRICESIMULATE_V3.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	js, err = s.XMLToJSON(payload(t, "testdata/convert/pricesimulate.response.xml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"Grossvalue":1234567890123456789.1250`, `"Price":12.5000`, `"Productid":"000000000000123456"`, `"EtItems":{"item":[{`, `"ItItems":{"item":[]}`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("want %s in %s", want, js)
		}
	}
}

// Every element every operation of every corpus WSDL sends or receives has
// hints, and an empty document converts without error or panic.
func TestSchemaCorpusSweep(t *testing.T) {
	corpus := corpusDir(t)
	files, _ := filepath.Glob(filepath.Join(corpus, "*", "*.wsdl"))
	if len(files) == 0 {
		t.Fatal("no WSDL in the corpus")
	}
	converted := 0
	for _, f := range files {
		d, err := LoadWith(f, LoadOptions{TolerateMissingImports: true})
		if err != nil {
			continue // files that do not load are covered by the load tests
		}
		s := d.Schema()
		for _, op := range d.Operations() {
			for _, q := range []QName{op.Input, op.Output} {
				if q.Local == "" || s.Element(q.Space, q.Local) == nil {
					continue
				}
				el, err := s.JSONToXML([]byte(`{}`), q.Space, q.Local)
				if err != nil && !strings.Contains(err.Error(), "required element is missing") {
					t.Errorf("%s %s: %v", filepath.Base(f), q, err)
					continue
				}
				if el != nil {
					converted++
					if _, err := s.XMLToJSON(el); err != nil {
						t.Errorf("%s %s: %v", filepath.Base(f), q, err)
					}
				}
			}
		}
	}
	t.Logf("%d elements converted", converted)
	if converted < 50 {
		t.Errorf("only %d elements were converted: the sweep no longer covers the corpus", converted)
	}
}

func TestLoadSchemaErrors(t *testing.T) {
	dir := t.TempDir()
	notSchema := filepath.Join(dir, "note.xml")
	os.WriteFile(notSchema, []byte(`<note/>`), 0o644)
	cases := []struct{ path, want string }{
		{notSchema, "the document element is <note>, want wsdl:definitions or xsd:schema"},
		{filepath.Join(dir, "none.xsd"), "none.xsd: no such file or directory"},
		{"testdata/missing.wsdl", "imported file not found"},
	}
	for _, c := range cases {
		_, err := LoadSchema(c.path)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: want an error with %q, got %v", c.path, c.want, err)
		}
	}
}
