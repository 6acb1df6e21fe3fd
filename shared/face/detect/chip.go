package detect

import (
	"image/color"
	"math"
)

// ChipSize is the side of the chip (facenet.ChipSize).
const ChipSize = 150

// mouthDrop is the distance from the eye midpoint down to the mouth centre in eye
// distances; face-api's 68-point landmarks on its demo faces give 1.04–1.19
// (shared/face/facenet/testdata/descriptors.json), we take 1.12.
const mouthDrop = 1.12

// Chip cuts the face as face-api does before its recognition net (FaceLandmarks.align with
// useDlibAlignment: a square of side eyeToMouth/0.45 around the mean of the eye and mouth
// centres, 0.43 of the side above it), with the mouth estimated from the eyes — and
// rotated so the eyes are level, which face-api does not do and dlib does. Pixels outside
// the photo are black. The result is 150x150 packed RGB, resampled bilinearly.
func Chip(p *RGB, f Face) []byte {
	ex, ey := (f.LeftEye.X+f.RightEye.X)/2, (f.LeftEye.Y+f.RightEye.Y)/2
	dx, dy := f.RightEye.X-f.LeftEye.X, f.RightEye.Y-f.LeftEye.Y
	d := math.Hypot(dx, dy)
	if d == 0 {
		d, dx = f.Size*0.36, 1
	}
	ux, uy := dx/math.Hypot(dx, dy), dy/math.Hypot(dx, dy) // along the eyes
	vx, vy := -uy, ux                                      // down the face
	side := d * math.Sqrt(0.25+mouthDrop*mouthDrop) / 0.45
	down := d*mouthDrop/3 + (0.5-0.43)*side // box centre below the eye midpoint
	cx, cy := ex+down*vx, ey+down*vy
	step := side / ChipSize
	out := make([]byte, ChipSize*ChipSize*3)
	for j := 0; j < ChipSize; j++ {
		for i := 0; i < ChipSize; i++ {
			// face-api resizes without half-pixel centres: chip pixel i samples i*step.
			a, b := float64(i)*step-side/2, float64(j)*step-side/2
			x, y := cx+a*ux+b*vx, cy+a*uy+b*vy
			p.bilinear(x, y, out[(j*ChipSize+i)*3:])
		}
	}
	return out
}

func (p *RGB) bilinear(x, y float64, dst []byte) {
	x0, y0 := int(math.Floor(x)), int(math.Floor(y))
	fx, fy := x-float64(x0), y-float64(y0)
	var acc [3]float64
	for k, wgt := range [4]float64{(1 - fx) * (1 - fy), fx * (1 - fy), (1 - fx) * fy, fx * fy} {
		if wgt == 0 {
			continue
		}
		xx, yy := x0+k%2, y0+k/2
		if xx < 0 || yy < 0 || xx >= p.W || yy >= p.H {
			continue
		}
		i := (yy*p.W + xx) * 3
		acc[0] += wgt * float64(p.Pix[i])
		acc[1] += wgt * float64(p.Pix[i+1])
		acc[2] += wgt * float64(p.Pix[i+2])
	}
	for c := range acc {
		dst[c] = byte(math.Min(255, math.Round(acc[c])))
	}
}

func colorYCbCrToRGB(y, cb, cr uint8) (uint8, uint8, uint8) { return color.YCbCrToRGB(y, cb, cr) }
