// Package detect finds faces and their eyes in a photo with pigo (PICO cascades, pure Go)
// and cuts the 150x150 chip the recognition net (package facenet) expects.
//
// The cascades (facefinder, puploc) ship inside the github.com/esimov/pigo module (MIT).
// They are not copied into this repository: the install step copies them from the module
// cache next to the face-api model (infra/scripts/services.sh face-models) and Load reads
// them from there.
package detect

import (
	"fmt"
	"image"
	"io/fs"
	"math"
	"sort"

	pigo "github.com/esimov/pigo/core"
)

// Finder holds the unpacked cascades. It is safe for concurrent use.
type Finder struct {
	faces  *pigo.Pigo
	pupils *pigo.PuplocCascade
}

// Load unpacks the cascades "facefinder" and "puploc" from fsys.
func Load(fsys fs.FS) (*Finder, error) {
	ff, err := fs.ReadFile(fsys, "facefinder")
	if err != nil {
		return nil, err
	}
	pl, err := fs.ReadFile(fsys, "puploc")
	if err != nil {
		return nil, err
	}
	faces, err := pigo.NewPigo().Unpack(ff)
	if err != nil {
		return nil, fmt.Errorf("detect: facefinder: %w", err)
	}
	pupils, err := pigo.NewPuplocCascade().UnpackCascade(pl)
	if err != nil {
		return nil, fmt.Errorf("detect: puploc: %w", err)
	}
	return &Finder{faces: faces, pupils: pupils}, nil
}

// Point is a position in image pixels.
type Point struct{ X, Y float64 }

// Face is one face found in a photo, in the photo's own pixel coordinates.
type Face struct {
	Center   Point
	Size     float64 // side of the square the cascade matched
	Score    float32 // cascade confidence (pigo's Q)
	LeftEye  Point   // the eye with the smaller x in the image
	RightEye Point
	// Brightness is the mean luma (0..255) over the central half of the face square.
	Brightness float64
}

// EyeDistance is the distance between the pupils, the scale quality rules use.
func (f Face) EyeDistance() float64 {
	return math.Hypot(f.RightEye.X-f.LeftEye.X, f.RightEye.Y-f.LeftEye.Y)
}

// Options tune detection. Zero values take the defaults.
type Options struct {
	// MinScore drops cascade matches below it (default 8; pigo's examples use 5).
	MinScore float32
	// MaxSide: photos are scaled down to this longest side for the face search (default 640).
	MaxSide int
	// MinFraction is the smallest face searched for, as a fraction of the shorter side of
	// the scaled photo (default 0.15: a kiosk frame or ID photo shows one large face).
	MinFraction float64
}

func (o Options) withDefaults() Options {
	if o.MinScore == 0 {
		o.MinScore = 8
	}
	if o.MaxSide == 0 {
		o.MaxSide = 640
	}
	if o.MinFraction == 0 {
		o.MinFraction = 0.15
	}
	return o
}

// RGB is a decoded photo as packed 8-bit RGB.
type RGB struct {
	W, H int
	Pix  []byte
}

// FromImage converts any decoded image to packed RGB.
func FromImage(img image.Image) *RGB {
	b := img.Bounds()
	out := &RGB{W: b.Dx(), H: b.Dy(), Pix: make([]byte, b.Dx()*b.Dy()*3)}
	switch m := img.(type) {
	case *image.YCbCr:
		for y := 0; y < out.H; y++ {
			for x := 0; x < out.W; x++ {
				c := m.YCbCrAt(b.Min.X+x, b.Min.Y+y)
				r, g, bb := ycbcrToRGB(c.Y, c.Cb, c.Cr)
				i := (y*out.W + x) * 3
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = r, g, bb
			}
		}
	default:
		for y := 0; y < out.H; y++ {
			for x := 0; x < out.W; x++ {
				r, g, bb, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
				i := (y*out.W + x) * 3
				out.Pix[i], out.Pix[i+1], out.Pix[i+2] = byte(r>>8), byte(g>>8), byte(bb>>8)
			}
		}
	}
	return out
}

func ycbcrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) {
	// The standard library's conversion, without the interface call per pixel.
	return colorYCbCrToRGB(y, cb, cr)
}

