package detect

import (
	"encoding/json"
	"image"
	_ "image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sscard/platform/shared/face/facenet"
)

func testFinder(t testing.TB) *Finder {
	t.Helper()
	dir := CascadeDir()
	if dir == "" {
		t.Skip("pigo cascades not installed: run infra/scripts/services.sh face-models")
	}
	f, err := Load(os.DirFS(dir))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func readPhoto(t testing.TB, file string) *RGB {
	t.Helper()
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	img, _, err := image.Decode(fh)
	if err != nil {
		t.Fatal(err)
	}
	return FromImage(img)
}

// demo returns the path of a demo photo of the face-api package, or skips.
func demo(t testing.TB, name string) string {
	dir := facenet.PackageDir()
	if dir == "" {
		t.Skip("face-api package not installed: run infra/scripts/services.sh face-models")
	}
	return filepath.Join(dir, "demo", name)
}

type refFace struct {
	Image      string     `json:"image"`
	LeftEye    [2]float64 `json:"leftEye"`
	RightEye   [2]float64 `json:"rightEye"`
	Descriptor []float32  `json:"descriptor"`
}

func refFaces(t testing.TB) []refFace {
	raw, err := os.ReadFile("../facenet/testdata/descriptors.json")
	if err != nil {
		t.Fatal(err)
	}
	var ref struct{ Faces []refFace }
	if err := json.Unmarshal(raw, &ref); err != nil {
		t.Fatal(err)
	}
	return ref.Faces
}

func dist(a, b []float32) float64 {
	s := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// TestPigoSample: pigo's own portrait has exactly one face, eyes level and apart.
func TestPigoSample(t *testing.T) {
	fd := testFinder(t)
	dir := filepath.Join(filepath.Dir(CascadeDir()), "testdata")
	file := filepath.Join(dir, "sample.jpg")
	if _, err := os.Stat(file); err != nil {
		t.Skip("pigo sample photo not installed: run infra/scripts/services.sh face-models")
	}
	faces := fd.Find(readPhoto(t, file), Options{})
	if len(faces) != 1 {
		t.Fatalf("found %d faces in pigo's sample, want 1: %+v", len(faces), faces)
	}
	f := faces[0]
	if d := f.EyeDistance(); d < 0.2*f.Size || d > 0.6*f.Size {
		t.Errorf("eye distance %.1f for a face of %.1f", d, f.Size)
	}
	if math.Abs(f.LeftEye.Y-f.RightEye.Y) > 0.1*f.Size {
		t.Errorf("eyes not level: %+v %+v", f.LeftEye, f.RightEye)
	}
	t.Logf("face %+v", f)
}

// TestEyesAndChipAgainstFaceAPI: on face-api's demo photo, pigo finds the faces face-api
// found, its pupils fall near the centres of face-api's 68-point eye contours, and the
// descriptor of our chip lies near face-api's own descriptor of that face.
func TestEyesAndChipAgainstFaceAPI(t *testing.T) {
	fd := testFinder(t)
	photo := readPhoto(t, demo(t, "sample1.jpg"))
	net, err := facenet.Load(os.DirFS(filepath.Join(facenet.PackageDir(), "model")))
	if err != nil {
		t.Fatal(err)
	}
	faces := fd.Find(photo, Options{})
	t.Logf("pigo: %d faces", len(faces))
	matched := 0
	defer func() {
		if matched == 0 {
			t.Error("pigo found none of face-api's faces")
		}
	}()
	for _, ref := range refFaces(t) {
		if ref.Image != "sample1.jpg" {
			continue
		}
		mid := Point{(ref.LeftEye[0] + ref.RightEye[0]) / 2, (ref.LeftEye[1] + ref.RightEye[1]) / 2}
		iod := math.Hypot(ref.RightEye[0]-ref.LeftEye[0], ref.RightEye[1]-ref.LeftEye[1])
		var got *Face // pigo (upright frontal cascade) misses face-api's tilted faces
		for i := range faces {
			f := &faces[i]
			if math.Hypot(f.Center.X-mid.X, f.Center.Y-mid.Y) < f.Size/2 {
				got = f
			}
		}
		if got == nil {
			t.Logf("no pigo face at face-api's face with eyes at %.0f,%.0f", mid.X, mid.Y)
			continue
		}
		el := math.Hypot(got.LeftEye.X-ref.LeftEye[0], got.LeftEye.Y-ref.LeftEye[1]) / iod
		er := math.Hypot(got.RightEye.X-ref.RightEye[0], got.RightEye.Y-ref.RightEye[1]) / iod
		if el > 0.25 || er > 0.25 {
			t.Errorf("pupils %+v %+v are %.2f / %.2f eye distances from face-api's eye centres %v %v", got.LeftEye, got.RightEye, el, er, ref.LeftEye, ref.RightEye)
		}
		desc, err := net.Descriptor(Chip(photo, *got))
		if err != nil {
			t.Fatal(err)
		}
		d := dist(desc, ref.Descriptor)
		if d > 0.45 { // well inside the 0.6 the net was trained for
			t.Errorf("face at %v: descriptor of our chip is %.3f from face-api's (want < 0.45)", mid, d)
		}
		matched++
		t.Logf("face at %.0f,%.0f: eye error %.2f/%.2f iod, descriptor distance to face-api's %.3f", mid.X, mid.Y, el, er, d)
	}
}
