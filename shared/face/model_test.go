package face

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sscard/platform/shared/face/detect"
	"github.com/sscard/platform/shared/face/facenet"
)

func testPipeline(t testing.TB) *Pipeline {
	t.Helper()
	if detect.CascadeDir() == "" || facenet.PackageDir() == "" {
		t.Skip("face model files not installed: run infra/scripts/services.sh face-models")
	}
	p, err := LoadInstalled(QualityRules{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func decodeFile(t testing.TB, file string) image.Image {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// resample draws src's region r (in src coordinates, may exceed src: black) onto a w×h
// image, bilinearly, with a brightness factor.
func resample(src image.Image, r [4]float64, w, h int, gain float64) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	b := src.Bounds()
	at := func(x, y int) (float64, float64, float64) {
		if x < b.Min.X || y < b.Min.Y || x >= b.Max.X || y >= b.Max.Y {
			return 0, 0, 0
		}
		cr, cg, cb, _ := src.At(x, y).RGBA()
		return float64(cr >> 8), float64(cg >> 8), float64(cb >> 8)
	}
	for j := 0; j < h; j++ {
		for i := 0; i < w; i++ {
			x := r[0] + (float64(i)+0.5)*r[2]/float64(w) - 0.5
			y := r[1] + (float64(j)+0.5)*r[3]/float64(h) - 0.5
			x0, y0 := int(math.Floor(x)), int(math.Floor(y))
			fx, fy := x-float64(x0), y-float64(y0)
			var c [3]float64
			for k, wt := range [4]float64{(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy} {
				rr, gg, bb := at(x0+k%2, y0+k/2)
				c[0] += wt * rr
				c[1] += wt * gg
				c[2] += wt * bb
			}
			px := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v*gain)))) }
			out.SetRGBA(i, j, color.RGBA{px(c[0]), px(c[1]), px(c[2]), 255})
		}
	}
	return out
}

func encodeJPEG(t testing.TB, img image.Image, q int) []byte {
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// idPhoto is one face cut out of a demo group photo as a portrait with a margin: the
// stand-in for a card photo.
type idPhoto struct {
	name   string
	src    image.Image
	region [4]float64 // x, y, w, h in the source
}

func (p idPhoto) render(t testing.TB, dx, dy, zoom, gain float64, q int) []byte {
	r := p.region
	cx, cy := r[0]+r[2]/2+dx*r[2], r[1]+r[3]/2+dy*r[3]
	w, h := r[2]/zoom, r[3]/zoom
	return encodeJPEG(t, resample(p.src, [4]float64{cx - w/2, cy - h/2, w, h}, 358, 441, gain), q)
}

// demoFaces cuts every clearly detected face of the face-api demo photos into an ID photo.
func demoFaces(t testing.TB, p *Pipeline) []idPhoto {
	var out []idPhoto
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		img := decodeFile(t, filepath.Join(facenet.PackageDir(), "demo", name))
		faces := p.finder.Find(detect.FromImage(img), detect.Options{MinScore: 20})
		for k, f := range faces {
			w := f.Size * 1.6
			out = append(out, idPhoto{name: fmt.Sprintf("%s#%d", name, k), src: img,
				region: [4]float64{f.Center.X - w/2, f.Center.Y - w*1.232*0.45, w, w * 1.232}})
		}
	}
	return out
}