// gray returns the luma plane of the photo scaled by 1/f (box filter), f ≥ 1.
func (p *RGB) gray(f int) (pix []uint8, w, h int) {
	w, h = p.W/f, p.H/f
	pix = make([]uint8, w*h)
	n := f * f
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			s := 0
			for dy := 0; dy < f; dy++ {
				row := ((y*f+dy)*p.W + x*f) * 3
				for dx := 0; dx < f; dx++ {
					i := row + dx*3
					s += 299*int(p.Pix[i]) + 587*int(p.Pix[i+1]) + 114*int(p.Pix[i+2])
				}
			}
			pix[y*w+x] = uint8(s / (1000 * n))
		}
	}
	return pix, w, h
}

// Find returns the faces in the photo, strongest first.
func (fd *Finder) Find(p *RGB, o Options) []Face {
	o = o.withDefaults()
	f := 1
	for max(p.W, p.H)/f > o.MaxSide {
		f++
	}
	small, w, h := p.gray(f)
	minSize := max(20, int(o.MinFraction*float64(min(w, h))))
	cp := pigo.CascadeParams{
		MinSize: minSize, MaxSize: min(w, h), ShiftFactor: 0.1, ScaleFactor: 1.1,
		ImageParams: pigo.ImageParams{Pixels: small, Rows: h, Cols: w, Dim: w},
	}
	dets := fd.faces.ClusterDetections(fd.faces.RunCascade(cp, 0), 0.2)
	sort.Slice(dets, func(i, j int) bool { return dets[i].Q > dets[j].Q })
	var full []uint8
	var out []Face
	var kept []pigo.Detection
	for _, d := range dets {
		if d.Q < o.MinScore || overlaps(d, kept) {
			continue
		}
		kept = append(kept, d)
		if full == nil {
			full, _, _ = p.gray(1)
		}
		sf := float64(f)
		face := Face{
			Center: Point{X: (float64(d.Col) + 0.5) * sf, Y: (float64(d.Row) + 0.5) * sf},
			Size:   float64(d.Scale) * sf,
			Score:  d.Q,
		}
		face.LeftEye, face.RightEye = fd.eyes(full, p.W, p.H, face)
		face.Brightness = meanLuma(full, p.W, p.H, face)
		out = append(out, face)
	}
	return out
}

const pupilRuns = 4

// eyes localises the pupils in the full-resolution luma plane, seeded from the face square
// as pigo's own tool does.
func (fd *Finder) eyes(g []uint8, w, h int, f Face) (Point, Point) {
	img := pigo.ImageParams{Pixels: g, Rows: h, Cols: w, Dim: w}
	r, c, s := f.Center.Y, f.Center.X, f.Size
	seed := func(col float64) pigo.Puploc {
		return pigo.Puploc{Row: int(r - 0.075*s), Col: int(col), Scale: float32(0.25 * s), Perturbs: 63}
	}
	// The localiser perturbs its seed with math/rand (63 times, median): one run jitters by a
	// few pixels, which moves the chip. The mean of pupilRuns runs halves that jitter.
	var left, right Point
	for i := 0; i < pupilRuns; i++ {
		l := fd.pupils.RunDetector(seed(c-0.175*s), img, 0, false)
		rt := fd.pupils.RunDetector(seed(c+0.185*s), img, 0, false)
		left.X += float64(l.Col) / pupilRuns
		left.Y += float64(l.Row) / pupilRuns
		right.X += float64(rt.Col) / pupilRuns
		right.Y += float64(rt.Row) / pupilRuns
	}
	if left.X > right.X {
		left, right = right, left
	}
	return left, right
}

func meanLuma(g []uint8, w, h int, f Face) float64 {
	half := f.Size / 4
	x0, x1 := max(0, int(f.Center.X-half)), min(w, int(f.Center.X+half))
	y0, y1 := max(0, int(f.Center.Y-half)), min(h, int(f.Center.Y+half))
	if x1 <= x0 || y1 <= y0 {
		return 0
	}
	s := 0
	for y := y0; y < y1; y++ {
		for x := x0; x < x1; x++ {
			s += int(g[y*w+x])
		}
	}
	return float64(s) / float64((x1-x0)*(y1-y0))
}

// overlaps reports whether d's centre lies within a stronger detection kept already: the
// same face found at two scales, which pigo's clustering leaves apart when their IoU is low.
func overlaps(d pigo.Detection, kept []pigo.Detection) bool {
	for _, k := range kept {
		if math.Abs(float64(d.Row-k.Row)) < float64(k.Scale)/2 && math.Abs(float64(d.Col-k.Col)) < float64(k.Scale)/2 {
			return true
		}
	}
	return false
}
