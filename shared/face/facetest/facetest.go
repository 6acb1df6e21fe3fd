// Package facetest makes test photos from the demo photos that ship in the face-api npm
// package (MIT): every clearly detected face cut out as a 358x441 ID photo, and variants
// of it (shifted, scaled, brighter or darker, re-encoded) as a second photo of the same
// person. Nothing is committed: the photos come from the install step's cache.
package facetest

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"

	"github.com/sscard/platform/shared/face/detect"
	"github.com/sscard/platform/shared/face/facenet"
)

// Face is one face of a demo photo, ready to render as an ID photo.
type Face struct {
	Name   string
	src    *detect.RGB
	region [4]float64 // x, y, w, h in the source
}

// Variant is how a second photo differs from the enrolment photo.
type Variant struct {
	Name    string
	DX, DY  float64 // shift, fractions of the photo
	Zoom    float64 // >1 the face is larger
	Gain    float64 // brightness factor
	Quality int     // JPEG quality
}

// Enrolment is the plain ID photo.
var Enrolment = Variant{Name: "enrolment", Zoom: 1, Gain: 1, Quality: 92}

// Variants are the augmentations of the genuine-pair tests.
var Variants = []Variant{
	{"shift", 0.06, -0.05, 1, 1, 92}, {"shift2", -0.05, 0.04, 1, 1, 92},
	{"scale-down", 0, 0, 0.8, 1, 92}, {"scale-up", 0, 0, 1.2, 1, 92},
	{"darker", 0, 0, 1, 0.7, 92}, {"brighter", 0, 0, 1, 1.25, 92},
	{"jpeg-q35", 0, 0, 1, 1, 35},
}

// DemoFaces finds the faces of the face-api demo photos with pigo (confidence ≥ 20).
func DemoFaces(f *detect.Finder) ([]Face, error) {
	dir := facenet.PackageDir()
	if dir == "" {
		return nil, fmt.Errorf("facetest: face-api package not installed (infra/scripts/services.sh face-models)")
	}
	var out []Face
	for i := 1; i <= 6; i++ {
		name := fmt.Sprintf("sample%d.jpg", i)
		img, err := Decode(filepath.Join(dir, "demo", name))
		if err != nil {
			return nil, err
		}
		rgb := detect.FromImage(img)
		for k, d := range f.Find(rgb, detect.Options{MinScore: 20, MinFraction: 0.08}) {
			w := d.Size * 1.6
			out = append(out, Face{Name: fmt.Sprintf("%s#%d", name, k), src: rgb,
				region: [4]float64{d.Center.X - w/2, d.Center.Y - w*1.232*0.45, w, w * 1.232}})
		}
	}
	return out, nil
}

// Decode reads an image file.
func Decode(file string) (image.Image, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	img, _, err := image.Decode(bytes.NewReader(b))
	return img, err
}

// Photo renders the face as a 358x441 JPEG ID photo, varied by v.
func (f Face) Photo(v Variant) []byte {
	r := f.region
	cx, cy := r[0]+r[2]/2+v.DX*r[2], r[1]+r[3]/2+v.DY*r[3]
	w, h := r[2]/v.Zoom, r[3]/v.Zoom
	return JPEG(resampleRGB(f.src, [4]float64{cx - w/2, cy - h/2, w, h}, 358, 441, v.Gain), v.Quality)
}

// Zoomed renders the face with the region scaled by k around it (k > 1: the face smaller).
func (f Face) Zoomed(k float64) []byte {
	r := f.region
	cx, cy := r[0]+r[2]/2, r[1]+r[3]/2
	return JPEG(resampleRGB(f.src, [4]float64{cx - r[2]*k/2, cy - r[3]*k/2, r[2] * k, r[3] * k}, 358, 441, 1), 92)
}

// JPEG encodes img.
func JPEG(img image.Image, q int) []byte {
	var buf bytes.Buffer
	_ = jpeg.Encode(&buf, img, &jpeg.Options{Quality: q})
	return buf.Bytes()
}

// resampleRGB draws src's region r (x, y, w, h; outside src is black) onto a w×h image,
// bilinearly, times gain.
func resampleRGB(src *detect.RGB, r [4]float64, w, h int, gain float64) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, w, h))
	px := func(v float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(v*gain)))) }
	for j := 0; j < h; j++ {
		for i := 0; i < w; i++ {
			x := r[0] + (float64(i)+0.5)*r[2]/float64(w) - 0.5
			y := r[1] + (float64(j)+0.5)*r[3]/float64(h) - 0.5
			x0, y0 := int(math.Floor(x)), int(math.Floor(y))
			fx, fy := x-float64(x0), y-float64(y0)
			var c [3]float64
			for k, wt := range [4]float64{(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy} {
				xx, yy := x0+k%2, y0+k/2
				if xx < 0 || yy < 0 || xx >= src.W || yy >= src.H {
					continue
				}
				p := src.Pix[(yy*src.W+xx)*3:]
				c[0] += wt * float64(p[0])
				c[1] += wt * float64(p[1])
				c[2] += wt * float64(p[2])
			}
			o := out.Pix[j*out.Stride+i*4:]
			o[0], o[1], o[2], o[3] = px(c[0]), px(c[1]), px(c[2]), 255
		}
	}
	return out
}
