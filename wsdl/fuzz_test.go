package wsdl

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadBytes checks that no input makes Load, Element or Publish panic.
// Plain go test runs only the seed corpus.
func FuzzLoadBytes(f *testing.F) {
	for _, p := range []string{"testdata/orders/orders.wsdl", "testdata/gbk/voucher-gbk.wsdl", "testdata/broken.wsdl"} {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<definitions xmlns="http://schemas.xmlsoap.org/wsdl/"><types><schema xmlns="http://www.w3.org/2001/XMLSchema"><element name="a"><complexType><sequence><element ref="a" maxOccurs="x"/></sequence></complexType></element></schema></types></definitions>`))
	f.Add([]byte(`<!DOCTYPE x [<!ENTITY a "b">]><x/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		name := filepath.Join(t.TempDir(), "fuzz.wsdl")
		d, err := LoadBytes(name, data, LoadOptions{TolerateMissingImports: true})
		if err == nil {
			for q := range d.schema.elements {
				d.Element(q)
			}
			for _, op := range d.Operations() {
				d.FindOperation(op.SOAP, op.Action, op.Input)
			}
		}
		Publish(data, "http://x/")
	})
}
