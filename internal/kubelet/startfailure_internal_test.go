package kubelet

import "testing"

func TestReplacedStartFailure(t *testing.T) {
	failed := Container{PodUID: "u1", Name: "c", Attempt: 2}
	tests := []struct {
		name       string
		containers []Container
		want       bool
	}{
		{name: "nothing in the runtime", want: false},
		{name: "an earlier attempt", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 1}}, want: false},
		{name: "the same attempt (created, then failed to start)", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 2}}, want: false},
		{name: "a later attempt", containers: []Container{{PodUID: "u1", Name: "c", Attempt: 3}}, want: true},
		{name: "a later attempt of another container", containers: []Container{{PodUID: "u1", Name: "d", Attempt: 5}}, want: false},
		{name: "a later attempt in another pod", containers: []Container{{PodUID: "u2", Name: "c", Attempt: 5}}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := replacedStartFailure(failed, tt.containers); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if a, b := startFailureID("u1/c", 1), startFailureID("u1/c", 2); a == b || len(a) != 64 {
		t.Errorf("startFailureID: got %q and %q, want distinct 64-character IDs", a, b)
	}
}
