package vindex

import (
	"math"
	"math/rand/v2"
)

// Synthetic makes n face-descriptor-like vectors for tests and benchmarks: people spread
// around a few hundred population centres so that typical distances between different
// people are 0.6–0.9, as with the dlib net; and Probe makes a genuine probe of a person
// (their vector moved by noise of about the given norm).
type Synthetic struct {
	Dim  int
	rng  *rand.Rand
	cent []float32
}

// NewSynthetic seeds the generator.
func NewSynthetic(dim int, seed uint64) *Synthetic {
	s := &Synthetic{Dim: dim, rng: rand.New(rand.NewPCG(seed, 42))}
	const centres = 256
	s.cent = make([]float32, centres*dim)
	for i := range s.cent {
		s.cent[i] = float32(s.rng.NormFloat64() * 0.03)
	}
	return s
}

// People returns n vectors, flat.
func (s *Synthetic) People(n int) []float32 {
	out := make([]float32, n*s.Dim)
	nc := len(s.cent) / s.Dim
	for i := 0; i < n; i++ {
		c := s.rng.IntN(nc)
		for j := 0; j < s.Dim; j++ {
			out[i*s.Dim+j] = s.cent[c*s.Dim+j] + float32(s.rng.NormFloat64()*0.047)
		}
	}
	return out
}

// Probe returns v plus Gaussian noise of expected norm about noise.
func (s *Synthetic) Probe(v []float32, noise float64) []float32 {
	out := make([]float32, len(v))
	sd := noise / math.Sqrt(float64(len(v)))
	for j := range v {
		out[j] = v[j] + float32(s.rng.NormFloat64()*sd)
	}
	return out
}
