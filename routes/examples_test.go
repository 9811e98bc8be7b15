package routes

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/transforms"
)

// The demo that `make run` serves, end to end, as a client sees it.

const examples = "../examples"

const balancedVoucher = `{
  "companyCode": "1000", "date": "2026-11-20", "currency": "CNY", "voucherNo": "EXP-2026-0001",
  "description": "Travel Shanghai",
  "lines": [
    {"glAccount": "0066100000", "costCenter": "0000001000", "amount": 1250.10, "text": "Flight"},
    {"glAccount": "0021100000", "amount": "-1250.1", "text": "Payable to employee"}]}`

func TestExamplesValidate(t *testing.T) {
	t.Setenv("BUSBAR_DEMO_URL", "http://127.0.0.1:1")
	cfg, err := Load(examples)
	if err != nil {
		t.Fatalf("examples/ must validate:\n%v", err)
	}
	defer cfg.Close()
	if len(cfg.Routes) < 6 || len(cfg.Connectors) < 2 {
		t.Errorf("examples: %d routes, %d connectors", len(cfg.Routes), len(cfg.Connectors))
	}
}

func TestRESTToSOAP(t *testing.T) {
	b := start(t, examples)
	t.Run("posted", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", balancedVoucher)
		r.expect(t, 200, "application/json")
		golden(t, "voucher-posted.json", r.Body)
		if r.Header.Get("X-Correlation-ID") == "" {
			t.Error("no X-Correlation-ID on the reply")
		}
	})
	t.Run("business-error-in-200", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", `{"companyCode":"1000","date":"2026-11-20","currency":"CNY","voucherNo":"EXP-2","lines":[{"glAccount":"0066100000","amount":10.00}]}`)
		r.expect(t, 422, "application/problem+json")
		golden(t, "voucher-unbalanced.problem.json", r.Body)
	})
	t.Run("soap-fault", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", `{"companyCode":"9999","date":"2026-11-20","currency":"CNY","voucherNo":"EXP-3","lines":[]}`)
		r.expect(t, 502, "application/problem+json")
		golden(t, "voucher-soap-fault.problem.json", r.Body)
	})
	t.Run("broken-json", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", "{\n  \"companyCode\": \"1000\",\n  \"lines\": [}\n")
		r.expect(t, 400, "application/problem+json")
		golden(t, "voucher-broken-json.problem.json", r.Body)
	})
	t.Run("bad-date", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", `{"companyCode":"1000","date":"20.11.2026","currency":"CNY","voucherNo":"EXP-4","lines":[]}`)
		r.expect(t, 422, "application/problem+json")
		if !strings.Contains(r.Body, `(input $.date)`) || strings.Contains(r.Body, "DOC_DATE") {
			t.Errorf("the error should name the input, not the mapping's insides:\n%s", r.Body)
		}
	})
	t.Run("wrong-content-type", func(t *testing.T) {
		r := b.do(t, "POST", "/api/v1/vouchers", map[string]string{"Content-Type": "text/plain"}, "hello")
		r.expect(t, 415, "application/problem+json")
	})
	t.Run("not-found", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/nothing", `{}`)
		r.expect(t, 404, "application/problem+json")
	})
	t.Run("method-not-allowed", func(t *testing.T) {
		r := b.do(t, "GET", "/api/v1/vouchers", nil, "")
		r.expect(t, 405, "application/problem+json")
	})
	t.Run("body-too-large", func(t *testing.T) {
		r := b.postJSON(t, "/api/v1/vouchers", `{"pad":"`+strings.Repeat("x", 1<<20)+`"}`)
		r.expect(t, 413, "application/problem+json")
	})
	t.Run("healthz", func(t *testing.T) {
		r := b.do(t, "GET", "/healthz", nil, "")
		r.expect(t, 200, "text/plain; charset=utf-8")
	})
}

const submit11 = `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:e="urn:busbar:demo:expense">
  <soap:Body><e:SubmitExpense><e:employeeId>E1001</e:employeeId><e:claimNo>OA-77</e:claimNo>
    <e:date>2026-11-20</e:date><e:currency>CNY</e:currency><e:amount>380.50</e:amount>
    <e:purpose>Taxi 出租车</e:purpose></e:SubmitExpense></soap:Body></soap:Envelope>`

