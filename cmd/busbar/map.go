package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/beevik/etree"
	"github.com/spf13/cobra"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
	"github.com/busbar/busbar/wsdl"
)

// vars collects repeated --var k=v flags.
type vars map[string]string

func (v vars) String() string {
	kv := make([]string, 0, len(v))
	for k, val := range v {
		kv = append(kv, k+"="+val)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

// Type names the value in help when the usage does not.
func (v vars) Type() string { return "NAME=VALUE" }

func (v vars) Set(s string) error {
	k, val, ok := strings.Cut(s, "=")
	if !ok || k == "" {
		return fmt.Errorf("want name=value, got %q", s)
	}
	v[k] = val
	return nil
}

const mapUsage = "usage: busbar map --map FILE --input FILE [--var NAME=VALUE ...] [--table-dir DIR] [--schema WSDL|XSD]\n" +
	"       busbar map --schema WSDL|XSD --input FILE [--element [{NS}]NAME]"

// newMapCmd is `busbar map`: a dry run of one mapping over one input file,
// no route and no backend involved.
func newMapCmd() *cobra.Command {
	var o struct{ mapFile, input, tableDir, schema, element string }
	v := vars{}
	cmd := &cobra.Command{
		Use:   "map --map FILE --input FILE [--var NAME=VALUE ...] [--table-dir DIR] [--schema WSDL|XSD]",
		Short: "Print what a mapping builds from a document, without a route or a backend",
		Long: `A dry run of one mapping over one document: JSON, XML in any declared charset, or a
SOAP envelope (its Body's first element is the input). The output is printed indented;
an error says the mapping file, line, column and expression that failed.

With --schema (a WSDL or an XSD) and --map, the mapping's XML output is checked against
the schema. With --schema and no --map, the input is converted by the schema's types as
a route without a map converts it: XML to JSON, or JSON to the --element it names.`,
		Example: `  busbar map --map examples/maps/voucher-to-bapi.yaml --input voucher.json
  busbar map --map maps/status.yaml --input empty.json --var claimId=CLM-7
  busbar map --schema examples/wsdl/oa-reimbursement.wsdl --input examples/testdata/oa-reimbursement.gbk.xml
  busbar map --schema examples/wsdl/oa-reimbursement.wsdl --input reply.json \
      --element '{http://oa.example.cn/finance/reimbursement}SubmitReimbursementResponse'`,
		Args:              argsBetween(0, 0, mapUsage),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, args []string) error {
			if (o.mapFile == "" && o.schema == "") || o.input == "" {
				return usageError(mapUsage)
			}
			stdout, stderr := cmd.OutOrStdout(), cmd.ErrOrStderr()
			var out []byte
			var err error
			if o.mapFile == "" {
				out, err = runConvert(o.schema, o.input, o.element)
			} else {
				out, err = runMap(o.mapFile, o.input, o.tableDir, o.schema, v)
			}
			if err != nil {
				fmt.Fprintf(stderr, "busbar map: %v\n", err)
				if errors.Is(err, errUsage) {
					return exitStatus(2)
				}
				return exitStatus(1)
			}
			_, err = stdout.Write(out)
			return err
		},
	}
	f := cmd.Flags()
	f.SortFlags = false
	f.StringVar(&o.mapFile, "map", "", "the mapping `FILE`")
	f.StringVar(&o.input, "input", "", "the input document `FILE`: XML (any declared charset), a SOAP envelope, or JSON")
	f.Var(v, "var", "a route variable the mapping reads with var(\"name\"), as `NAME=VALUE` (repeatable)")
	f.StringVar(&o.tableDir, "table-dir", "", "the `DIR` that table files are relative to (default: the mapping file's directory)")
	f.StringVar(&o.schema, "schema", "", "a WSDL or XSD `FILE`: without --map, convert the input by its types; with --map, check the XML output against it")
	f.StringVar(&o.element, "element", "", "with --schema and JSON input: the element to build, as local `NAME` or {namespace}local")
	cmd.MarkFlagFilename("map", "yaml", "yml")
	cmd.MarkFlagFilename("input")
	cmd.MarkFlagFilename("schema", "wsdl", "xsd")
	cmd.MarkFlagDirname("table-dir")
	noFiles(cmd, "var", "element")
	return cmd
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
	var hints *transforms.Schema
	if schema != "" {
		if hints, err = wsdl.LoadSchema(schema); err != nil {
			return nil, err
		}
	}
	in, err := readInput(input)
	if err != nil {
		return nil, err
	}
	for k, val := range v {
		in.SetVar(k, val)
	}
	out, err := m.Apply(in)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", input, err)
	}
	if hints != nil {
		if err := checkAgainst(hints, schema, out); err != nil {
			return nil, err
		}
	}
	return prettyPayload(out)
}

// checkAgainst tells whether a mapping's XML output is what the schema
// describes, by converting it the way a facade or connector would: through
// the schema to JSON and back, which fails on a missing required element,
// a value that is not of its xsd type, or a repeated single element.
func checkAgainst(s *transforms.Schema, schemaFile string, out *bus.Message) error {
	if !out.HasXML() {
		return fmt.Errorf("--schema checks XML output; this mapping writes %s (%w)", out.Format, errUsage)
	}
	root, err := out.XML()
	if err != nil {
		return err
	}
	if s.Element(root.NamespaceURI(), root.Tag) == nil {
		return fmt.Errorf("%s declares no element {%s}%s, the output's root", schemaFile, root.NamespaceURI(), root.Tag)
	}
	j, err := s.XMLToJSON(root)
	if err == nil {
		_, err = s.JSONToXML(j, root.NamespaceURI(), root.Tag)
	}
	if err != nil {
		return fmt.Errorf("the output does not match %s: %w", schemaFile, err)
	}
	return nil
}

// runConvert is `busbar map --schema S --input F` without a mapping: the
// conversion a route without a map does, guided by the schema — XML to
// JSON, or JSON to the XML element --element names.
func runConvert(schema, input, element string) ([]byte, error) {
	hints, err := wsdl.LoadSchema(schema)
	if err != nil {
		return nil, err
	}
	in, err := readInput(input)
	if err != nil {
		return nil, err
	}
	out := bus.NewMessage()
	if in.Format == bus.FormatXML {
		root, err := in.XML()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		j, err := hints.XMLToJSON(root)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", input, err)
		}
		out.SetJSON(j)
		return prettyPayload(out)
	}
	if element == "" {
		return nil, fmt.Errorf("JSON input needs --element NAME, the schema element to build (%w)", errUsage)
	}
	space, local := "", element
	if strings.HasPrefix(element, "{") {
		if i := strings.IndexByte(element, '}'); i > 0 {
			space, local = element[1:i], element[i+1:]
		}
	}
	if hints.Element(space, local) == nil {
		return nil, fmt.Errorf("%s declares no element %s", schema, element)
	}
	root, err := hints.JSONToXML(in.Body, space, local)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", input, err)
	}
	out.SetXML(root)
	return prettyPayload(out)
}

// readInput reads the input file into the message a route would see.
func readInput(name string) (*bus.Message, error) {
	body, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	return inputMessage(name, body)
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
		root := m.Root
		if root == nil {
			// Output a mapping wrote as bytes, read back keeping its CDATA
			// sections (Busbar's scanner reads them as plain text).
			d := etree.NewDocument()
			d.ReadSettings.PreserveCData = true
			if err := d.ReadFromBytes(m.Body); err != nil {
				return nil, fmt.Errorf("the mapping built invalid XML: %v", err)
			}
			root = d.Root()
		}
		doc := etree.NewDocument()
		doc.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
		doc.SetRoot(root.Copy())
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
