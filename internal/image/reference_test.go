package image

import "testing"

func TestParseRef(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	tests := []struct {
		in, want, name string
		wantErr        bool
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", name: "docker.io/library/busybox"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", name: "docker.io/library/busybox"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest", name: "docker.io/library/busybox"},
		{in: "docker.io/busybox", want: "docker.io/library/busybox:latest", name: "docker.io/library/busybox"},
		{in: "index.docker.io/library/busybox", want: "docker.io/library/busybox:latest", name: "docker.io/library/busybox"},
		{in: "user/app:v2", want: "docker.io/user/app:v2", name: "docker.io/user/app"},
		{in: "host:5000/x/y:tag", want: "host:5000/x/y:tag", name: "host:5000/x/y"},
		{in: "127.0.0.1:5000/busybox", want: "127.0.0.1:5000/busybox:latest", name: "127.0.0.1:5000/busybox"},
		{in: "localhost/app", want: "localhost/app:latest", name: "localhost/app"},
		{in: "quay.io/org/app@" + d, want: "quay.io/org/app@" + d, name: "quay.io/org/app"},
		{in: "nginx:1.25@" + d, want: "docker.io/library/nginx@" + d, name: "docker.io/library/nginx"},
		{in: " busybox ", want: "docker.io/library/busybox:latest", name: "docker.io/library/busybox"},
		{in: "", wantErr: true},
		{in: "Busybox", wantErr: true},
		{in: "busybox:", wantErr: true},
		{in: "a@sha256:short", wantErr: true},
		{in: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", wantErr: true},
	}
	for _, tt := range tests {
		got, err := ParseRef(tt.in)
		if tt.wantErr {
			if err == nil {
				t.Errorf("ParseRef(%q) = %q, want an error", tt.in, got)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRef(%q): %v", tt.in, err)
			continue
		}
		if got.String() != tt.want || got.Name() != tt.name {
			t.Errorf("ParseRef(%q) = %q (name %q), want %q (name %q)", tt.in, got, got.Name(), tt.want, tt.name)
		}
	}
}

func TestIDPrefix(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"sha256:abcd1234", "abcd1234", true},
		{"abcd1234", "abcd1234", true},
		{"abc", "", false},
		{"busybox", "", false},
		{"sha256:xyz1", "", false},
	}
	for _, tt := range tests {
		got, ok := idPrefix(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("idPrefix(%q) = %q, %v, want %q, %v", tt.in, got, ok, tt.want, tt.ok)
		}
	}
}
