package face

import (
	"errors"
	"image"
	"math"
	"path/filepath"
	"sort"
	"testing"

	"github.com/sscard/platform/shared/face/detect"
	"github.com/sscard/platform/shared/face/facenet"
	"github.com/sscard/platform/shared/face/facetest"
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

func demoFaces(t testing.TB, p *Pipeline) []facetest.Face {
	faces, err := facetest.DemoFaces(p.finder)
	if err != nil {
		t.Fatal(err)
	}
	return faces
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
	var enrolled [][]float32
	var genuine []float64
	failures := map[string]int{}
	for _, ph := range photos {
		e, err := p.Embed(ph.Photo(facetest.Enrolment))
		if err != nil {
			var qe *QualityError
			if errors.As(err, &qe) {
				t.Logf("%s: enrolment photo refused: %v", ph.Name, err)
				continue
			}
			t.Fatal(err)
		}
		enrolled = append(enrolled, e.Vector)
		for _, v := range facetest.Variants {
			g, err := p.Embed(ph.Photo(v))
			if err != nil {
				failures[v.Name]++
				genuine = append(genuine, math.Inf(1))
				continue
			}
			if d := Distance(e.Vector, g.Vector); d > threshold {
				t.Logf("%s %s: genuine distance %.3f", ph.Name, v.Name, d)
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
	t.Logf("%d faces, %d variants each; threshold %.2f", len(enrolled), len(facetest.Variants), threshold)
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
	check("dark", ph.Photo(facetest.Variant{Zoom: 1, Gain: 0.2, Quality: 92}), TooDark)
	check("small", ph.Zoomed(6), FaceTooSmall)
	check("blank", facetest.JPEG(image.NewRGBA(image.Rect(0, 0, 358, 441)), 92), NoFace)
	group, err := facetest.Decode(filepath.Join(facenet.PackageDir(), "demo", "sample6.jpg"))
	if err != nil {
		t.Fatal(err)
	}
	check("group", facetest.JPEG(group, 90), SeveralFaces)
}

// TestRepeatability: pigo's pupil localiser perturbs its seed with math/rand, so the same
// photo can give slightly different chips; the descriptors must stay close.
func TestRepeatability(t *testing.T) {
	p := testPipeline(t)
	photos := demoFaces(t, p)
	worst := 0.0
	for _, ph := range photos[:4] {
		photo := ph.Photo(facetest.Enrolment)
		first, err := p.Embed(photo)
		if err != nil {
			continue
		}
		for i := 0; i < 4; i++ {
			again, err := p.Embed(photo)
			if err != nil {
				t.Fatal(err)
			}
			worst = max(worst, Distance(first.Vector, again.Vector))
		}
	}
	t.Logf("largest distance between repeated embeddings of one photo: %.3f", worst)
	if worst > 0.2 {
		t.Errorf("repeated embeddings %.3f apart", worst)
	}
}
