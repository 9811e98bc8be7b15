package yamldoc

import (
	"reflect"
	"strings"
	"testing"
)

type inner struct {
	Deep string `yaml:"deep"`
}

type outer struct {
	Name  string           `yaml:"name"`
	Items []inner          `yaml:"items"`
	ByKey map[string]inner `yaml:"by-key,omitempty"`
	Skip  string
}

func TestUndocumented(t *testing.T) {
	got := Undocumented("`name` and `items`, not by-key", reflect.TypeOf(outer{}))
	want := `key "deep" (inner.Deep); key "by-key" (outer.ByKey)`
	if strings.Join(got, "; ") != want {
		t.Errorf("want %s, got %s", want, strings.Join(got, "; "))
	}
}
