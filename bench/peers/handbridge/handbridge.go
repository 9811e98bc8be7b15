// Package handbridge is the SOAP⇄REST bridge a Go user would write by hand
// instead of adopting an ESB, doing what Busbar's bench routes S6 and S7 do:
//
//	POST /s6  SOAP 1.1 BAPI_ACC_DOCUMENT_POST → JSON posting to {backend}/api/postings → SOAP reply
//	POST /s7  JSON expense voucher → SOAP BAPI_ACC_DOCUMENT_POST to {backend}/sap/bapi → JSON reply
//
// encoding/json into structs, etree to parse and build envelopes, one pooled
// http.Client. It is the bar Busbar is measured against, so it is written
// the plain idiomatic way, without tricks either way. bench/peers/bridge
// serves it; bench/inproc benchmarks it beside Busbar's S6 and S7.
package handbridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
)

// New returns the bridge's handler for POST /s6 and POST /s7, calling the
// backend at the base URL with client.
func New(backend string, client *http.Client) http.Handler {
	b := &bridge{backend: strings.TrimSuffix(backend, "/"), client: client}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /s6", b.soapToREST)
	mux.HandleFunc("POST /s7", b.restToSOAP)
	return mux
}

const (
	nsSOAP     = "http://schemas.xmlsoap.org/soap/envelope/"
	nsRFC      = "urn:sap-com:document:sap:rfc:functions"
	actionBAPI = "urn:sap-com:document:sap:rfc:functions:BAPI_ACC_DOCUMENT_POST"
	maxBody    = 10 << 20
)

// Posting is the REST platform's view of an accounting document (S6).
type Posting struct {
	CompanyCode  string           `json:"companyCode"`
	DocumentDate string           `json:"documentDate"`
	PostingDate  string           `json:"postingDate"`
	DocumentType string           `json:"documentType"`
	Reference    string           `json:"reference"`
	Text         string           `json:"text"`
	Accounts     []PostingAccount `json:"accounts"`
	Amounts      []PostingAmount  `json:"amounts"`
}

type PostingAccount struct {
	Item       string `json:"item"`
	GLAccount  string `json:"glAccount"`
	Text       string `json:"text"`
	CostCenter string `json:"costCenter,omitempty"`
}

type PostingAmount struct {
	Item     string      `json:"item"`
	Currency string      `json:"currency"`
	Amount   json.Number `json:"amount"`
}

// Receipt is the platform's answer, and the JSON answer of S7.
type Receipt struct {
	DocumentNumber string    `json:"documentNumber"`
	ObjectType     string    `json:"objectType"`
	ObjectKey      string    `json:"objectKey"`
	Messages       []Message `json:"messages"`
}

type Message struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Number  string `json:"number"`
	Message string `json:"message"`
}

// Voucher is the expense voucher a JSON client posts (S7).
type Voucher struct {
	CompanyCode string        `json:"companyCode"`
	Date        string        `json:"date"`
	Currency    string        `json:"currency"`
	VoucherNo   string        `json:"voucherNo"`
	Description string        `json:"description"`
	Lines       []VoucherLine `json:"lines"`
}

type VoucherLine struct {
	GLAccount  string      `json:"glAccount"`
	CostCenter string      `json:"costCenter"`
	Amount     json.Number `json:"amount"`
	Text       string      `json:"text"`
}

type bridge struct {
	backend string
	client  *http.Client
}

