package routes

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// What a REST route refuses before any step or backend sees it: a body that
// readers could read differently, or that Busbar would have to alter, is a
// 400 naming the place; a POST without a body is a 400 too. A GET needs no
// body.
func TestRESTIntakeRefuses(t *testing.T) {
	b := start(t, examples)
	cases := []struct {
		method, path, body  string
		status              int
		title, detailPrefix string
	}{
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","companyCode":"2000","lines":[]}`, 400, "Malformed JSON",
			`line 1, column 23: duplicate key "companyCode" at $.companyCode (first at line 1, column 2)`},
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","lines":[{"amount":1},{"amount":2,"amount":3}]}`, 400, "Malformed JSON",
			`line 1, column 57: duplicate key "amount" at $.lines[1].amount (first at line 1, column 46)`},
		{"POST", "/api/v1/vouchers", "{\"companyCode\":\"1000\",\"description\":\"Taxi \xff\"}", 400, "Malformed JSON",
			`line 1, column 43 (byte 42): invalid UTF-8 (byte 0xFF) at $.description`},
		{"POST", "/api/v1/vouchers", `{"companyCode":"1000","description":"Taxi\u0000"}`, 400, "Malformed JSON",
			`line 1, column 42 (byte 41): \u0000 (U+0000), a character XML cannot hold at $.description`},
		{"POST", "/api/v1/vouchers", "", 400, "Empty body", "the request body is empty"},
		{"POST", "/api/v1/vouchers", " \r\n\t", 400, "Empty body", "the request body is empty"},
		{"GET", "/demo/expense-api/claims/CLM-1", "", 200, "", ""},
	}
	for n, c := range cases {
		r := b.do(t, c.method, c.path, map[string]string{"Content-Type": "application/json"}, c.body)
		var p struct{ Title, Detail string }
		json.Unmarshal([]byte(r.Body), &p)
		if r.Status != c.status || p.Title != c.title || !strings.HasPrefix(p.Detail, c.detailPrefix) {
			t.Errorf("case %d %s %q:\nwant %d %s: %s…\n got %d %s", n, c.method, c.body, c.status, c.title, c.detailPrefix, r.Status, r.Body)
		}
	}
}

// Bytes with no character in the charset they are read in are refused
// wherever XML comes in — a SOAP facade, a REST route, a backend's reply —
// before anything acts on them, and the charset is the Content-Type's when
// it names one (utf-8 included), else the declaration's. Before, a 0xFF in
// a GBK form became U+FFFD, the form was posted to SAP, and the caller got
// a 500 "Cannot encode reply": a caller that retried posted twice.
func TestXMLIntakeCharset(t *testing.T) {
	b := start(t, examples)
	form, err := os.ReadFile(examples + "/testdata/oa-reimbursement.gbk.xml")
	if err != nil {
		t.Fatal(err)
	}
	badForm := bytes.Replace(form, []byte(gbk(t, "张伟")), []byte(gbk(t, "张")+"\xff"+gbk(t, "伟")), 1)
	bad := bytes.IndexByte(badForm, 0xff)
	soapGBK := map[string]string{"Content-Type": "text/xml; charset=GBK",
		"SOAPAction": `"http://oa.example.cn/finance/reimbursement/SubmitReimbursement"`}
	soapUTF8 := map[string]string{"Content-Type": "text/xml; charset=utf-8", "SOAPAction": soapGBK["SOAPAction"]}
	voucher := gbk(t, `<voucher><text>差旅`) + "\xff" + gbk(t, `</text></voucher>`)
	cases := []struct {
		path    string
		headers map[string]string
		body    string
		status  int
		want    string // in the reply, decoded from GBK for the facade
	}{
		{"/soap/oa/reimbursement", soapGBK, string(form), 200, "<oa:Result>POSTED</oa:Result>"},
		{"/soap/oa/reimbursement", soapGBK, string(badForm), 500,
			fmt.Sprintf("<faultcode>soap:Client</faultcode><faultstring>Malformed SOAP envelope: not an XML document: byte %d (0xFF) is not valid GBK", bad)},
		// The form declares GBK; the Content-Type says utf-8, and wins.
		{"/soap/oa/reimbursement", soapUTF8, string(form), 500, "line 5, column 17: invalid UTF-8: byte 294 is 0xD5"},
		{"/api/v1/vouchers", map[string]string{"Content-Type": "application/xml; charset=gbk"}, voucher, 400,
			`"detail":"not an XML document: byte 19 (0xFF) is not valid gbk"`},
	}
	for n, c := range cases {
		r := b.do(t, "POST", c.path, c.headers, c.body)
		text := r.Body
		if strings.Contains(r.ContentType, "GBK") {
			text, _ = simplifiedchinese.GBK.NewDecoder().String(r.Body)
		}
		if r.Status != c.status || !strings.Contains(text, c.want) {
			t.Errorf("case %d %s: want %d …%s…\n got %d %s", n, c.path, c.status, c.want, r.Status, text)
		}
	}
}

