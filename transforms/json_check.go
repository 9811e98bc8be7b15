package transforms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unicode/utf8"
)

// CheckJSON checks that b is one JSON document that every reader downstream
// reads the same way and that Busbar can pass on unaltered, and when it is
// not says where ("line 3, column 14: …"). Beyond json.Valid it refuses:
//
//   - a key repeated in one object, compared after unescaping: readers
//     disagree on which one counts (Busbar's mappings see the first, many
//     parsers the last), so a duplicate would let the caller post one
//     document and the backend see another (RFC 8259 §4, RFC 7493 §2.3);
//   - invalid UTF-8, which decoders replace with U+FFFD without a word;
//   - characters XML 1.0 cannot hold (\u0000, the other C0 controls but tab,
//     line feed and carriage return, U+FFFE, U+FFFF) and unpaired surrogate
//     escapes: a mapping into XML would have to alter them.
//
// It is one pass over the bytes and, for objects of up to dupScanKeys keys,
// allocates nothing: keys are compared as raw bytes (unescaped only when
// written with an escape).
func CheckJSON(b []byte) error {
	c := jsonCheckers.Get().(*jsonChecker)
	err := c.check(b)
	at := c.errAt // c may be another caller's once released
	c.release()
	if err == errJSONSyntax {
		return jsonSyntaxError(b, at)
	}
	return err
}

// dupScanKeys is how many keys an object may have before its duplicates are
// found through a map rather than by comparing each key with those before.
const dupScanKeys = 16

// maxJSONDepth is encoding/json's nesting limit, so both refuse the same
// documents.
const maxJSONDepth = 10000

// errJSONSyntax marks a syntax error, whose message encoding/json writes
// (jsonSyntaxError): the error path may be slow, the words must stay.
var errJSONSyntax = errors.New("JSON syntax error")

type jsonChecker struct {
	src    []byte
	frames []jsonFrame
	keys   []jsonKey // the keys of the open objects, innermost last
	dec    []byte    // keys written with escapes, unescaped
	errAt  int
}

// jsonFrame is an open object or array.
type jsonFrame struct {
	object   bool
	firstKey int // object: index in keys of its first key
	index    int // array: index of the element being read
	set      map[string]struct{}
}

// jsonKey is a key: src[off:end], or dec[off:end] when it had escapes; at
// is the offset of its opening quote.
type jsonKey struct {
	at, off, end int
	escaped      bool
}

var jsonCheckers = sync.Pool{New: func() any { return new(jsonChecker) }}

func (c *jsonChecker) release() {
	if cap(c.frames) > 1<<10 || cap(c.keys) > 1<<12 || cap(c.dec) > 1<<14 {
		return // a huge document's buffers are left to the collector
	}
	clear(c.frames[:cap(c.frames)]) // the maps
	c.src, c.frames, c.keys, c.dec = nil, c.frames[:0], c.keys[:0], c.dec[:0]
	jsonCheckers.Put(c)
}

func (c *jsonChecker) key(k jsonKey) []byte {
	if k.escaped {
		return c.dec[k.off:k.end]
	}
	return c.src[k.off:k.end]
}

// strPlain flags the bytes a string holds as they are: printable ASCII
// other than the quote and the backslash.
var strPlain = func() (t [256]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return
}()

func (c *jsonChecker) syntax(at int) error {
	c.errAt = at
	return errJSONSyntax
}

func (c *jsonChecker) skipSpace(i int) int {
	s := c.src
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\r' || s[i] == '\t') {
		i++
	}
	return i
}

func (c *jsonChecker) check(b []byte) error {
	c.src = b
	s := b
	i := c.skipSpace(0)
value:
	if i >= len(s) {
		return c.syntax(i)
	}
	switch s[i] {
	case '{', '[':
		if len(c.frames) >= maxJSONDepth {
			return c.syntax(i)
		}
		object, closer := s[i] == '{', s[i]+2 // '}' and ']' follow '{' and '[' two apart
		c.frames = append(c.frames, jsonFrame{object: object, firstKey: len(c.keys)})
		i = c.skipSpace(i + 1)
		if i < len(s) && s[i] == closer {
			i++
			c.frames = c.frames[:len(c.frames)-1]
			goto next
		}
		if object {
			goto key
		}
		goto value
	case '"':
		end, _, err := c.str(i, false)
		if err != nil {
			return err
		}
		i = end
	case 't':
		if !bytes.HasPrefix(s[i:], []byte("true")) {
			return c.syntax(i)
		}
		i += 4
	case 'f':
		if !bytes.HasPrefix(s[i:], []byte("false")) {
			return c.syntax(i)
		}
		i += 5
	case 'n':
		if !bytes.HasPrefix(s[i:], []byte("null")) {
			return c.syntax(i)
		}
		i += 4
	default:
		end, ok := jsonNumber(s, i)
		if !ok {
			return c.syntax(end)
		}
		i = end
	}
next:
	i = c.skipSpace(i)
	if len(c.frames) == 0 {
		if i != len(s) {
			return c.syntax(i)
		}
		return nil
	}
	if i >= len(s) {
		return c.syntax(i)
	}
	if f := &c.frames[len(c.frames)-1]; f.object {
		switch s[i] {
		case ',':
			i = c.skipSpace(i + 1)
			goto key
		case '}':
			c.keys = c.keys[:f.firstKey]
			f.set = nil
			c.frames = c.frames[:len(c.frames)-1]
			i++
			goto next
		}
		return c.syntax(i)
	} else {
		switch s[i] {
		case ',':
			f.index++
			i = c.skipSpace(i + 1)
			goto value
		case ']':
			c.frames = c.frames[:len(c.frames)-1]
			i++
			goto next
		}
		return c.syntax(i)
	}
key:
	if i >= len(s) || s[i] != '"' {
		return c.syntax(i)
	}
	{
		end, k, err := c.str(i, true)
		if err != nil {
			return err
		}
		if err := c.addKey(k); err != nil {
			return err
		}
		i = c.skipSpace(end)
		if i >= len(s) || s[i] != ':' {
			return c.syntax(i)
		}
		i = c.skipSpace(i + 1)
	}
	goto value
}

