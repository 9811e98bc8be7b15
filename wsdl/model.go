package wsdl

import (
	"strings"

	"github.com/busbar/busbar/bus"
)

// Namespaces of WSDL 1.1, its bindings and XML Schema.
const (
	NSWSDL    = "http://schemas.xmlsoap.org/wsdl/"
	NSSOAP11  = "http://schemas.xmlsoap.org/wsdl/soap/"
	NSSOAP12  = "http://schemas.xmlsoap.org/wsdl/soap12/"
	NSHTTP    = "http://schemas.xmlsoap.org/wsdl/http/"
	NSXSD     = "http://www.w3.org/2001/XMLSchema"
	NSSOAPEnc = "http://schemas.xmlsoap.org/soap/encoding/"
)

// QName is a namespace-qualified XML name.
type QName struct {
	Space string // namespace URI; "" for an unqualified name
	Local string
}

// String renders the name in Clark notation, {space}local.
func (q QName) String() string {
	if q.Space == "" {
		return q.Local
	}
	return "{" + q.Space + "}" + q.Local
}

// Definitions is what Load found in a WSDL and everything it imports.
type Definitions struct {
	// TargetNamespace of the WSDL file passed to Load.
	TargetNamespace string
	// Services of the loaded file and of the WSDL files it imports, in
	// document order (the loaded file first).
	Services []Service
	// Warnings says what was not loaded or not understood: http(s) imports
	// (never fetched), missing imports when tolerated, dangling references.
	Warnings []string
	// Files lists every file read, the loaded file first, as paths built
	// from the path given to Load.
	Files []string

	operations []Operation
	schema     *schemaSet
}

// Service is a wsdl:service.
type Service struct {
	Name  string
	Ports []Port
}

// Port is a wsdl:port.
type Port struct {
	Name    string
	Binding string // local name of the binding
	Address string // location of soap:address, soap12:address or http:address
	// SOAP is the SOAP version of the port's binding: bus.SOAP11, bus.SOAP12,
	// or 0 for HTTP GET/POST (and unknown) bindings.
	SOAP bus.SOAPVersion
}

// Operation is one operation of one SOAP binding.
type Operation struct {
	Name    string
	Binding string          // local name of the binding
	SOAP    bus.SOAPVersion // version of the binding
	Action  string          // soapAction of soap:operation / soap12:operation, "" when none
	Style   string          // "document" or "rpc"
	Use     string          // use of the input soap:body: "literal" or "encoded"
	// Input and Output are the elements that are the first child of the SOAP
	// body: for document style the (first bound) part's element, for rpc the
	// wrapper named after the operation ("…Response" for the output) in the
	// soap:body namespace. Output is zero for a one-way operation.
	Input, Output QName
	// InputParts names the parts of the input message, in order (after any
	// soap:body parts="…" selection). Overloaded rpc operations that share a
	// name, such as Kingdee EAS's three login operations, differ only here.
	InputParts []string
	// Faults names the operation's faults (wsdl:fault name).
	Faults []string
}

// Operations returns every operation of every SOAP binding, binding by
// binding in document order. Operations that share a name (overloads) are
// all kept.
func (d *Definitions) Operations() []Operation {
	out := make([]Operation, len(d.operations))
	copy(out, d.operations)
	return out
}

// FindOperation picks the operation an inbound SOAP request is for.
// version limits the search to bindings of that SOAP version (0: any).
// action is the SOAP 1.1 SOAPAction header or the SOAP 1.2 action parameter,
// with or without its quotes; bodyElem is the first element in the SOAP body.
//
// The SOAPAction decides first; when it is empty or matches several
// operations (an empty soapAction is common), the body element decides among
// them; when the action matches none, the body element alone decides. Among
// operations that still tie (overloads sharing a name and wrapper), the first
// in document order is returned.
func (d *Definitions) FindOperation(version bus.SOAPVersion, action string, bodyElem QName) (Operation, bool) {
	action = strings.TrimSpace(action)
	if len(action) >= 2 && action[0] == '"' && action[len(action)-1] == '"' {
		action = action[1 : len(action)-1]
	}
	var byAction []int
	if action != "" {
		for i, op := range d.operations {
			if (version == 0 || op.SOAP == version) && op.Action == action {
				byAction = append(byAction, i)
			}
		}
	}
	switch len(byAction) {
	case 1:
		return d.operations[byAction[0]], true
	case 0:
		for _, op := range d.operations {
			if (version == 0 || op.SOAP == version) && op.Input == bodyElem && bodyElem.Local != "" {
				return op, true
			}
		}
		return Operation{}, false
	}
	for _, i := range byAction {
		if d.operations[i].Input == bodyElem {
			return d.operations[i], true
		}
	}
	return d.operations[byAction[0]], true
}
