// Package facenet runs the dlib-derived face recognition ResNet whose weights ship in the
// npm package @vladmandic/face-api (model/face_recognition_model.bin and its TFJS weights
// manifest, MIT): a 150x150 RGB face chip in, a 128-d descriptor out, in Go. The layer
// graph follows face-api's src/faceRecognitionNet (itself dlib's
// dnn_face_recognition_ex "anet_type"); convolutions run as im2col + a packed SGEMM
// (gemm.go), with an AVX2/FMA kernel in Go assembly where the CPU has it.
package facenet

import (
	"fmt"
	"io/fs"
	"math"
)

// ChipSize is the side of the square RGB chip the net takes.
const ChipSize = 150

// Dim is the length of a descriptor.
const Dim = 128

// meanRGB is subtracted from each pixel before dividing by 255 (face-api's constants).
var meanRGB = [3]float32{122.782, 117.001, 104.298}

// Manifest is the weights manifest file name inside the face-api model directory.
const Manifest = "face_recognition_model-weights_manifest.json"

// Net is the loaded network. It is immutable after Load and safe for concurrent use.
type Net struct {
	down32     conv
	res32      [3]residual
	down64     residual
	res64      [3]residual
	down128    residual
	res128     [2]residual
	down256    residual
	res256     [2]residual
	down256out residual
	fc         []float32 // [256][128]
}

// conv is one convolution with its folded affine ("scale") layer: out = conv(x)*mul + add.
type conv struct {
	kh, kw, cin, cout int
	stride            int
	same              bool
	relu              bool
	w                 packed
	mul, add          []float32
}

type residual struct{ c1, c2 conv }

// Load reads the model from the face-api model directory in fsys.
func Load(fsys fs.FS) (*Net, error) {
	w, err := LoadTFJS(fsys, Manifest)
	if err != nil {
		return nil, err
	}
	return build(w)
}

func build(w map[string]Tensor) (*Net, error) {
	var firstErr error
	mk := func(prefix string, stride int, same, relu bool) conv {
		f, ok := w[prefix+"/conv/filters"]
		b, ok2 := w[prefix+"/conv/bias"]
		sw, ok3 := w[prefix+"/scale/weights"]
		sb, ok4 := w[prefix+"/scale/biases"]
		if !ok || !ok2 || !ok3 || !ok4 || len(f.Shape) != 4 {
			if firstErr == nil {
				firstErr = fmt.Errorf("facenet: weights of %s missing or malformed", prefix)
			}
			return conv{}
		}
		c := conv{kh: f.Shape[0], kw: f.Shape[1], cin: f.Shape[2], cout: f.Shape[3], stride: stride, same: same, relu: relu}
		if len(b.Data) != c.cout || len(sw.Data) != c.cout || len(sb.Data) != c.cout {
			if firstErr == nil {
				firstErr = fmt.Errorf("facenet: %s: bias/scale length differs from %d output channels", prefix, c.cout)
			}
			return conv{}
		}
		// HWIO flattens to the [kh*kw*cin][cout] matrix im2col multiplies by.
		c.w = pack(f.Data, c.kh*c.kw*c.cin, c.cout)
		c.mul = make([]float32, c.cout)
		c.add = make([]float32, c.cout)
		for i := range c.mul {
			c.mul[i] = sw.Data[i]
			c.add[i] = b.Data[i]*sw.Data[i] + sb.Data[i]
		}
		return c
	}
	res := func(p string) residual {
		return residual{mk(p+"/conv1", 1, true, true), mk(p+"/conv2", 1, true, false)}
	}
	down := func(p string) residual {
		return residual{mk(p+"/conv1", 2, false, true), mk(p+"/conv2", 1, true, false)}
	}
	n := &Net{down32: mk("conv32_down", 2, false, true)}
	for i := range n.res32 {
		n.res32[i] = res(fmt.Sprintf("conv32_%d", i+1))
	}
	n.down64 = down("conv64_down")
	for i := range n.res64 {
		n.res64[i] = res(fmt.Sprintf("conv64_%d", i+1))
	}
	n.down128 = down("conv128_down")
	for i := range n.res128 {
		n.res128[i] = res(fmt.Sprintf("conv128_%d", i+1))
	}
	n.down256 = down("conv256_down")
	for i := range n.res256 {
		n.res256[i] = res(fmt.Sprintf("conv256_%d", i+1))
	}
	n.down256out = down("conv256_down_out")
	fc, ok := w["fc"]
	if !ok || len(fc.Data) != 256*Dim {
		return nil, fmt.Errorf("facenet: fc weights missing or not [256,128]")
	}
	n.fc = fc.Data
	if firstErr != nil {
		return nil, firstErr
	}
	return n, nil
}

// fmap is an HWC feature map.
type fmap struct {
	h, w, c int
	d       []float32
}