// addKey records a key of the innermost object and refuses a duplicate.
func (c *jsonChecker) addKey(k jsonKey) error {
	f := &c.frames[len(c.frames)-1]
	name := c.key(k)
	prev := c.keys[f.firstKey:]
	switch {
	case f.set == nil && len(prev) < dupScanKeys:
		for _, p := range prev {
			if bytes.Equal(c.key(p), name) {
				return c.duplicate(k, p)
			}
		}
	default:
		if f.set == nil {
			f.set = make(map[string]struct{}, 2*dupScanKeys)
			for _, p := range prev {
				f.set[string(c.key(p))] = struct{}{}
			}
		}
		if _, dup := f.set[string(name)]; dup {
			for _, p := range prev { // the error path: find the first one
				if bytes.Equal(c.key(p), name) {
					return c.duplicate(k, p)
				}
			}
		}
		f.set[string(name)] = struct{}{}
	}
	c.keys = append(c.keys, k)
	return nil
}

func (c *jsonChecker) duplicate(k, first jsonKey) error {
	c.keys = append(c.keys, k) // for the path
	return fmt.Errorf("%s: duplicate key %s at %s (first at %s)",
		jsonPosition(c.src, k.at), strconv.Quote(string(c.key(k))), c.path(false), jsonPosition(c.src, first.at))
}

// path is the JSON path of the value being read: $.lines[2].amount. inKey:
// a key of the innermost object is being read, and is not part of it.
func (c *jsonChecker) path(inKey bool) string {
	b := []byte{'$'}
	for n, f := range c.frames {
		if !f.object {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.index), 10)
			b = append(b, ']')
			continue
		}
		end := len(c.keys) // its keys end where the next object's begin
		for _, g := range c.frames[n+1:] {
			if g.object {
				end = g.firstKey
				break
			}
		}
		if end <= f.firstKey || inKey && n == len(c.frames)-1 {
			break
		}
		b = appendPathKey(b, c.key(c.keys[end-1]))
	}
	return string(b)
}

func appendPathKey(b, k []byte) []byte {
	plain := len(k) > 0
	for i, ch := range k {
		if !(ch == '_' || 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || i > 0 && '0' <= ch && ch <= '9') {
			plain = false
			break
		}
	}
	if plain {
		return append(append(b, '.'), k...)
	}
	b = append(b, '[')
	b = strconv.AppendQuote(b, string(k))
	return append(b, ']')
}

// str reads the string whose quote is at s[i] and returns the offset after
// its closing quote. For a key it also returns where its text is.
func (c *jsonChecker) str(i int, isKey bool) (int, jsonKey, error) {
	s := c.src
	k := jsonKey{at: i, off: i + 1}
	j := i + 1
	for {
		for j < len(s) && strPlain[s[j]] {
			j++
		}
		if j >= len(s) {
			return 0, k, c.syntax(j)
		}
		switch ch := s[j]; {
		case ch == '"':
			k.end = j
			if k.escaped {
				k.off = len(c.dec)
				c.dec = appendUnescaped(c.dec, s[i+1:j])
				k.end = len(c.dec)
			}
			return j + 1, k, nil
		case ch == '\\':
			if isKey {
				k.escaped = true
			}
			n, err := c.escape(j, isKey)
			if err != nil {
				return 0, k, err
			}
			j += n
		case ch < 0x20:
			return 0, k, c.syntax(j)
		default:
			r, n := utf8.DecodeRune(s[j:])
			if r == utf8.RuneError && n == 1 {
				return 0, k, c.bad(j, isKey, fmt.Sprintf("invalid UTF-8 (byte 0x%02X)", s[j]))
			}
			if r == 0xFFFE || r == 0xFFFF {
				return 0, k, c.bad(j, isKey, fmt.Sprintf("U+%04X, a character XML cannot hold", r))
			}
			j += n
		}
	}
}

