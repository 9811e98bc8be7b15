package wsdl

import (
	"fmt"
	"os"

	"github.com/busbar/busbar/transforms"
)

// Schema returns the schema hints of every global element of the WSDL's
// schemas, for schema-aware XML ⇄ JSON conversion. Elements are described
// on first use. rpc-style wrappers (which are not schema elements) are not
// in it: their messages convert by the generic rules.
func (d *Definitions) Schema() *transforms.Schema {
	return transforms.NewSchemaFunc(func(space, local string) *transforms.ElementType {
		info, ok := d.Element(QName{space, local})
		if !ok {
			return nil
		}
		return elementType(info)
	})
}

// LoadSchema reads the schema hints of a WSDL 1.1 file or of a plain XML
// Schema (.xsd) file, with everything they import or include: what
// `busbar map --schema` and schema-aware conversions need. Which one the
// file is comes from its document element.
func LoadSchema(path string) (*transforms.Schema, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("wsdl: %s: %w", path, unwrapPathError(err))
	}
	doc, err := parseFile(path, data)
	if err != nil {
		return nil, err
	}
	root := doc.Root()
	switch {
	case root.Tag == "definitions" && root.NamespaceURI() == NSWSDL:
		d, err := LoadBytes(path, data, LoadOptions{})
		if err != nil {
			return nil, err
		}
		return d.Schema(), nil
	case root.Tag == "schema" && isXSD(root.NamespaceURI()):
		l := &loader{seen: map[string]bool{seenKey(path, ""): true}, files: []string{path}, schema: newSchemaSet()}
		if err := l.schemaDoc(path, root, ""); err != nil {
			return nil, err
		}
		d := &Definitions{schema: l.schema, Files: l.files, Warnings: l.warnings}
		return d.Schema(), nil
	}
	return nil, fmt.Errorf("wsdl: %s: the document element is <%s>, want wsdl:definitions or xsd:schema", path, root.FullTag())
}

// elementType turns an ElementInfo tree into conversion hints. A recursive
// element (whose children ElementInfo does not expand again) shares the
// children of the ancestor it repeats, which makes the hints a graph that
// documents of any depth can walk.
func elementType(info *ElementInfo) *transforms.ElementType {
	type loop struct{ t, ancestor *transforms.ElementType }
	var loops []loop
	var walk func(info *ElementInfo, stack []frame) *transforms.ElementType
	walk = func(info *ElementInfo, stack []frame) *transforms.ElementType {
		t := &transforms.ElementType{
			Space:    info.Name.Space,
			Local:    info.Name.Local,
			Type:     info.Simple,
			Repeats:  info.Repeats,
			Required: info.MinOccurs > 0 && !info.Choice,
			Nillable: info.Nillable,
			Choice:   info.Choice,
			Open:     info.Any,
		}
		if info.Simple == "" && len(info.Children) == 0 && info.Type.Space == NSSOAPEnc {
			t.Type = "anyType" // a SOAP-encoded array: no element structure to follow
		}
		if info.Recursive && len(info.Children) == 0 {
			if a := recursionTarget(info, stack); a != nil {
				loops = append(loops, loop{t, a})
			} else {
				t.Open = true
			}
			return t
		}
		if info.Recursive {
			t.Open = true // cut short inside a group
		}
		stack = append(stack, frame{info, t})
		for _, c := range info.Children {
			t.Children = append(t.Children, walk(c, stack))
		}
		return t
	}
	root := walk(info, nil)
	for _, l := range loops {
		l.t.Type, l.t.Children, l.t.Open = l.ancestor.Type, l.ancestor.Children, l.ancestor.Open
	}
	return root
}

type frame struct {
	info *ElementInfo
	t    *transforms.ElementType
}

// recursionTarget finds the ancestor a recursive element repeats: the one
// of the same type, or for an element reference the one of the same name.
func recursionTarget(info *ElementInfo, stack []frame) *transforms.ElementType {
	for i := len(stack) - 1; i >= 0; i-- {
		a := stack[i].info
		if (info.Type != QName{} && a.Type == info.Type) || (info.Type == QName{} && a.Name == info.Name) {
			return stack[i].t
		}
	}
	return nil
}
