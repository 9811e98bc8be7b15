package routes

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
)

// decodeChecked turns JSON that transforms.CheckJSON passed into the values
// the validator takes: map[string]any, []any, string, json.Number, bool and
// nil. Numbers stay json.Number, the decimal as written, so that money is
// never a float64. It also lists the numbers too big to check exactly (see
// maxNumberText), at their pointers.
//
// It is not encoding/json because that was a third of request.validate's
// cost on a 200-line voucher: it scans every byte again for errors the
// check already ruled out, and allocates each member name anew where a
// voucher repeats four names on every line.
func decodeChecked(b []byte) (any, []violation, error) {
	d := valueDecoder{b: b, names: map[string]string{}, path: make([]step, 0, 16)}
	v, err := d.value()
	if err == nil {
		if d.space(); d.i != len(d.b) {
			err = d.errorf("data after the JSON document")
		}
	}
	if err != nil {
		return nil, nil, err
	}
	if len(d.huge) > 1 {
		sort.SliceStable(d.huge, func(i, j int) bool { return tokensLess(d.huge[i].tokens, d.huge[j].tokens) })
	}
	return v, d.huge, nil
}

type valueDecoder struct {
	b     []byte
	i     int
	names map[string]string // member names, made into strings once per document
	path  []step            // where the decoder is, for huge
	huge  []violation
}

// step is one step of a path into a document: a member's name, or an index.
type step struct {
	name  string
	index int // -1 for a member
}

var errTruncated = errors.New("the JSON document ends too early")

func (d *valueDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("byte %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *valueDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *valueDecoder) value() (any, error) {
	d.space()
	if d.i >= len(d.b) {
		return nil, errTruncated
	}
	switch c := d.b[d.i]; c {
	case '{':
		return d.object()
	case '[':
		return d.array()
	case '"':
		s, _, err := d.str()
		return s, err
	case 't':
		return true, d.literal("true")
	case 'f':
		return false, d.literal("false")
	case 'n':
		return nil, d.literal("null")
	default:
		return d.number()
	}
}

func (d *valueDecoder) literal(word string) error {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return d.errorf("expected %s", word)
	}
	d.i += len(word)
	return nil
}

func (d *valueDecoder) object() (any, error) {
	d.i++ // {
	obj := map[string]any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return obj, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errorf("expected a member name")
		}
		raw, escaped, err := d.rawString()
		if err != nil {
			return nil, err
		}
		name, ok := d.names[string(raw)]
		if !ok {
			if name, err = unquote(raw, escaped); err != nil {
				return nil, err
			}
			d.names[string(raw)] = name
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errorf("expected a colon")
		}
		d.i++
		d.path = append(d.path, step{name: name, index: -1})
		v, err := d.value()
		d.path = d.path[:len(d.path)-1]
		if err != nil {
			return nil, err
		}
		obj[name] = v
		if done, err := d.next('}'); done || err != nil {
			return obj, err
		}
	}
}

func (d *valueDecoder) array() (any, error) {
	d.i++ // [
	arr := []any{}
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return arr, nil
	}
	for {
		d.path = append(d.path, step{index: len(arr)})
		v, err := d.value()
		d.path = d.path[:len(d.path)-1]
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		if done, err := d.next(']'); done || err != nil {
			return arr, err
		}
	}
}

// next reads the comma between two items, or the end of their container.
func (d *valueDecoder) next(end byte) (bool, error) {
	d.space()
	if d.i >= len(d.b) {
		return false, errTruncated
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return false, nil
	case end:
		d.i++
		return true, nil
	}
	return false, d.errorf("expected a comma or %q", end)
}

func (d *valueDecoder) str() (string, bool, error) {
	raw, escaped, err := d.rawString()
	if err != nil {
		return "", false, err
	}
	s, err := unquote(raw, escaped)
	return s, escaped, err
}

// rawString reads a string and returns it with its quotes, and whether it
// has an escape.
func (d *valueDecoder) rawString() ([]byte, bool, error) {
	start, escaped := d.i, false
	for d.i++; d.i < len(d.b); d.i++ {
		switch d.b[d.i] {
		case '\\':
			escaped = true
			d.i++
		case '"':
			d.i++
			return d.b[start:d.i], escaped, nil
		}
	}
	return nil, false, errTruncated
}

func unquote(raw []byte, escaped bool) (string, error) {
	if !escaped {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	err := json.Unmarshal(raw, &s) // escapes are rare: the standard library's way
	return s, err
}

func (d *valueDecoder) number() (any, error) {
	start := d.i
	for d.i < len(d.b) {
		switch c := d.b[d.i]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E':
			d.i++
			continue
		}
		break
	}
	if d.i == start {
		return nil, d.errorf("unexpected %q", d.b[d.i])
	}
	n := json.Number(d.b[start:d.i])
	if tooBig(string(n)) {
		tokens := make([]string, len(d.path))
		for i, s := range d.path {
			tokens[i] = s.name
			if s.index >= 0 {
				tokens[i] = strconv.Itoa(s.index)
			}
		}
		d.huge = append(d.huge, newViolation(tokens, fmt.Sprintf(
			"a number too long or too large to check exactly (at most %d characters, an exponent within ±%d)", maxNumberText, maxNumberExponent)))
	}
	return n, nil
}