// escape checks the escape at s[j] ('\\') and returns its length.
func (c *jsonChecker) escape(j int, isKey bool) (int, error) {
	s := c.src
	if j+1 >= len(s) {
		return 0, c.syntax(j + 1)
	}
	switch s[j+1] {
	case '"', '\\', '/', 'n', 'r', 't':
		return 2, nil
	case 'b', 'f':
		return 0, c.bad(j, isKey, fmt.Sprintf(`\%c, a character XML cannot hold`, s[j+1]))
	case 'u':
	default:
		return 0, c.syntax(j + 1)
	}
	r, ok := hex4(s, j+2)
	if !ok {
		return 0, c.syntax(j + 2)
	}
	switch {
	case r >= 0xD800 && r <= 0xDBFF:
		if lo, ok := hex4(s, j+8); ok && s[j+6] == '\\' && s[j+7] == 'u' && lo >= 0xDC00 && lo <= 0xDFFF {
			return 12, nil
		}
		fallthrough
	case r >= 0xDC00 && r <= 0xDFFF:
		return 0, c.bad(j, isKey, fmt.Sprintf(`%s, an unpaired surrogate that names no character`, s[j:j+6]))
	case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0xFFFE, r == 0xFFFF:
		return 0, c.bad(j, isKey, fmt.Sprintf(`%s (U+%04X), a character XML cannot hold`, s[j:j+6], r))
	}
	return 6, nil
}

// hex4 reads the four hex digits at s[i:], if there are.
func hex4(s []byte, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	var r rune
	for _, ch := range s[i : i+4] {
		switch {
		case '0' <= ch && ch <= '9':
			ch -= '0'
		case 'a' <= ch && ch <= 'f':
			ch -= 'a' - 10
		case 'A' <= ch && ch <= 'F':
			ch -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(ch)
	}
	return r, true
}

// bad is an error in a string's content at byte at.
func (c *jsonChecker) bad(at int, isKey bool, what string) error {
	where := "at " + c.path(false)
	if isKey {
		where = "in a key of " + c.path(true)
	}
	return fmt.Errorf("%s (byte %d): %s %s", jsonPosition(c.src, at), at, what, where)
}

// appendUnescaped appends the text of a string whose escapes were checked.
func appendUnescaped(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		if raw[i] != '\\' {
			dst = append(dst, raw[i])
			i++
			continue
		}
		switch e := raw[i+1]; e {
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, _ := hex4(raw, i+2)
			if r >= 0xD800 && r <= 0xDBFF {
				lo, _ := hex4(raw, i+8)
				r = (r-0xD800)<<10 + (lo - 0xDC00) + 0x10000
				i += 6
			}
			dst = utf8.AppendRune(dst, r)
			i += 6
			continue
		default: // " \ /
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

// jsonNumber reads the number at s[i:] (RFC 8259 grammar) and returns the
// offset after it; not ok, the offset of the first wrong byte.
func jsonNumber(s []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(s) && '0' <= s[i] && s[i] <= '9' {
			i++
		}
		return i
	}
	if i < len(s) && s[i] == '-' {
		i++
	}
	switch {
	case i < len(s) && s[i] == '0':
		i++
	case i < len(s) && '1' <= s[i] && s[i] <= '9':
		i = digits(i + 1)
	default:
		return i, false
	}
	if i < len(s) && s[i] == '.' {
		if j := digits(i + 1); j > i+1 {
			i = j
		} else {
			return i + 1, false
		}
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

// jsonSyntaxError words a syntax error as encoding/json does, with the line
// and the column: "line 3, column 14: invalid character '}' looking for
// beginning of value". at is where the checker stopped, used should
// encoding/json see no error.
func jsonSyntaxError(b []byte, at int) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	var v any
	err := dec.Decode(&v)
	var se *json.SyntaxError
	switch {
	case err == nil:
		if _, err := dec.Token(); err != io.EOF {
			return fmt.Errorf("%s: data after the JSON document", jsonPosition(b, int(dec.InputOffset())))
		}
	case errors.As(err, &se):
		return fmt.Errorf("%s: %v", jsonPosition(b, int(se.Offset)), err)
	case errors.Is(err, io.ErrUnexpectedEOF), err == io.EOF:
		return fmt.Errorf("%s: unexpected end of JSON input", jsonPosition(b, len(b)))
	}
	return fmt.Errorf("%s: invalid JSON", jsonPosition(b, at))
}

// jsonPosition is "line L, column C" of byte off (columns count bytes).
func jsonPosition(b []byte, off int) string {
	off = min(off, len(b))
	line := 1 + bytes.Count(b[:off], []byte{'\n'})
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
