package connectors

import (
	"context"
	"fmt"
	"net/http"

	"github.com/busbar/busbar/bus"
)

// Store-and-forward support: an async route keeps the request as it was
// received and rebuilds the route's message from those bytes at each
// delivery attempt, the way this package built it from the wire.

type requestBodyKey struct{}

// withRequestBody records the request's body bytes as received for the
// route handler (see RequestBody).
func withRequestBody(ctx context.Context, body []byte) context.Context {
	return context.WithValue(ctx, requestBodyKey{}, body)
}

// RequestBody returns the inbound request's body exactly as received (for
// a SOAP facade: the whole envelope, in its own charset), or nil outside a
// REST or SOAP request. The bytes may be a pooled buffer: they are valid
// while the route's handler runs; keep a copy to use them later.
func RequestBody(ctx context.Context) []byte {
	b, _ := ctx.Value(requestBodyKey{}).([]byte)
	return b
}

// DecodeREST puts a REST request's body into m as the REST listener does:
// JSON or XML by its Content-Type, checked.
func DecodeREST(body []byte, contentType string, m *bus.Message) error {
	return decodeREST(body, contentType, m)
}

// DecodeSOAP puts a SOAP request's envelope into m as a facade does: the
// Body's element as the payload, the version, the Header. contentType
// gives the version and the charset.
func DecodeSOAP(body []byte, contentType string, m *bus.Message) error {
	version, charset, _ := soapVersionOf(http.Header{"Content-Type": {contentType}})
	if version == 0 {
		return bus.ClientFault(http.StatusUnsupportedMediaType, "Unsupported media type",
			fmt.Sprintf("Content-Type %q is not SOAP", contentType))
	}
	env, err := ParseEnvelope(body, charset, version)
	if err != nil {
		return err
	}
	if !env.HasPayload() {
		return bus.ClientFault(0, "Malformed SOAP envelope", "the SOAP Body is empty")
	}
	env.SetPayloadOn(m)
	m.SOAP, m.SOAPHeader = env.Version, env.Header
	return nil
}
