package nftables

import (
	"testing"

	nft "github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func TestChunks(t *testing.T) {
	elem := func(chain string) nft.SetElement {
		return nft.SetElement{Key: make([]byte, 12), VerdictData: &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}}
	}
	long := string(make([]byte, 200))
	many := func(n int, chain string) []nft.SetElement {
		out := make([]nft.SetElement, n)
		for i := range out {
			out[i] = elem(chain)
		}
		return out
	}
	tests := []struct {
		name      string
		els       []nft.SetElement
		wantParts int
	}{
		{"none", nil, 0},
		{"one", many(1, "c"), 1},
		{"small ones fit one message", many(700, "c"), 1},
		{"long chain names split", many(700, long), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parts := chunks(tt.els)
			if len(parts) != tt.wantParts {
				t.Errorf("parts: got %d, want %d", len(parts), tt.wantParts)
			}
			n := 0
			for _, p := range parts {
				size := 0
				for _, e := range p {
					size += 48 + len(e.Key) + len(e.VerdictData.Chain)
				}
				if size > maxElemBytes {
					t.Errorf("part of %d elements: got %d bytes, want at most %d", len(p), size, maxElemBytes)
				}
				n += len(p)
			}
			if n != len(tt.els) {
				t.Errorf("elements over all parts: got %d, want %d", n, len(tt.els))
			}
		})
	}
}
