package connectors

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/transforms"
)

func benchSOAP(items int) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:rfc="urn:sap-com:document:sap:rfc:functions" xmlns:h="urn:busbar:bench">` +
		`<soapenv:Header><h:Routing><h:Target>b</h:Target><h:Source>OA</h:Source></h:Routing></soapenv:Header><soapenv:Body><rfc:BAPI_ACC_DOCUMENT_POST><DOCUMENTHEADER><COMP_CODE>2000</COMP_CODE></DOCUMENTHEADER><ACCOUNTGL>`)
	for i := 1; i <= items; i++ {
		fmt.Fprintf(&b, `<item><ITEMNO_ACC>%010d</ITEMNO_ACC><GL_ACCOUNT>0066100000</GL_ACCOUNT><ITEM_TEXT>Travel expense line %d</ITEM_TEXT></item>`, i, i)
	}
	b.WriteString(`</ACCOUNTGL></rfc:BAPI_ACC_DOCUMENT_POST></soapenv:Body></soapenv:Envelope>`)
	return []byte(b.String())
}

// The CPU cost of choosing a route, without the network: two routes share
// a path and the request goes to the second, so the first one's condition
// fails first. "none" is the fallback alone (a pass-through).
func BenchmarkChoose(b *testing.B) {
	ns := map[string]string{"h": "urn:busbar:bench"}
	cond := func(src string) *transforms.Expr {
		e, err := transforms.CompileExpr(src, "bench.yaml", 1, 1, ns)
		if err != nil {
			b.Fatal(err)
		}
		return e
	}
	// as routes compiles a soap-header condition
	soapHeaderMatch := func(src string) *Match {
		return &Match{SOAPHeader: cond(src).BoolIn, SOAPHeaderField: ParseHeaderField(src, ns)}
	}
	kinds := []struct {
		name string
		a, b *Match
	}{
		{"none", nil, nil},
		{"header", &Match{Headers: []HeaderMatch{{"X-Route", "a"}}}, &Match{Headers: []HeaderMatch{{"X-Route", "b"}}}},
		{"soap-action", &Match{SOAPAction: "urn:a"}, &Match{SOAPAction: "urn:b"}},
		{"soap-header", soapHeaderMatch("/h:Routing/h:Target == 'a'"), soapHeaderMatch("/h:Routing/h:Target == 'b'")},
		{"soap-header-tree", &Match{SOAPHeader: cond("/h:Routing/h:Target == 'a'").BoolIn}, &Match{SOAPHeader: cond("/h:Routing/h:Target == 'b'").BoolIn}},
		{"body-xpath", &Match{Body: cond("/*/DOCUMENTHEADER/COMP_CODE == '1000'").Bool}, &Match{Body: cond("/*/DOCUMENTHEADER/COMP_CODE == '2000'").Bool}},
	}
	for _, k := range kinds {
		g := &dispatchGroup{method: "POST", path: "/p", raw: true}
		if k.a != nil {
			g.add(candidate{route: "a", match: k.a})
		}
		g.add(candidate{route: "b", match: k.b})
		for _, items := range []int{2, 200} {
			payload := benchSOAP(items)
			b.Run(fmt.Sprintf("%s/items=%d", k.name, items), func(b *testing.B) {
				req := httptest.NewRequest("POST", "/p", nil)
				req.Header.Set("Content-Type", "text/xml; charset=utf-8")
				req.Header.Set("SOAPAction", `"urn:b"`)
				req.Header.Set("X-Route", "b")
				b.SetBytes(int64(len(payload)))
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					in := newInbound(nil, nil, req, true, g)
					// The body as the handler would have read it.
					in.m = &bus.Message{Format: bus.FormatRaw, ContentType: "text/xml; charset=utf-8", Header: req.Header, Body: payload}
					in.body, in.bodyRead = payload, true
					c, err := g.choose(in)
					if err != nil || c == nil || c.route != "b" {
						b.Fatalf("chose %v, %v", c, err)
					}
					in.release()
				}
			})
		}
	}
}

// Routing cost alone: an exact path found in the map, against the same
// server's gorilla/mux answering a templated path, among 40 routes.
func BenchmarkRouter(b *testing.B) {
	srv := NewServer(ServerConfig{})
	var eps Endpoints
	noop := func(_ context.Context, m *bus.Message) (*bus.Message, error) { return m.Reply(), nil }
	for i := 0; i < 20; i++ {
		eps.HTTP = append(eps.HTTP, HTTPEndpoint{Route: fmt.Sprint("exact", i), Method: "GET", Path: fmt.Sprintf("/api/v1/exact%d", i), Handle: noop})
		eps.HTTP = append(eps.HTTP, HTTPEndpoint{Route: fmt.Sprint("tpl", i), Method: "GET", Path: fmt.Sprintf("/api/v1/tpl%d/{id}", i), Handle: noop})
	}
	if err := srv.Swap(eps); err != nil {
		b.Fatal(err)
	}
	rt := (*srv.router.Load()).(*router)
	cases := []struct {
		name, path string
		mux        bool
	}{
		{"exact-path-map", "/api/v1/exact19", false},
		{"exact-path-mux", "/api/v1/exact19", true}, // what every request cost before the map
		{"template-mux", "/api/v1/tpl19/42", false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.path, nil)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if h := rt.exact[req.URL.Path][req.Method]; h == nil || c.mux {
					var m mux.RouteMatch
					if !rt.mux.Match(req, &m) {
						b.Fatal("no match")
					}
				}
			}
		})
	}
}

func BenchmarkScanSOAPHeader(b *testing.B) {
	payload := benchSOAP(2)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if h, err := scanSOAPHeader(payload, "utf-8"); h == nil || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSOAPHeaderCondition(b *testing.B) {
	h, _ := scanSOAPHeader(benchSOAP(2), "utf-8")
	e, _ := transforms.CompileExpr("/h:Routing/h:Target == 'b'", "bench.yaml", 1, 1, map[string]string{"h": "urn:busbar:bench"})
	m := &bus.Message{}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if ok, err := e.BoolIn(h, m); !ok || err != nil {
			b.Fatal(err)
		}
	}
}
