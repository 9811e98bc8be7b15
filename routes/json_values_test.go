package routes

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/busbar/busbar/transforms"
)

var decodeSeeds = []string{
	`{}`, `[]`, `null`, `true`, ` false `, `"x"`, `0`, `-1.50e+3`, `1E-2`,
	`{"a": [1, "two", {"b": null}, [], {}], "c": true}`,
	`{"esc\"aped": "tab\t \u00e9 \ud83d\ude00 \/ \\ end", "é": "出租车"}`,
	`[[[[["deep"]]]]]`,
	"{\n\t\"companyCode\" : \"1000\" ,\r\n \"lines\" : [ { \"amount\" : 179.19 } ] }",
}

// decodeChecked reads what encoding/json with UseNumber reads, on every
// document transforms.CheckJSON passes.
func TestDecodeCheckedMatchesEncodingJSON(t *testing.T) {
	docs := append([]string(nil), decodeSeeds...)
	for _, f := range []string{"voucher-2.json", "voucher-200.json", "json-10KiB.json"} {
		b, err := os.ReadFile(filepath.Join("..", "bench", "testdata", f))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, string(b))
	}
	for _, doc := range docs {
		checkDecode(t, []byte(doc))
	}
}

func FuzzDecodeChecked(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if transforms.CheckJSON(b) != nil {
			return
		}
		checkDecode(t, b)
	})
}

func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	got, _, err := decodeChecked(b)
	if err != nil {
		t.Fatalf("%.60q: %v", b, err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var want any
	if err := d.Decode(&want); err != nil {
		t.Fatalf("%.60q: encoding/json: %v", b, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%.60q:\n got %#v\nwant %#v", b, got, want)
	}
}

// A truncated or broken document is an error, never a panic or a value.
func TestDecodeCheckedRefusesBrokenJSON(t *testing.T) {
	for _, doc := range []string{``, `{`, `{"a"`, `{"a":`, `{"a":1`, `{"a":1,`, `[1,`, `"abc`, `tru`, `nul`, `{"a" 1}`, `[1 2]`, `{} x`, `}`, `{1: 2}`} {
		if v, _, err := decodeChecked([]byte(doc)); err == nil {
			t.Errorf("%q: want an error, got %#v", doc, v)
		}
	}
}