// Descriptor computes the 128-d descriptor of a 150x150 chip given as packed RGB bytes
// (row-major, 3 bytes a pixel).
func (n *Net) Descriptor(rgb []byte) ([]float32, error) {
	if len(rgb) != ChipSize*ChipSize*3 {
		return nil, fmt.Errorf("facenet: chip is %d bytes, want %d", len(rgb), ChipSize*ChipSize*3)
	}
	x := fmap{h: ChipSize, w: ChipSize, c: 3, d: make([]float32, len(rgb))}
	for i, v := range rgb {
		x.d[i] = (float32(v) - meanRGB[i%3]) / 255
	}
	var s scratch
	x = n.down32.apply(x, &s)
	x = maxPool3s2(x)
	for i := range n.res32 {
		x = n.res32[i].apply(x, &s)
	}
	x = n.down64.applyDown(x, &s)
	for i := range n.res64 {
		x = n.res64[i].apply(x, &s)
	}
	x = n.down128.applyDown(x, &s)
	for i := range n.res128 {
		x = n.res128[i].apply(x, &s)
	}
	x = n.down256.applyDown(x, &s)
	for i := range n.res256 {
		x = n.res256[i].apply(x, &s)
	}
	x = n.down256out.applyDown(x, &s)
	// Mean over H and W, then the fully connected layer (no bias, no normalisation).
	avg := make([]float32, x.c)
	for p := 0; p < x.h*x.w; p++ {
		for ch := 0; ch < x.c; ch++ {
			avg[ch] += x.d[p*x.c+ch]
		}
	}
	inv := 1 / float32(x.h*x.w)
	out := make([]float32, Dim)
	for ch, a := range avg {
		a *= inv
		row := n.fc[ch*Dim : (ch+1)*Dim]
		for j := range out {
			out[j] += a * row[j]
		}
	}
	return out, nil
}

// scratch holds the im2col buffer reused across layers of one forward pass.
type scratch struct{ col []float32 }

func (s *scratch) get(n int) []float32 {
	if cap(s.col) < n {
		s.col = make([]float32, n)
	}
	return s.col[:n]
}

func (c *conv) apply(x fmap, s *scratch) fmap {
	var oh, ow, pt, pl int
	if c.same { // TF SAME at stride 1: output = input, extra padding bottom/right
		oh, ow = x.h, x.w
		pt, pl = (c.kh-1)/2, (c.kw-1)/2
	} else {
		oh = (x.h-c.kh)/c.stride + 1
		ow = (x.w-c.kw)/c.stride + 1
	}
	k := c.kh * c.kw * c.cin
	m := oh * ow
	col := s.get(m * k)
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			row := col[(oy*ow+ox)*k : (oy*ow+ox+1)*k]
			for ky := 0; ky < c.kh; ky++ {
				iy := oy*c.stride + ky - pt
				for kx := 0; kx < c.kw; kx++ {
					ix := ox*c.stride + kx - pl
					dst := row[(ky*c.kw+kx)*c.cin : (ky*c.kw+kx+1)*c.cin]
					if iy < 0 || iy >= x.h || ix < 0 || ix >= x.w {
						clear(dst)
						continue
					}
					copy(dst, x.d[(iy*x.w+ix)*x.c:(iy*x.w+ix+1)*x.c])
				}
			}
		}
	}
	out := fmap{h: oh, w: ow, c: c.cout, d: make([]float32, m*c.cout)}
	gemm(m, k, col, &c.w, out.d)
	for p := 0; p < m; p++ {
		o := out.d[p*c.cout : (p+1)*c.cout]
		for ch := range o {
			v := o[ch]*c.mul[ch] + c.add[ch]
			if c.relu && v < 0 {
				v = 0
			}
			o[ch] = v
		}
	}
	return out
}

// apply is face-api's residual: relu(conv2(relu(conv1(x))) + x).
func (r *residual) apply(x fmap, s *scratch) fmap {
	out := r.c2.apply(r.c1.apply(x, s), s)
	for i := range out.d {
		out.d[i] = max(out.d[i]+x.d[i], 0)
	}
	return out
}

// applyDown is face-api's residualDown: the conv path at stride 2 (valid) plus a shortcut
// of 2x2 average pooling whose missing channels are zeros; where the conv path comes out
// one smaller than the pooled map, it is padded with a zero row and column at the
// bottom/right.
func (r *residual) applyDown(x fmap, s *scratch) fmap {
	y := r.c2.apply(r.c1.apply(x, s), s)
	ph, pw := x.h/2, x.w/2
	out := fmap{h: ph, w: pw, c: y.c, d: make([]float32, ph*pw*y.c)}
	for oy := 0; oy < ph; oy++ {
		for ox := 0; ox < pw; ox++ {
			o := out.d[(oy*pw+ox)*out.c : (oy*pw+ox+1)*out.c]
			if oy < y.h && ox < y.w {
				copy(o, y.d[(oy*y.w+ox)*y.c:(oy*y.w+ox+1)*y.c])
			}
			p00 := x.d[((2*oy)*x.w+2*ox)*x.c:]
			p01 := x.d[((2*oy)*x.w+2*ox+1)*x.c:]
			p10 := x.d[((2*oy+1)*x.w+2*ox)*x.c:]
			p11 := x.d[((2*oy+1)*x.w+2*ox+1)*x.c:]
			for ch := 0; ch < x.c; ch++ {
				o[ch] += (p00[ch] + p01[ch] + p10[ch] + p11[ch]) * 0.25
			}
			for ch := range o {
				o[ch] = max(o[ch], 0)
			}
		}
	}
	return out
}

func maxPool3s2(x fmap) fmap {
	oh, ow := (x.h-3)/2+1, (x.w-3)/2+1
	out := fmap{h: oh, w: ow, c: x.c, d: make([]float32, oh*ow*x.c)}
	for oy := 0; oy < oh; oy++ {
		for ox := 0; ox < ow; ox++ {
			o := out.d[(oy*ow+ox)*x.c : (oy*ow+ox+1)*x.c]
			for ch := range o {
				o[ch] = float32(math.Inf(-1))
			}
			for ky := 0; ky < 3; ky++ {
				for kx := 0; kx < 3; kx++ {
					in := x.d[((2*oy+ky)*x.w+2*ox+kx)*x.c:]
					for ch := range o {
						o[ch] = max(o[ch], in[ch])
					}
				}
			}
		}
	}
	return out
}
