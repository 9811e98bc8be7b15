// Package payloads generates the benchmark's request bodies deterministically:
// fixed-size SOAP and JSON documents for the pass-through sweep, and a SAP
// BAPI_ACC_DOCUMENT_POST envelope with its JSON twin (the voucher that
// examples/maps/voucher-to-bapi.yaml maps into that envelope). The files
// under bench/testdata are this package's output; a test keeps them equal.
package payloads

import (
	"bytes"
	"fmt"
	"strings"
)

// Sizes of the pass-through sweep, in bytes.
var Sizes = []int{500, 1 << 10, 10 << 10, 100 << 10}

// Line counts of the BAPI envelope and its JSON twin.
var Lines = []int{2, 200}

// Namespaces of the generated documents. The routing header lives in the
// bench namespace so S3 can route on it.
const (
	NSSOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
	NSRFC    = "urn:sap-com:document:sap:rfc:functions"
	NSBench  = "urn:busbar:bench"
	// ActionBAPI is the SOAPAction SAP's SOAMANAGER publishes for the BAPI.
	ActionBAPI = "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"
)

// BAPIReply is the echo backend's SAP answer: what the demo's SAP answers for a balanced document.
const BAPIReply = `<?xml version="1.0" encoding="UTF-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>` +
	`<rfc:BAPI_ACC_DOCUMENT_POSTResponse xmlns:rfc="urn:sap-com:document:sap:rfc:functions">` +
	`<OBJ_TYPE>BKPFF</OBJ_TYPE><OBJ_KEY>010000004210002026</OBJ_KEY><OBJ_SYS>DEMOCLNT100</OBJ_SYS>` +
	`<RETURN><item><TYPE>S</TYPE><ID>RW</ID><NUMBER>605</NUMBER>` +
	`<MESSAGE>Document posted successfully: BKPFF 010000004210002026 DEMOCLNT100</MESSAGE></item></RETURN>` +
	`</rfc:BAPI_ACC_DOCUMENT_POSTResponse></soap:Body></soap:Envelope>
`

// PostingReply is the REST platform's receipt for a posted voucher.
const PostingReply = `{"documentNumber":"0100000042","objectType":"BKPFF","objectKey":"010000004210002026",` +
	`"messages":[{"type":"S","id":"RW","number":"605","message":"Document posted successfully"}]}
`

// FixedReply is one of the echo backend's canned answers.
type FixedReply struct{ ContentType, Body string }

// FixedReplies are the echo backend's canned answers by path; every other
// POST is echoed. The echo program and the in-process stand-ins share them.
var FixedReplies = map[string]FixedReply{
	"/sap/bapi":     {"text/xml; charset=utf-8", BAPIReply},
	"/api/postings": {"application/json", PostingReply},
}

// Files returns every payload by its file name under bench/testdata.
func Files() map[string][]byte {
	files := map[string][]byte{}
	for _, n := range Sizes {
		files[fmt.Sprintf("soap-%s.xml", SizeName(n))] = SOAP(n)
		files[fmt.Sprintf("json-%s.json", SizeName(n))] = JSON(n)
	}
	for _, n := range Lines {
		files[fmt.Sprintf("bapi-%d.xml", n)] = BAPI(n)
		files[fmt.Sprintf("voucher-%d.json", n)] = Voucher(n)
	}
	return files
}

// SizeName is how a size appears in file names and reports: 500B, 1KiB, 10KiB.
func SizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

const lorem = "Reimbursement of travel expenses Shanghai Beijing flight hotel taxi meals per diem "

// fill appends records made by rec until the document (prefix + records +
// suffix) is exactly size bytes; the last record's text is cut or padded
// to land on the size.
func fill(size int, prefix, suffix string, rec func(i int, text string) string) []byte {
	var b bytes.Buffer
	b.WriteString(prefix)
	for i := 1; ; i++ {
		full := rec(i, lorem)
		if b.Len()+len(full)+len(suffix) > size {
			// The last record: its text takes whatever room is left.
			empty := rec(i, "")
			room := size - b.Len() - len(suffix) - len(empty)
			if room >= 0 {
				b.WriteString(rec(i, strings.Repeat(lorem, room/len(lorem)+1)[:room]))
			} else {
				b.WriteString(strings.Repeat(" ", size-b.Len()-len(suffix)))
			}
			break
		}
		b.WriteString(full)
	}
	b.WriteString(suffix)
	if b.Len() != size {
		panic(fmt.Sprintf("payloads: generated %d bytes, want %d", b.Len(), size))
	}
	return b.Bytes()
}

