package transforms

import (
	"testing"

	"github.com/cockroachdb/apd/v3"
)

// sameDecimal reports how a differs from b, field by field: the shortcuts
// must build exactly what apd builds, not merely an equal number (1.50 and
// 1.5 are equal but print differently).
func sameDecimal(a, b *apd.Decimal) bool {
	if a.Form != b.Form || a.Negative != b.Negative || a.Exponent != b.Exponent ||
		a.Coeff.Cmp(&b.Coeff) != 0 || a.Text('f') != b.Text('f') {
		return false
	}
	// The shortcut's own formatting prints what apd prints.
	f, ok := fastDecOf(b)
	return !ok || string(f.appendText(nil)) == b.Text('f')
}

var decimalSeeds = []string{
	"0", "-0", "+0", "1", "0000000001", "123.45", "-123.45", "+7", ".5", "5.", "-.5", "-5.",
	"1.50", "0.000", "999999999999999999", "-999999999999999999", "9999999999999999999",
	"1234567890.12345678", "1e5", "1E-2", "NaN", "Infinity", "-inf", "", ".", "-", "+", "1.2.3",
	"1,5", " 1", "1 ", "１", "0x10", "1_000", "--1", "+-1", "00000000000000000001",
}

// TestDecimalFastCoversCommonForms: the inputs the shortcut exists for take
// it (a change that sent them all to apd would only show as a slower
// benchmark), and the rest do not.
func TestDecimalFastCoversCommonForms(t *testing.T) {
	for _, s := range []string{"0000000001", "123.45", "-0.5", "+7", "1.50", "0", "-0", "999999999999999999"} {
		if _, ok := parseDecimalFast(s); !ok {
			t.Errorf("%q: not taken by the shortcut", s)
		}
	}
	for _, s := range []string{"1e5", "NaN", "Infinity", "", ".", "-", "1.2.3", " 1", "9999999999999999999"} {
		if _, ok := parseDecimalFast(s); ok {
			t.Errorf("%q: taken by the shortcut", s)
		}
	}
	for _, s := range decimalSeeds {
		checkDecimalFast(t, s)
	}
}

func checkDecimalFast(t *testing.T, s string) {
	got, ok := parseDecimalFast(s)
	if !ok {
		return
	}
	want, _, err := apd.NewFromString(s)
	if err != nil {
		t.Fatalf("%q: shortcut gives %s, apd fails: %v", s, got.Text('f'), err)
	}
	if !sameDecimal(got, want) {
		t.Fatalf("%q: shortcut %+v (%s), apd %+v (%s)", s, *got, got.Text('f'), *want, want.Text('f'))
	}
}

// FuzzDecimalFast: whatever the shortcut accepts, apd parses into the same
// decimal.
func FuzzDecimalFast(f *testing.F) {
	for _, s := range decimalSeeds {
		f.Add(s)
	}
	f.Fuzz(checkDecimalFast)
}

func checkQuantizeFast(t *testing.T, s string, scale int8, even bool) {
	d, _, err := apd.NewFromString(s)
	if err != nil {
		return
	}
	ctx := decHalfUp
	if even {
		ctx = decHalfEven
	}
	exp := -int32(scale % 31) // roundTo allows scales -30…30
	got, ok := quantizeFast(d, exp, ctx.Rounding)
	if !ok {
		return
	}
	want := new(apd.Decimal)
	if _, err := ctx.Quantize(want, d, exp); err != nil {
		t.Fatalf("%s to exponent %d (%s): shortcut gives %s, apd fails: %v", s, exp, ctx.Rounding, got.Text('f'), err)
	}
	if !sameDecimal(got, want) {
		t.Fatalf("%s to exponent %d (%s): shortcut %+v (%s), apd %+v (%s)", s, exp, ctx.Rounding,
			*got, got.Text('f'), *want, want.Text('f'))
	}
}

// TestQuantizeFast rounds the edge cases both ways: halves, carries into a
// new digit, negative zero, more places than the input has.
func TestQuantizeFast(t *testing.T) {
	for _, s := range append(decimalSeeds, "0.5", "1.5", "2.5", "-2.5", "0.05", "0.004", "-0.004", "9.995",
		"99.5", "0.9", "123456789012345678", "922337203685477580.7", "1.23E+5", "5E-19") {
		for _, scale := range []int8{-3, 0, 1, 2, 5, 18, 30} {
			checkQuantizeFast(t, s, scale, false)
			checkQuantizeFast(t, s, scale, true)
		}
	}
	if _, ok := quantizeFast(apd.New(12345, -3), -2, apd.RoundHalfUp); !ok {
		t.Error("12.345 to 2 places: not taken by the shortcut")
	}
}

// FuzzQuantizeFast: whatever the shortcut rounds, apd's Quantize rounds to
// the same decimal.
func FuzzQuantizeFast(f *testing.F) {
	for _, s := range decimalSeeds {
		f.Add(s, int8(2), false)
		f.Add(s, int8(0), true)
	}
	f.Fuzz(checkQuantizeFast)
}
