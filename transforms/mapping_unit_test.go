package transforms

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/beevik/etree"

	"github.com/busbar/busbar/bus"
)

func jsonMsg(body string) *bus.Message {
	m := bus.NewMessage()
	m.Format, m.Body = bus.FormatJSON, []byte(body)
	return m
}

func xmlMsg(t *testing.T, body string) *bus.Message {
	t.Helper()
	doc, err := ParseXML([]byte(body), "")
	if err != nil {
		t.Fatal(err)
	}
	m := bus.NewMessage()
	m.Format, m.Body, m.Root = bus.FormatXML, []byte(body), doc.Root()
	return m
}

func TestLoadErrors(t *testing.T) {
	cases := []struct{ src, want string }{
		{"output: json\nbody:\n  a: dte($.x)\n", `maps/x.yaml:3:6: expression "dte($.x)": unknown function "dte"`},
		{"output: json\nbodyy:\n  a: $.x\n", `maps/x.yaml:2:1: unknown key "bodyy"`},
		{"output: jsn\nbody:\n  a: $.x\n", `maps/x.yaml:1:9: output: want xml or json`},
		{"body:\n  a: $.x\n", `maps/x.yaml:1:1: missing output:`},
		{"output: json\nbody:\n  a: count(/a/b[)\n", `maps/x.yaml:3:12: expression "count(/a/b[)": XPath "/a/b[)"`},
		{"output: json\nbody:\n  a: lookup('nope', $.x)\n", `maps/x.yaml:3:6: expression "lookup('nope', $.x)": unknown table "nope"`},
		{"output: xml\nbody:\n  x:A:\n    b: $.x\n", `maps/x.yaml:3:3: prefix "x" is not declared under namespaces:`},
		{"output: xml\nbody:\n  A: $.x\n  B: $.y\n", `maps/x.yaml:2:1: body: XML output needs exactly one root element`},
		{"output: xml\nbody:\n  A:\n    1B: $.x\n", `maps/x.yaml:4:5: element name "1B" is not a valid XML name`},
		{"output: json\nbody:\n  a: OBJ_KEY\n", `maps/x.yaml:3:6: expression "OBJ_KEY": unknown name "OBJ_KEY"`},
		{"output: json\nbody:\n  a: \"'x' + $.y.\"\n", `maps/x.yaml:3:13: expression "'x' + $.y.": JSON path "$.y.": empty name`},
		{"output: json\nbody:\n  a: matches($.x, '[')\n", `maps/x.yaml:3:6: expression "matches($.x, '[')": bad regular expression "["`},
		{"output: json\nbody:\n  a: upper($.x, 2)\n", `maps/x.yaml:3:6: expression "upper($.x, 2)": too many arguments`},
		{"output: json\nbody:\n  a: $.x\n  b: /x\n", `maps/x.yaml:4:6: the body mixes XPath with JSON paths (line 3:6)`},
		{"output: json\ninput: json\nbody:\n  b: /x\n", `maps/x.yaml:4:6: expression "/x": XPath "/x" in a mapping over JSON input`},
		{"output: json\nbody:\n  a: [\n", `maps/x.yaml:3:6:`},
		{"output: json\nbody:\n  a: $nope\n", `maps/x.yaml:3:6: expression "$nope": unknown variable $nope`},
		{"output: json\nbody:\n  a: date($.d, '2006', '2006', 'Mars/Base')\n", `unknown time zone "Mars/Base"`},
		{"output: json\nbody:\n  a:\n    for-each: $.l\n    \"#value\": .x\n    b: .y\n", `maps/x.yaml:5:15: #value cannot be mixed with fields in JSON output`},
		{"output: json\nbody:\n  a: $.x\n  a: $.y\n", `maps/x.yaml:4:3: mapping key "a" already defined`},
		{"output: json\nbody:\n  a: \"$.x + \"\n", `maps/x.yaml:3:12: expression "$.x + ": unexpected token EOF`},
		{"output: json\ntables:\n  t: {file: missing.csv}\nbody:\n  a: $.x\n", `maps/x.yaml:3:13: table "t": open`},
		{"output: json\nbody:\n  a: \"'unterminated\"\n", `unterminated string literal`},
		{"output: json\nbody:\n  a: \"concat($.a, 'x') + lookup('nope', 1)\"\n", `maps/x.yaml:3:26: expression "concat($.a, 'x') + lookup('nope', 1)": unknown table "nope"`},
		{"output: json\nbody:\n  a: \"concat($.a, 'x') +* 2\"\n", `maps/x.yaml:3:25: expression "concat($.a, 'x') +* 2": unexpected token Operator("*")`},
		{"output: json\nbody:\n  a: \"upper($.a) + upper()\"\n", `maps/x.yaml:3:20: expression "upper($.a) + upper()": not enough arguments to call upper`},
		// choose, sort, group-by, templates, identity, copy-of
		{"output: json\nbody:\n  a:\n    choose:\n      - otherwise: 1\n      - when: $.x\n        then: 2\n", `maps/x.yaml:5:9: choose: otherwise: must be the last branch`},
		{"output: json\nbody:\n  a:\n    choose:\n      - when: $.x\n", `maps/x.yaml:5:9: choose: a branch needs when: and then:`},
		{"output: json\nbody:\n  a:\n    b: 1\n    choose:\n      - when: $.x\n        then: 2\n", `maps/x.yaml:5:5: among other fields, choose: and call: must produce fields`},
		{"output: json\nbody:\n  a:\n    sort: $.x\n", `maps/x.yaml:4:11: sort: and group-by: go with for-each:`},
		{"output: json\nbody:\n  a:\n    for-each: $.l\n    sort: {by: .x, order: up}\n    b: .b\n", `maps/x.yaml:5:27: order: want ascending or descending`},
		{"output: json\nbody:\n  a: sum(group(.x))\n", `maps/x.yaml:3:10: expression "sum(group(.x))": group() works inside a for-each with group-by`},
		{"output: json\nbody:\n  a:\n    for-each: $.l\n    group-by: .k\n    n: sum(group(.x +))\n", `maps/x.yaml:6:21: expression ".x +": unexpected token EOF`},
		{"output: json\nbody:\n  a:\n    call: nope\n", `maps/x.yaml:4:11: unknown template "nope"`},
		{"output: json\ntemplates:\n  t:\n    params: [p]\n    body: $p\nbody:\n  a:\n    call: t\n    params: {q: 1}\n", `maps/x.yaml:9:14: template "t" has no parameter "q"`},
		{"output: json\ntemplates:\n  t:\n    body: $q\nbody:\n  a: 1\n", `maps/x.yaml:4:11: expression "$q": unknown variable $q`},
		{"output: json\nbody:\n  a:\n    context: $.x\n", `maps/x.yaml:4:14: context: and params: go with call:`},
		{"output: json\ninclude: nope.yaml\nbody:\n  a: 1\n", `maps/x.yaml:2:10: include: open testdata/nope.yaml`},
		{"output: json\nidentity:\n  rules: []\n", `maps/x.yaml:2:1: identity: copies XML input to XML output`},
		{"output: xml\nidentity:\n  rules:\n    - match: a[\n      drop: true\n", `maps/x.yaml:4:14: match "a[":`},
		{"output: xml\nidentity:\n  rules:\n    - match: a\n      drop: true\n      rename: b\n", `maps/x.yaml:4:7: drop: stands alone with match:`},
		{"output: xml\nidentity:\n  rules:\n    - match: \"@a\"\n      append: {b: 1}\n", `a rule for attributes can drop, rename, namespace or value them`},
		{"output: xml\nidentity:\n  rules:\n    - match: a\n      rename: q:b\n", `maps/x.yaml:5:15: prefix "q" is not declared under namespaces:`},
		{"output: json\nbody:\n  a:\n    copy-of: $.x\n", `maps/x.yaml:4:5: copy-of: builds XML output`},
		{"output: json\nbody:\n  a:\n    cdata: true\n", `maps/x.yaml:4:5: cdata: is for XML output`},
		{"output: json\nbody:\n  a: formatNumber($.x, '#,##0.0#0')\n", `number pattern "#,##0.0#0": '0' after '#' in the fraction`},
		{"output: json\nbody:\n  a: count(xpath('//q:*'))\n", `prefix "q" is not declared under namespaces`},
		// Every broken field and every unknown key, not only the first.
		{"output: json\nnamespace: {}\nbody:\n  a: dte($.d)\n  b:\n    c: $.x +\n  d: 1\n",
			"maps/x.yaml:2:1: unknown key \"namespace\" (want output, input, namespaces, tables, templates, include, body or identity)\n" +
				"maps/x.yaml:4:6: expression \"dte($.d)\": unknown function \"dte\"\n" +
				"maps/x.yaml:6:12: expression \"$.x +\": unexpected token EOF"},
	}
	for i, c := range cases {
		_, err := CompileMapping("maps/x.yaml", []byte(c.src), "testdata")
		if err == nil {
			t.Errorf("case %d: want error %q, got none", i, c.want)
			continue
		}
		if !strings.HasPrefix(err.Error(), c.want) && !strings.Contains(err.Error(), c.want) {
			t.Errorf("case %d: want %q, got %q", i, c.want, err.Error())
		}
	}
}

