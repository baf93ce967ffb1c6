package openapi

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/scheme"

	"github.com/skiff-sh/skiff/internal/apiserver/registry"
)

// BenchmarkNew measures start-up cost; stored-bytes is what the Spec keeps
// in memory for the documents.
func BenchmarkNew(b *testing.B) {
	s := runtime.NewScheme()
	if err := scheme.AddToScheme(s); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	var stored int
	for b.Loop() {
		spec, err := New(registry.All(), s)
		if err != nil {
			b.Fatal(err)
		}
		stored = len(spec.v2.gz) + len(spec.discovery.gz)
		for _, d := range spec.v3 {
			stored += len(d.gz)
		}
	}
	b.ReportMetric(float64(stored), "stored-bytes")
}
