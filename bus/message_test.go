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

// TestVars: a message starts without a Vars map, SetVar makes it, and a
// reply gets a copy of the variables, so setting one on the reply leaves
// the request's alone.
func TestVars(t *testing.T) {
	m := NewMessage()
	if m.Vars != nil {
		t.Fatalf("new message: Vars %v, want nil", m.Vars)
	}
	if r := m.Reply(); r.Vars != nil || r.Vars["x"] != "" {
		t.Fatalf("reply of a message without vars: Vars %v, want nil", r.Vars)
	}
	m.SetVar("id", "42")
	r := m.Reply()
	r.SetVar("id", "43")
	r.SetVar("extra", "1")
	if m.Vars["id"] != "42" || len(m.Vars) != 1 {
		t.Errorf("request vars after the reply's changed: %v, want map[id:42]", m.Vars)
	}
	if r.Vars["id"] != "43" || r.Vars["extra"] != "1" {
		t.Errorf("reply vars: %v, want map[extra:1 id:43]", r.Vars)
	}
	if r.ID != m.ID || r.CorrelationID != m.CorrelationID || r.SOAP != m.SOAP {
		t.Errorf("reply ids: %+v, want those of %+v", r, m)
	}
}
