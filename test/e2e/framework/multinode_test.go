package framework

import "testing"

func TestNodeNetNodeIP(t *testing.T) {
	for _, tc := range []struct {
		n    nodeNet
		want string
	}{
		{nodeNet{Subnet: 7}, "10.213.7.2"},
		{nodeNet{Subnet: 7, Host: 3}, "10.213.7.3"},
		{nodeNet{Subnet: 250, Host: 4}, "10.213.250.4"},
	} {
		if got := tc.n.NodeIP(); got != tc.want {
			t.Errorf("NodeIP of %+v: got %s, want %s", tc.n, got, tc.want)
		}
	}
}

func TestRemoveLANWithoutOne(t *testing.T) {
	if err := removeLAN(""); err != nil {
		t.Errorf("removeLAN(\"\"): got %v, want nil", err)
	}
	if err := removeLAN(dirPrefix + "00000000" + lanSuffix); err != nil {
		t.Errorf("removeLAN of a namespace that does not exist: got %v, want nil", err)
	}
}
