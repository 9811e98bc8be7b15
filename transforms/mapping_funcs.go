package transforms

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cockroachdb/apd/v3"

	_ "time/tzdata" // date(…, "Asia/Shanghai") must not depend on the host's zoneinfo
)

// funcSpec is one function of the mapping language. fn receives the
// evaluation context and the arguments the expression passed.
type funcSpec struct {
	min, max int // argument counts; max < 0: variadic
	fn       func(c *evalCtx, a []any) (any, error)
}

// functions is the mapping language's function library (docs/mapping.md).
var functions map[string]funcSpec

func init() {
	functions = map[string]funcSpec{
		"concat":    {0, -1, fnConcat},
		"upper":     {1, 1, strFunc(strings.ToUpper)},
		"lower":     {1, 1, strFunc(strings.ToLower)},
		"trim":      {1, 1, strFunc(strings.TrimSpace)},
		"normalize": {1, 1, strFunc(func(s string) string { return strings.Join(strings.Fields(s), " ") })},
		"substring": {2, 3, fnSubstring},
		"replace":   {3, 3, fnReplace},
		"matches":   {2, 2, fnMatches},
		"pad":       {2, 3, func(c *evalCtx, a []any) (any, error) { return fnPad(a, true) }},
		"padRight":  {2, 3, func(c *evalCtx, a []any) (any, error) { return fnPad(a, false) }},
		"string":    {1, 1, func(c *evalCtx, a []any) (any, error) { return toString(a[0]), nil }},
		"join":      {1, 2, fnJoin},
		"decimal":   {1, 2, fnDecimal},
		"round":     {2, 3, fnRound},
		"number":    {1, 1, fnNumber},
		"sum":       {1, -1, fnSum},
		"count":     {1, 1, fnCount},
		"position":  {0, 0, func(c *evalCtx, a []any) (any, error) { return apd.New(int64(c.pos), 0), nil }},
		"last":      {0, 0, func(c *evalCtx, a []any) (any, error) { return apd.New(int64(c.last), 0), nil }},
		"date":      {3, 4, fnDate},
		"now":       {1, 2, fnNow},
		"lookup":    {2, 3, fnLookup},
		"uuid":      {0, 0, fnUUID},
		"env":       {1, 1, fnEnv},
		"var":       {1, 1, fnVar},
		"coalesce":  {1, -1, fnCoalesce},
		"default":   {2, 2, fnCoalesce},
		"exists":    {1, 1, func(c *evalCtx, a []any) (any, error) { return a[0] != nil, nil }},
		"bool":      {1, 1, func(c *evalCtx, a []any) (any, error) { return truthy(a[0]), nil }},

		"regexReplace": {3, 3, fnRegexReplace},
		"extract":      {2, 3, fnExtract},
		"formatNumber": {2, 3, fnFormatNumber},
		"groupKey":     {0, 0, fnGroupKey},
	}
}

func strFunc(f func(string) string) func(*evalCtx, []any) (any, error) {
	return func(c *evalCtx, a []any) (any, error) {
		if a[0] == nil {
			return nil, nil
		}
		return f(toString(a[0])), nil
	}
}

func fnConcat(c *evalCtx, a []any) (any, error) {
	var b strings.Builder
	for _, v := range a {
		b.WriteString(toString(v))
	}
	return b.String(), nil
}

// toInt reads an integer argument (a width, a position, a scale).
func toInt(v any, what string) (int, error) {
	switch x := v.(type) {
	case int:
		return x, nil
	}
	d, ok, err := toDecimal(v)
	if err != nil || !ok {
		return 0, fmt.Errorf("%s must be a whole number, got %s", what, describe(v))
	}
	n, err := d.Int64()
	if err != nil {
		return 0, fmt.Errorf("%s must be a whole number, got %s", what, d.Text('f'))
	}
	return int(n), nil
}

// substring(s, start[, length]) counts characters from 1, as XPath does.
func fnSubstring(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	s := []rune(toString(a[0]))
	start, err := toInt(a[1], "start")
	if err != nil {
		return nil, err
	}
	end := len(s) + 1
	if len(a) > 2 {
		n, err := toInt(a[2], "length")
		if err != nil {
			return nil, err
		}
		end = start + n
	}
	start = max(start, 1)
	end = min(end, len(s)+1)
	if start >= end {
		return "", nil
	}
	return string(s[start-1 : end-1]), nil
}

