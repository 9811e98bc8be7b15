package wsdl

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
)

// corpusCases names the WSDL to load in every corpus folder and what Load
// must say about it. err is a substring of the expected error; "" means
// Load succeeds.
var corpusCases = []struct {
	folder, file string
	err          string
	services     int
	ops          int      // SOAP operations over all bindings
	versions     []string // SOAP versions of the ports, sorted
}{
	{"adec-mast-rpc-encoded", "TestService.wsdl", "", 1, 1, []string{"1.1"}},
	{"blz-service", "BLZService.wsdl", "", 1, 2, []string{"1.1", "1.2", "none"}},
	{"calculator-dneonline", "CalculatorService.wsdl", "", 1, 8, []string{"1.1", "1.2"}},
	{"chameleon-include-multibinding", "TestService.wsdl", "", 2, 8, []string{"1.1", "1.1"}},
	{"chromedata-autos", "chromedata.wsdl", "", 1, -1, []string{"1.1"}},
	{"countryinfo-oorsprong", "CountryInfoService.wsdl", "", 1, -1, []string{"1.1", "1.2"}},
	{"currency-convertor", "currency-convertor.wsdl", "", 1, 2, []string{"1.1", "1.2", "none", "none"}},
	{"globalweather", "GlobalWeather.wsdl", "", 1, 4, []string{"1.1", "1.2", "none", "none"}},
	{"gs1-epcis-query-xsdimports", "EPCglobal-epcis-query-1_2.wsdl", "", 1, -1, []string{"1.1"}},
	{"kingdee-eas-easlogin", "EASLogin.wsdl", "", 1, 8, []string{"1.1"}},
	{"magento-rpc-encoded", "soap.wsdl", "", 1, 1, []string{"1.1"}},
	{"mnb-exchange-rates", "mnb-exchange.wsdl", "", 1, -1, []string{"1.1", "1.2"}},
	{"netsuite-login-fault", "soap.wsdl", `soap.platform.core.xsd: xsd:import schemaLocation="../../platform/platform.coreTypes.xsd"`, 0, 0, nil},
	{"numberconversion-dataaccess", "NumberConversion.wsdl", "", 1, 4, []string{"1.1", "1.2"}},
	{"sap-ecc-zportal-deliverycreate", "ZPortal_DeliveryCreate.wsdl", "", 1, 1, []string{"1.1"}},
	{"sap-ecc-zrfcsdpricesimulate", "HCI_ZRFCSDPRICESIMULATE_V3.wsdl", "", 1, 1, []string{"1.1"}},
	{"sap-es-queryorganisationalunitin", "QueryOrganisationalUnitIn.wsdl", "", 1, 1, []string{"1.2"}},
	{"sap-pi-hr0007-kqmx", "SI_OA_OUT_HR0007.wsdl", "", 1, 1, []string{"1.1", "1.1"}},
	{"sap-pi-storedata-anon", "SI_O_SYSTEM_STOREDATA.wsdl", "", 1, 2, []string{"1.1", "1.1"}},
	{"split-wsdl-import-nested", "TestService.wsdl", "", 1, -1, []string{"1.1"}},
	{"stockquote-rpc-encoded", "stockquote-ws.wsdl", "", 1, 1, []string{"1.1"}},
	{"stockquote-rpc-literal", "TestService.wsdl", "", 1, 2, []string{"1.1"}},
	{"tempconvert-w3schools", "TempConvert.wsdl", "", 1, 4, []string{"1.1", "1.2", "none"}},
	{"vecozo-soap12-xsdimport", "soap.wsdl", "", 1, 2, []string{"1.1", "1.2"}},
	{"wcf-farequote-wsdlimport", "soap.wsdl", "", 1, 1, []string{"1.1"}},
	{"weaver-ofs-financebase", "FinanceBase.wsdl", "", 1, 14, []string{"1.1"}},
	{"wsdot-ferries", "ferry.wsdl", "", 1, -1, []string{"1.1", "1.2", "none", "none"}},
	{"yonyou-u9-sevenu9weaver", "SevenU9Weaver.wsdl", "", 1, 26, []string{"1.1", "1.2"}},
	{"zeep-soap-header", "soap_header.wsdl", "", 1, 1, []string{"1.1"}},
	{"zeep-wsdl-import", "soap_import_main.wsdl", "", 1, 1, []string{"1.1"}},
}

