// Command revproxy is the pass-through a Go user would write instead of
// adopting an ESB: net/http/httputil.ReverseProxy in front of one backend,
// its Transport's idle pool sized for the expected concurrency.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"time"
)

// fullDuplex lets the proxy keep reading the request body after the reply
// has started. Without it the HTTP/1 server closes the inbound body when
// the reply's headers go out, the Transport's final read of that body fails
// and it drops the backend connection mid-reply (golang/go#40747): clients
// see cut replies under load with bodies of tens of KiB.
func fullDuplex(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		h.ServeHTTP(w, r)
	})
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	backend := flag.String("backend", "", "backend base URL, e.g. http://127.0.0.1:9000")
	conns := flag.Int("conns", 256, "idle connections kept to the backend (size it for the concurrency)")
	flag.Parse()
	target, err := url.Parse(*backend)
	if err != nil || target.Host == "" {
		log.Fatalf("revproxy: --backend %q is not a URL", *backend)
	}
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        *conns,
			MaxIdleConnsPerHost: *conns,
			IdleConnTimeout:     90 * time.Second,
		},
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "revproxy listening on %s for %s\n", ln.Addr(), target)
	log.Fatal(http.Serve(ln, fullDuplex(proxy)))
}