func submit12(employee, amount string) string {
	return `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>
<SubmitExpense xmlns="urn:busbar:demo:expense"><employeeId>` + employee + `</employeeId><claimNo>OA-78</claimNo>
<date>2026-11-20</date><currency>CNY</currency><amount>` + amount + `</amount></SubmitExpense></env:Body></env:Envelope>`
}

const (
	actionSubmit = "urn:busbar:demo:expense:SubmitExpense"
	actionStatus = "urn:busbar:demo:expense:GetExpenseStatus"
)

func TestSOAPToREST(t *testing.T) {
	b := start(t, examples)
	cases := []struct {
		name        string
		send        func() reply
		status      int
		contentType string
	}{
		{"submit-soap11", func() reply { return b.postSOAP11(t, "/soap/expense", actionSubmit, submit11) }, 200, "text/xml; charset=utf-8"},
		{"submit-soap12", func() reply { return b.postSOAP12(t, "/soap/expense", actionSubmit, submit12("E1001", "99.99")) }, 200, "application/soap+xml; charset=utf-8"},
		// Without SOAPAction the body element picks the operation.
		{"submit-no-action", func() reply { return b.postSOAP11(t, "/soap/expense", "", submit11) }, 200, "text/xml; charset=utf-8"},
		{"status-soap11", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionStatus, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetExpenseStatus xmlns="urn:busbar:demo:expense"><claimId>CLM-OA 77/x</claimId></GetExpenseStatus></s:Body></s:Envelope>`)
		}, 200, "text/xml; charset=utf-8"},
		// REST 4xx → Client / Sender fault.
		{"limit-soap11", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, strings.Replace(submit11, "380.50", "50000.01", 1))
		}, 500, "text/xml; charset=utf-8"},
		{"limit-soap12", func() reply { return b.postSOAP12(t, "/soap/expense", actionSubmit, submit12("E1001", "99000")) }, 400, "application/soap+xml; charset=utf-8"},
		// REST 5xx → Server / Receiver fault.
		{"unavailable-soap11", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, strings.Replace(submit11, "E1001", "E000", 1))
		}, 500, "text/xml; charset=utf-8"},
		{"unavailable-soap12", func() reply { return b.postSOAP12(t, "/soap/expense", actionSubmit, submit12("E000", "1")) }, 500, "application/soap+xml; charset=utf-8"},
		// Broken envelopes: the caller's own fault format.
		{"broken-soap11", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><x>`)
		}, 500, "text/xml; charset=utf-8"},
		{"broken-soap12", func() reply {
			return b.postSOAP12(t, "/soap/expense", actionSubmit, `<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body></x></env:Body>`)
		}, 400, "application/soap+xml; charset=utf-8"},
		{"version-mismatch", func() reply { return b.postSOAP12(t, "/soap/expense", actionSubmit, submit11) }, 400, "application/soap+xml; charset=utf-8"},
		{"unknown-operation", func() reply {
			return b.postSOAP11(t, "/soap/expense", "urn:nope", `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Nope/></s:Body></s:Envelope>`)
		}, 500, "text/xml; charset=utf-8"},
		// The body element is matched by namespace and local name: the
		// right name in another namespace is another element.
		{"foreign-namespace", func() reply {
			return b.postSOAP11(t, "/soap/expense", "", strings.Replace(submit11, "urn:busbar:demo:expense", "urn:evil", 1))
		}, 500, "text/xml; charset=utf-8"},
		{"foreign-namespace-with-action", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, strings.Replace(submit11, "urn:busbar:demo:expense", "urn:evil", 1))
		}, 500, "text/xml; charset=utf-8"},
		// A SOAPAction naming one operation and a body element of another
		// is refused, not served by either.
		{"action-mismatch", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><GetExpenseStatus xmlns="urn:busbar:demo:expense"><claimId>CLM-1</claimId></GetExpenseStatus></s:Body></s:Envelope>`)
		}, 500, "text/xml; charset=utf-8"},
		{"action-mismatch-soap12", func() reply { return b.postSOAP12(t, "/soap/expense", actionStatus, submit12("E1001", "99.99")) }, 400, "application/soap+xml; charset=utf-8"},
		{"must-understand", func() reply {
			return b.postSOAP11(t, "/soap/expense", actionSubmit, strings.Replace(submit11, "<soap:Body>",
				`<soap:Header><w:Security xmlns:w="urn:x" soap:mustUnderstand="1"/></soap:Header><soap:Body>`, 1))
		}, 500, "text/xml; charset=utf-8"},
		{"not-soap-content-type", func() reply {
			return b.do(t, "POST", "/soap/expense", map[string]string{"Content-Type": "application/json"}, "{}")
		}, 415, "text/xml; charset=utf-8"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := c.send()
			r.expect(t, c.status, c.contentType)
			golden(t, "soap-"+c.name+".xml", r.Body)
			doc := etree.NewDocument()
			if err := doc.ReadFromString(r.Body); err != nil {
				t.Fatalf("the reply is not XML: %v", err)
			}
		})
	}
}

func TestFacadeWSDL(t *testing.T) {
	b := start(t, examples)
	for _, q := range []string{"?wsdl", "?WSDL"} {
		r := b.do(t, "GET", "/soap/expense"+q, nil, "")
		r.expect(t, 200, "text/xml; charset=utf-8")
		doc := etree.NewDocument()
		if err := doc.ReadFromString(r.Body); err != nil {
			t.Fatal(err)
		}
		addrs := doc.FindElements("//address")
		if len(addrs) != 2 {
			t.Fatalf("want 2 addresses (SOAP 1.1 and 1.2 ports), got %d", len(addrs))
		}
		for _, a := range addrs {
			if got := a.SelectAttrValue("location", ""); got != b.URL+"/soap/expense" {
				t.Errorf("address %q, want %q", got, b.URL+"/soap/expense")
			}
		}
	}
	r := b.do(t, "GET", "/soap/expense", nil, "")
	r.expect(t, 404, "application/problem+json")
}

// The OA reimbursement example: a GBK SOAP 1.1 request in, one balanced SAP
// document (grouped by account) out, and a GBK reply.
func TestOAReimbursementGBK(t *testing.T) {
	b := start(t, examples)
	form, err := os.ReadFile(examples + "/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		t.Fatal(err)
	}
	send := func(t *testing.T, body []byte) (reply, string) {
		r := b.do(t, "POST", "/soap/oa/reimbursement", map[string]string{
			"Content-Type": "text/xml; charset=GBK",
			"SOAPAction":   `"http://oa.example.cn/finance/reimbursement/SubmitReimbursement"`}, string(body))
		r.expect(t, r.Status, "text/xml; charset=GBK")
		utf8, err := simplifiedchinese.GBK.NewDecoder().String(r.Body)
		if err != nil {
			t.Fatalf("the reply is not GBK: %v", err)
		}
		return r, utf8
	}
	t.Run("posted", func(t *testing.T) {
		r, text := send(t, form)
		if r.Status != 200 {
			t.Fatalf("status %d:\n%s", r.Status, text)
		}
		golden(t, "oa-reimbursement-posted.xml", text)
	})
	t.Run("unknown-expense-type", func(t *testing.T) {
		utf8, _ := simplifiedchinese.GBK.NewDecoder().Bytes(form)
		bad, _ := simplifiedchinese.GBK.NewEncoder().Bytes(bytes.Replace(utf8, []byte("业务招待费"), []byte("礼品费"), 1))
		r, text := send(t, bad)
		if r.Status != 500 || !strings.Contains(text, `value map "gl-accounts" has no entry for "礼品费"`) {
			t.Fatalf("want a Client fault naming the table and key, got %d:\n%s", r.Status, text)
		}
		if !strings.Contains(text, "<faultcode>soap:Client</faultcode>") {
			t.Errorf("an unknown code is the caller's data: want soap:Client\n%s", text)
		}
		if strings.Contains(text, ".yaml") || !strings.Contains(text, "<bb:correlationId>") {
			t.Errorf("the fault must carry the correlation id and no mapping file:\n%s", text)
		}
	})
}

// The document SAP receives for the OA example: one debit line per G/L
// account and cost centre, amounts summed exactly, balanced by the credit line.
func TestOAReimbursementMapping(t *testing.T) {
	m, err := transforms.LoadMapping(examples + "/maps/oa-reimbursement-to-bapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(examples + "/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		t.Fatal(err)
	}
	env, err := connectors.ParseEnvelope(raw, "GBK", bus.SOAP11)
	if err != nil {
		t.Fatal(err)
	}
	in := bus.NewMessage()
	in.SetXML(env.Payload())
	out, err := m.Apply(in)
	if err != nil {
		t.Fatal(err)
	}
	root, err := out.XML()
	if err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(root.Copy())
	doc.Indent(2)
	s, _ := doc.WriteToString()
	golden(t, "oa-reimbursement-bapi.xml", s)
}

// The demo's OA → SAP pass-through: what the OA system gets through Busbar
// is, byte for byte, what "SAP" answers when called directly — a SOAP Fault
// included — and the SOAPAction picks the SAP service.
func TestOASAPPassThrough(t *testing.T) {
	b := start(t, examples)
	const rfc = "urn:sap-com:document:sap:rfc:functions:"
	post := `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:rfc="urn:sap-com:document:sap:rfc:functions">
<soapenv:Body><rfc:BAPI_ACC_DOCUMENT_POST><DOCUMENTHEADER><COMP_CODE>1000</COMP_CODE><DOC_DATE>20261120</DOC_DATE></DOCUMENTHEADER>
<CURRENCYAMOUNT><item><AMT_DOCCUR>10.00</AMT_DOCCUR></item><item><AMT_DOCCUR>-10.00</AMT_DOCCUR></item></CURRENCYAMOUNT>
</rfc:BAPI_ACC_DOCUMENT_POST></soapenv:Body></soapenv:Envelope>`
	company := func(id string) string {
		return `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:rfc="urn:sap-com:document:sap:rfc:functions"><soapenv:Body><rfc:BAPI_COMPANYCODE_GETDETAIL><COMPANYCODEID>` + id + `</COMPANYCODEID></rfc:BAPI_COMPANYCODE_GETDETAIL></soapenv:Body></soapenv:Envelope>`
	}
	cases := []struct {
		name, action, body, direct string
		status                     int
		contains                   string
	}{
		{"post-document", "BAPI_ACC_DOCUMENT_POST", post, "/demo/sap/bapi", 200, "<TYPE>S</TYPE>"},
		{"sap-fault-untouched", "BAPI_ACC_DOCUMENT_POST", strings.Replace(post, ">1000<", ">9999<", 1), "/demo/sap/bapi", 500, "is locked for posting"},
		{"company-code", "BAPI_COMPANYCODE_GETDETAIL", company("1000"), "/demo/sap/companycode", 200, "上海"},
		{"company-code-fault", "BAPI_COMPANYCODE_GETDETAIL", company("4711"), "/demo/sap/companycode", 500, "4711 does not exist"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := b.postSOAP11(t, "/pass/sap/rfc", rfc+c.action, c.body)
			r.expect(t, c.status, "text/xml; charset=utf-8")
			direct := b.postSOAP11(t, c.direct, rfc+c.action, c.body)
			if r.Body != direct.Body || !strings.Contains(r.Body, c.contains) {
				t.Errorf("through Busbar:\n%s\ndirect:\n%s", r.Body, direct.Body)
			}
		})
	}
	t.Run("unknown-action", func(t *testing.T) {
		r := b.postSOAP11(t, "/pass/sap/rfc", rfc+"BAPI_USER_DELETE", company("1"))
		r.expect(t, 500, "text/xml; charset=utf-8")
		if !strings.Contains(r.Body, "<faultcode>soap:Client</faultcode>") || !strings.Contains(r.Body, "POST /pass/sap/rfc") {
			t.Errorf("want a Client fault naming the path:\n%s", r.Body)
		}
	})
}
