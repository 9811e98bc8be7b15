package transforms

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/htmlindex"
)

// CharsetName returns the name Busbar writes in XML declarations and
// Content-Type headers for a charset it can emit: "UTF-8", "GBK", "GB18030"
// or "Big5". Labels are matched without regard to case; "" is UTF-8.
// WHATWG aliases that decode as one of these (gb2312, x-gbk, big5-hkscs…)
// are refused for output: what is declared must be exactly what is sent.
func CharsetName(label string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(label)) {
	case "", "utf-8", "utf8":
		return "UTF-8", nil
	case "gbk":
		return "GBK", nil
	case "gb18030":
		return "GB18030", nil
	case "big5":
		return "Big5", nil
	}
	return "", fmt.Errorf("charset %q cannot be written: use utf-8, gbk, gb18030 or big5", label)
}

// EncodeCharset converts UTF-8 text to the named charset (GBK, GB18030,
// Big5…), for systems that must be answered in their own encoding. A
// character the charset cannot represent is an error naming it (by code
// point and byte offset), never a silent "?".
func EncodeCharset(utf8Text []byte, label string) ([]byte, error) {
	if isUTF8(label) {
		if !utf8.Valid(utf8Text) {
			return nil, fmt.Errorf("text is not valid UTF-8")
		}
		return utf8Text, nil
	}
	// htmlindex, not html/charset.Lookup: the latter's encoders write
	// characters they cannot represent as &#NNNN; references.
	enc, err := htmlindex.Get(label)
	if err != nil {
		return nil, fmt.Errorf("unsupported charset %q", label)
	}
	out, err := enc.NewEncoder().Bytes(utf8Text)
	if err != nil {
		return nil, fmt.Errorf("text cannot be written in %s: %s", label, unencodable(utf8Text, label))
	}
	return out, nil
}

// unencodable finds the first character of text that label cannot
// represent. The message names the code point, not the character itself,
// so that it can be sent in that very charset.
func unencodable(text []byte, label string) string {
	enc, _ := htmlindex.Get(label)
	e := enc.NewEncoder()
	for off := 0; off < len(text); {
		r, n := utf8.DecodeRune(text[off:])
		if r == utf8.RuneError && n <= 1 {
			return fmt.Sprintf("invalid UTF-8 at byte %d", off)
		}
		if _, err := e.Bytes(text[off : off+n]); err != nil {
			return fmt.Sprintf("character U+%04X at byte %d has no %s encoding", r, off, label)
		}
		off += n
	}
	return "the encoder failed"
}

// EncodeXML writes a UTF-8 XML document in the charset named by label
// (see CharsetName), with an XML declaration that says so: a declaration the
// document starts with is replaced, otherwise one is added. For UTF-8 the
// document is returned with a UTF-8 declaration.
func EncodeXML(doc []byte, label string) ([]byte, error) {
	name, err := CharsetName(label)
	if err != nil {
		return nil, err
	}
	body := doc
	if rest, ok := bytes.CutPrefix(body, []byte("<?xml")); ok && len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t' || rest[0] == '\r' || rest[0] == '\n') {
		if end := bytes.Index(rest, []byte("?>")); end >= 0 {
			body = rest[end+2:]
		}
	}
	body = bytes.TrimLeft(body, "\r\n")
	out := make([]byte, 0, len(body)+48)
	out = append(out, `<?xml version="1.0" encoding="`...)
	out = append(out, name...)
	out = append(out, "\"?>\n"...)
	enc, err := EncodeCharset(body, name)
	if err != nil {
		return nil, err
	}
	return append(out, enc...), nil
}