// TestLoadCorpus loads every corpus WSDL: it loads or fails with the
// documented error, and its services and operations match the golden file.
func TestLoadCorpus(t *testing.T) {
	corpus := corpusDir(t)
	entries, err := os.ReadDir(corpus)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, c := range corpusCases {
		listed[c.folder] = true
	}
	for _, e := range entries {
		if e.IsDir() && !listed[e.Name()] {
			t.Errorf("corpus folder %s has no case in corpusCases", e.Name())
		}
	}
	for i, c := range corpusCases {
		t.Run(c.folder, func(t *testing.T) {
			path := filepath.Join(corpus, c.folder, c.file)
			d, err := Load(path)
			if c.err != "" {
				if err == nil {
					t.Fatalf("case %d: want error containing %q, got none", i, c.err)
				}
				if !strings.Contains(err.Error(), c.err) || !strings.HasPrefix(err.Error(), "wsdl: ") {
					t.Fatalf("case %d: want error containing %q, got %q", i, c.err, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("case %d: want no error, got %v", i, err)
			}
			if got := len(d.Services); got != c.services {
				t.Errorf("case %d: want %d services, got %d", i, c.services, got)
			}
			if got := len(d.Operations()); c.ops >= 0 && got != c.ops {
				t.Errorf("case %d: want %d SOAP operations, got %d", i, c.ops, got)
			}
			var vs []string
			for _, s := range d.Services {
				for _, p := range s.Ports {
					vs = append(vs, p.SOAP.String())
				}
			}
			sort.Strings(vs)
			if strings.Join(vs, ",") != strings.Join(c.versions, ",") {
				t.Errorf("case %d: want port versions %v, got %v", i, c.versions, vs)
			}
			for _, op := range d.Operations() {
				if op.Input.Local == "" {
					t.Errorf("case %d: operation %s/%s has no input body element", i, op.Binding, op.Name)
				}
				if op.Style != "document" && op.Style != "rpc" {
					t.Errorf("case %d: operation %s: style %q", i, op.Name, op.Style)
				}
			}
			golden(t, "load-"+c.folder+".txt", summary(d, corpus))
		})
	}
}

func TestLoadFacts(t *testing.T) {
	corpus := corpusDir(t)
	load := func(t *testing.T, rel string) *Definitions {
		t.Helper()
		d, err := Load(filepath.Join(corpus, rel))
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	ops := func(d *Definitions, name string) []Operation {
		var out []Operation
		for _, o := range d.Operations() {
			if o.Name == name {
				out = append(out, o)
			}
		}
		return out
	}

	t.Run("calculator Add in SOAP 1.1 and 1.2", func(t *testing.T) {
		d := load(t, "calculator-dneonline/CalculatorService.wsdl")
		add := ops(d, "Add")
		if len(add) != 2 {
			t.Fatalf("want 2 Add operations, got %d", len(add))
		}
		for i, want := range []bus.SOAPVersion{bus.SOAP11, bus.SOAP12} {
			o := add[i]
			if o.SOAP != want || o.Action != "http://tempuri.org/Add" || o.Style != "document" || o.Use != "literal" ||
				o.Input != (QName{"http://tempuri.org/", "Add"}) || o.Output != (QName{"http://tempuri.org/", "AddResponse"}) {
				t.Errorf("case %d: got %+v", i, o)
			}
		}
	})
	t.Run("sap-es SOAP 1.2 only", func(t *testing.T) {
		d := load(t, "sap-es-queryorganisationalunitin/QueryOrganisationalUnitIn.wsdl")
		for _, o := range d.Operations() {
			if o.SOAP != bus.SOAP12 {
				t.Errorf("want only SOAP 1.2, got %v for %s", o.SOAP, o.Name)
			}
		}
		p := d.Services[0].Ports[0]
		if p.SOAP != bus.SOAP12 || !strings.HasSuffix(p.Address, "/GETORGANISATIONALUNIT") {
			t.Errorf("got port %+v", p)
		}
		if o := d.Operations()[0]; len(o.Faults) == 0 {
			t.Errorf("want a fault on %s, got none", o.Name)
		}
	})
	t.Run("kingdee three login overloads, rpc/encoded", func(t *testing.T) {
		d := load(t, "kingdee-eas-easlogin/EASLogin.wsdl")
		login := ops(d, "login")
		if len(login) != 3 {
			t.Fatalf("want 3 login operations, got %d", len(login))
		}
		seen := map[int]bool{}
		for i, o := range login {
			if o.Style != "rpc" || o.Use != "encoded" || o.Action != "" {
				t.Errorf("case %d: got %s/%s action %q", i, o.Style, o.Use, o.Action)
			}
			if o.Input != (QName{"http://login.webservice.bos.kingdee.com", "login"}) {
				t.Errorf("case %d: input %s", i, o.Input)
			}
			if o.Output != (QName{"http://192.168.91.35:56898/ormrpc/services/EASLogin", "loginResponse"}) {
				t.Errorf("case %d: output %s", i, o.Output)
			}
			seen[len(o.InputParts)] = true
		}
		if len(seen) != 3 {
			t.Errorf("want three different part lists, got %v", login)
		}
	})
	t.Run("split WSDL with nested relative imports", func(t *testing.T) {
		d := load(t, "split-wsdl-import-nested/TestService.wsdl")
		want := []string{"TestService.wsdl", "wsdls/TestBinding.wsdl", "wsdls/xsds/testservice1.xsd", "wsdls/xsds/sub/testservice2.xsd"}
		var got []string
		for _, f := range d.Files {
			r, _ := filepath.Rel(filepath.Join(corpus, "split-wsdl-import-nested"), f)
			got = append(got, filepath.ToSlash(r))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("want files %v, got %v", want, got)
		}
		if len(d.Operations()) == 0 || d.Services[0].Ports[0].SOAP != bus.SOAP11 {
			t.Errorf("want operations through the imported binding, got %v", d.Operations())
		}
	})
	t.Run("yonyou both versions, 13 operations each", func(t *testing.T) {
		d := load(t, "yonyou-u9-sevenu9weaver/SevenU9Weaver.wsdl")
		n := map[bus.SOAPVersion]int{}
		for _, o := range d.Operations() {
			n[o.SOAP]++
		}
		if n[bus.SOAP11] != 13 || n[bus.SOAP12] != 13 {
			t.Errorf("want 13+13, got %v", n)
		}
	})
	t.Run("sap-pi address keeps its query", func(t *testing.T) {
		d := load(t, "sap-pi-hr0007-kqmx/SI_OA_OUT_HR0007.wsdl")
		a := d.Services[0].Ports[0].Address
		if !strings.Contains(a, "?senderParty=&senderService=BC_OA_Attendance_Details&") {
			t.Errorf("address not unescaped: %s", a)
		}
	})
	t.Run("zeep header parts are not the body", func(t *testing.T) {
		d := load(t, "zeep-soap-header/soap_header.wsdl")
		o := d.Operations()[0]
		if o.Input.Local != "TradePriceRequest" || strings.Join(o.InputParts, ",") != "body" {
			t.Errorf("got input %s parts %v", o.Input, o.InputParts)
		}
	})
	t.Run("remote imports are warnings", func(t *testing.T) {
		d := load(t, "zeep-wsdl-import/soap_import_main.wsdl")
		if len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "remote location not loaded") {
			t.Errorf("got warnings %q", d.Warnings)
		}
	})
}

func TestLoadMissingImport(t *testing.T) {
	corpus := corpusDir(t)
	path := filepath.Join(corpus, "netsuite-login-fault", "soap.wsdl")
	_, err := Load(path)
	if !errors.Is(err, ErrMissingImport) {
		t.Fatalf("want ErrMissingImport, got %v", err)
	}
	importer := filepath.Join(corpus, "netsuite-login-fault", "soap.platform.core.xsd")
	if !strings.HasPrefix(err.Error(), "wsdl: "+importer+": ") || !strings.Contains(err.Error(), "../../platform/platform.coreTypes.xsd") {
		t.Errorf("error must name the importing file and the missing path, got %q", err)
	}
	d, err := LoadWith(path, LoadOptions{TolerateMissingImports: true})
	if err != nil {
		t.Fatalf("tolerant load: %v", err)
	}
	if len(d.Warnings) == 0 || !strings.Contains(d.Warnings[0], "platform.coreTypes.xsd") {
		t.Errorf("want warnings naming the missing files, got %q", d.Warnings)
	}
	if len(d.Operations()) == 0 {
		t.Errorf("want the operations that could be read, got none")
	}
}

func TestLoadErrors(t *testing.T) {
	cases := []struct {
		file string
		want string // the error, with FILE for the path
		is   error
	}{
		{"testdata/nosuchfile.wsdl", "wsdl: testdata/nosuchfile.wsdl: no such file or directory", nil},
		{"testdata/missing.wsdl", `wsdl: testdata/missing.wsdl: wsdl:import location="sub/nowhere.wsdl": testdata/sub/nowhere.wsdl: imported file not found`, ErrMissingImport},
		{"testdata/broken.wsdl", "wsdl: testdata/broken.wsdl: not an XML document: line 4, column 1: element <unclosed> closed by </definitions> (<unclosed> opened at line 3, column 3)", nil},
		{"testdata/schema-only.wsdl", "wsdl: testdata/schema-only.wsdl: not a WSDL 1.1 document: the document element is <xs:schema>, want wsdl:definitions", ErrNotWSDL},
	}
	for i, c := range cases {
		_, err := Load(c.file)
		if err == nil || err.Error() != c.want {
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
		if c.is != nil && !errors.Is(err, c.is) {
			t.Errorf("case %d: want errors.Is %v", i, c.is)
		}
	}
}

func TestLoadTestdata(t *testing.T) {
	for _, name := range []string{"orders/orders.wsdl", "gbk/voucher-gbk.wsdl"} {
		d, err := Load(filepath.Join("testdata", name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		golden(t, "load-testdata-"+strings.ReplaceAll(filepath.Dir(name), "/", "-")+".txt", summary(d, "testdata"))
	}
}

func TestFindOperation(t *testing.T) {
	d, err := Load("testdata/orders/orders.wsdl")
	if err != nil {
		t.Fatal(err)
	}
	o := QName{"urn:busbar:test:orders", ""}
	el := func(l string) QName { return QName{o.Space, l} }
	cases := []struct {
		v       bus.SOAPVersion
		action  string
		body    QName
		binding string // "" when no match is wanted
		name    string
	}{
		{bus.SOAP11, `"urn:busbar:test:PlaceOrder"`, QName{}, "OrdersSoap", "PlaceOrder"},
		{bus.SOAP12, "urn:busbar:test:PlaceOrder", QName{}, "OrdersSoap12", "PlaceOrder"},
		{bus.SOAP11, "", el("Cancel"), "OrdersSoap", "Cancel"},
		{bus.SOAP12, "", el("Cancel"), "OrdersSoap12", "Cancel"},
		{bus.SOAP11, "urn:unknown", el("PlaceOrder"), "OrdersSoap", "PlaceOrder"}, // body decides
		{0, "urn:busbar:test:Cancel", QName{}, "OrdersSoap", "Cancel"},
		{bus.SOAP12, "urn:busbar:test:Cancel", QName{}, "", ""}, // the 1.2 binding has no such action
		{bus.SOAP11, "", QName{"urn:other", "Cancel"}, "", ""},
		{bus.SOAP11, "", QName{}, "", ""},
	}
	for i, c := range cases {
		got, ok := d.FindOperation(c.v, c.action, c.body)
		if ok != (c.binding != "") || got.Binding != c.binding || got.Name != c.name {
			t.Errorf("case %d: want %s/%s, got %s/%s (found %v)", i, c.binding, c.name, got.Binding, got.Name, ok)
		}
	}
}

func TestFindOperationCorpus(t *testing.T) {
	corpus := corpusDir(t)
	cases := []struct {
		file   string
		v      bus.SOAPVersion
		action string
		body   QName
		want   string // binding/name
	}{
		{"calculator-dneonline/CalculatorService.wsdl", bus.SOAP11, "http://tempuri.org/Add", QName{}, "CalculatorSoap/Add"},
		{"calculator-dneonline/CalculatorService.wsdl", bus.SOAP12, "", QName{"http://tempuri.org/", "Divide"}, "CalculatorSoap12/Divide"},
		{"kingdee-eas-easlogin/EASLogin.wsdl", bus.SOAP11, "", QName{"http://login.webservice.bos.kingdee.com", "loginSale"}, "EASLoginSoapBinding/loginSale"},
		{"sap-pi-storedata-anon/SI_O_SYSTEM_STOREDATA.wsdl", bus.SOAP11, "http://example.com/xi/WebService/soap1.1",
			QName{"urn:company-com:document:company:rfc:functions", "Z_STORE_TEMPLATE_GET_DATA"}, "SI_O_SYSTEM_STOREDATABinding/GET_DATA"},
		{"stockquote-rpc-literal/TestService.wsdl", bus.SOAP11, "", QName{"http://reficio.org/stockquote.wsdl", "GetLastTradePrice2"}, "StockQuoteSoapBinding/GetLastTradePrice2"},
	}
	for i, c := range cases {
		d, err := Load(filepath.Join(corpus, c.file))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := d.FindOperation(c.v, c.action, c.body)
		if !ok || got.Binding+"/"+got.Name != c.want {
			t.Errorf("case %d: want %s, got %s/%s (%v)", i, c.want, got.Binding, got.Name, ok)
		}
	}
}
