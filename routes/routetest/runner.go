package routetest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/busbar/busbar/bus"
	"github.com/busbar/busbar/connectors"
	"github.com/busbar/busbar/routes"
)

// Options tune a run.
type Options struct {
	// Out receives the report; failures come with diffs.
	Out io.Writer
	// Verbose lists the cases that pass too.
	Verbose bool
}

// Result counts the cases of a run. A test file that cannot be read, or
// whose configuration does not load, counts as one failed case.
type Result struct {
	Passed, Failed int
}

// Run runs route tests. target is a configuration directory, whose
// tests/*.yaml (and .yml) files run against it, or a single test file. It
// reports to opts.Out and ends with a summary line: "ok 12 passed" or
// "FAIL 2 of 12". The error is for a target holding no test at all.
func Run(target string, opts Options) (Result, error) {
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	files, configDir, err := testFiles(target)
	if err != nil {
		return Result{}, err
	}
	var res Result
	for _, path := range files {
		f := &fileRun{run: run{file: path, dir: filepath.Dir(path)}, out: opts.Out, verbose: opts.Verbose,
			backends: map[string]*backend{}}
		f.runFile(configDir, &res)
	}
	if res.Failed > 0 {
		fmt.Fprintf(opts.Out, "FAIL %d of %d\n", res.Failed, res.Passed+res.Failed)
	} else {
		fmt.Fprintf(opts.Out, "ok %d passed\n", res.Passed)
	}
	return res, nil
}

// testFiles lists the files to run and the configuration they default to.
func testFiles(target string) ([]string, string, error) {
	st, err := os.Stat(target)
	if err != nil {
		return nil, "", err
	}
	if !st.IsDir() {
		dir := filepath.Dir(target)
		if filepath.Base(dir) == "tests" {
			dir = filepath.Dir(dir)
		}
		return []string{target}, dir, nil
	}
	files := testFilesIn(target)
	if len(files) == 0 {
		return nil, "", fmt.Errorf("%s: no test files (tests/*.yaml)", target)
	}
	return files, target, nil
}

// testFilesIn lists the test files of a configuration directory, sorted.
func testFilesIn(dir string) []string {
	var files []string
	for _, pattern := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(dir, "tests", pattern))
		files = append(files, m...)
	}
	sort.Strings(files)
	return files
}

// run is what resolving a test file's references needs.
type run struct {
	file string // the test file, as shown in reports
	dir  string
}

func (r *run) readFile(rel string) ([]byte, error) {
	p := rel
	if !filepath.IsAbs(p) {
		p = filepath.Join(r.dir, rel)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", r.file, err)
	}
	return b, nil
}

// fileRun runs the cases of one test file against one loaded configuration.
type fileRun struct {
	run
	out      io.Writer
	verbose  bool
	backends map[string]*backend
}

func (f *fileRun) runFile(defaultConfig string, res *Result) {
	var spec File
	root, err := routes.DecodeFile(f.file, &spec)
	if err != nil {
		f.fail(res, "", err.Error())
		return
	}
	configDir := defaultConfig
	if spec.Config != "" {
		configDir = filepath.Join(f.dir, spec.Config)
	}
	// The variables stay set while the cases run: mappings read env().
	defer setEnv(spec.Env)()
	cfg, err := routes.Load(configDir, routes.WithConnectors(f.mockBuilder))
	defer func() {
		for _, b := range f.backends {
			b.close()
		}
	}()
	if err != nil {
		f.fail(res, "", fmt.Sprintf("the configuration %s does not load:\n%v", configDir, err))
		return
	}
	defer cfg.Close()
	srv := connectors.NewServer(connectors.ServerConfig{})
	if err := srv.Swap(cfg.Endpoints()); err != nil {
		f.fail(res, "", fmt.Sprintf("the configuration %s cannot be served: %v", configDir, err))
		return
	}
	h := srv.Handler()
	pos := casePositions(root)
	for i := range spec.Cases {
		c := &spec.Cases[i]
		where := f.file
		if i < len(pos) {
			where += ":" + strconv.Itoa(pos[i].line)
		}
		fails := f.runCase(h, c)
		if len(fails) == 0 {
			res.Passed++
			if f.verbose {
				fmt.Fprintf(f.out, "--- ok: %s: %s\n", where, c.Name)
			}
			continue
		}
		res.Failed++
		fmt.Fprintf(f.out, "--- FAIL: %s: %s\n", where, c.Name)
		for _, fl := range fails {
			fmt.Fprintf(f.out, "    %s\n", fl.what)
			if fl.diff != "" {
				fmt.Fprint(f.out, indent(fl.diff, "        "))
			}
		}
	}
}

