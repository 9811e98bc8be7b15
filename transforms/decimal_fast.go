package transforms

import (
	"math"
	"strconv"

	"github.com/cockroachdb/apd/v3"
)

// Shortcuts for the decimals almost every input holds: plain digits with an
// optional sign and point, at most 18 of them, so the coefficient fits an
// int64. apd parses and quantizes such numbers exactly but through its
// general machinery (a string rebuilt without the point, big-integer
// arithmetic, rounding contexts); a mapping of 200 line items does that a
// few hundred times per message. The shortcuts build the very same
// apd.Decimal (form, sign, coefficient, exponent) and answer "not mine" for
// everything else, which then goes to apd: FuzzDecimalFast and
// FuzzQuantizeFast compare them with apd on arbitrary input.

// pow10 holds 10^0 … 10^18, the powers an int64 can hold.
var pow10 = func() (p [19]int64) {
	p[0] = 1
	for i := 1; i < len(p); i++ {
		p[i] = p[i-1] * 10
	}
	return p
}()

// fastDec is a finite decimal whose coefficient fits an int64: what apd
// would hold as Negative, Coeff and Exponent.
type fastDec struct {
	neg  bool
	coef int64
	exp  int32
}

// parseFastDec reads [+-]digits[.digits] with at most 18 digits, as
// apd.NewFromString would; ok is false for anything else.
func parseFastDec(s string) (f fastDec, ok bool) {
	i := 0
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		f.neg, i = s[0] == '-', 1
	}
	digits, point := 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 18 {
				return fastDec{}, false
			}
			f.coef = f.coef*10 + int64(c-'0')
		case c == '.' && point < 0:
			point = digits
		default:
			return fastDec{}, false
		}
	}
	if digits == 0 {
		return fastDec{}, false
	}
	if point >= 0 {
		f.exp = int32(point - digits)
	}
	return f, true
}

// fastDecOf reads d if it is finite with an int64 coefficient.
func fastDecOf(d *apd.Decimal) (fastDec, bool) {
	if d.Form != apd.Finite || !d.Coeff.IsInt64() {
		return fastDec{}, false
	}
	return fastDec{d.Negative, d.Coeff.Int64(), d.Exponent}, true
}

func (f fastDec) decimal() *apd.Decimal {
	d := new(apd.Decimal)
	d.Form, d.Negative, d.Exponent = apd.Finite, f.neg, f.exp
	d.Coeff.SetInt64(f.coef)
	return d
}

// quantize is apd's Quantize to exponent exp, rounding half-up or
// half-even; ok is false when the result does not fit (or another rounding
// is asked for).
func (f fastDec) quantize(exp int32, rounding apd.Rounder) (fastDec, bool) {
	switch diff := int64(exp) - int64(f.exp); {
	case diff < 0: // more places: scale the coefficient up
		if -diff >= int64(len(pow10)) || f.coef > math.MaxInt64/pow10[-diff] {
			return fastDec{}, false
		}
		f.coef *= pow10[-diff]
	case diff > 0: // fewer places: divide and round what is cut off
		if diff >= int64(len(pow10)) {
			return fastDec{}, false
		}
		div := pow10[diff]
		q, rem := f.coef/div, f.coef%div
		switch rounding {
		case apd.RoundHalfUp:
			if 2*rem >= div {
				q++
			}
		case apd.RoundHalfEven:
			if 2*rem > div || 2*rem == div && q%2 == 1 {
				q++
			}
		default:
			return fastDec{}, false
		}
		f.coef = q
	}
	f.exp = exp
	return f, true
}

// appendText appends what apd's Text('f') gives for the decimal.
func (f fastDec) appendText(buf []byte) []byte {
	if f.neg {
		buf = append(buf, '-')
	}
	var scratch [20]byte
	digits := strconv.AppendInt(scratch[:0], f.coef, 10)
	switch {
	case f.exp >= 0:
		buf = append(buf, digits...)
		for i := int32(0); i < f.exp; i++ {
			buf = append(buf, '0')
		}
	case int(-f.exp) >= len(digits):
		buf = append(buf, "0."...)
		for i := len(digits); i < int(-f.exp); i++ {
			buf = append(buf, '0')
		}
		buf = append(buf, digits...)
	default:
		point := len(digits) + int(f.exp)
		buf = append(buf, digits[:point]...)
		buf = append(buf, '.')
		buf = append(buf, digits[point:]...)
	}
	return buf
}

// parseDecimalFast is apd.NewFromString for the numbers parseFastDec reads.
func parseDecimalFast(s string) (*apd.Decimal, bool) {
	f, ok := parseFastDec(s)
	if !ok {
		return nil, false
	}
	return f.decimal(), true
}

// quantizeFast is ctx.Quantize(r, d, exp) for the decimals fastDec holds.
func quantizeFast(d *apd.Decimal, exp int32, rounding apd.Rounder) (*apd.Decimal, bool) {
	f, ok := fastDecOf(d)
	if !ok {
		return nil, false
	}
	if f, ok = f.quantize(exp, rounding); !ok {
		return nil, false
	}
	return f.decimal(), true
}