// TestFunctions evaluates one expression per case over a small JSON input.
func TestFunctions(t *testing.T) {
	input := `{"s": "  Hello   World ", "n": "0042", "d": "2024-03-15", "amt": 2.345, "neg": -2.5,
		"list": [1, 2.5, "3"], "objs": [{"v": 1}, {"v": 2}], "empty": "", "t": "2024-03-15T23:30:00Z"}`
	cases := []struct{ expr, want string }{
		{`concat($.n, "-", 1, nil)`, `"0042-1"`},
		{`upper("abc")`, `"ABC"`},
		{`lower("ABC")`, `"abc"`},
		{`trim($.s)`, `"Hello   World"`},
		{`normalize($.s)`, `"Hello World"`},
		{`substring("abcdef", 2, 3)`, `"bcd"`},
		{`substring("北京上海", 3)`, `"上海"`},
		{`substring("abc", 0, 2)`, `"a"`},
		{`replace("a-b-c", "-", "/")`, `"a/b/c"`},
		{`matches($.n, "^[0-9]+$")`, `true`},
		{`pad(7, 3)`, `"007"`},
		{`pad("x", 3, "*")`, `"**x"`},
		{`pad("toolong", 3)`, `"toolong"`},
		{`padRight("x", 3)`, `"x  "`},
		{`string(1.50)`, `"1.5"`},
		{`string($.amt)`, `"2.345"`},
		{`decimal($.amt, 2)`, `2.35`},
		{`decimal($.neg, 0)`, `-3`},
		{`round($.amt, 2, "half-even")`, `2.34`},
		{`round($.neg, 0)`, `-3`},
		{`round($.neg, 0, "half-even")`, `-2`},
		{`number("12.50")`, `12.50`},
		{`number("abc") == nil`, `true`},
		{`sum($.list)`, `6.5`},
		{`sum($.objs[*].v)`, `3`},
		{`sum($.nothing)`, `0`},
		{`sum(json("objs.#(v>1)#.v"))`, `2`},
		{`json("s")`, `"  Hello   World "`},
		{`count($.list)`, `3`},
		{`count($.nothing)`, `0`},
		{`position()`, `1`},
		{`last()`, `1`},
		{`date($.d, "2006-01-02", "02.01.2006")`, `"15.03.2024"`},
		{`date($.t, "2006-01-02T15:04:05Z07:00", "2006-01-02", "Asia/Shanghai")`, `"2024-03-16"`},
		{`date($.nothing, "2006", "2006")`, `null`},
		{`lookup("t", "a")`, `"x"`},
		{`lookup("t", "b", "dflt")`, `"dflt"`},
		{`coalesce($.nothing, $.empty, "c")`, `"c"`},
		{`default($.nothing, 5)`, `5`},
		{`exists($.s)`, `true`},
		{`exists($.nothing)`, `false`},
		{`bool("false")`, `false`},
		{`join($.list, ",")`, `"1,2.5,3"`},
		{`env("BUSBAR_TEST_ENV")`, `"on"`},
		{`len(uuid()) == nil`, ``}, // len is not a function of the language: load error below
		{`0.1 + 0.2`, `0.3`},
		{`10 / 4`, `2.5`},
		{`7 % 3`, `1`},
		{`$.n + 1`, `"00421"`},
		{`number($.n) + 1`, `43`},
		{`$.list[0] < $.list[1]`, `true`},
		{`"b" > "a"`, `true`},
		{`$.nothing == nil`, `true`},
		{`$.empty == nil`, `false`},
		{`$.nothing + 1`, `null`},
		{`$.s and !$.nothing`, `true`},
		{`$.empty || $.nothing`, `false`},
		{`$.empty ? "y" : "n"`, `"n"`},
		{`$.nothing ?? "x"`, `"x"`},
		{`$.amt ?? "x"`, `2.345`},
		{`-$.amt`, `-2.345`},
		{`$.n in ["0042", "1"]`, `true`},
		{`2.5 in $.list`, `true`},
		{`"x" in $.list`, `false`},
	}
	t.Setenv("BUSBAR_TEST_ENV", "on")
	for i, c := range cases {
		src := "output: json\ntables:\n  t: {a: x}\nbody:\n  v: " + yamlQuote(c.expr) + "\n"
		m, err := CompileMapping("f.yaml", []byte(src), ".")
		if c.want == "" {
			if err == nil {
				t.Errorf("case %d (%s): want a load error", i, c.expr)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d (%s): %v", i, c.expr, err)
			continue
		}
		out, err := m.Apply(jsonMsg(input))
		if err != nil {
			t.Errorf("case %d (%s): %v", i, c.expr, err)
			continue
		}
		got := strings.TrimSuffix(strings.TrimPrefix(string(out.Body), `{"v":`), "}")
		if string(out.Body) == "{}" {
			got = "null"
		}
		if got != c.want {
			t.Errorf("case %d (%s): want %s, got %s", i, c.expr, c.want, got)
		}
	}
}

func yamlQuote(s string) string {
	return `'` + strings.ReplaceAll(s, `'`, `''`) + `'`
}

func TestUUIDAndNow(t *testing.T) {
	m, err := CompileMapping("f.yaml", []byte("output: json\nbody:\n  id: uuid()\n  year: now(\"2006\", \"UTC\")\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(jsonMsg(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	s := string(out.Body)
	if len(s) != len(`{"id":"xxxxxxxx-xxxx-4xxx-xxxx-xxxxxxxxxxxx","year":"2026"}`) || s[21] != '4' {
		t.Errorf("unexpected %s", s)
	}
}

// TestJSONBytes checks the exact bytes: key order, numbers as computed,
// strings with leading zeros, escaping.
func TestJSONBytes(t *testing.T) {
	src := "output: json\nbody:\n  z: $.a + $.b\n  a: $.code\n  m: '\"<a&b>\\n\"'\n  big: $.big\n"
	m, err := CompileMapping("f.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	out, err := m.Apply(jsonMsg(`{"a": 0.1, "b": 0.2, "code": "0066100000", "big": 1234567890123456789.01}`))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"z":0.3,"a":"0066100000","m":"\u003ca\u0026b\u003e\n","big":1234567890123456789.01}`
	if string(out.Body) != want {
		t.Errorf("want %s\n got %s", want, out.Body)
	}
}

// A run-time fault tells the caller what in its input is wrong (the value,
// the input path) and nothing of the mapping's insides; the log gets where,
// which output path and which expression.
func TestRunFaults(t *testing.T) {
	const notOurs = "the route could not process the message (a fault on Busbar's side, not in the request)"
	cases := []struct {
		src, in  string
		status   int
		public   string
		internal string
	}{
		{"output: json\nbody:\n  a: decimal($.x)\n", `{"x": "12,50"}`, 422,
			`"12,50" is not a decimal number (input $.x)`, `f.yaml:3:6: a: decimal($.x): input $.x: decimal(): "12,50" is not a decimal number`},
		{"output: json\nbody:\n  a: $.x / 0\n", `{"x": 1}`, 422, `division by zero (1 / 0) (input $.x)`, `division by zero`},
		{"output: json\nbody:\n  a: $.x * 2\n", `{"x": "abc"}`, 422, `"abc" is not a decimal number (input $.x)`, `"abc" is not a decimal number`},
		{"output: json\nbody:\n  a: pad($.x, 'w')\n", `{"x": "1"}`, 500, notOurs, `width must be a whole number`},
		{"output: json\nbody:\n  a: $.x\n", `not json`, 422, `the message body is not valid JSON`, `f.yaml: the message body is not valid JSON`},
		{"output: json\nbody:\n  a: \"round($.x, 2, 'down')\"\n", `{"x": 1}`, 500, notOurs,
			`f.yaml:3:7: a: round($.x, 2, 'down'): input $.x: round(): rounding mode "down"`},
		{"output: json\ntables:\n  expense-accounts: {travel: \"0066100000\"}\nbody:\n  l:\n    for-each: $.lines\n    gl: lookup(\"expense-accounts\", .category)\n",
			`{"lines": [{"category": "travel"}, {"category": "travel"}, {"category": "TRAVEL-X"}]}`, 422,
			`value map "expense-accounts" has no entry for "TRAVEL-X" (input $.lines[2].category)`,
			`f.yaml:7:9: l[3]/gl: lookup("expense-accounts", .category): input $.lines[2].category: lookup(): value map`},
	}
	for i, c := range cases {
		m, err := CompileMapping("f.yaml", []byte(c.src), ".")
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		_, err = m.Apply(jsonMsg(c.in))
		var f *bus.Fault
		if !errors.As(err, &f) {
			t.Errorf("case %d: want a Fault, got %v", i, err)
			continue
		}
		if f.Status != c.status || f.Detail != c.public || !strings.Contains(f.Internal, c.internal) {
			t.Errorf("case %d: want %d, detail %q, internal containing %q; got %d %q %q", i, c.status, c.public, c.internal, f.Status, f.Detail, f.Internal)
		}
	}
}

// TestNeverPanics feeds messages a mapping does not expect.
func TestNeverPanics(t *testing.T) {
	xmlMap, err := CompileMapping("x.yaml", []byte("output: json\nbody:\n  a: /*/A\n  b:\n    for-each: //B\n    c: ./C\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	jsonMap, err := CompileMapping("j.yaml", []byte("output: xml\nbody:\n  R:\n    A: $.a\n    B:\n      for-each: $.b\n      C: .c\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	msgs := []*bus.Message{
		bus.NewMessage(),
		jsonMsg(""),
		jsonMsg("null"),
		jsonMsg(`[1,2]`),
		jsonMsg(`{"a": {"x": 1}, "b": {"c": [1, 2]}}`),
		jsonMsg(`{"b": "scalar"}`),
		xmlMsg(t, `<R><A>1</A><B><C>2</C></B><B/></R>`),
		{Format: bus.FormatXML},
	}
	for i, msg := range msgs {
		for _, m := range []*Mapping{xmlMap, jsonMap} {
			out, err := m.Apply(msg)
			if err != nil {
				var f *bus.Fault
				if !errors.As(err, &f) {
					t.Errorf("message %d, %s: not a Fault: %v", i, m.Name(), err)
				}
				continue
			}
			if out == nil {
				t.Errorf("message %d, %s: nil output and nil error", i, m.Name())
			}
		}
	}
}

func TestApplyConcurrent(t *testing.T) {
	m, err := LoadMapping("testdata/mapping/bapi-return-to-json/mapping.yaml")
	if err != nil {
		t.Fatal(err)
	}
	msg := xmlMsg(t, `<n0:R xmlns:n0="urn:x"><OBJ_KEY>K</OBJ_KEY><RETURN><item><TYPE>E</TYPE><MESSAGE>m</MESSAGE><AMT>1.5</AMT></item></RETURN></n0:R>`)
	want := `{"documentNumber":"K","messages":[{"type":"E","text":"m"}],"errorCount":1,"total":1.5}`
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				out, err := m.Apply(msg)
				if err != nil {
					t.Error(err)
					return
				}
				if string(out.Body) != want {
					t.Errorf("got %s", out.Body)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestCompileExpr(t *testing.T) {
	ns := map[string]string{"rfc": "urn:sap-com:document:sap:rfc:functions"}
	sap := xmlMsg(t, `<n0:R xmlns:n0="urn:sap-com:document:sap:rfc:functions"><RETURN><item><TYPE>E</TYPE></item></RETURN></n0:R>`)
	js := jsonMsg(`{"status": "failed", "amount": 0.1, "items": []}`)
	cases := []struct {
		src  string
		msg  *bus.Message
		want string
	}{
		{`/*/RETURN/item[TYPE='E']`, sap, "true"},
		{`./RETURN/item[TYPE='E']`, sap, "true"},
		{`exists(/rfc:R/RETURN/item[TYPE='W'])`, sap, "false"},
		{`count(//item) == 1`, sap, "true"},
		{`/rfc:R/RETURN/item/TYPE`, sap, "E"},
		{`$.status == "failed"`, js, "true"},
		{`$.amount + 0.2 == 0.3`, js, "true"},
		{`count($.items) > 0`, js, "false"},
		{`$.status`, js, "failed"},
		{`/*/RETURN`, js, "error"}, // an XPath on a JSON message
	}
	for i, c := range cases {
		e, err := CompileExpr(c.src, "routes/r.yaml", 7, 15, ns)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		got, err := e.String(c.msg)
		if c.want == "error" {
			if err == nil {
				t.Errorf("case %d: want an error", i)
			}
			continue
		}
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if c.want == "true" || c.want == "false" {
			b, _ := e.Bool(c.msg)
			got = map[bool]string{true: "true", false: "false"}[b]
		}
		if got != c.want {
			t.Errorf("case %d (%s): want %q, got %q", i, c.src, c.want, got)
		}
	}
	_, err := CompileExpr(`$.a +* 2`, "routes/r.yaml", 7, 15, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "routes/r.yaml:7:") {
		t.Errorf("want a positioned error, got %v", err)
	}
}

func TestXMLToJSON(t *testing.T) {
	msg := xmlMsg(t, `<n0:Resp xmlns:n0="urn:x" n0:ver="2"><KEY>0042</KEY><Empty/><RETURN><item><TYPE>S</TYPE></item><item><TYPE>W</TYPE></item></RETURN><Note lang="en">hi <b>there</b></Note></n0:Resp>`)
	got, err := XMLToJSON(msg.Root)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"Resp":{"@ver":"2","KEY":"0042","Empty":"","RETURN":{"item":[{"TYPE":"S"},{"TYPE":"W"}]},"Note":{"@lang":"en","#text":"hi","b":"there"}}}`
	if string(got) != want {
		t.Errorf("want %s\n got %s", want, got)
	}
}

func TestJSONToXML(t *testing.T) {
	cases := []struct{ json, root, ns, want string }{
		{`{"COMP_CODE": "1000", "AMT": 1.50, "OK": true, "none": null, "item": [{"A": 1}, {"A": 2}], "@id": "x", "#text": "t"}`,
			"n0:BAPI", "urn:sap", `<n0:BAPI xmlns:n0="urn:sap" id="x">t<COMP_CODE>1000</COMP_CODE><AMT>1.50</AMT><OK>true</OK><item><A>1</A></item><item><A>2</A></item></n0:BAPI>`},
		{`[1, "a"]`, "List", "urn:l", `<List xmlns="urn:l"><item>1</item><item>a</item></List>`},
		{`"text"`, "T", "", `<T>text</T>`},
	}
	for i, c := range cases {
		el, err := JSONToXML([]byte(c.json), c.root, c.ns)
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		doc := etree.NewDocument()
		doc.SetRoot(el)
		got, _ := doc.WriteToString()
		if got != c.want {
			t.Errorf("case %d: want %s\n got %s", i, c.want, got)
		}
	}
	for _, bad := range []struct{ json, root string }{{`{"a b": 1}`, "R"}, {`{`, "R"}, {`{}`, "1R"}, {`{}`, "p:R"}} {
		if _, err := JSONToXML([]byte(bad.json), bad.root, ""); err == nil {
			t.Errorf("%s as %s: want an error", bad.json, bad.root)
		}
	}
}

func TestBodyShapes(t *testing.T) {
	cases := []struct{ src, in, want string }{
		{"output: json\nbody: $.a\n", `{"a": "x"}`, `"x"`},
		{"output: json\nbody: $.nope\n", `{}`, `null`},
		{"output: json\nbody:\n  for-each: $.l\n  \"#value\": . * 2\n", `{"l": [1, 2]}`, `[2,4]`},
		{"output: json\nbody:\n  - $.a\n  - 1\n", `{"a": true}`, `[true,1]`},
		{"output: json\nbody:\n  x: 1\n", ``, `{"x":1}`},
		{"output: xml\nbody:\n  R:\n    A: [\"'1'\", \"'2'\"]\n    B: \"''\"\n    C: $.nope\n", `{}`, `<R><A>1</A><A>2</A><B></B></R>`},
	}
	for i, c := range cases {
		m, err := CompileMapping("f.yaml", []byte(c.src), ".")
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		out, err := m.Apply(jsonMsg(c.in))
		if err != nil {
			t.Errorf("case %d: %v", i, err)
			continue
		}
		if got := string(out.Bytes()); got != c.want {
			t.Errorf("case %d: want %s, got %s", i, c.want, got)
		}
	}
}

// TestXMLContextNode: outside any for-each the context node is the payload
// element; "/" is a virtual document root above it, even inside a SOAP envelope.
func TestXMLContextNode(t *testing.T) {
	m, err := CompileMapping("f.yaml", []byte("output: json\nbody:\n  key: ./OBJ_KEY\n  abs: /*/OBJ_KEY\n  byName: /R/OBJ_KEY\n  self: count(.)\n  up: count(..)\n  above: count(../..)\n"), ".")
	if err != nil {
		t.Fatal(err)
	}
	env := xmlMsg(t, `<soap:Envelope xmlns:soap="urn:s"><soap:Body><R><OBJ_KEY>K</OBJ_KEY></R></soap:Body></soap:Envelope>`)
	env.Root = env.Root.FindElement("//R")
	out, err := m.Apply(env)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"key":"K","abs":"K","byName":"K","self":1,"up":1,"above":0}`
	if string(out.Body) != want {
		t.Errorf("want %s, got %s", want, out.Body)
	}
}

// TestNewConstructsConcurrent runs grouping, recursive templates and an
// identity copy from many goroutines (meaningful under -race): the compiled
// mapping is shared, the evaluation state is not.
func TestNewConstructsConcurrent(t *testing.T) {
	for _, dir := range []string{"group-by-gl-account", "templates-recursive", "identity-soap11-to-soap12"} {
		dir = "testdata/mapping/" + dir
		m, err := LoadMapping(dir + "/mapping.yaml")
		if err != nil {
			t.Fatal(err)
		}
		in := goldenInput(t, dir)
		want, wantFile := applyGolden(t, m, in)
		if strings.HasSuffix(wantFile, ".err") {
			t.Fatalf("%s: %s", dir, want)
		}
		var wg sync.WaitGroup
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; i < 30; i++ {
					if got, _ := applyGolden(t, m, in); got != want {
						t.Errorf("%s: concurrent run differs:\n%s", dir, got)
						return
					}
				}
			}()
		}
		wg.Wait()
	}
}