// TestGenuineAndImpostorRates: the same face shifted, scaled, brightened/darkened and
// JPEG re-encoded stays under the match threshold; different people of the demo photos
// stay above it. The demo photos are unlabeled group photos, so "different people" means
// different faces (a person could recur across photos); rates are printed.
func TestGenuineAndImpostorRates(t *testing.T) {
	p := testPipeline(t)
	threshold := DefaultMatching().VerifyThreshold
	photos := demoFaces(t, p)
	if len(photos) < 8 {
		t.Fatalf("only %d demo faces", len(photos))
	}
	type aug struct {
		name               string
		dx, dy, zoom, gain float64
		q                  int
	}
	augs := []aug{
		{"shift", 0.06, -0.05, 1, 1, 92}, {"shift2", -0.05, 0.04, 1, 1, 92},
		{"scale-down", 0, 0, 0.8, 1, 92}, {"scale-up", 0, 0, 1.2, 1, 92},
		{"darker", 0, 0, 1, 0.7, 92}, {"brighter", 0, 0, 1, 1.25, 92},
		{"jpeg-q35", 0, 0, 1, 1, 35},
	}
	var enrolled [][]float32
	var genuine []float64
	var kept []idPhoto
	failures := map[string]int{}
	for _, ph := range photos {
		e, err := p.Embed(ph.render(t, 0, 0, 1, 1, 92))
		if err != nil {
			var qe *QualityError
			if errors.As(err, &qe) {
				t.Logf("%s: enrolment photo refused: %v", ph.name, err)
				continue
			}
			t.Fatal(err)
		}
		enrolled = append(enrolled, e.Vector)
		kept = append(kept, ph)
		for _, a := range augs {
			g, err := p.Embed(ph.render(t, a.dx, a.dy, a.zoom, a.gain, a.q))
			if err != nil {
				failures[a.name]++
				genuine = append(genuine, math.Inf(1))
				continue
			}
			genuine = append(genuine, Distance(e.Vector, g.Vector))
		}
	}
	var impostor []float64
	for i := range enrolled {
		for j := i + 1; j < len(enrolled); j++ {
			impostor = append(impostor, Distance(enrolled[i], enrolled[j]))
		}
	}
	accepted, rejected := 0, 0
	for _, d := range genuine {
		if d <= threshold {
			accepted++
		}
	}
	for _, d := range impostor {
		if d > threshold {
			rejected++
		}
	}
	sort.Float64s(genuine)
	sort.Float64s(impostor)
	gar := float64(accepted) / float64(len(genuine))
	irr := float64(rejected) / float64(len(impostor))
	t.Logf("%d faces, %d augmentations each; threshold %.2f", len(kept), len(augs), threshold)
	t.Logf("genuine: %d/%d under threshold (%.3f); median %.3f, max %.3f; quality refusals %v", accepted, len(genuine), gar, genuine[len(genuine)/2], genuine[len(genuine)-1], failures)
	t.Logf("impostor: %d/%d above threshold (%.3f); min %.3f, median %.3f", rejected, len(impostor), irr, impostor[0], impostor[len(impostor)/2])
	if gar < 0.9 {
		t.Errorf("genuine acceptance %.3f < 0.9", gar)
	}
	if irr < 0.95 {
		t.Errorf("impostor rejection %.3f < 0.95", irr)
	}
}

func TestQualityProblems(t *testing.T) {
	p := testPipeline(t)
	photos := demoFaces(t, p)
	ph := photos[0]
	check := func(name string, photo []byte, code string) {
		_, err := p.Embed(photo)
		var qe *QualityError
		if !errors.As(err, &qe) || qe.Code != code {
			t.Errorf("%s: got %v, want quality problem %s", name, err, code)
		}
	}
	check("garbage", []byte("not an image at all"), Unreadable)
	check("dark", ph.render(t, 0, 0, 1, 0.2, 92), TooDark)
	check("small", encodeJPEG(t, resample(ph.src, [4]float64{ph.region[0] - ph.region[2]*3, ph.region[1] - ph.region[3]*2, ph.region[2] * 7, ph.region[3] * 5}, 358, 441, 1), 92), FaceTooSmall)
	blank := image.NewRGBA(image.Rect(0, 0, 358, 441))
	check("blank", encodeJPEG(t, blank, 92), NoFace)
	group := decodeFile(t, filepath.Join(facenet.PackageDir(), "demo", "sample6.jpg"))
	check("group", encodeJPEG(t, group, 90), SeveralFaces)
}
