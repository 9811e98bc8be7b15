package inproc

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bench/payloads"
)

// leaves lists an element's leaf elements as "path=text", in order.
func leaves(e *etree.Element, prefix string, out []string) []string {
	kids := e.ChildElements()
	if len(kids) == 0 {
		return append(out, prefix+"="+strings.TrimSpace(e.Text()))
	}
	for _, c := range kids {
		out = leaves(c, prefix+"/"+c.Tag, out)
	}
	return out
}

func bapiLeaves(t *testing.T, doc []byte, element string) []string {
	t.Helper()
	d := etree.NewDocument()
	if err := d.ReadFromBytes(doc); err != nil {
		t.Fatalf("%v: %s", err, doc)
	}
	e := d.FindElement("//" + element)
	if e == nil {
		t.Fatalf("no %s in %s", element, doc)
	}
	return leaves(e, "", nil)
}

// TestScenariosAnswer: the benchmarked routes do the work they claim. S5's
// round trip through the other vocabulary gives back every field of the
// document; S6 and S7 answer the backend's receipt.
func TestScenariosAnswer(t *testing.T) {
	for _, sc := range scenarios {
		h := sc.handler(t)
		for _, n := range payloads.Lines {
			w := sc.serve(h, sc.body(n))
			if w.Code != http.StatusOK {
				t.Fatalf("%s %d items: %d %s", sc.name, n, w.Code, w.Body)
			}
			reply := w.Body.Bytes()
			switch strings.TrimSuffix(strings.TrimPrefix(sc.name, "bridge-"), "-validate") {
			case "S5":
				want := bapiLeaves(t, payloads.BAPI(n), "BAPI_ACC_DOCUMENT_POST")
				got := bapiLeaves(t, reply, "BAPI_ACC_DOCUMENT_POSTResponse")
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Errorf("S5 %d items: the round trip changed the document\ngot  %v\nwant %v", n, got, want)
				}
				if items := strings.Count(string(reply), "<AMT_DOCCUR>"); items != n {
					t.Errorf("S5 %d items: %d amounts came back", n, items)
				}
			case "S6":
				if !strings.Contains(string(reply), "<OBJ_KEY>010000004210002026</OBJ_KEY>") {
					t.Errorf("S6 %d items: reply without the receipt's key: %s", n, reply)
				}
			case "S7":
				if !strings.Contains(string(reply), `"documentNumber":"0100000042"`) {
					t.Errorf("S7 %d items: reply without the document number: %s", n, reply)
				}
			}
			t.Logf("%s %s items: %d bytes in, %d out", sc.name, strconv.Itoa(n), len(sc.body(n)), len(reply))
		}
	}
}
