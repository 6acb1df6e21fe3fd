// Package face is face-match's domain: a photo becomes a descriptor (Model), descriptors
// are compared 1:1 against a person's enrolled card photo (Verify) or searched 1:N over
// the enrolled library (Identify, package vindex), and card photos are pre-checked when
// submitted and enrolled when the audit approves them. No net/http here; the function
// functions/face-match is the adapter.
package face

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/jpeg" // photos are JPEG (card-apply) or PNG (kiosk frames, tests)
	_ "image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"

	"github.com/sscard/platform/shared/face/detect"
	"github.com/sscard/platform/shared/face/facenet"
)

// Model turns one photo into a face descriptor with its quality. It is the way to a
// stronger model: a deployer plugs another implementation in without touching the
// function. Implementations are safe for concurrent use.
type Model interface {
	// Embed returns the descriptor of the single face in photo, or a *QualityError.
	Embed(photo []byte) (Embedding, error)
	// Name identifies the model and its version; descriptors of different models are
	// never compared.
	Name() string
	// Dim is the descriptor length.
	Dim() int
}

// Embedding is a descriptor and what was measured on the way.
type Embedding struct {
	Vector  []float32
	Quality Quality
}

// Quality is what the photo looked like to the detector.
type Quality struct {
	Score       float32 `json:"score"`       // detector confidence
	EyeDistance float64 `json:"eyeDistance"` // pixels between the pupils
	Brightness  float64 `json:"brightness"`  // mean luma of the face, 0..255
}

// Quality problem codes, stable for clients.
const (
	Unreadable   = "unreadable-image"
	NoFace       = "no-face"
	SeveralFaces = "several-faces"
	FaceTooSmall = "face-too-small"
	TooDark      = "too-dark"
)

// QualityError says why a photo cannot be used, in words the person at the kiosk or
// counter can act on.
type QualityError struct {
	Code   string
	Detail string
}

func (e *QualityError) Error() string { return "face: " + e.Code + ": " + e.Detail }

// QualityRules are the thresholds of the quality check (configuration).
type QualityRules struct {
	MinEyeDistance float64 // pixels between pupils; below it the face is too small (default 28)
	MinBrightness  float64 // mean face luma; below it the photo is too dark (default 45)
	// OtherFaceRatio: a second face at least this fraction of the largest one's size
	// counts as a second person in the photo (default 0.6).
	OtherFaceRatio float64
	MinScore       float32 // detector confidence floor (default 8)
}

func (q QualityRules) withDefaults() QualityRules {
	if q.MinEyeDistance == 0 {
		q.MinEyeDistance = 28
	}
	if q.MinBrightness == 0 {
		q.MinBrightness = 45
	}
	if q.OtherFaceRatio == 0 {
		q.OtherFaceRatio = 0.6
	}
	if q.MinScore == 0 {
		q.MinScore = 8
	}
	return q
}

// Pipeline is the bundled Model: pigo finds the face and its pupils, the chip is cut as
// face-api cuts it (levelled), and the dlib-derived ResNet from face-api computes the
// 128-d descriptor in Go.
type Pipeline struct {
	finder *detect.Finder
	net    *facenet.Net
	rules  QualityRules
}

// LoadPipeline loads the cascades from cascades and the recognition net from faceAPIModel
// (the model/ directory of the face-api npm package).
func LoadPipeline(cascades, faceAPIModel fs.FS, rules QualityRules) (*Pipeline, error) {
	f, err := detect.Load(cascades)
	if err != nil {
		return nil, err
	}
	n, err := facenet.Load(faceAPIModel)
	if err != nil {
		return nil, err
	}
	return &Pipeline{finder: f, net: n, rules: rules.withDefaults()}, nil
}

// ErrNotInstalled: the model files are not where the install step puts them.
var ErrNotInstalled = errors.New("face: model files not installed")

// LoadInstalled loads the pipeline from where the install step put the model files
// (detect.CascadeDir, facenet.PackageDir).
func LoadInstalled(rules QualityRules) (*Pipeline, error) {
	c, p := detect.CascadeDir(), facenet.PackageDir()
	if c == "" || p == "" {
		return nil, fmt.Errorf("%w (pigo cascades %q, face-api %q): run infra/scripts/services.sh face-models or set SSCARD_PIGO_CASCADES and SSCARD_FACE_API", ErrNotInstalled, c, p)
	}
	return LoadPipeline(os.DirFS(c), os.DirFS(filepath.Join(p, "model")), rules)
}

// Name implements Model.
func (p *Pipeline) Name() string { return "dlib-resnet-faceapi-" + facenet.PackageVersion }

// Dim implements Model.
func (p *Pipeline) Dim() int { return facenet.Dim }

// Embed implements Model.
func (p *Pipeline) Embed(photo []byte) (Embedding, error) {
	img, _, err := image.Decode(bytes.NewReader(photo))
	if err != nil {
		return Embedding{}, &QualityError{Unreadable, "the image cannot be decoded as JPEG or PNG"}
	}
	if b := img.Bounds(); b.Dx() < 64 || b.Dy() < 64 || b.Dx() > 4096 || b.Dy() > 4096 {
		return Embedding{}, &QualityError{Unreadable, fmt.Sprintf("the image is %dx%d pixels; 64 to 4096 on each side are accepted", b.Dx(), b.Dy())}
	}
	rgb := detect.FromImage(img)
	// A kiosk frame or ID photo shows one large face: look for large faces first (fast),
	// then for small ones, so a face too far away is named as such.
	faces := p.finder.Find(rgb, detect.Options{MinScore: p.rules.MinScore, MinFraction: 0.15})
	if len(faces) == 0 {
		faces = p.finder.Find(rgb, detect.Options{MinScore: p.rules.MinScore, MinFraction: 0.06})
	}
	if len(faces) == 0 {
		return Embedding{}, &QualityError{NoFace, "no face was found; face the camera, uncovered, in even light"}
	}
	best := 0
	for i, f := range faces {
		if f.Size > faces[best].Size {
			best = i
		}
	}
	f := faces[best]
	for i, o := range faces {
		if i != best && o.Size >= p.rules.OtherFaceRatio*f.Size {
			return Embedding{}, &QualityError{SeveralFaces, fmt.Sprintf("%d faces were found; only one person may be in the picture", len(faces))}
		}
	}
	q := Quality{Score: f.Score, EyeDistance: f.EyeDistance(), Brightness: f.Brightness}
	if q.EyeDistance < p.rules.MinEyeDistance {
		return Embedding{}, &QualityError{FaceTooSmall, fmt.Sprintf("the face is too small (%.0f pixels between the eyes, at least %.0f needed); come closer", q.EyeDistance, p.rules.MinEyeDistance)}
	}
	if q.Brightness < p.rules.MinBrightness {
		return Embedding{}, &QualityError{TooDark, fmt.Sprintf("the face is too dark (brightness %.0f of 255, at least %.0f needed)", q.Brightness, p.rules.MinBrightness)}
	}
	v, err := p.net.Descriptor(detect.Chip(rgb, f))
	if err != nil {
		return Embedding{}, err
	}
	return Embedding{Vector: v, Quality: q}, nil
}

// Distance is the Euclidean distance between two descriptors (the metric the net was
// trained with).
func Distance(a, b []float32) float64 {
	s := float32(0)
	for i := range a {
		d := a[i] - b[i]
		s += d * d
	}
	return math.Sqrt(float64(s))
}
