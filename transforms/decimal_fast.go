package transforms

import (
	"math"

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

// parseDecimalFast is apd.NewFromString for [+-]digits[.digits] with at
// most 18 digits; ok is false for anything else.
func parseDecimalFast(s string) (d *apd.Decimal, ok bool) {
	i, neg := 0, false
	if len(s) > 0 && (s[0] == '-' || s[0] == '+') {
		neg, i = s[0] == '-', 1
	}
	var coef int64
	digits, point := 0, -1
	for ; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
			if digits > 18 {
				return nil, false
			}
			coef = coef*10 + int64(c-'0')
		case c == '.' && point < 0:
			point = digits
		default:
			return nil, false
		}
	}
	if digits == 0 {
		return nil, false
	}
	d = new(apd.Decimal)
	d.Form, d.Negative = apd.Finite, neg
	d.Coeff.SetInt64(coef)
	if point >= 0 {
		d.Exponent = int32(point - digits)
	}
	return d, true
}

// quantizeFast is ctx.Quantize(r, d, exp) for a finite d whose coefficient
// fits an int64 and whose result does too, rounding half-up or half-even;
// ok is false when apd must do it.
func quantizeFast(d *apd.Decimal, exp int32, rounding apd.Rounder) (r *apd.Decimal, ok bool) {
	if d.Form != apd.Finite || !d.Coeff.IsInt64() {
		return nil, false
	}
	coef := d.Coeff.Int64()
	switch diff := int64(exp) - int64(d.Exponent); {
	case diff < 0: // more places: scale the coefficient up
		if -diff >= int64(len(pow10)) || coef > math.MaxInt64/pow10[-diff] {
			return nil, false
		}
		coef *= pow10[-diff]
	case diff > 0: // fewer places: divide and round what is cut off
		if diff >= int64(len(pow10)) {
			return nil, false
		}
		div := pow10[diff]
		q, rem := coef/div, coef%div
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
			return nil, false
		}
		coef = q
	}
	r = new(apd.Decimal)
	r.Form, r.Negative, r.Exponent = apd.Finite, d.Negative, exp
	r.Coeff.SetInt64(coef)
	return r, true
}
