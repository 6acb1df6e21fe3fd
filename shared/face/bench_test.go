package face

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/sscard/platform/shared/face/detect"
)

// BenchmarkEmbedPortrait: detect + align + embed on pigo's sample portrait (320x400).
func BenchmarkEmbedPortrait(b *testing.B) {
	p := testPipeline(b)
	photo, err := os.ReadFile(filepath.Join(filepath.Dir(detect.CascadeDir()), "testdata", "sample.jpg"))
	if err != nil {
		b.Skip(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := p.Embed(photo); err != nil {
			b.Fatal(err)
		}
	}
}
