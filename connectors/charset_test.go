package connectors

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// An http connector with charset gb18030 sends an XML body in GB18030,
// declared in the body and the Content-Type; JSON stays UTF-8.
func TestHTTPConnectorCharset(t *testing.T) {
	var raw []byte
	var ct string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ = io.ReadAll(r.Body)
		ct = r.Header.Get("Content-Type")
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	cfg := &HTTPConfig{URL: srv.URL, Charset: "gb18030"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Build("kingdee")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	doc, err := transforms.ParseXML([]byte(`<凭证><摘要>差旅费😀</摘要></凭证>`), "")
	if err != nil {
		t.Fatal(err)
	}
	m := bus.NewMessage()
	m.SetXML(doc.Root())
	if _, err := c.Call(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	want, _ := simplifiedchinese.GB18030.NewEncoder().String(`<?xml version="1.0" encoding="GB18030"?>` + "\n<凭证><摘要>差旅费😀</摘要></凭证>")
	if ct != "application/xml; charset=GB18030" || string(raw) != want {
		t.Errorf("got %s\n%q\nwant %q", ct, raw, want)
	}

	m = bus.NewMessage()
	m.SetJSON([]byte(`{"摘要":"差旅费"}`))
	if _, err := c.Call(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if ct != "application/json" || !bytes.Equal(raw, []byte(`{"摘要":"差旅费"}`)) {
		t.Errorf("JSON: got %s %q", ct, raw)
	}

	if err := (&HTTPConfig{URL: srv.URL, Charset: "ebcdic"}).Validate(); err == nil {
		t.Error("charset ebcdic: want an error")
	}
}
