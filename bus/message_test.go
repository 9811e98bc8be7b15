package bus

import (
	"testing"

	"github.com/beevik/etree"
)

// TestJSONChecked: the flag that spares a mapping a second JSON validation
// lives exactly as long as the bytes it vouches for.
func TestJSONChecked(t *testing.T) {
	for _, tc := range []struct {
		name string
		set  func(m *Message)
		want bool
	}{
		{"SetCheckedJSON", func(m *Message) { m.SetCheckedJSON([]byte(`{}`)) }, true},
		{"SetJSON after it", func(m *Message) { m.SetCheckedJSON([]byte(`{}`)); m.SetJSON([]byte(`{`)) }, false},
		{"SetXML after it", func(m *Message) { m.SetCheckedJSON([]byte(`{}`)); m.SetXML(etree.NewElement("a")) }, false},
		{"SetJSON", func(m *Message) { m.SetJSON([]byte(`{}`)) }, false},
	} {
		m := NewMessage()
		tc.set(m)
		if m.JSONChecked != tc.want {
			t.Errorf("%s: JSONChecked %v, want %v", tc.name, m.JSONChecked, tc.want)
		}
	}
}
