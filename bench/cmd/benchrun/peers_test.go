package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"syscall"
	"testing"

	"github.com/busbar/busbar/bench/payloads"
)

// recorder is a backend that answers like bench/echo and keeps what it got.
type recorder struct {
	mu  sync.Mutex
	got map[string][][]byte
	srv *httptest.Server
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{got: map[string][][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got[req.URL.Path] = append(r.got[req.URL.Path], body)
		r.mu.Unlock()
		switch fixed, ok := payloads.FixedReplies[req.URL.Path]; {
		case ok:
			w.Header().Set("Content-Type", fixed.ContentType)
			io.WriteString(w, fixed.Body)
		default:
			http.NotFound(w, req)
		}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *recorder) last(path string) []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	bs := r.got[path]
	if len(bs) == 0 {
		return nil
	}
	return bs[len(bs)-1]
}

var xmlDecl = regexp.MustCompile(`^<\?xml[^>]*\?>\s*`)

// sameXML compares two documents up to their XML declaration and the
// whitespace between elements.
func sameXML(a, b []byte) bool {
	norm := func(x []byte) []byte {
		x = xmlDecl.ReplaceAll(bytes.TrimSpace(x), nil)
		return regexp.MustCompile(`>\s+<`).ReplaceAll(x, []byte("><"))
	}
	return bytes.Equal(norm(a), norm(b))
}

func sameJSON(t *testing.T, a, b []byte) bool {
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("%v: %s", err, a)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// TestBridgeDoesWhatBusbarDoes checks the comparison is fair: for S6 and S7,
// Busbar and the hand-written bridge send the backend the same document and
// answer the client the same document. It also exercises the supervisor:
// everything it started is gone afterwards.
func TestBridgeDoesWhatBusbarDoes(t *testing.T) {
	root, _ := filepath.Abs("../../..")
	dir := t.TempDir()
	build := exec.Command("go", "build", "-o", dir+string(os.PathSeparator), "./cmd/busbar", "./bench/peers/bridge")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	rec := newRecorder(t)
	sup := &supervisor{dir: dir}
	defer sup.stopAll()
	e := &env{ctx: context.Background(), sup: sup, root: root, tmp: dir, backend: rec.srv.URL,
		bins: bins{Busbar: filepath.Join(dir, "busbar"), Bridge: filepath.Join(dir, "bridge")}}
	s6, _ := targetByName("S6")
	s7, _ := targetByName("S7")
	bus6, err := e.startBusbar(s6)
	if err != nil {
		t.Fatal(err)
	}
	bus7, err := e.startBusbar(s7)
	if err != nil {
		t.Fatal(err)
	}
	br, err := e.startBridge()
	if err != nil {
		t.Fatal(err)
	}
	post := func(addr, path, file, ctype string, headers ...string) []byte {
		t.Helper()
		body, err := os.ReadFile(filepath.Join(root, "bench", "testdata", file))
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", ctype)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: %s: %s", path, resp.Status, out)
		}
		return out
	}
	for _, n := range []string{"2", "200"} {
		action := `"` + payloads.ActionBAPI + `"`
		busReply := post(bus6.addr, "/s6", "bapi-"+n+".xml", "text/xml; charset=utf-8", "SOAPAction", action)
		busSent := rec.last("/api/postings")
		brReply := post(br.addr, "/s6", "bapi-"+n+".xml", "text/xml; charset=utf-8", "SOAPAction", action)
		brSent := rec.last("/api/postings")
		if !sameJSON(t, busSent, brSent) {
			t.Errorf("S6 %s items: the backend got different JSON\nbusbar: %s\nbridge: %s", n, busSent, brSent)
		}
		if !sameXML(busReply, brReply) {
			t.Errorf("S6 %s items: different replies\nbusbar: %s\nbridge: %s", n, busReply, brReply)
		}

		busReply = post(bus7.addr, "/s7", "voucher-"+n+".json", "application/json")
		busSent = rec.last("/sap/bapi")
		brReply = post(br.addr, "/s7", "voucher-"+n+".json", "application/json")
		brSent = rec.last("/sap/bapi")
		if !sameXML(busSent, brSent) {
			t.Errorf("S7 %s items: the backend got different envelopes\nbusbar: %s\nbridge: %s", n, busSent, brSent)
		}
		if !sameJSON(t, busReply, brReply) {
			t.Errorf("S7 %s items: different replies\nbusbar: %s\nbridge: %s", n, busReply, brReply)
		}
	}

	pids := []int{bus6.proc.pid(), bus7.proc.pid(), br.proc.pid()}
	sup.stopAll()
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			t.Errorf("process %d is still running after stopAll", pid)
		}
	}
}
