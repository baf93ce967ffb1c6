package controllermanager

import (
	"strings"
	"testing"

	"k8s.io/client-go/rest"
)

func TestNewRejectsUnknownController(t *testing.T) {
	_, err := New(Config{RestConfig: &rest.Config{}, Disabled: []string{"no-such"}})
	if err == nil || !strings.Contains(err.Error(), `unknown controller "no-such"`) {
		t.Fatalf("got %v, want an unknown controller error", err)
	}
}

func TestNewDisables(t *testing.T) {
	names := Names()
	if len(names) == 0 {
		t.Skip("no controllers registered yet")
	}
	m, err := New(Config{RestConfig: &rest.Config{}, Disabled: []string{names[0] + "-controller"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m.funcs[names[0]]; ok {
		t.Errorf("%s still enabled after disabling it by its long name", names[0])
	}
	if len(m.funcs) != len(names)-1 {
		t.Errorf("got %d enabled, want %d", len(m.funcs), len(names)-1)
	}
}
