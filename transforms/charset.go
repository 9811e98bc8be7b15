package transforms

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/htmlindex"
	"golang.org/x/text/transform"
)

// utf8Input is the one place where the charset of an XML body is chosen,
// in RFC 7303's order (§3, and W3C bug 26100: a byte-order mark outranks
// the MIME layer):
//
//  1. a UTF-8 byte-order mark: UTF-8, whatever else is declared;
//  2. the charset the transport declared (a Content-Type parameter),
//     utf-8 included;
//  3. the XML declaration's encoding, which the scanner applies where it
//     reads it (declaration), else UTF-8.
//
// It returns the body as UTF-8 (the BOM left for the scanner to skip);
// settled reports that 1 or 2 decided, and the declaration is then to be
// ignored. Bytes that are not valid in the chosen charset are an error
// naming the first one, never U+FFFD.
func utf8Input(body []byte, charsetLabel string) (_ []byte, settled bool, _ error) {
	switch {
	case bytes.HasPrefix(body, []byte("\uFEFF")):
		return body, true, nil
	case strings.TrimSpace(charsetLabel) == "":
		return body, false, nil
	case isUTF8(charsetLabel):
		return body, true, nil
	}
	text, err := decodeCharsetAt(body, charsetLabel, 0)
	if errors.Is(err, errUnknownCharset) {
		return nil, false, fmt.Errorf("%w: unsupported charset %q", ErrNotXML, charsetLabel)
	}
	if err != nil {
		return nil, false, fmt.Errorf("%w: %w", ErrNotXML, err)
	}
	return text, true, nil
}

// XMLToUTF8 is the charset choice of ParseXML and ParseDoc (see utf8Input)
// for readers of their own, such as the SOAP header scan: settled means the
// XML declaration's encoding is to be ignored.
func XMLToUTF8(body []byte, charsetLabel string) (text []byte, settled bool, err error) {
	return utf8Input(body, charsetLabel)
}

var errUnknownCharset = errors.New("unknown charset")

// DecodeCharset decodes text from the charset label names (a WHATWG label:
// GBK, GB18030, Big5…) to UTF-8. A byte sequence with no character in that
// charset is an error naming its offset, where x/text's decoders would
// write U+FFFD and the document would go on altered.
func DecodeCharset(text []byte, label string) ([]byte, error) {
	return decodeCharsetAt(text, label, 0)
}

// decodeCharsetAt is DecodeCharset for text that starts at byte base of
// the input, so that errors name the offset in the input.
func decodeCharsetAt(text []byte, label string, base int) ([]byte, error) {
	enc, err := htmlindex.Get(label)
	if err != nil {
		return nil, fmt.Errorf("%w %q", errUnknownCharset, label)
	}
	out, err := enc.NewDecoder().Bytes(text)
	if err != nil {
		return nil, fmt.Errorf("decoding %s: %w", label, err)
	}
	if bytes.Contains(out, []byte("\uFFFD")) {
		if off := undecodable(text, enc); off >= 0 {
			return nil, &undecodableError{off: base + off, b: text[off], label: label}
		}
	}
	return out, nil
}

// undecodableError is a byte with no character in the document's charset.
type undecodableError struct {
	off   int
	b     byte
	label string
}

func (e *undecodableError) Error() string {
	return fmt.Sprintf("byte %d (0x%02X) is not valid %s", e.off, e.b, e.label)
}

// undecodable finds the first byte of text that enc decodes as U+FFFD
// without its being U+FFFD's own encoding (GB18030 has one), or -1. It
// decodes one character at a time: slow, and only run when the fast
// decoding wrote a U+FFFD.
func undecodable(text []byte, enc encoding.Encoding) int {
	own, _ := enc.NewEncoder().Bytes([]byte("\uFFFD"))
	d := enc.NewDecoder()
	var dst [2 * utf8.UTFMax]byte
	for off := 0; off < len(text); {
		var nDst, nSrc int
		for end := off + 1; ; end++ {
			var err error
			nDst, nSrc, err = d.Transform(dst[:], text[off:end], end == len(text))
			if err != transform.ErrShortSrc || end == len(text) {
				break
			}
		}
		if nSrc == 0 {
			return off
		}
		if bytes.Contains(dst[:nDst], []byte("\uFFFD")) && (own == nil || !bytes.HasPrefix(text[off:], own)) {
			return off
		}
		off += nSrc
	}
	return -1
}

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
//
// A character of text or of an attribute value that the charset cannot
// represent is written as a character reference (&#x1F600;), as libxml2
// does: a reply the backend already acted on must never fail for want of
// a glyph. In a CDATA section the section is split around the reference.
// Where XML has no character references — element and attribute names,
// comments, processing instructions, the DOCTYPE — such a character is an
// error naming its code point and byte offset.
func EncodeXML(doc []byte, label string) ([]byte, error) { return encodeXML(doc, label, true) }