func (f *fileRun) fail(res *Result, where, msg string) {
	res.Failed++
	if where == "" {
		where = f.file
	}
	fmt.Fprintf(f.out, "--- FAIL: %s\n%s", where, indent(msg+"\n", "    "))
}

// setEnv sets the file's environment variables and returns what puts the
// environment back.
func setEnv(env map[string]string) func() {
	type old struct {
		v   string
		set bool
	}
	saved := map[string]old{}
	for k, v := range env {
		prev, set := os.LookupEnv(k)
		saved[k] = old{prev, set}
		os.Setenv(k, v)
	}
	return func() {
		for k, o := range saved {
			if o.set {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

type position struct{ line, col int }

// casePositions is where each case starts: its first key.
func casePositions(root ast.Node) []position {
	m, ok := root.(*ast.MappingNode)
	if !ok {
		return nil
	}
	for _, v := range m.Values {
		if v.Key.String() != "cases" {
			continue
		}
		seq, ok := v.Value.(*ast.SequenceNode)
		if !ok {
			return nil
		}
		pos := make([]position, len(seq.Values))
		for i, item := range seq.Values {
			tk := item.GetToken()
			if mn, ok := item.(*ast.MappingNode); ok && len(mn.Values) > 0 {
				tk = mn.Values[0].Key.GetToken()
			}
			pos[i] = position{tk.Position.Line, tk.Position.Column}
		}
		return pos
	}
	return nil
}

func (f *fileRun) runCase(h http.Handler, c *Case) []failure {
	if probs := c.problems(); len(probs) > 0 {
		fails := make([]failure, len(probs))
		for i, p := range probs {
			fails[i].what = p
		}
		return fails
	}
	for _, name := range sortedNames(c.Connectors) {
		if f.backends[name] == nil {
			return []failure{{what: fmt.Sprintf("connectors: %q is not a connector of the configuration (it has: %s)",
				name, strings.Join(sortedNames(f.backends), ", "))}}
		}
	}
	for name, b := range f.backends {
		b.reset(&f.run, c.Connectors[name])
	}
	req, err := f.request(c)
	if err != nil {
		return []failure{{what: err.Error()}}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	resp := rec.Result()

	var fails []failure
	got := parseBody(resp.Header.Get("Content-Type"), rec.Body.Bytes())
	want := &c.Expect
	if want.Status != 0 && want.Status != resp.StatusCode {
		fails = append(fails, failure{what: fmt.Sprintf("status: want %d, got %d", want.Status, resp.StatusCode)})
	}
	fails = append(fails, checkHeaders("response header", want.Headers, resp.Header)...)
	fails = append(fails, f.checkBody("response body", &want.BodyChecks, got)...)
	if want.Fault != nil {
		fails = append(fails, checkFault(want.Fault, got)...)
	}
	for _, name := range sortedNames(f.backends) {
		fails = append(fails, f.checkBackend(f.backends[name])...)
	}
	if len(fails) > 0 && want.Status != 0 && want.Status != resp.StatusCode && !hasDiff(fails) {
		// A wrong status with nothing else to show: show what came back.
		fails = append(fails, failure{what: "the response was:", diff: indentText(string(got.raw))})
	}
	return fails
}

func hasDiff(fails []failure) bool {
	for _, f := range fails {
		if f.diff != "" {
			return true
		}
	}
	return false
}

// request builds the case's inbound request.
func (f *fileRun) request(c *Case) (*http.Request, error) {
	rq := c.Request
	body := rq.Body.Text
	if rq.BodyFile != "" {
		var err error
		if body, err = f.readFile(rq.BodyFile); err != nil {
			return nil, err
		}
	}
	method := strings.ToUpper(rq.Method)
	if method == "" {
		method = http.MethodGet
		if len(body) > 0 || rq.SOAP != "" {
			method = http.MethodPost
		}
	}
	// A fixed correlation id keeps reports, which show the response, the
	// same from run to run.
	h := http.Header{"X-Correlation-Id": {"busbar-test"}}
	switch {
	case rq.SOAP != "":
		v := bus.SOAP11
		if rq.SOAP == "1.2" {
			v = bus.SOAP12
		}
		if firstElement(body).Local != "Envelope" {
			body = wrapEnvelope(v, body)
		}
		if v == bus.SOAP12 {
			ct := connectors.ContentTypeSOAP12 + "; charset=utf-8"
			if rq.Action != "" {
				ct += "; action=" + strconv.Quote(rq.Action)
			}
			h.Set("Content-Type", ct)
		} else {
			h.Set("Content-Type", connectors.ContentTypeSOAP11+"; charset=utf-8")
			h.Set("SOAPAction", strconv.Quote(rq.Action))
		}
	case rq.Body.JSON:
		h.Set("Content-Type", "application/json")
	case len(body) > 0:
		switch kindOf("", body) {
		case "json":
			h.Set("Content-Type", "application/json")
		case "xml":
			h.Set("Content-Type", "application/xml; charset=utf-8")
		default:
			h.Set("Content-Type", "text/plain; charset=utf-8")
		}
	}
	for k, v := range rq.Headers {
		h.Set(k, v)
	}
	req, err := http.NewRequest(method, "http://busbar.test"+rq.Path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("request: %v", err)
	}
	req.Header = h
	req.RemoteAddr = "127.0.0.1:1"
	return req, nil
}

// checkBackend checks what one connector's backend received against the
// case's script.
func (f *fileRun) checkBackend(b *backend) []failure {
	b.mu.Lock()
	calls, problems, script := b.calls, b.problems, b.script
	b.mu.Unlock()
	var fails []failure
	for _, p := range problems {
		fails = append(fails, failure{what: p})
	}
	if len(calls) < len(script) {
		called := "never called"
		if len(calls) > 0 {
			called = "called only " + times(len(calls))
		}
		fails = append(fails, failure{what: fmt.Sprintf("connector %s: the case scripts %s, but it was %s",
			b.name, replies(len(script)), called)})
	}
	for i, reply := range script {
		if reply.Expect == nil || i >= len(calls) {
			continue
		}
		call, want := calls[i], reply.Expect
		label := fmt.Sprintf("connector %s call %d", b.name, i+1)
		if want.Method != "" && !strings.EqualFold(want.Method, call.method) {
			fails = append(fails, failure{what: fmt.Sprintf("%s: method: want %s, got %s", label, want.Method, call.method)})
		}
		if want.Path != "" && want.Path != call.path {
			fails = append(fails, failure{what: fmt.Sprintf("%s: path: want %s, got %s", label, want.Path, call.path)})
		}
		fails = append(fails, checkHeaders(label+" header", want.Headers, call.header)...)
		got := parseBody(call.header.Get("Content-Type"), call.body)
		fails = append(fails, f.checkBody(label+" body", &want.BodyChecks, got)...)
	}
	return fails
}

func checkHeaders(label string, want map[string]string, got http.Header) []failure {
	var fails []failure
	for _, k := range sortedNames(want) {
		vs, ok := got[http.CanonicalHeaderKey(k)]
		g := strings.Join(vs, ", ")
		switch {
		case !ok:
			fails = append(fails, failure{what: fmt.Sprintf("%s %s: want %q, it is missing", label, k, want[k])})
		case g != want[k]:
			fails = append(fails, failure{what: fmt.Sprintf("%s %s: want %q, got %q", label, k, want[k], g)})
		}
	}
	return fails
}

func checkFault(want *FaultExpect, got *body) []failure {
	code, reason, ok := faultOf(got)
	if !ok {
		return []failure{{what: "want a fault, the response is not a SOAP fault or a problem document", diff: indentText(string(got.raw))}}
	}
	var fails []failure
	if want.Code != "" && !sameCode(want.Code, code) {
		fails = append(fails, failure{what: fmt.Sprintf("fault code: want %q, got %q", want.Code, code)})
	}
	if want.Reason != "" && want.Reason != reason {
		fails = append(fails, failure{what: "fault reason differs (-want +got)", diff: unifiedDiff(want.Reason, reason)})
	}
	return fails
}

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	for _, l := range lines {
		if l != "" {
			b.WriteString(prefix + l)
		}
	}
	return b.String()
}
