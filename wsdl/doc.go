// Package wsdl reads WSDL 1.1 documents (and the XML Schemas they carry or
// import) at run time.
//
// It answers the questions a SOAP facade and a SOAP connector ask of a WSDL:
// which services, ports and addresses there are; which operations every
// SOAP 1.1 and SOAP 1.2 binding offers, with their SOAPAction, style, use and
// body elements; which operation an inbound request is for (FindOperation:
// by SOAPAction first, then by the first element of the SOAP body). Publish
// rewrites the service addresses of a WSDL so that Busbar can serve it for a
// facade, keeping everything else byte for byte.
//
// Element gives the schema hints the mapping engine needs: the children of
// an element in declared order, which of them repeat, their simple types and
// nillability. See ElementInfo for what is and is not supported.
//
// Imports (wsdl:import, xsd:import and xsd:include with a location) are
// resolved against the location of the importing file. Nothing is ever
// fetched over the network: an http(s) location is reported in
// Definitions.Warnings as not loaded. Whether a file is a WSDL or a schema
// is decided by its document element, not by the construct that named it
// (WCF saves schemas as .wsdl files).
//
// Not supported, on purpose or not yet:
//   - WSDL 2.0; operations of HTTP GET/POST bindings (their ports are listed
//     with SOAP 0, their operations are not);
//   - MIME/DIME multipart bindings (the soap:body inside mime:part is not
//     looked at);
//   - overloaded operations that share a name and a body wrapper (Kingdee EAS
//     login) cannot be told apart by FindOperation; all are in Operations
//     with their InputParts, FindOperation returns the first;
//   - UTF-16 documents in Publish;
//   - the schema limits listed on ElementInfo.
package wsdl
