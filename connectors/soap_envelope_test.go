package connectors

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/internal/corpus"
	"github.com/busbar/busbar/transforms"
)

// Every envelope in the third-party corpus parses, and re-wrapping its
// payload gives a namespace-well-formed envelope with the same payload.
func TestParseEnvelopeCorpus(t *testing.T) {
	dir := corpus.Dir(t)
	files, _ := filepath.Glob(filepath.Join(dir, "*", "*.xml"))
	if len(files) < 10 {
		t.Fatalf("corpus has only %d envelopes", len(files))
	}
	for _, f := range files {
		name := filepath.Base(filepath.Dir(f)) + "/" + filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			env, err := ParseEnvelope(b, "", 0)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if env.Version != bus.SOAP11 && env.Version != bus.SOAP12 {
				t.Fatalf("version %v", env.Version)
			}
			if env.Fault != nil {
				return
			}
			if !env.HasPayload() {
				t.Fatal("no payload")
			}
			var out bytes.Buffer
			WriteEnvelope(&out, env.Version, env.Header, env.Payload())
			again, err := ParseEnvelope(out.Bytes(), "", env.Version)
			if err != nil {
				t.Fatalf("re-wrapped envelope does not parse: %v\n%s", err, out.Bytes())
			}
			if again.Payload().Tag != env.Payload().Tag || again.Payload().NamespaceURI() != env.Payload().NamespaceURI() {
				t.Errorf("payload changed: want {%s}%s, got {%s}%s", env.Payload().NamespaceURI(), env.Payload().Tag,
					again.Payload().NamespaceURI(), again.Payload().Tag)
			}
		})
	}
}

func TestParseEnvelopeFaultCorpus(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(corpus.Dir(t), "netsuite-login-fault", "login.fault.response.xml"))
	if err != nil {
		t.Fatal(err)
	}
	env, err := ParseEnvelope(b, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	f := env.Fault
	if f == nil {
		t.Fatal("fault not recognised")
	}
	if f.FaultCode != "soapenv:Server.userException" || f.Status != 502 || f.Blame != bus.BlameServer {
		t.Errorf("fault: code %q status %d blame %v", f.FaultCode, f.Status, f.Blame)
	}
	if !strings.HasPrefix(f.FaultString, "You have entered an invalid email address") {
		t.Errorf("faultstring %q", f.FaultString)
	}
	if !strings.Contains(f.FaultDetail, "INVALID_LOGIN_CREDENTIALS") {
		t.Errorf("detail %q", f.FaultDetail)
	}
}

func TestParseEnvelopeErrors(t *testing.T) {
	const s11 = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">`
	cases := []struct {
		name, body string
		want       bus.SOAPVersion
		title      string
		code       string
		detail     string
	}{
		{"truncated", s11 + `<s:Body><a>`, 0, "Malformed SOAP envelope", "", "unexpected EOF"},
		{"mismatched", s11 + `<s:Body><a></b></s:Body></s:Envelope>`, 0, "Malformed SOAP envelope", "", "element <a> closed by </b>"},
		{"not-envelope", `<Order/>`, 0, "Not a SOAP envelope", "", "<Order>"},
		{"unknown-ns", `<Envelope xmlns="urn:nope"><Body/></Envelope>`, 0, "VersionMismatch", "VersionMismatch", "urn:nope"},
		{"no-body", s11 + `</s:Envelope>`, 0, "Malformed SOAP envelope", "", "no Body"},
		{"version-vs-content-type", s11 + `<s:Body/></s:Envelope>`, bus.SOAP12, "VersionMismatch", "VersionMismatch", "SOAP 1.1 envelope"},
		{"empty", ``, 0, "Malformed SOAP envelope", "", "no element"},
	}
	for _, c := range cases {
		_, err := ParseEnvelope([]byte(c.body), "", c.want)
		f, ok := err.(*bus.Fault)
		if !ok {
			t.Errorf("%s: want a Fault, got %v", c.name, err)
			continue
		}
		if f.Title != c.title || f.Code != c.code || f.Blame != bus.BlameClient || !strings.Contains(f.Detail, c.detail) {
			t.Errorf("%s: want %q/%q containing %q, got %q/%q: %q", c.name, c.title, c.code, c.detail, f.Title, f.Code, f.Detail)
		}
	}
}

// A GBK-encoded envelope (as Chinese OA systems send) decodes to UTF-8.
func TestParseEnvelopeGBK(t *testing.T) {
	utf := `<?xml version="1.0" encoding="GBK"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><Claim><purpose>差旅费报销</purpose></Claim></s:Body></s:Envelope>`
	gbk := gbkBytes(t, utf)
	for _, label := range []string{"", "GBK", "gb18030"} {
		env, err := ParseEnvelope(gbk, label, 0)
		if err != nil {
			t.Fatalf("charset %q: %v", label, err)
		}
		if got := env.Payload().FindElement("purpose").Text(); got != "差旅费报销" {
			t.Errorf("charset %q: got %q", label, got)
		}
	}
}

func gbkBytes(t *testing.T, s string) []byte {
	t.Helper()
	b, err := transforms.EncodeCharset([]byte(s), "GBK")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzParseEnvelope(f *testing.F) {
	f.Add([]byte(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a/></s:Body></s:Envelope>`))
	f.Add([]byte(`<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault><e:Code><e:Value>e:Sender</e:Value></e:Code></e:Fault></e:Body></e:Envelope>`))
	hostile, _ := filepath.Glob(filepath.Join("testdata", "hostile", "*.xml"))
	for _, name := range hostile {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, err := ParseEnvelope(b, "", 0)
		if err == nil && env.HasPayload() {
			var out bytes.Buffer
			WriteEnvelope(&out, env.Version, env.Header, env.Payload())
		}
	})
}