// A backend's reply is read by the same rules; what fails them is the
// backend's fault: a 502 (a Server fault to a SOAP caller) saying what.
func TestReplyContentChecks(t *testing.T) {
	var answer atomic.Value // [2]string: Content-Type, body
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rep := answer.Load().([2]string)
		w.Header().Set("Content-Type", rep[0])
		io.WriteString(w, rep[1])
	}))
	defer backend.Close()
	t.Setenv("OA_URL", backend.URL)
	t.Setenv("CLAIMS_URL", backend.URL)
	b := start(t, "testdata/schema")
	oaReply := func(text string) string {
		return `<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><ImportVoucherResponse><result>` +
			text + `</result><voucherNo>1</voucherNo></ImportVoucherResponse></S:Body></S:Envelope>`
	}
	const declGBK = `<?xml version="1.0" encoding="GBK"?>`
	claim := `<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><SubmitClaim xmlns="urn:busbar:test:claims"><claimNo>1</claimNo><employee>e</employee><account>1</account><lines><line><text>t</text><amount>1</amount></line></lines></SubmitClaim></soap:Body></soap:Envelope>`
	cases := []struct {
		contentType, body string
		facade            bool // the SOAP facade over the JSON backend, else the REST route over the SOAP one
		status            int
		want              string
	}{
		{"text/xml", gbk(t, declGBK+oaReply("导入成功")), false, 200, `"result":"导入成功"`},
		{"text/xml", gbk(t, declGBK+oaReply("导入")) + "\xff", false, 502, `Backend sent malformed SOAP","status":502,"detail":"connector \"oa-gbk\": Malformed SOAP envelope: not an XML document: byte 222 (0xFF) is not valid GBK`},
		{"text/xml; charset=utf-8", gbk(t, declGBK+oaReply("导入成功")), false, 502, `line 1, column 140: invalid UTF-8: byte 139 is 0xB5`},
		{"application/json", `{"claimId": "1", "status": "ok", "status": "rejected", "total": 1, "approved": true}`, true, 500,
			`<faultcode>soap:Server</faultcode><faultstring>Backend sent malformed JSON: connector "claims-api": line 1, column 34: duplicate key "status" at $.status (first at line 1, column 18)`},
	}
	for n, c := range cases {
		answer.Store([2]string{c.contentType, c.body})
		var r reply
		if c.facade {
			r = b.postSOAP11(t, "/soap/claims", "urn:busbar:test:claims:SubmitClaim", claim)
			r.Body, _ = simplifiedchinese.GBK.NewDecoder().String(r.Body)
		} else {
			r = b.postJSON(t, "/api/oa/vouchers", `{"voucherNo": "1", "summary": "差旅费"}`)
		}
		if r.Status != c.status || !strings.Contains(r.Body, c.want) {
			t.Errorf("case %d: want %d …%s…\n got %d %s", n, c.status, c.want, r.Status, r.Body)
		}
	}
}
