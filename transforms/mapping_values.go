package transforms

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/antchfx/xpath"
	"github.com/cockroachdb/apd/v3"
	"github.com/tidwall/gjson"
)

// The value model of mapping expressions. A value is one of:
//
//	nil            a missing path, an empty node-set, a JSON null
//	string
//	*apd.Decimal   exact decimal (never mutated once made)
//	bool
//	int, float64   literals written in the expression (converted to decimals when computed with)
//	xmlNodes       a non-empty XPath node-set
//	jsonVal        a JSON array or object from the input
//	[]any          a computed list: group(), group(expr), array literals
type xmlNodes []xpath.NodeNavigator

type jsonVal struct{ r gjson.Result }

// inputError is an error caused by the input values (a 422 for the caller).
type inputError struct{ msg string }

func (e *inputError) Error() string { return e.msg }

func inputErrorf(format string, a ...any) error { return &inputError{fmt.Sprintf(format, a...)} }

// decCtx computes sums, differences and products exactly for any realistic
// amount and quotients to 50 significant digits.
var (
	decCtx      = apd.BaseContext.WithPrecision(50)
	decHalfUp   = decCtx
	decHalfEven = func() *apd.Context { c := *decCtx; c.Rounding = apd.RoundHalfEven; return &c }()
)

// fromJSON converts a gjson result to a value.
func fromJSON(r gjson.Result) any {
	switch r.Type {
	case gjson.Null:
		return nil
	case gjson.False:
		return false
	case gjson.True:
		return true
	case gjson.String:
		return r.Str
	case gjson.Number:
		if d, ok := parseDecimalFast(r.Raw); ok {
			return d
		}
		d, _, err := apd.NewFromString(r.Raw)
		if err != nil {
			return r.Raw
		}
		return d
	case gjson.JSON:
		if r.IsArray() && len(r.Raw) > 0 && isEmptyArray(r.Raw) {
			return nil
		}
		return jsonVal{r}
	}
	return nil
}

func isEmptyArray(raw string) bool {
	s := strings.TrimSpace(raw)
	if len(s) < 2 || s[0] != '[' {
		return false
	}
	return strings.TrimSpace(s[1:len(s)-1]) == ""
}

// toString is the string value of v: "" for nil, the first node's string
// value for a node-set, the first element for a JSON array, the JSON text of
// an object.
func toString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case *apd.Decimal:
		return v.Text('f')
	case bool:
		if v {
			return "true"
		}
		return "false"
	case int:
		return strconv.Itoa(v)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case xmlNodes:
		return v[0].Value()
	case jsonVal:
		if v.r.IsArray() {
			arr := v.r.Array()
			if len(arr) == 0 {
				return ""
			}
			return toString(fromJSON(arr[0]))
		}
		return v.r.Raw
	case []any:
		if len(v) == 0 {
			return ""
		}
		return toString(v[0])
	}
	return fmt.Sprint(v)
}

// scalar reduces node-sets and JSON arrays to their first item's value.
func scalar(v any) any {
	switch x := v.(type) {
	case xmlNodes:
		return x[0].Value()
	case jsonVal:
		if x.r.IsArray() {
			arr := x.r.Array()
			if len(arr) == 0 {
				return nil
			}
			return fromJSON(arr[0])
		}
	case []any:
		if len(x) == 0 {
			return nil
		}
		return scalar(x[0])
	}
	return v
}

// toDecimal converts v to a decimal; ok is false for nil. Text that is not
// a number is an input error.
func toDecimal(v any) (d *apd.Decimal, ok bool, err error) {
	switch x := scalar(v).(type) {
	case nil:
		return nil, false, nil
	case *apd.Decimal:
		return x, true, nil
	case int:
		return apd.New(int64(x), 0), true, nil
	case float64:
		d, _, err := apd.NewFromString(strconv.FormatFloat(x, 'f', -1, 64))
		if err != nil {
			return nil, false, inputErrorf("%v is not a finite number", x)
		}
		return d, true, nil
	case string:
		s := strings.TrimSpace(x)
		if s == "" {
			return nil, false, nil
		}
		if d, ok := parseDecimalFast(s); ok {
			return d, true, nil
		}
		d, _, err := apd.NewFromString(s)
		if err != nil || d.Form != apd.Finite {
			return nil, false, inputErrorf("%q is not a decimal number", x)
		}
		return d, true, nil
	default:
		return nil, false, inputErrorf("%s is not a decimal number", describe(v))
	}
}

// parseDecimalQuiet is toDecimal without the error: ok is false for
// anything that is not a number.
func parseDecimalQuiet(v any) (*apd.Decimal, bool) {
	d, ok, err := toDecimal(v)
	return d, ok && err == nil
}

// truthy is the boolean value of v: nil, false, "", "false", zero and an
// empty node-set are false.
func truthy(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case bool:
		return x
	case string:
		return x != "" && x != "false"
	case *apd.Decimal:
		return !x.IsZero()
	case int:
		return x != 0
	case float64:
		return x != 0
	case xmlNodes:
		return len(x) > 0
	case jsonVal:
		return !isEmptyArray(x.r.Raw)
	case []any:
		return len(x) > 0
	}
	return true
}

func isNumeric(v any) bool {
	switch v.(type) {
	case *apd.Decimal, int, float64:
		return true
	}
	return false
}