// SOAP is a SOAP 1.1 envelope of exactly size bytes (size ≥ 300).
func SOAP(size int) []byte {
	prefix := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<soap:Envelope xmlns:soap="` + NSSOAP11 + `"><soap:Body><b:Echo xmlns:b="` + NSBench + `">`
	suffix := `</b:Echo></soap:Body></soap:Envelope>` + "\n"
	return fill(size, prefix, suffix, func(i int, text string) string {
		return fmt.Sprintf(`<b:Item><b:Id>%d</b:Id><b:Text>%s</b:Text></b:Item>`, i, text)
	})
}

// JSON is a JSON document of exactly size bytes (size ≥ 100).
func JSON(size int) []byte {
	return fill(size, `{"items":[`, "]}\n", func(i int, text string) string {
		sep := ","
		if i == 1 {
			sep = ""
		}
		return fmt.Sprintf(`%s{"id":%d,"text":"%s"}`, sep, i, text)
	})
}

// line is one voucher line; amounts are text so they stay exact decimals.
type line struct {
	gl, costCenter, amount, text string
}

// voucherLines makes n balanced lines: n-1 expenses and one payable line
// that carries their negative sum, in cents so the total is exact.
func voucherLines(n int) []line {
	lines := make([]line, 0, n)
	total := 0
	for i := 1; i < n; i++ {
		cents := 10000 + (i*7919)%90000
		total += cents
		lines = append(lines, line{
			gl:         fmt.Sprintf("00661%05d", i%100),
			costCenter: fmt.Sprintf("00000%05d", 1000+i%50),
			amount:     fmt.Sprintf("%d.%02d", cents/100, cents%100),
			text:       fmt.Sprintf("Expense line %d travel Shanghai", i),
		})
	}
	return append(lines, line{gl: "0021100000", amount: fmt.Sprintf("-%d.%02d", total/100, total%100), text: "Payable to employee"})
}

// BAPI is a SOAP 1.1 BAPI_ACC_DOCUMENT_POST request with n line items, the
// shape examples/maps/voucher-to-bapi.yaml produces, plus a SOAP header
// block <h:Routing><h:Target>a</h:Target></h:Routing> for header routing.
func BAPI(n int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	b.WriteString(`<soap:Envelope xmlns:soap="` + NSSOAP11 + `">` + "\n")
	b.WriteString(`  <soap:Header><h:Routing xmlns:h="` + NSBench + `"><h:Target>a</h:Target><h:Tenant>bench</h:Tenant></h:Routing></soap:Header>` + "\n")
	b.WriteString(`  <soap:Body>` + "\n")
	b.WriteString(`    <rfc:BAPI_ACC_DOCUMENT_POST xmlns:rfc="` + NSRFC + `">` + "\n")
	b.WriteString(`      <DOCUMENTHEADER><BUS_ACT>RFBU</BUS_ACT><USERNAME>BUSBAR</USERNAME><COMP_CODE>1000</COMP_CODE>` +
		`<DOC_DATE>20261120</DOC_DATE><PSTNG_DATE>20261120</PSTNG_DATE><DOC_TYPE>SA</DOC_TYPE>` +
		`<REF_DOC_NO>BENCH-0001</REF_DOC_NO><HEADER_TXT>Travel Shanghai</HEADER_TXT></DOCUMENTHEADER>` + "\n")
	lines := voucherLines(n)
	b.WriteString("      <ACCOUNTGL>\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "        <item><ITEMNO_ACC>%010d</ITEMNO_ACC><GL_ACCOUNT>%s</GL_ACCOUNT><ITEM_TEXT>%s</ITEM_TEXT>", i+1, l.gl, l.text)
		if l.costCenter != "" {
			fmt.Fprintf(&b, "<COSTCENTER>%s</COSTCENTER>", l.costCenter)
		}
		b.WriteString("</item>\n")
	}
	b.WriteString("      </ACCOUNTGL>\n      <CURRENCYAMOUNT>\n")
	for i, l := range lines {
		fmt.Fprintf(&b, "        <item><ITEMNO_ACC>%010d</ITEMNO_ACC><CURRENCY>CNY</CURRENCY><AMT_DOCCUR>%s</AMT_DOCCUR></item>\n", i+1, l.amount)
	}
	b.WriteString("      </CURRENCYAMOUNT>\n    </rfc:BAPI_ACC_DOCUMENT_POST>\n  </soap:Body>\n</soap:Envelope>\n")
	return []byte(b.String())
}

// Voucher is BAPI's JSON twin: the expense voucher the demo's REST route
// receives, with n lines.
func Voucher(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"companyCode":"1000","date":"2026-11-20","currency":"CNY","voucherNo":"BENCH-0001",` +
		`"description":"Travel Shanghai","lines":[`)
	for i, l := range voucherLines(n) {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n  ")
		fmt.Fprintf(&b, `{"glAccount":"%s",`, l.gl)
		if l.costCenter != "" {
			fmt.Fprintf(&b, `"costCenter":"%s",`, l.costCenter)
		}
		fmt.Fprintf(&b, `"amount":%s,"text":"%s"}`, l.amount, l.text)
	}
	b.WriteString("]}\n")
	return []byte(b.String())
}