// soapToREST serves S6.
func (b *bridge) soapToREST(w http.ResponseWriter, r *http.Request) {
	doc := etree.NewDocument()
	if _, err := doc.ReadFrom(http.MaxBytesReader(w, r.Body, maxBody)); err != nil {
		soapFault(w, "soap:Client", "malformed envelope: "+err.Error())
		return
	}
	req := doc.FindElement("/Envelope/Body/BAPI_ACC_DOCUMENT_POST")
	if req == nil {
		soapFault(w, "soap:Client", "the body holds no BAPI_ACC_DOCUMENT_POST")
		return
	}
	hdr := req.SelectElement("DOCUMENTHEADER")
	if hdr == nil {
		soapFault(w, "soap:Client", "DOCUMENTHEADER is missing")
		return
	}
	p := Posting{
		CompanyCode:  text(hdr, "COMP_CODE"),
		DocumentDate: text(hdr, "DOC_DATE"),
		PostingDate:  text(hdr, "PSTNG_DATE"),
		DocumentType: text(hdr, "DOC_TYPE"),
		Reference:    text(hdr, "REF_DOC_NO"),
		Text:         text(hdr, "HEADER_TXT"),
	}
	for _, it := range req.FindElements("ACCOUNTGL/item") {
		p.Accounts = append(p.Accounts, PostingAccount{Item: text(it, "ITEMNO_ACC"), GLAccount: text(it, "GL_ACCOUNT"),
			Text: text(it, "ITEM_TEXT"), CostCenter: text(it, "COSTCENTER")})
	}
	for _, it := range req.FindElements("CURRENCYAMOUNT/item") {
		amt := text(it, "AMT_DOCCUR")
		if _, ok := new(big.Rat).SetString(amt); !ok {
			soapFault(w, "soap:Client", fmt.Sprintf("AMT_DOCCUR %q is not a number", amt))
			return
		}
		p.Amounts = append(p.Amounts, PostingAmount{Item: text(it, "ITEMNO_ACC"), Currency: text(it, "CURRENCY"), Amount: json.Number(amt)})
	}
	body, err := json.Marshal(p)
	if err != nil {
		soapFault(w, "soap:Server", err.Error())
		return
	}
	var rc Receipt
	if err := b.call(r, "/api/postings", "application/json", "", body, func(rd io.Reader) error {
		return json.NewDecoder(rd).Decode(&rc)
	}); err != nil {
		soapFault(w, "soap:Server", err.Error())
		return
	}
	out := etree.NewDocument()
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := out.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	resp := env.CreateElement("soap:Body").CreateElement("rfc:BAPI_ACC_DOCUMENT_POSTResponse")
	resp.CreateAttr("xmlns:rfc", nsRFC)
	resp.CreateElement("OBJ_TYPE").SetText(rc.ObjectType)
	resp.CreateElement("OBJ_KEY").SetText(rc.ObjectKey)
	ret := resp.CreateElement("RETURN")
	for _, m := range rc.Messages {
		it := ret.CreateElement("item")
		it.CreateElement("TYPE").SetText(m.Type)
		it.CreateElement("ID").SetText(m.ID)
		it.CreateElement("NUMBER").SetText(m.Number)
		it.CreateElement("MESSAGE").SetText(m.Message)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	out.WriteTo(w)
}

// restToSOAP serves S7: examples/maps/voucher-to-bapi.yaml and
// bapi-return-to-json.yaml, written in Go.
func (b *bridge) restToSOAP(w http.ResponseWriter, r *http.Request) {
	var v Voucher
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		problem(w, http.StatusBadRequest, "Malformed JSON", err.Error())
		return
	}
	date, err := time.Parse("2006-01-02", v.Date)
	if err != nil {
		problem(w, http.StatusUnprocessableEntity, "Bad date", err.Error())
		return
	}
	doc := etree.NewDocument()
	doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	bapi := env.CreateElement("soap:Body").CreateElement("rfc:BAPI_ACC_DOCUMENT_POST")
	bapi.CreateAttr("xmlns:rfc", nsRFC)
	hdr := bapi.CreateElement("DOCUMENTHEADER")
	for _, kv := range [][2]string{{"BUS_ACT", "RFBU"}, {"USERNAME", "BUSBAR"}, {"COMP_CODE", v.CompanyCode},
		{"DOC_DATE", date.Format("20060102")}, {"PSTNG_DATE", date.Format("20060102")}, {"DOC_TYPE", "SA"},
		{"REF_DOC_NO", v.VoucherNo}, {"HEADER_TXT", v.Description}} {
		hdr.CreateElement(kv[0]).SetText(kv[1])
	}
	gl, amounts := bapi.CreateElement("ACCOUNTGL"), bapi.CreateElement("CURRENCYAMOUNT")
	for i, l := range v.Lines {
		amt, ok := new(big.Rat).SetString(string(l.Amount))
		if !ok {
			problem(w, http.StatusUnprocessableEntity, "Bad amount", fmt.Sprintf("line %d: %q is not a number", i+1, l.Amount))
			return
		}
		no := fmt.Sprintf("%010d", i+1)
		it := gl.CreateElement("item")
		it.CreateElement("ITEMNO_ACC").SetText(no)
		it.CreateElement("GL_ACCOUNT").SetText(l.GLAccount)
		it.CreateElement("ITEM_TEXT").SetText(l.Text)
		if l.CostCenter != "" {
			it.CreateElement("COSTCENTER").SetText(l.CostCenter)
		}
		it = amounts.CreateElement("item")
		it.CreateElement("ITEMNO_ACC").SetText(no)
		it.CreateElement("CURRENCY").SetText(v.Currency)
		it.CreateElement("AMT_DOCCUR").SetText(amt.FloatString(2))
	}
	var buf bytes.Buffer
	doc.WriteTo(&buf)
	reply := etree.NewDocument()
	if err := b.call(r, "/sap/bapi", "text/xml; charset=utf-8", `"`+actionBAPI+`"`, buf.Bytes(), func(rd io.Reader) error {
		_, err := reply.ReadFrom(rd)
		return err
	}); err != nil {
		problem(w, http.StatusBadGateway, "SAP call failed", err.Error())
		return
	}
	if f := reply.FindElement("/Envelope/Body/Fault"); f != nil {
		problem(w, http.StatusBadGateway, "SAP answered with a fault", text(f, "faultstring"))
		return
	}
	res := reply.FindElement("/Envelope/Body/BAPI_ACC_DOCUMENT_POSTResponse")
	if res == nil {
		problem(w, http.StatusBadGateway, "Unexpected SAP reply", "no BAPI_ACC_DOCUMENT_POSTResponse")
		return
	}
	rc := Receipt{ObjectType: text(res, "OBJ_TYPE"), ObjectKey: text(res, "OBJ_KEY")}
	rc.DocumentNumber = rc.ObjectKey[:min(10, len(rc.ObjectKey))]
	for _, it := range res.FindElements("RETURN/item") {
		m := Message{Type: text(it, "TYPE"), ID: text(it, "ID"), Number: text(it, "NUMBER"), Message: text(it, "MESSAGE")}
		if m.Type == "E" || m.Type == "A" {
			problem(w, http.StatusUnprocessableEntity, "SAP rejected the voucher", m.Message)
			return
		}
		rc.Messages = append(rc.Messages, m)
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(rc)
}

// call POSTs body to the backend and hands a 2xx reply to read.
func (b *bridge) call(in *http.Request, path, contentType, action string, body []byte, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(in.Context(), http.MethodPost, b.backend+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if action != "" {
		req.Header.Set("SOAPAction", action)
	}
	resp, err := b.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// A SOAP fault comes with a 500: let the caller read it.
	if resp.StatusCode/100 != 2 && !(resp.StatusCode == 500 && action != "") {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("backend answered %s", resp.Status)
	}
	if err := read(resp.Body); err != nil {
		return fmt.Errorf("backend reply: %w", err)
	}
	return nil
}

func text(e *etree.Element, child string) string {
	if c := e.SelectElement(child); c != nil {
		return c.Text()
	}
	return ""
}

func soapFault(w http.ResponseWriter, code, msg string) {
	doc := etree.NewDocument()
	env := doc.CreateElement("soap:Envelope")
	env.CreateAttr("xmlns:soap", nsSOAP)
	f := env.CreateElement("soap:Body").CreateElement("soap:Fault")
	f.CreateElement("faultcode").SetText(code)
	f.CreateElement("faultstring").SetText(msg)
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	doc.WriteTo(w)
}

func problem(w http.ResponseWriter, status int, title, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"title": title, "status": status, "detail": detail})
}