// EncodeXMLStrict is EncodeXML where a character the charset lacks is an
// error wherever it is: for a request still to be sent, whose caller can be
// told, rather than a backend left to store a character it has no room for.
func EncodeXMLStrict(doc []byte, label string) ([]byte, error) { return encodeXML(doc, label, false) }

func encodeXML(doc []byte, label string, refs bool) ([]byte, error) {
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
	if err != nil && refs && utf8.Valid(body) {
		// The rare document with a character the charset lacks: its
		// references are written first, then it is encoded again.
		var refs []byte
		if refs, err = withCharRefs(body, name); err == nil {
			enc, err = EncodeCharset(refs, name)
		}
	}
	if err != nil {
		return nil, err
	}
	return append(out, enc...), nil
}

// withCharRefs rewrites a well-formed UTF-8 document (Busbar's own output)
// so that every character label cannot represent is a character reference,
// or says where one cannot be (see EncodeXML).
func withCharRefs(doc []byte, label string) ([]byte, error) {
	enc, _ := htmlindex.Get(label)
	e := enc.NewEncoder()
	out := make([]byte, 0, len(doc)+64)
	// where: what the bytes being read are; end: the delimiter that ends
	// it ('<' for text, the quote for an attribute value).
	const (
		inText = iota
		inTag
		inValue
		inCDATA
		inOther // comment, processing instruction, DOCTYPE: no references
	)
	state, quote, endOther := inText, byte(0), ""
	for i := 0; i < len(doc); {
		c := doc[i]
		if c < utf8.RuneSelf {
			switch state {
			case inText:
				if c == '<' {
					switch {
					case bytes.HasPrefix(doc[i:], []byte("<![CDATA[")):
						state = inCDATA
					case bytes.HasPrefix(doc[i:], []byte("<!--")):
						state, endOther = inOther, "-->"
					case bytes.HasPrefix(doc[i:], []byte("<?")):
						state, endOther = inOther, "?>"
					case bytes.HasPrefix(doc[i:], []byte("<!")):
						state, endOther = inOther, ">"
					default:
						state = inTag
					}
				}
			case inTag:
				if c == '"' || c == '\'' {
					state, quote = inValue, c
				} else if c == '>' {
					state = inText
				}
			case inValue:
				if c == quote {
					state = inTag
				}
			case inCDATA:
				if bytes.HasPrefix(doc[i:], []byte("]]>")) {
					out = append(out, "]]>"...)
					i += 3
					state = inText
					continue
				}
			case inOther:
				// A DOCTYPE's internal subset may hold '>': its end is
				// not looked for precisely, only a character in it.
				if bytes.HasPrefix(doc[i:], []byte(endOther)) {
					out = append(out, endOther...)
					i += len(endOther)
					state = inText
					continue
				}
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(doc[i:])
		if _, err := e.Bytes(doc[i : i+n]); err == nil {
			out = append(out, doc[i:i+n]...)
			i += n
			continue
		}
		ref := fmt.Appendf(nil, "&#x%X;", r)
		switch state {
		case inText, inValue:
			out = append(out, ref...)
		case inCDATA:
			out = append(append(append(out, "]]>"...), ref...), "<![CDATA["...)
		case inTag:
			return nil, fmt.Errorf("text cannot be written in %s: character U+%04X at byte %d is in a name, where no character reference can stand for it", label, r, i)
		default:
			return nil, fmt.Errorf("text cannot be written in %s: character U+%04X at byte %d is in a comment, processing instruction or DOCTYPE, where no character reference can stand for it", label, r, i)
		}
		i += n
	}
	return out, nil
}