// isUntyped says v is text from the input whose type is not known: XML node
// values (and text in JSON arrays), which compute as numbers next to a
// number and as text next to text.
func isUntyped(v any) bool {
	switch v.(type) {
	case xmlNodes, jsonVal:
		return true
	}
	return false
}

func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return strconv.Quote(v)
	case xmlNodes:
		return fmt.Sprintf("node-set (%d nodes)", len(v))
	case jsonVal:
		if v.r.IsArray() {
			return "JSON array"
		}
		return "JSON object"
	case []any:
		return fmt.Sprintf("list (%d items)", len(v))
	}
	return toString(v)
}

// ---- operators (installed with expr.Operator for every operand type) ----

func opAdd(a, b any) (any, error) {
	if _, ok := a.(string); ok {
		return toString(a) + toString(b), nil
	}
	if _, ok := b.(string); ok {
		return toString(a) + toString(b), nil
	}
	return arith('+', a, b)
}

func arith(op byte, a, b any) (any, error) {
	x, okx, err := toDecimal(a)
	if err != nil {
		return nil, err
	}
	y, oky, err := toDecimal(b)
	if err != nil {
		return nil, err
	}
	if !okx || !oky {
		return nil, nil // nil propagates: a missing amount gives a missing result
	}
	d := new(apd.Decimal)
	switch op {
	case '+':
		_, err = decCtx.Add(d, x, y)
	case '-':
		_, err = decCtx.Sub(d, x, y)
	case '*':
		_, err = decCtx.Mul(d, x, y)
	case '/':
		if y.IsZero() {
			return nil, inputErrorf("division by zero (%s / %s)", x.Text('f'), y.Text('f'))
		}
		_, err = decCtx.Quo(d, x, y)
		if err == nil {
			d.Reduce(d)
		}
	case '%':
		if y.IsZero() {
			return nil, inputErrorf("modulo by zero (%s %% %s)", x.Text('f'), y.Text('f'))
		}
		_, err = decCtx.Rem(d, x, y)
	}
	if err != nil {
		return nil, inputErrorf("%s %c %s: %v", x.Text('f'), op, y.Text('f'), err)
	}
	return d, nil
}

// compare returns -1, 0, 1. Numbers compare as numbers when either side is
// a number, or both sides are untyped input text that reads as numbers;
// everything else compares as text. ok is false when either side is nil.
func compare(a, b any) (c int, ok bool) {
	bothUntyped := isUntyped(a) && isUntyped(b)
	a, b = scalar(a), scalar(b)
	if a == nil || b == nil {
		return 0, false
	}
	numeric := isNumeric(a) || isNumeric(b)
	if !numeric && bothUntyped {
		_, ok1 := parseDecimalQuiet(a)
		_, ok2 := parseDecimalQuiet(b)
		numeric = ok1 && ok2
	}
	if !numeric {
		if _, ok := a.(bool); ok {
			return cmpBool(truthy(a), truthy(b)), true
		}
		if _, ok := b.(bool); ok {
			return cmpBool(truthy(a), truthy(b)), true
		}
	}
	if numeric {
		x, ok1 := parseDecimalQuiet(a)
		y, ok2 := parseDecimalQuiet(b)
		if ok1 && ok2 {
			return x.Cmp(y), true
		}
		return 0, false
	}
	return strings.Compare(toString(a), toString(b)), true
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func opEqual(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	c, ok := compare(a, b)
	return ok && c == 0
}

// The operator functions as expr sees them.
var opFuncs = []struct {
	op, name string
	fn       func(a, b any) (any, error)
	boolean  bool
}{
	{"+", "_add", opAdd, false},
	{"-", "_sub", func(a, b any) (any, error) { return arith('-', a, b) }, false},
	{"*", "_mul", func(a, b any) (any, error) { return arith('*', a, b) }, false},
	{"/", "_quo", func(a, b any) (any, error) { return arith('/', a, b) }, false},
	{"%", "_rem", func(a, b any) (any, error) { return arith('%', a, b) }, false},
	{"==", "_eq", func(a, b any) (any, error) { return opEqual(a, b), nil }, true},
	{"!=", "_ne", func(a, b any) (any, error) { return !opEqual(a, b), nil }, true},
	{"<", "_lt", func(a, b any) (any, error) { c, ok := compare(a, b); return ok && c < 0, nil }, true},
	{"<=", "_le", func(a, b any) (any, error) { c, ok := compare(a, b); return ok && c <= 0, nil }, true},
	{">", "_gt", func(a, b any) (any, error) { c, ok := compare(a, b); return ok && c > 0, nil }, true},
	{">=", "_ge", func(a, b any) (any, error) { c, ok := compare(a, b); return ok && c >= 0, nil }, true},
	{"in", "_in", opIn, true},
}

// opIn is a in list: list is an array literal, a node-set or a JSON array.
func opIn(a, list any) (any, error) {
	if l, ok := list.([]any); ok {
		for _, x := range l {
			if opEqual(a, x) {
				return true, nil
			}
		}
		return false, nil
	}
	found := false
	_ = eachItem(list, func(x any) error {
		if opEqual(a, x) {
			found = true
			return errStop
		}
		return nil
	})
	return found, nil
}

var errStop = errors.New("stop")
