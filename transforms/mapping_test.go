package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/busbar/busbar/bus"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/mapping")

// TestMappingGolden walks testdata/mapping: each folder holds mapping.yaml,
// an input (input.json; input.xml, whose payload is the first child of a SOAP
// Body; input.document.xml, whose payload is the whole document, envelope
// included; or input.gbk.xml read as GBK) and the
// expected result: want.json, want.xml, or want.err (the load error, or
// "STATUS fault text" for a run-time fault).
func TestMappingGolden(t *testing.T) {
	dirs, err := filepath.Glob("testdata/mapping/*")
	if err != nil {
		t.Fatal(err)
	}
	if len(dirs) == 0 {
		t.Fatal("no golden cases")
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			got, wantFile := runGolden(t, dir)
			want, err := os.ReadFile(filepath.Join(dir, wantFile))
			if *update || errors.Is(err, os.ErrNotExist) {
				if !*update {
					t.Fatalf("%s: no %s; got:\n%s", dir, wantFile, got)
				}
				if err := os.WriteFile(filepath.Join(dir, wantFile), []byte(got+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if w := strings.TrimSpace(string(want)); w != got {
				t.Errorf("%s:\nwant %s\n got %s", dir, w, got)
			}
		})
	}
}

// runGolden runs one case and returns the result text and the golden file
// it is compared with.
func runGolden(t *testing.T, dir string) (string, string) {
	t.Helper()
	m, err := LoadMapping(filepath.Join(dir, "mapping.yaml"))
	if err != nil {
		return err.Error(), "want.err"
	}
	return applyGolden(t, m, goldenInput(t, dir))
}

// goldenInput reads a golden case's input message.
func goldenInput(t *testing.T, dir string) *bus.Message {
	t.Helper()
	in := bus.NewMessage()
	in.ID = "m1"
	switch {
	case exists(filepath.Join(dir, "input.json")):
		b, _ := os.ReadFile(filepath.Join(dir, "input.json"))
		in.Format, in.Body = bus.FormatJSON, b
	case exists(filepath.Join(dir, "input.xml")):
		b, _ := os.ReadFile(filepath.Join(dir, "input.xml"))
		in.Format, in.Body, in.Root = bus.FormatXML, b, payload(t, b, "")
	case exists(filepath.Join(dir, "input.document.xml")):
		b, _ := os.ReadFile(filepath.Join(dir, "input.document.xml"))
		doc, err := ParseXML(b, "")
		if err != nil {
			t.Fatal(err)
		}
		in.Format, in.Body, in.Root = bus.FormatXML, b, doc.Root()
	case exists(filepath.Join(dir, "input.gbk.xml")):
		// The fixture is kept readable as UTF-8; it is encoded to GBK here,
		// and its declaration says encoding="GBK".
		src, _ := os.ReadFile(filepath.Join(dir, "input.gbk.xml"))
		b, err := simplifiedchinese.GBK.NewEncoder().Bytes(src)
		if err != nil {
			t.Fatal(err)
		}
		in.Format, in.Body, in.Root = bus.FormatXML, b, payload(t, b, "")
	default:
		t.Fatalf("%s: no input", dir)
	}
	return in
}

// applyGolden runs m over in and renders the result as the golden files hold it.
func applyGolden(t *testing.T, m *Mapping, in *bus.Message) (string, string) {
	t.Helper()
	dir := m.Name()
	out, err := m.Apply(in)
	if err != nil {
		var f *bus.Fault
		if !errors.As(err, &f) {
			t.Fatalf("%s: Apply returned %T, want *bus.Fault", dir, err)
		}
		return fmt.Sprintf("%d %s", f.Status, f.Error()), "want.err"
	}
	if out.ID != "m1" {
		t.Errorf("%s: reply lost the message id", dir)
	}
	if m.Output() == bus.FormatJSON {
		if out.Format != bus.FormatJSON || !json.Valid(out.Body) {
			t.Fatalf("%s: output is not valid JSON: %s", dir, out.Body)
		}
		var pretty bytes.Buffer
		_ = json.Indent(&pretty, out.Body, "", "  ")
		return pretty.String(), "want.json"
	}
	root, err := outputTree(out)
	if err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
	doc := etree.NewDocument()
	doc.SetRoot(root.Copy())
	if m.identity == nil { // an identity copy keeps the input's own layout
		doc.Indent(2)
	}
	s, _ := doc.WriteToString()
	return strings.TrimSpace(s), "want.xml"
}

// payload parses an XML test input and returns what a listener would put
// outputTree is a mapping's XML output as a tree: the one it built, or its
// streamed bytes read back by etree's reader told to keep CDATA sections
// (Busbar's scanner makes them plain text, as a consumer needs them).
func outputTree(out *bus.Message) (*etree.Element, error) {
	if out.Root != nil {
		return out.Root, nil
	}
	doc := etree.NewDocument()
	doc.ReadSettings.PreserveCData = true
	if err := doc.ReadFromBytes(out.Body); err != nil {
		return nil, err
	}
	return doc.Root(), nil
}

// in Message.Root: the first child of soap:Body, or the document element.
func payload(t *testing.T, b []byte, cs string) *etree.Element {
	t.Helper()
	doc, err := ParseXML(b, cs)
	if err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root.Tag == "Envelope" {
		if body := root.SelectElement("Body"); body != nil && len(body.ChildElements()) > 0 {
			return body.ChildElements()[0]
		}
	}
	return root
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }
