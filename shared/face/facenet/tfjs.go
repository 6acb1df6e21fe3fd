package facenet

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
)

// A TFJS weights manifest (tfjs-core io/types.ts WeightsManifestConfig): groups of
// weights whose bytes are the concatenation of the group's shard files, in order, with
// no header or padding. Quantised entries store uint8/uint16 codes q meaning q*scale+min.
type manifestGroup struct {
	Paths   []string        `json:"paths"`
	Weights []manifestEntry `json:"weights"`
}

type manifestEntry struct {
	Name         string `json:"name"`
	Shape        []int  `json:"shape"`
	Dtype        string `json:"dtype"`
	Quantization *struct {
		Dtype string  `json:"dtype"`
		Scale float64 `json:"scale"`
		Min   float64 `json:"min"`
	} `json:"quantization"`
}

// Tensor is a dequantised float32 weight with its TFJS shape (conv filters are HWIO).
type Tensor struct {
	Shape []int
	Data  []float32
}

// LoadTFJS reads manifest (a *-weights_manifest.json in fsys) and its shards and returns
// the weights by name, dequantised to float32.
func LoadTFJS(fsys fs.FS, manifest string) (map[string]Tensor, error) {
	raw, err := fs.ReadFile(fsys, manifest)
	if err != nil {
		return nil, err
	}
	var groups []manifestGroup
	if err := json.Unmarshal(raw, &groups); err != nil {
		return nil, fmt.Errorf("facenet: %s: %w", manifest, err)
	}
	out := map[string]Tensor{}
	dir := path.Dir(manifest)
	for _, g := range groups {
		var buf []byte
		for _, p := range g.Paths {
			b, err := fs.ReadFile(fsys, path.Join(dir, p))
			if err != nil {
				return nil, err
			}
			buf = append(buf, b...)
		}
		off := 0
		for _, w := range g.Weights {
			n := 1
			for _, d := range w.Shape {
				n *= d
			}
			t := Tensor{Shape: w.Shape, Data: make([]float32, n)}
			size, err := elemSize(w)
			if err != nil {
				return nil, err
			}
			if off+n*size > len(buf) {
				return nil, fmt.Errorf("facenet: %s: weight %s runs past the shards (%w)", manifest, w.Name, io.ErrUnexpectedEOF)
			}
			b := buf[off : off+n*size]
			off += n * size
			switch {
			case w.Quantization == nil && w.Dtype == "float32":
				for i := range t.Data {
					t.Data[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
				}
			case w.Quantization != nil && w.Quantization.Dtype == "uint8":
				s, m := w.Quantization.Scale, w.Quantization.Min
				for i := range t.Data {
					t.Data[i] = float32(float64(b[i])*s + m)
				}
			case w.Quantization != nil && w.Quantization.Dtype == "uint16":
				s, m := w.Quantization.Scale, w.Quantization.Min
				for i := range t.Data {
					t.Data[i] = float32(float64(binary.LittleEndian.Uint16(b[2*i:]))*s + m)
				}
			default:
				return nil, fmt.Errorf("facenet: %s: weight %s: unsupported dtype %s", manifest, w.Name, w.Dtype)
			}
			out[w.Name] = t
		}
		if off != len(buf) {
			return nil, fmt.Errorf("facenet: %s: %d bytes of shards left over", manifest, len(buf)-off)
		}
	}
	return out, nil
}

func elemSize(w manifestEntry) (int, error) {
	if q := w.Quantization; q != nil {
		switch q.Dtype {
		case "uint8":
			return 1, nil
		case "uint16":
			return 2, nil
		}
		return 0, fmt.Errorf("facenet: weight %s: unsupported quantisation %s", w.Name, q.Dtype)
	}
	if w.Dtype == "float32" || w.Dtype == "int32" {
		return 4, nil
	}
	return 0, fmt.Errorf("facenet: weight %s: unsupported dtype %s", w.Name, w.Dtype)
}
