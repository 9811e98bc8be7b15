package wsdl

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

const facade = "https://bus.example.com/soap/orders?tenant=a&v=1"

// checkPublished asserts that out is src with only the address locations
// replaced: the bytes outside the edited values are identical, and Load
// sees every port at the new address.
func checkPublished(t *testing.T, name string, src, out []byte, addr string) {
	t.Helper()
	if _, err := transforms.ParseXML(out, ""); err != nil {
		t.Fatalf("%s: output is not well-formed: %v", name, err)
	}
	before, err := scanAddresses(src)
	if err != nil {
		t.Fatal(err)
	}
	after, err := scanAddresses(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(before) != len(after) || len(before) == 0 {
		t.Fatalf("%s: want %d addresses after, got %d", name, len(before), len(after))
	}
	ps, po := 0, 0
	for i := range before {
		if !bytes.Equal(src[ps:before[i].start], out[po:after[i].start]) {
			t.Fatalf("%s: bytes before address %d changed", name, i)
		}
		ps, po = before[i].end, after[i].end
	}
	if !bytes.Equal(src[ps:], out[po:]) {
		t.Fatalf("%s: bytes after the last address changed", name)
	}
	d, err := LoadBytes(filepath.Join(t.TempDir(), "published.wsdl"), out, LoadOptions{TolerateMissingImports: true})
	if err != nil {
		t.Fatalf("%s: loading the published WSDL: %v", name, err)
	}
	for _, s := range d.Services {
		for _, p := range s.Ports {
			if p.Address != addr {
				t.Errorf("%s: port %s: want address %q, got %q", name, p.Name, addr, p.Address)
			}
		}
	}
}

func TestPublishCorpus(t *testing.T) {
	corpus := corpusDir(t)
	for _, c := range corpusCases {
		path := filepath.Join(corpus, c.folder, c.file)
		src, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		out, err := Publish(src, facade)
		if errors.Is(err, ErrNoAddress) {
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.folder, err)
			continue
		}
		checkPublished(t, c.folder, src, out, facade)
	}
}

func TestPublishSAPPIAmpersands(t *testing.T) {
	corpus := corpusDir(t)
	src, err := os.ReadFile(filepath.Join(corpus, "sap-pi-hr0007-kqmx", "SI_OA_OUT_HR0007.wsdl"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Publish(src, facade)
	if err != nil {
		t.Fatal(err)
	}
	checkPublished(t, "sap-pi-hr0007-kqmx", src, out, facade)
	if bytes.Contains(out, []byte("XISOAPAdapter")) {
		t.Errorf("the old PI address is still there")
	}
	if n := bytes.Count(out, []byte(`location="https://bus.example.com/soap/orders?tenant=a&amp;v=1"`)); n != 2 {
		t.Errorf("want the escaped facade address twice, got %d", n)
	}
}

func TestPublishGolden(t *testing.T) {
	src, err := os.ReadFile("testdata/orders/orders.wsdl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Publish(src, `https://bus.example.com/a"b'c<d>`)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "publish-orders.wsdl", string(out))
	if !bytes.Contains(out, []byte(`<!-- <soap:address location="http://in.a.comment/"/> stays -->`)) {
		t.Errorf("comment changed")
	}

	out, err = PublishFunc(src, func(service, port string, v bus.SOAPVersion) string {
		if v == bus.SOAP12 {
			return "https://bus.example.com/soap12"
		}
		return ""
	})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte(`location = 'https://bus.example.com/soap12' />`)) ||
		!bytes.Contains(out, []byte(`location="http://erp.example.com/orders?x=1&amp;y=2"`)) {
		t.Errorf("PublishFunc: got\n%s", out)
	}
}

func TestPublishGBK(t *testing.T) {
	src, err := os.ReadFile("testdata/gbk/voucher-gbk.wsdl")
	if err != nil {
		t.Fatal(err)
	}
	out, err := Publish(src, "https://bus.example.com/凭证")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(out, []byte(`<?xml version="1.0" encoding="GBK"?>`)) {
		t.Errorf("declaration changed: %.60q", out)
	}
	if !bytes.Contains(out, []byte(`location="https://bus.example.com/&#x51ED;&#x8BC1;"`)) {
		t.Errorf("want non-ASCII as character references in a GBK document")
	}
	d, err := LoadBytes("voucher.wsdl", out, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Services[0].Ports[0].Address; got != "https://bus.example.com/凭证" {
		t.Errorf("got address %q", got)
	}
	rest := strings.Replace(string(out), `https://bus.example.com/&#x51ED;&#x8BC1;`, "", 1)
	if want := strings.Replace(string(src), "http://oa.example.cn/\xb7\xfe\xce\xf1", "", 1); rest != want {
		t.Errorf("bytes other than the location changed")
	}
}

func TestPublishErrors(t *testing.T) {
	cases := []struct {
		src  string
		want string
	}{
		{`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"/>`, "wsdl: publish: no port address to replace"},
		{`<definitions><port>`, "wsdl: publish: not an XML document"},
		{"", "wsdl: publish: not an XML document"},
		{"\xff\xfe<\x00", "wsdl: publish: UTF-16 documents are not supported"},
		// An address outside a wsdl:port is not a port address.
		{`<x xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"><soap:address location="a"/></x>`, "wsdl: publish: no port address"},
	}
	for i, c := range cases {
		_, err := Publish([]byte(c.src), facade)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("case %d: want %q, got %v", i, c.want, err)
		}
	}
}