func fnReplace(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	return strings.ReplaceAll(toString(a[0]), toString(a[1]), toString(a[2])), nil
}

// regexpArg is a regular expression argument: a literal one was compiled
// and checked at load; one computed from the input is compiled here (and
// cached, within bounds).
func regexpArg(v any) (*regexp.Regexp, error) {
	re, err := cachedRegexp(toString(v))
	if err != nil {
		return nil, fmt.Errorf("bad regular expression: %v", err)
	}
	return re, nil
}

func fnMatches(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return false, nil
	}
	re, err := regexpArg(a[1])
	if err != nil {
		return nil, err
	}
	return re.MatchString(toString(a[0])), nil
}

func fnPad(a []any, left bool) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	s := toString(a[0])
	width, err := toInt(a[1], "width")
	if err != nil {
		return nil, err
	}
	fill := "0"
	if !left {
		fill = " "
	}
	if len(a) > 2 {
		fill = toString(a[2])
		if utf8.RuneCountInString(fill) != 1 {
			return nil, fmt.Errorf("pad character must be one character, got %q", fill)
		}
	}
	n := width - utf8.RuneCountInString(s)
	if n <= 0 {
		return s, nil
	}
	if left {
		return strings.Repeat(fill, n) + s, nil
	}
	return s + strings.Repeat(fill, n), nil
}

func fnJoin(c *evalCtx, a []any) (any, error) {
	sep := ""
	if len(a) > 1 {
		sep = toString(a[1])
	}
	var parts []string
	eachItem(a[0], func(v any) error { parts = append(parts, toString(v)); return nil })
	if a[0] == nil {
		return nil, nil
	}
	return strings.Join(parts, sep), nil
}

func fnDecimal(c *evalCtx, a []any) (any, error) {
	d, ok, err := toDecimal(a[0])
	if err != nil || !ok {
		return nil, err
	}
	if len(a) == 1 {
		return d, nil
	}
	return roundTo(d, a[1], decHalfUp)
}

func roundTo(d *apd.Decimal, scaleArg any, ctx *apd.Context) (any, error) {
	scale, err := toInt(scaleArg, "scale")
	if err != nil {
		return nil, err
	}
	if scale < -30 || scale > 30 {
		return nil, fmt.Errorf("scale %d out of range", scale)
	}
	if r, ok := quantizeFast(d, int32(-scale), ctx.Rounding); ok {
		return r, nil
	}
	r := new(apd.Decimal)
	if _, err := ctx.Quantize(r, d, int32(-scale)); err != nil {
		return nil, inputErrorf("cannot round %s to %d places: %v", d.Text('f'), scale, err)
	}
	return r, nil
}

func fnRound(c *evalCtx, a []any) (any, error) {
	d, ok, err := toDecimal(a[0])
	if err != nil || !ok {
		return nil, err
	}
	ctx := decHalfUp
	if len(a) > 2 {
		if ctx, err = roundingMode(a[2]); err != nil {
			return nil, err
		}
	}
	return roundTo(d, a[1], ctx)
}

func fnNumber(c *evalCtx, a []any) (any, error) {
	d, ok := parseDecimalQuiet(a[0])
	if !ok {
		return nil, nil
	}
	return d, nil
}

// eachItem calls f with every item of a node-set or JSON array, or with v
// itself for a single value; nothing for nil.
func eachItem(v any, f func(any) error) error {
	switch x := v.(type) {
	case nil:
		return nil
	case xmlNodes:
		for _, n := range x {
			if err := f(n.Value()); err != nil {
				return err
			}
		}
		return nil
	case jsonVal:
		if x.r.IsArray() {
			var err error
			x.r.ForEach(func(_, r gjsonResult) bool {
				err = f(fromJSON(r))
				return err == nil
			})
			return err
		}
	case []any:
		for _, y := range x {
			if err := eachItem(y, f); err != nil {
				return err
			}
		}
		return nil
	}
	return f(v)
}

