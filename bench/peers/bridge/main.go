// Command bridge serves the hand-written SOAP⇄REST bridge (package
// handbridge) that Busbar's S6 and S7 are measured against.
package main

import (
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/busbar/busbar/bench/peers/handbridge"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on")
	backend := flag.String("backend", "", "backend base URL, e.g. http://127.0.0.1:9000")
	conns := flag.Int("conns", 256, "idle connections kept to the backend (size it for the concurrency)")
	flag.Parse()
	if !strings.HasPrefix(*backend, "http://") && !strings.HasPrefix(*backend, "https://") {
		log.Fatalf("bridge: --backend %q is not an http(s) URL", *backend)
	}
	h := handbridge.New(*backend, &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        *conns,
			MaxIdleConnsPerHost: *conns,
			IdleConnTimeout:     90 * time.Second,
		},
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "bridge listening on %s for %s\n", ln.Addr(), strings.TrimSuffix(*backend, "/"))
	if err := http.Serve(ln, h); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}
