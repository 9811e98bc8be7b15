package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

// loadSchemaHints is where `--schema WSDL|XSD` plugs in: it is given the
// compiled mapping and the schema file and makes the mapping schema-aware.
// It stays nil until the schema hints are wired; the flag then says it is
// not supported rather than being silently ignored.
var loadSchemaHints func(m *transforms.Mapping, schemaPath string) (*transforms.Mapping, error)

// vars collects repeated --var k=v flags.
type vars map[string]string

func (v vars) String() string { return "" }

func (v vars) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	v[k] = val
	return nil
}

// mapCmd is `busbar map`: a dry run of one mapping over one input file, no
// route and no backend involved.
func mapCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("map", flag.ContinueOnError)
	fs.SetOutput(stderr)
	mapFile := fs.String("map", "", "the mapping file")
	input := fs.String("input", "", "the input document: XML (any declared charset), a SOAP envelope, or JSON")
	tableDir := fs.String("table-dir", "", "directory that table files are relative to (default: the mapping file's directory)")
	schema := fs.String("schema", "", "a WSDL or XSD whose types guide the conversion")
	v := vars{}
	fs.Var(v, "var", "a route variable the mapping reads with var(\"name\"), as name=value (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *mapFile == "" || *input == "" || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "usage: busbar map --map FILE --input FILE [--var NAME=VALUE ...] [--table-dir DIR] [--schema WSDL|XSD]")
		return 2
	}
	out, err := runMap(*mapFile, *input, *tableDir, *schema, v)
	if err != nil {
		fmt.Fprintf(stderr, "busbar map: %v\n", err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	stdout.Write(out)
	return 0
}

// errUsage marks errors in how the command was called (exit status 2).
var errUsage = errors.New("unsupported flag")

func runMap(mapFile, input, tableDir, schema string, v map[string]string) ([]byte, error) {
	var m *transforms.Mapping
	var err error
	if tableDir == "" {
		m, err = transforms.LoadMapping(mapFile)
	} else {
		var src []byte
		if src, err = os.ReadFile(mapFile); err != nil {
			return nil, err
		}
		m, err = transforms.CompileMapping(mapFile, src, tableDir)
	}
	if err != nil {
		return nil, err
	}
	if schema != "" {
		if loadSchemaHints == nil {
			return nil, fmt.Errorf("--schema is not supported yet in this build (%w)", errUsage)
		}
		if m, err = loadSchemaHints(m, schema); err != nil {
			return nil, err
		}
	}
	body, err := os.ReadFile(input)
	if err != nil {
		return nil, err
	}
	in, err := inputMessage(input, body)
	if err != nil {
		return nil, err
	}
	for k, val := range v {
		in.Vars[k] = val
	}
	out, err := m.Apply(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", input, err)
	}
	return prettyPayload(out)
}

// inputMessage makes the message a route's mapping would see for a
// document: JSON as it is, XML parsed (its declared charset honoured), and
// for a SOAP envelope the first child of Body.
func inputMessage(name string, body []byte) (*bus.Message, error) {
	m := bus.NewMessage()
	trimmed := bytes.TrimLeft(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%s: the input is empty", name)
	}
	if trimmed[0] != '<' {
		if !json.Valid(trimmed) {
			var v any
			err := json.Unmarshal(trimmed, &v)
			return nil, fmt.Errorf("%s: neither XML nor valid JSON: %v", name, err)
		}
		m.SetJSON(trimmed)
		return m, nil
	}
	doc, err := transforms.ParseXML(body, "")
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	root := doc.Root()
	version := bus.SOAPVersion(0)
	switch root.NamespaceURI() {
	case bus.NSSOAP11:
		version = bus.SOAP11
	case bus.NSSOAP12:
		version = bus.SOAP12
	}
	if version == 0 || root.Tag != "Envelope" {
		m.SetXML(root)
		return m, nil
	}
	var payload *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag == "Body" && c.NamespaceURI() == root.NamespaceURI() {
			if kids := c.ChildElements(); len(kids) > 0 {
				payload = kids[0]
			}
		}
	}
	if payload == nil {
		return nil, fmt.Errorf("%s: the SOAP envelope has an empty or no Body", name)
	}
	m.SetXML(payload)
	m.SOAP = version
	return m, nil
}

// prettyPayload renders a mapping's result for people: indented JSON, or
// indented XML with a declaration.
func prettyPayload(m *bus.Message) ([]byte, error) {
	switch m.Format {
	case bus.FormatJSON:
		var b bytes.Buffer
		if err := json.Indent(&b, m.Bytes(), "", "  "); err != nil {
			return nil, fmt.Errorf("the mapping built invalid JSON: %v", err)
		}
		b.WriteByte('\n')
		return b.Bytes(), nil
	case bus.FormatXML:
		doc := etree.NewDocument()
		doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
		doc.SetRoot(m.Root.Copy())
		doc.Indent(2)
		doc.WriteSettings.CanonicalEndTags = true
		var b bytes.Buffer
		if _, err := doc.WriteTo(&b); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return m.Bytes(), nil
}
