package facenet

import (
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// testNet loads the model from the install step's cache, or skips: unit tests need
// nothing installed (the function image's build runs them), and
// `infra/scripts/services.sh install` (or `face-models`) fetches it.
func testNet(t testing.TB) *Net {
	t.Helper()
	dir := PackageDir()
	if dir == "" {
		t.Skip("face-api model not installed: run infra/scripts/services.sh face-models")
	}
	n, err := Load(os.DirFS(filepath.Join(dir, "model")))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

type reference struct {
	Faces []struct {
		Crop       string    `json:"crop"`
		Descriptor []float32 `json:"descriptor"`
	} `json:"faces"`
}

func readChip(t testing.TB, file string) []byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	b := img.Bounds()
	out := make([]byte, 0, b.Dx()*b.Dy()*3)
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bb, _ := img.At(x, y).RGBA()
			out = append(out, byte(r>>8), byte(g>>8), byte(bb>>8))
		}
	}
	return out
}

func loadReference(t testing.TB) reference {
	raw, err := os.ReadFile("testdata/descriptors.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	if len(ref.Faces) == 0 {
		t.Fatal("no reference faces")
	}
	return ref
}

// TestParityWithFaceAPI: the Go port gives face-api's own descriptors (tfjs wasm backend,
// tests/face/reference/descriptors.js) within 1e-3 per component on the same chips, with
// the assembly kernel and with the portable one.
func TestParityWithFaceAPI(t *testing.T) {
	n := testNet(t)
	ref := loadReference(t)
	for _, asm := range []bool{useAsm, false} {
		saved := useAsm
		useAsm = asm
		worst := 0.0
		for _, f := range ref.Faces {
			got, err := n.Descriptor(readChip(t, filepath.Join("testdata", f.Crop)))
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range f.Descriptor {
				d := math.Abs(float64(got[i] - want))
				worst = max(worst, d)
				if d > 1e-3 {
					t.Errorf("asm=%v %s component %d: got %.6f, face-api %.6f", asm, f.Crop, i, got[i], want)
					break
				}
			}
		}
		useAsm = saved
		t.Logf("asm=%v: %d chips, largest component difference %.2e", asm, len(ref.Faces), worst)
	}
}

func BenchmarkDescriptor(b *testing.B) {
	n := testNet(b)
	chip := readChip(b, "testdata/sample1-0.png")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := n.Descriptor(chip); err != nil {
			b.Fatal(err)
		}
	}
}
