package storage

import (
	"encoding/json"
	"testing"
)

func TestWithResourceVersion(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"kind":"Pod","apiVersion":"v1","metadata":{"name":"a"}}`, `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42","name":"a"}}`},
		{`{"kind":"Pod","apiVersion":"v1","metadata":{}}`, `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"42"}}`},
	}
	for _, tc := range tests {
		got := string(withResourceVersion([]byte(tc.in), 42))
		if got != tc.want {
			t.Errorf("withResourceVersion(%s): got %s, want %s", tc.in, got, tc.want)
		}
		if !json.Valid([]byte(got)) {
			t.Errorf("result is not JSON: %s", got)
		}
	}
}
