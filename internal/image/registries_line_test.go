package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegistriesErrorsNameTheLine: a registries.yaml that does not parse,
// or parses into something else than the format, gives an error on one
// line naming the file and the line at fault, as an editor needs it.
func TestRegistriesErrorsNameTheLine(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "misspelt field", in: "mirrors:\n  docker.io:\n    endpoints: [x]\n", want: `line 3: unknown field "endpoints"`},
		{name: "a list where a map goes", in: "mirrors:\n  docker.io:\n    endpoint: [x]\nconfigs:\n  - x\n", want: "line 5: cannot unmarshal !!seq"},
		{name: "tab indentation", in: "mirrors:\n\tdocker.io: {}\n", want: "line 2: found character that cannot start any token"},
		{name: "unclosed flow", in: "mirrors: {docker.io: {endpoint: [x]}\n", want: "line "},
		{name: "wrong scalar type", in: "configs:\n  x:\n    tls:\n      insecure_skip_verify: maybe\n", want: "line 4: cannot unmarshal !!str `maybe` into bool"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "registries.yaml")
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadRegistries(path)
			if err == nil {
				t.Fatalf("got no error, want one with %q", tt.want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) || !strings.HasPrefix(msg, path+": ") || strings.Contains(msg, "\n") {
				t.Errorf("got %q, want one line starting with %q and containing %q", msg, path+": ", tt.want)
			}
		})
	}
}
