package wsdl

import (
	"path/filepath"
	"testing"
)

// TestElementGolden renders element trees into golden files.
func TestElementGolden(t *testing.T) {
	corpus := corpusDir(t)
	cases := []struct {
		golden string
		file   string // relative to the corpus, or "testdata/…"
		elem   QName
	}{
		{"schema-orders-PlaceOrder.txt", "testdata/orders/orders.wsdl", QName{"urn:busbar:test:orders", "PlaceOrder"}},
		{"schema-orders-PlaceOrderResponse.txt", "testdata/orders/orders.wsdl", QName{"urn:busbar:test:orders", "PlaceOrderResponse"}},
		{"schema-sap-ecc-Zrfcsdpricesimulate.txt", "sap-ecc-zrfcsdpricesimulate/HCI_ZRFCSDPRICESIMULATE_V3.wsdl", QName{"urn:sap-com:document:sap:soap:functions:mc-style", "ZrfcsdpricesimulateResponse"}},
		{"schema-sap-ecc-Zrfcsddeliverycreate.txt", "sap-ecc-zportal-deliverycreate/ZPortal_DeliveryCreate.wsdl", QName{"urn:sap-com:document:sap:soap:functions:mc-style", "Zrfcsddeliverycreate"}},
		{"schema-chameleon-createLink.txt", "chameleon-include-multibinding/TestService.wsdl", QName{"http://api.ifyouwannabecool.com/", "createLink"}},
		{"schema-chameleon-readPersonasResponse.txt", "chameleon-include-multibinding/TestService.wsdl", QName{"http://api.ifyouwannabecool.com/", "readPersonasResponse"}},
		{"schema-sap-es-query.txt", "sap-es-queryorganisationalunitin/QueryOrganisationalUnitIn.wsdl", QName{"http://sap.com/xi/SAPGlobal20/Global", "OrganisationalUnitByIDQuery_Sync"}},
		{"schema-storedata-GET_DATA-response.txt", "sap-pi-storedata-anon/SI_O_SYSTEM_STOREDATA.wsdl", QName{"urn:company-com:document:company:rfc:functions", "Z_STORE_TEMPLATE_GET_DATA.Response"}},
		{"schema-gbk.txt", "testdata/gbk/voucher-gbk.wsdl", QName{"urn:busbar:test:gbk", "导入凭证"}},
	}
	for i, c := range cases {
		path := c.file
		if filepath.Dir(filepath.Dir(path)) != "testdata" {
			path = filepath.Join(corpus, c.file)
		}
		d, err := Load(path)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		e, ok := d.Element(c.elem)
		if !ok {
			t.Errorf("case %d: element %s not found", i, c.elem)
			continue
		}
		golden(t, c.golden, renderElement(e))
	}
}

func TestElementFacts(t *testing.T) {
	corpus := corpusDir(t)
	d, err := Load(filepath.Join(corpus, "sap-ecc-zrfcsdpricesimulate", "HCI_ZRFCSDPRICESIMULATE_V3.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	mc := "urn:sap-com:document:sap:soap:functions:mc-style"
	e, ok := d.Element(QName{mc, "ZrfcsdpricesimulateResponse"})
	if !ok {
		t.Fatal("ZrfcsdpricesimulateResponse not found")
	}
	items := e.Child("EtItems")
	if items == nil || items.Name.Space != "" || items.Repeats {
		t.Fatalf("want an unqualified, single EtItems, got %+v", items)
	}
	item := items.Child("item")
	if item == nil || !item.Repeats || item.MaxOccurs != -1 || item.MinOccurs != 0 {
		t.Fatalf("want item repeating 0..unbounded, got %+v", item)
	}
	var order []string
	for _, c := range item.Children {
		order = append(order, c.Name.Local)
	}
	if got := order[:4]; got[0] != "Sequenceno" || got[1] != "Itemno" || got[2] != "Productid" || got[3] != "Price" {
		t.Errorf("want sequence order, got %v", order)
	}
	if p := item.Child("Price"); p.Simple != "decimal" || p.Type != (QName{"urn:sap-com:document:sap:rfc:functions", "decimal23.4"}) {
		t.Errorf("Price: want decimal via rfc:decimal23.4, got %+v", p)
	}
	if p := item.Child("Currency"); p.Simple != "string" || p.Repeats {
		t.Errorf("Currency: got %+v", p)
	}

	// Chameleon include: the included types resolve in the including namespace.
	d, err = Load(filepath.Join(corpus, "chameleon-include-multibinding", "TestService.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	e, ok = d.Element(QName{"http://api.ifyouwannabecool.com/", "readPersonasResponse"})
	if !ok || e.Child("return") == nil || e.Child("return").Type != (QName{"http://api.ifyouwannabecool.com/", "persona"}) ||
		e.Child("return").Child("picture") == nil || e.Child("return").Child("picture").Simple != "base64Binary" {
		t.Fatalf("readPersonasResponse: want children from the chameleon type persona, got %s", renderElement(e))
	}

	// Own testdata: ref, extension, recursion, group choice, repeating sequence.
	d, err = Load("testdata/orders/orders.wsdl")
	if err != nil {
		t.Fatal(err)
	}
	o := "urn:busbar:test:orders"
	e, _ = d.Element(QName{o, "PlaceOrder"})
	checks := []struct {
		name   string
		ok     bool
		detail string
	}{
		{"OrderNo ref", e.Child("OrderNo") != nil && e.Child("OrderNo").Simple == "token" && e.Child("OrderNo").Name.Space == o, ""},
		{"customer base first", len(e.Child("customer").Children) == 3 && e.Child("customer").Children[0].Name.Local == "name" && e.Child("customer").Children[2].Simple == "date", ""},
		{"vatId nillable", e.Child("customer").Child("vatId").Nillable, ""},
		{"category recursion cut", e.Child("category").Child("parent").Recursive, ""},
		{"choice", e.Child("invoice").Choice && e.Child("card").Choice && e.Child("invoice").Simple == "boolean", ""},
		{"line repeats via sequence", e.Child("line").Repeats && e.Child("line").Child("price").Simple == "decimal", ""},
		{"chameleon locals follow the included schema (unqualified)", e.Child("line").Child("sku").Name.Space == "", ""},
		{"simpleContent", e.Child("note").Simple == "string", ""},
		{"any", e.Any, ""},
	}
	for i, c := range checks {
		if !c.ok {
			t.Errorf("case %d (%s): failed; tree:\n%s", i, c.name, renderElement(e))
		}
	}
	f, _ := d.Element(QName{o, "OrderFault"})
	if f.Child("code").Name.Space != "" {
		t.Errorf("form=unqualified ignored: %s", f.Child("code").Name)
	}
	if _, ok := d.Element(QName{o, "Nope"}); ok {
		t.Errorf("unknown element found")
	}
}
