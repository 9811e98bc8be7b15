package routes

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// sapSuppliers answers Z_SUPPLIER_LIST like SAP: company 1000 has one
// supplier, 2000 two (and a warning), 3000 none (an empty table).
func sapSuppliers(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		one := `<item><LIFNR>0000100001</LIFNR><NAME1>北京差旅服务有限公司</NAME1><RECON_ACCOUNT>0021100000</RECON_ACCOUNT><BALANCE>0001280.50</BALANCE><BLOCKED>false</BLOCKED></item>`
		var suppliers, ret string
		switch {
		case bytes.Contains(body, []byte("<IV_COMP_CODE>1000<")):
			suppliers = one
		case bytes.Contains(body, []byte("<IV_COMP_CODE>2000<")):
			suppliers = one + `<item><LIFNR>0000100002</LIFNR><NAME1>Shanghai Office Supply</NAME1><RECON_ACCOUNT>0021100000</RECON_ACCOUNT><BALANCE>-12345678901234.99</BALANCE><BLOCKED>1</BLOCKED></item>`
			ret = `<ET_RETURN><item><TYPE>W</TYPE><MESSAGE>Supplier 0000100002 is blocked</MESSAGE></item></ET_RETURN>`
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><soap-env:Envelope xmlns:soap-env="http://schemas.xmlsoap.org/soap/envelope/"><soap-env:Header/><soap-env:Body>`+
			`<n0:Z_SUPPLIER_LIST.Response xmlns:n0="urn:sap-com:document:sap:rfc:functions"><ET_SUPPLIERS>`+suppliers+`</ET_SUPPLIERS>`+ret+
			`</n0:Z_SUPPLIER_LIST.Response></soap-env:Body></soap-env:Envelope>`)
	}))
}

// A REST route calling a SOAP connector that names its WSDL (the demo's
// supplier list, pointed at a raw SAP-style backend): the reply is JSON by
// the schema — one supplier is still an array, an empty table is [], codes
// keep their leading zeros, amounts are exact numbers.
func TestSchemaAwareSOAPReply(t *testing.T) {
	sap := sapSuppliers(t)
	defer sap.Close()
	t.Setenv("SAP_SUPPLIERS_URL", sap.URL)
	b := start(t, examples)
	cases := []struct{ company, golden string }{
		{"1000", "schema-suppliers-one.json"},
		{"2000", "schema-suppliers-two.json"},
		{"3000", "schema-suppliers-none.json"},
	}
	for _, c := range cases {
		r := b.postJSON(t, "/api/v1/suppliers", `{"companyCode": "`+c.company+`"}`)
		r.expect(t, 200, "application/json")
		golden(t, c.golden, r.Body+"\n")
	}
	// The facts the goldens show, so that -update cannot bless a regression.
	r := b.postJSON(t, "/api/v1/suppliers", `{"companyCode": "1000"}`)
	for _, want := range []string{`"ET_SUPPLIERS":{"item":[{"LIFNR":"0000100001"`, `"RECON_ACCOUNT":"0021100000"`, `"BALANCE":1280.50`, `"BLOCKED":false`, `"ET_RETURN"`} {
		if want == `"ET_RETURN"` {
			if strings.Contains(r.Body, want) {
				t.Errorf("ET_RETURN is absent from the reply, so it must be absent from the JSON: %s", r.Body)
			}
			continue
		}
		if !strings.Contains(r.Body, want) {
			t.Errorf("want %s in %s", want, r.Body)
		}
	}
}

// A SOAP facade with a WSDL and charset gbk in front of a REST service:
// the service gets typed JSON (one line is still an array), the caller gets
// the response elements in schema order, in GBK, with Chinese intact.
func TestSchemaAwareFacadeGBK(t *testing.T) {
	var mu sync.Mutex
	var got []byte
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		got, _ = io.ReadAll(r.Body)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		// Keys in another order than the WSDL's, an extra member, one message.
		io.WriteString(w, `{"message": ["已受理：差旅费"], "approved": true, "total": 1280.50, "links": {"self": "/claims/0000077"}, "status": "已提交", "claimId": "0000077"}`)
	}))
	defer api.Close()
	t.Setenv("CLAIMS_URL", api.URL)
	t.Setenv("OA_URL", api.URL)
	b := start(t, "testdata/schema")

	request := `<?xml version="1.0" encoding="GBK"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>
<c:SubmitClaim xmlns:c="urn:busbar:test:claims"><c:claimNo>BX-2026-0001</c:claimNo><c:employee>张三</c:employee>
<c:account>0066100000</c:account><c:urgent>1</c:urgent><c:lines><c:line><c:text>北京差旅费</c:text><c:amount>01280.50</c:amount></c:line></c:lines></c:SubmitClaim>
</soap:Body></soap:Envelope>`
	gbk, err := simplifiedchinese.GBK.NewEncoder().String(request)
	if err != nil {
		t.Fatal(err)
	}
	r := b.do(t, http.MethodPost, "/soap/claims", map[string]string{"Content-Type": "text/xml", "SOAPAction": `"urn:busbar:test:claims:SubmitClaim"`}, gbk)
	r.expect(t, 200, "text/xml; charset=GBK")

	mu.Lock()
	golden(t, "schema-claim-backend.json", string(got)+"\n")
	mu.Unlock()
	if want := `{"SubmitClaim":{"claimNo":"BX-2026-0001","employee":"张三","account":"0066100000","urgent":true,"lines":{"line":[{"text":"北京差旅费","amount":1280.50}]}}}`; string(got) != want {
		t.Errorf("the REST service got\n%s\nwant\n%s", got, want)
	}

	// On the wire: GBK bytes, declared as such, no UTF-8 left.
	const decl = `<?xml version="1.0" encoding="GBK"?>`
	if !strings.HasPrefix(r.Body, decl+"\n") {
		t.Errorf("the reply does not start with %s:\n%q", decl, r.Body)
	}
	if strings.Contains(r.Body, "已提交") {
		t.Error("the reply carries UTF-8 text")
	}
	utf8Body, err := simplifiedchinese.GBK.NewDecoder().String(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "schema-claim-reply.xml", utf8Body+"\n")
	if want := `<SubmitClaimResponse xmlns="urn:busbar:test:claims"><claimId>0000077</claimId><status>已提交</status><total>1280.50</total><approved>true</approved><message>已受理：差旅费</message></SubmitClaimResponse>`; !strings.Contains(utf8Body, want) {
		t.Errorf("want %s in\n%s", want, utf8Body)
	}
}

// A facade in GBK answers faults in GBK too; a reply with a character GBK
// lacks carries it as a character reference, never a "?", and never fails:
// the backend has acted on the request by then.
func TestFacadeGBKUnencodable(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"claimId": "1", "status": "通过😀", "total": 1, "approved": true}`)
	}))
	defer api.Close()
	t.Setenv("CLAIMS_URL", api.URL)
	t.Setenv("OA_URL", api.URL)
	b := start(t, "testdata/schema")
	claim := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><SubmitClaim xmlns="urn:busbar:test:claims"><claimNo>1</claimNo><employee>e</employee><account>1</account><lines><line><text>t</text><amount>1</amount></line></lines></SubmitClaim></soap:Body></soap:Envelope>`
	r := b.postSOAP11(t, "/soap/claims", "urn:busbar:test:claims:SubmitClaim", claim)
	r.expect(t, 200, "text/xml; charset=GBK")
	status, _ := simplifiedchinese.GBK.NewEncoder().String("<status>通过&#x1F600;</status>")
	if !strings.HasPrefix(r.Body, `<?xml version="1.0" encoding="GBK"?>`) || !strings.Contains(r.Body, status) {
		t.Errorf("want a GBK reply with &#x1F600;:\n%s", r.Body)
	}
	// A broken envelope: a Client fault, in GBK as well.
	r = b.postSOAP11(t, "/soap/claims", "", `<soap:Envelope`)
	r.expect(t, 500, "text/xml; charset=GBK")
	if !strings.Contains(r.Body, "<faultcode>soap:Client</faultcode>") {
		t.Errorf("want a Client fault:\n%s", r.Body)
	}
}

// A SOAP connector with charset gbk: the backend receives GBK bytes with a
// matching declaration and Content-Type; its GBK reply (declared only in
// the XML declaration) comes back to the REST caller as UTF-8 JSON.
func TestSOAPConnectorSendsGBK(t *testing.T) {
	var mu sync.Mutex
	var raw []byte
	var contentType string
	oa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		raw, _ = io.ReadAll(r.Body)
		contentType = r.Header.Get("Content-Type")
		mu.Unlock()
		reply, _ := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GBK"?><S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><ImportVoucherResponse><result>导入成功</result><voucherNo>0000012</voucherNo></ImportVoucherResponse></S:Body></S:Envelope>`)
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, reply)
	}))
	defer oa.Close()
	t.Setenv("OA_URL", oa.URL)
	t.Setenv("CLAIMS_URL", oa.URL)
	b := start(t, "testdata/schema")

	r := b.postJSON(t, "/api/oa/vouchers", `{"voucherNo": "0000012", "summary": "差旅费报销"}`)
	r.expect(t, 200, "application/json")
	if want := `{"ImportVoucherResponse":{"result":"导入成功","voucherNo":"0000012"}}`; r.Body != want {
		t.Errorf("want %s, got %s", want, r.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if contentType != "text/xml; charset=GBK" {
		t.Errorf("Content-Type %q", contentType)
	}
	summary, _ := simplifiedchinese.GBK.NewEncoder().String("差旅费报销")
	if !bytes.HasPrefix(raw, []byte(`<?xml version="1.0" encoding="GBK"?>`+"\n")) || !bytes.Contains(raw, []byte(summary)) || bytes.Contains(raw, []byte("差旅费报销")) {
		t.Errorf("the backend did not get GBK:\n%q", raw)
	}
	decoded, err := simplifiedchinese.GBK.NewDecoder().Bytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "schema-oa-gbk-request.xml", string(decoded)+"\n")

	// Text GBK cannot carry is refused with a 422 before anything is sent.
	raw = nil
	mu.Unlock()
	r = b.postJSON(t, "/api/oa/vouchers", `{"voucherNo": "1", "summary": "表情😀"}`)
	mu.Lock()
	r.expect(t, 422, "application/problem+json")
	if !strings.Contains(r.Body, "character U+1F600") || raw != nil {
		t.Errorf("want a 422 naming U+1F600 and no call, got %s (backend got %q)", r.Body, raw)
	}
}

// The demo's supplier list: SAP's reply, unmapped, converted by the
// connector's WSDL as the REST client sees it.
func TestExampleSupplierList(t *testing.T) {
	b := start(t, examples)
	cases := []struct{ company, golden string }{
		{"1000", "example-suppliers-one.json"},
		{"2000", "example-suppliers-two.json"},
		{"3000", "example-suppliers-none.json"},
	}
	for _, c := range cases {
		r := b.postJSON(t, "/api/v1/suppliers", `{"companyCode": "`+c.company+`"}`)
		r.expect(t, 200, "application/json")
		golden(t, c.golden, r.Body+"\n")
	}
	r := b.postJSON(t, "/api/v1/suppliers", `{"companyCode": "1000"}`)
	if want := `{"Z_SUPPLIER_LIST.Response":{"ET_SUPPLIERS":{"item":[{"LIFNR":"0000100001","NAME1":"北京差旅服务有限公司","RECON_ACCOUNT":"0021100000","BALANCE":1280.50,"BLOCKED":false}]}}}`; r.Body != want {
		t.Errorf("want %s\n got %s", want, r.Body)
	}
}
