package connectors

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"

	"github.com/busbar/busbar/bus"
)

func init() {
	bus.RegisterConnector(bus.ConnectorKind{
		Name:    "soap",
		Summary: "calls a SOAP 1.1 or 1.2 service (SAP, Kingdee, Yonyou, OA systems)",
		New:     func() bus.ConnectorConfig { return &SOAPConfig{Version: "1.1"} },
	})
}

// SOAPConfig configures an outbound SOAP connector (kind "soap").
type SOAPConfig struct {
	HTTPConfig `yaml:",inline"`
	// Version is the envelope the service expects: "1.1" (default) or "1.2".
	Version string `yaml:"version"`
	// WSDL is the service's contract (relative to the configuration
	// directory). Routes use its schema to convert replies to JSON: arrays
	// stay arrays with one item, numbers become numbers. The route loader
	// reads it; the connector itself does not need it.
	WSDL string `yaml:"wsdl"`
}

func (c *SOAPConfig) Validate() error {
	if c.Version != "1.1" && c.Version != "1.2" {
		return fmt.Errorf(`field "version": %q is not a SOAP version: write "1.1" or "1.2"`, c.Version)
	}
	return c.HTTPConfig.Validate()
}

func (c *SOAPConfig) Build(name string) (bus.Connector, error) {
	v := bus.SOAP11
	if c.Version == "1.2" {
		v = bus.SOAP12
	}
	o, err := newOutbound(name, &c.HTTPConfig, func(u string) string { return u })
	if err != nil {
		return nil, err
	}
	return &SOAPConnector{outbound: o, version: v}, nil
}

// SOAPConnector calls a SOAP service: it wraps the message's XML payload in
// an envelope and unwraps the reply, turning a soap:Fault into a 502 Fault
// that carries the backend's code and reason.
type SOAPConnector struct {
	*outbound
	version bus.SOAPVersion
}

var _ bus.Connector = (*SOAPConnector)(nil)

func (c *SOAPConnector) Call(ctx context.Context, req *bus.Message) (*bus.Message, error) {
	if !req.HasXML() {
		return nil, bus.ServerFault(0, "Route misconfigured", fmt.Sprintf(
			"connector %q needs an XML payload, the route gave %s: map the request to XML first", c.name, req.Format))
	}
	// The envelope lives in a pooled buffer: exchange revokes the
	// transport's loan of it before it goes back (see lentBody).
	env := getBuffer()
	defer putBuffer(env)
	if err := writeMessageEnvelope(env, c.version, req); err != nil {
		return nil, bus.ServerFault(0, "Cannot write SOAP request", fmt.Sprintf("connector %q: %v", c.name, err)).
			Hide(fmt.Sprintf("connector %q: the request could not be written", c.name))
	}
	body, cs, err := c.encodeXML(env.Bytes())
	if err != nil {
		return nil, err
	}
	header := make(http.Header, len(req.Header)+len(c.headers)+6)
	for k, v := range req.Header { // the route's to.headers win over the connector's
		header[k] = v
	}
	if c.version == bus.SOAP12 {
		ct := ContentTypeSOAP12 + "; charset=" + cs
		if req.SOAPAction != "" {
			ct += "; action=" + strconv.Quote(req.SOAPAction)
		}
		header["Content-Type"] = []string{ct}
	} else {
		header["Content-Type"] = []string{ContentTypeSOAP11 + "; charset=" + cs}
		header["Soapaction"] = []string{strconv.Quote(req.SOAPAction)}
	}
	if len(header["Accept"]) == 0 {
		header["Accept"] = acceptSOAP
	}
	reply := req.Reply() // before the call: req (and its tree) need not live through it
	resp, data, err := c.exchange(ctx, http.MethodPost, req.Path, header, lend(body), req.CorrelationID)
	if err != nil {
		return nil, err
	}
	_, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	parsed, perr := ParseEnvelope(data, params["charset"], 0)
	if perr == nil {
		keepDoc(ctx, parsed.doc)
	}
	switch {
	case perr == nil && parsed.Fault != nil:
		parsed.Fault.Detail = fmt.Sprintf("connector %q: %s", c.name, parsed.Fault.FaultString)
		parsed.Fault.Extra = map[string]any{"backendStatus": resp.StatusCode}
		return nil, parsed.Fault
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		f := restStatusFault(c.name, resp, data)
		f.Status, f.Blame, f.Title = http.StatusBadGateway, bus.BlameServer, "Backend error"
		return nil, f
	case perr != nil:
		var pf *bus.Fault
		reason := perr.Error()
		if errors.As(perr, &pf) {
			reason = pf.Title + ": " + pf.Detail
		}
		return nil, bus.ServerFault(http.StatusBadGateway, "Backend sent malformed SOAP",
			fmt.Sprintf("connector %q: %s", c.name, reason))
	}
	reply.Status, reply.Header = resp.StatusCode, resp.Header
	reply.SOAPHeader = parsed.Header
	parsed.SetPayloadOn(reply)
	return reply, nil
}
