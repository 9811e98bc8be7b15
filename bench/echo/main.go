// Command echo is the benchmark's backend: it answers as fast as it can so
// that what the benchmark measures is the proxy or bus in front of it.
//
//	POST /echo[/NAME]   the request body back, with the request's Content-Type (a reply sized like the request)
//	POST /sap/bapi      a fixed SOAP 1.1 BAPI_ACC_DOCUMENT_POST reply (document posted, RETURN type S)
//	POST /api/postings  a fixed JSON posting receipt
//	GET  /healthz       ok
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"

	"github.com/busbar/busbar/bench/payloads"
)

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func echo(w http.ResponseWriter, r *http.Request) {
	b := buffers.Get().(*bytes.Buffer)
	defer buffers.Put(b)
	b.Reset()
	if _, err := b.ReadFrom(r.Body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.Write(b.Bytes())
}

// fixed answers with a canned body once the request body is read: a
// backend that stops reading early would make clients see resets.
func fixed(contentType, body string) http.HandlerFunc {
	n := strconv.Itoa(len(body))
	return func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Content-Length", n)
		io.WriteString(w, body)
	}
}

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to listen on (127.0.0.1 only)")
	flag.Parse()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /echo", echo)
	mux.HandleFunc("POST /echo/{to}", echo)
	for path, r := range payloads.FixedReplies {
		mux.HandleFunc("POST "+path, fixed(r.ContentType, r.Body))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Fprintf(os.Stdout, "echo listening on %s\n", ln.Addr())
	log.Fatal(http.Serve(ln, mux))
}