func fnSum(c *evalCtx, a []any) (any, error) {
	total := apd.New(0, 0)
	for _, arg := range a {
		err := eachItem(arg, func(v any) error {
			d, ok, err := toDecimal(v)
			if err != nil || !ok {
				return err
			}
			_, err = decCtx.Add(total, total, d)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	return total, nil
}

func fnCount(c *evalCtx, a []any) (any, error) {
	n := 0
	switch x := a[0].(type) {
	case nil:
	case xmlNodes:
		n = len(x)
	case []any:
		n = len(x)
	case jsonVal:
		if x.r.IsArray() {
			x.r.ForEach(func(_, _ gjsonResult) bool { n++; return true })
		} else {
			n = 1
		}
	default:
		n = 1
	}
	return apd.New(int64(n), 0), nil
}

// date(value, inLayout, outLayout[, tz]) reformats a date with Go layouts.
// With tz, a value without a zone is read in tz and a value with one is
// converted to tz before formatting.
func fnDate(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	s := strings.TrimSpace(toString(a[0]))
	if s == "" {
		return nil, nil
	}
	in, out := toString(a[1]), toString(a[2])
	loc := time.UTC
	if len(a) > 3 {
		l, err := cachedLocation(toString(a[3]))
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", toString(a[3]))
		}
		loc = l
	}
	t, err := time.ParseInLocation(in, s, loc)
	if err != nil {
		return nil, inputErrorf("%q does not match the date layout %q", s, in)
	}
	return t.In(loc).Format(out), nil
}

func fnNow(c *evalCtx, a []any) (any, error) {
	loc := time.Local
	if len(a) > 1 {
		l, err := cachedLocation(toString(a[1]))
		if err != nil {
			return nil, fmt.Errorf("unknown time zone %q", toString(a[1]))
		}
		loc = l
	}
	return c.now().In(loc).Format(toString(a[0])), nil
}

// errNoTables is returned by lookup() in an expression compiled without a mapping.
var errNoTables = errors.New("no value tables here (lookup() works inside a mapping)")

func fnLookup(c *evalCtx, a []any) (any, error) {
	name := toString(a[0])
	if c.tables == nil {
		return nil, errNoTables
	}
	t, ok := c.tables[name]
	if !ok {
		return nil, fmt.Errorf("unknown table %q", name)
	}
	if a[1] == nil {
		if len(a) > 2 {
			return a[2], nil
		}
		return nil, nil
	}
	key := toString(a[1])
	if v, ok := t.values[key]; ok {
		return v, nil
	}
	if len(a) > 2 {
		return a[2], nil
	}
	return nil, inputErrorf("value map %q has no entry for %q", name, key)
}

func fnUUID(c *evalCtx, a []any) (any, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
}

func fnEnv(c *evalCtx, a []any) (any, error) {
	v, ok := os.LookupEnv(toString(a[0]))
	if !ok {
		return nil, nil
	}
	return v, nil
}

func fnVar(c *evalCtx, a []any) (any, error) {
	if c.msg == nil {
		return nil, nil
	}
	v, ok := c.msg.Vars[toString(a[0])]
	if !ok {
		return nil, nil
	}
	return v, nil
}

func fnCoalesce(c *evalCtx, a []any) (any, error) {
	for _, v := range a {
		if v == nil {
			continue
		}
		if s, ok := v.(string); ok && s == "" {
			continue
		}
		return v, nil
	}
	return nil, nil
}

// regexReplace(s, re, repl) replaces every match; repl may name groups as
// $1 or ${name}.
func fnRegexReplace(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	re, err := regexpArg(a[1])
	if err != nil {
		return nil, err
	}
	return re.ReplaceAllString(toString(a[0]), toString(a[2])), nil
}

// extract(s, re[, group]) is the first match's group (the first group when
// the expression has one, else the whole match), nil when nothing matches.
func fnExtract(c *evalCtx, a []any) (any, error) {
	if a[0] == nil {
		return nil, nil
	}
	re, err := regexpArg(a[1])
	if err != nil {
		return nil, err
	}
	g := min(1, re.NumSubexp())
	if len(a) > 2 {
		if g, err = toInt(a[2], "group"); err != nil {
			return nil, err
		}
		if g < 0 || g > re.NumSubexp() {
			return nil, fmt.Errorf("group %d: the expression has %d groups", g, re.NumSubexp())
		}
	}
	m := re.FindStringSubmatchIndex(toString(a[0]))
	if m == nil || m[2*g] < 0 {
		return nil, nil
	}
	return toString(a[0])[m[2*g]:m[2*g+1]], nil
}

// numberPattern is a parsed formatNumber pattern such as "#,##0.00".
type numberPattern struct {
	prefix, suffix   string
	minInt           int
	group            int // digits per group, 0 for none
	minFrac, maxFrac int
}

// parseNumberPattern reads the subset of XSLT/Java decimal patterns that
// money needs: literal prefix and suffix, '#' and '0' digits, one ','
// grouping and one '.'.
func parseNumberPattern(p string) (numberPattern, error) {
	var np numberPattern
	start := strings.IndexAny(p, "#0,.")
	end := strings.LastIndexAny(p, "#0,.")
	if start < 0 {
		return np, errors.New("no digits (# or 0)")
	}
	np.prefix, np.suffix = p[:start], p[end+1:]
	core := p[start : end+1]
	intPart, frac, hasDot := strings.Cut(core, ".")
	if strings.ContainsAny(frac, ".,") || (hasDot && strings.Trim(frac, "#0") != "") {
		return np, errors.New("after '.' only 0 and # may follow")
	}
	if strings.Trim(intPart, "#0,") != "" {
		return np, errors.New("want only #, 0, ',' and '.' between prefix and suffix")
	}
	if i := strings.LastIndexByte(intPart, ','); i >= 0 {
		np.group = len(intPart) - i - 1
		if np.group == 0 {
			return np, errors.New("',' must be followed by digits")
		}
	}
	np.minInt = strings.Count(intPart, "0")
	if strings.Contains(strings.TrimLeft(strings.ReplaceAll(intPart, ",", ""), "#"), "#") {
		return np, errors.New("'#' after '0' in the integer part")
	}
	np.minFrac = strings.Count(frac, "0")
	np.maxFrac = len(frac)
	if strings.Contains(strings.TrimRight(frac, "#"), "#") {
		return np, errors.New("'0' after '#' in the fraction")
	}
	return np, nil
}

// formatNumber(v, pattern[, mode]) formats a decimal exactly: "#,##0.00"
// gives 1,234.50; rounding half-up unless mode says "half-even".
func fnFormatNumber(c *evalCtx, a []any) (any, error) {
	d, ok, err := toDecimal(a[0])
	if err != nil || !ok {
		return nil, err
	}
	np, err := parseNumberPattern(toString(a[1]))
	if err != nil {
		return nil, fmt.Errorf("number pattern %q: %v", toString(a[1]), err)
	}
	ctx := decHalfUp
	if len(a) > 2 {
		if ctx, err = roundingMode(a[2]); err != nil {
			return nil, err
		}
	}
	r, err := roundTo(d, np.maxFrac, ctx)
	if err != nil {
		return nil, err
	}
	text := r.(*apd.Decimal).Text('f')
	neg := strings.HasPrefix(text, "-")
	text = strings.TrimPrefix(text, "-")
	intDigits, frac, _ := strings.Cut(text, ".")
	for len(frac) > np.minFrac && strings.HasSuffix(frac, "0") {
		frac = frac[:len(frac)-1]
	}
	for len(frac) < np.minFrac {
		frac += "0"
	}
	intDigits = strings.TrimLeft(intDigits, "0")
	for len(intDigits) < np.minInt {
		intDigits = "0" + intDigits
	}
	if np.group > 0 {
		var b strings.Builder
		for i, ch := range intDigits {
			if i > 0 && (len(intDigits)-i)%np.group == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(ch)
		}
		intDigits = b.String()
	}
	var b strings.Builder
	if neg && (strings.Trim(intDigits, "0,") != "" || strings.Trim(frac, "0") != "") {
		b.WriteByte('-')
	}
	b.WriteString(np.prefix)
	b.WriteString(intDigits)
	if frac != "" {
		b.WriteByte('.')
		b.WriteString(frac)
	}
	b.WriteString(np.suffix)
	return b.String(), nil
}

func roundingMode(v any) (*apd.Context, error) {
	switch m := toString(v); m {
	case "half-up":
		return decHalfUp, nil
	case "half-even":
		return decHalfEven, nil
	default:
		return nil, fmt.Errorf("rounding mode %q (want \"half-up\" or \"half-even\")", m)
	}
}
