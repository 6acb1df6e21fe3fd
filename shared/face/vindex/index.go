// Package vindex is the in-memory 1:N index of face descriptors: an inverted file (IVF)
// of float32 vectors — k-means centroids partition the library into lists, a search
// ranks the centroids and scans the nprobe nearest lists exactly. It is goroutine-safe
// (readers share a lock; enrolment and removal take it briefly), and serialises to a
// snapshot that warm instances load from object storage.
//
// Why IVF and not HNSW or brute force: brute force over 1M×128 float32 is 512 MB per
// query (≈50 ms at this machine's memory bandwidth); HNSW in Go (coder/hnsw) builds at a
// few hundred inserts a second and its tagged release has broken recall. IVF builds in
// seconds, adds in microseconds, and its recall is a single knob (nprobe).
package vindex

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"sync"
)

// Hit is one search result.
type Hit struct {
	Key      string
	Distance float64 // Euclidean
}

type list struct {
	keys []string
	vecs []float32 // len(keys)*dim
}

type loc struct{ list, pos int }

// Index is an IVF index over vectors of one dimension.
type Index struct {
	dim       int
	nprobe    int
	mu        sync.RWMutex
	centroids []float32
	lists     []list
	where     map[string]loc
}

// New returns an empty index with the given centroids (nlist*dim floats).
func New(dim int, centroids []float32, nprobe int) (*Index, error) {
	if dim <= 0 || len(centroids) == 0 || len(centroids)%dim != 0 {
		return nil, fmt.Errorf("vindex: %d centroid floats for dimension %d", len(centroids), dim)
	}
	n := len(centroids) / dim
	return &Index{dim: dim, nprobe: max(1, min(nprobe, n)), centroids: centroids, lists: make([]list, n), where: map[string]loc{}}, nil
}

// Dim is the vector dimension.
func (x *Index) Dim() int { return x.dim }

// Len is the number of vectors.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.where)
}

// SetProbes changes how many lists a search scans.
func (x *Index) SetProbes(n int) {
	x.mu.Lock()
	x.nprobe = max(1, min(n, len(x.lists)))
	x.mu.Unlock()
}

// Add inserts or replaces the vector of key.
func (x *Index) Add(key string, v []float32) error {
	if len(v) != x.dim {
		return fmt.Errorf("vindex: vector of %d, want %d", len(v), x.dim)
	}
	c := x.nearestCentroid(v)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(key)
	l := &x.lists[c]
	x.where[key] = loc{c, len(l.keys)}
	l.keys = append(l.keys, key)
	l.vecs = append(l.vecs, v...)
	return nil
}

// Remove deletes key; it reports whether it was there.
func (x *Index) Remove(key string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.removeLocked(key)
}

func (x *Index) removeLocked(key string) bool {
	at, ok := x.where[key]
	if !ok {
		return false
	}
	l := &x.lists[at.list]
	last := len(l.keys) - 1
	if at.pos != last { // move the last entry into the hole
		l.keys[at.pos] = l.keys[last]
		copy(l.vecs[at.pos*x.dim:(at.pos+1)*x.dim], l.vecs[last*x.dim:])
		x.where[l.keys[at.pos]] = loc{at.list, at.pos}
	}
	l.keys = l.keys[:last]
	l.vecs = l.vecs[:last*x.dim]
	delete(x.where, key)
	return true
}

// Vector returns a copy of key's vector.
func (x *Index) Vector(key string) ([]float32, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	at, ok := x.where[key]
	if !ok {
		return nil, false
	}
	return append([]float32(nil), x.lists[at.list].vecs[at.pos*x.dim:(at.pos+1)*x.dim]...), true
}

func (x *Index) nearestCentroid(v []float32) int {
	best, bd := 0, float32(math.MaxFloat32)
	for c := 0; c < len(x.centroids)/x.dim; c++ {
		if d := sqDist(v, x.centroids[c*x.dim:(c+1)*x.dim]); d < bd {
			best, bd = c, d
		}
	}
	return best
}

// Search returns the k nearest vectors among the nprobe lists nearest to q, nearest first.
func (x *Index) Search(q []float32, k int) []Hit {
	if len(q) != x.dim || k <= 0 {
		return nil
	}
	nl := len(x.centroids) / x.dim
	cd := make([]float32, nl)
	for c := range cd {
		cd[c] = sqDist(q, x.centroids[c*x.dim:(c+1)*x.dim])
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	probes := smallest(cd, x.nprobe)
	top := make(topK, 0, k+1)
	for _, c := range probes {
		l := &x.lists[c]
		for i := range l.keys {
			d := sqDist(q, l.vecs[i*x.dim:(i+1)*x.dim])
			top.offer(l.keys[i], d, k)
		}
	}
	return top.hits()
}

// Exact is brute-force search over everything, the yardstick for recall.
func (x *Index) Exact(q []float32, k int) []Hit {
	x.mu.RLock()
	defer x.mu.RUnlock()
	top := make(topK, 0, k+1)
	for li := range x.lists {
		l := &x.lists[li]
		for i := range l.keys {
			top.offer(l.keys[i], sqDist(q, l.vecs[i*x.dim:(i+1)*x.dim]), k)
		}
	}
	return top.hits()
}

// smallest returns the indexes of the n smallest values.
func smallest(v []float32, n int) []int {
	idx := make([]int, len(v))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return v[idx[a]] < v[idx[b]] })
	return idx[:n]
}

type scored struct {
	key string
	d   float32
}

// topK is a max-heap of the k best so far.
type topK []scored

func (h topK) Len() int           { return len(h) }
func (h topK) Less(i, j int) bool { return h[i].d > h[j].d }
func (h topK) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *topK) Push(v any)        { *h = append(*h, v.(scored)) }
func (h *topK) Pop() any {
	old := *h
	v := old[len(old)-1]
	*h = old[:len(old)-1]
	return v
}

func (h *topK) offer(key string, d float32, k int) {
	if len(*h) < k {
		heap.Push(h, scored{key, d})
		return
	}
	if d < (*h)[0].d {
		(*h)[0] = scored{key, d}
		heap.Fix(h, 0)
	}
}

func (h topK) hits() []Hit {
	out := make([]Hit, len(h))
	for i, s := range h {
		out[i] = Hit{s.key, math.Sqrt(float64(s.d))}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Distance < out[b].Distance })
	return out
}

func sqDist(a, b []float32) float32 {
	b = b[:len(a)]
	if useAsm && len(a) >= 16 && len(a)%16 == 0 {
		return sqDist16(&a[0], &b[0], len(a))
	}
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		d0, d1, d2, d3 := a[i]-b[i], a[i+1]-b[i+1], a[i+2]-b[i+2], a[i+3]-b[i+3]
		s0 += d0 * d0
		s1 += d1 * d1
		s2 += d2 * d2
		s3 += d3 * d3
	}
	for ; i < len(a); i++ {
		d := a[i] - b[i]
		s0 += d * d
	}
	return s0 + s1 + s2 + s3
}

// Train runs k-means (Lloyd, k-means++-style random seeding from the sample) on sample
// (n*dim floats) and returns nlist centroids.
func Train(dim int, sample []float32, nlist, iters int, seed uint64) []float32 {
	n := len(sample) / dim
	nlist = min(nlist, n)
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	cent := make([]float32, nlist*dim)
	for c, i := range r.Perm(n)[:nlist] {
		copy(cent[c*dim:], sample[i*dim:(i+1)*dim])
	}
	assign := make([]int, n)
	for it := 0; it < iters; it++ {
		parallel(n, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				v := sample[i*dim : (i+1)*dim]
				best, bd := 0, float32(math.MaxFloat32)
				for c := 0; c < nlist; c++ {
					if d := sqDist(v, cent[c*dim:(c+1)*dim]); d < bd {
						best, bd = c, d
					}
				}
				assign[i] = best
			}
		})
		sum := make([]float64, nlist*dim)
		cnt := make([]int, nlist)
		for i, c := range assign {
			cnt[c]++
			for j := 0; j < dim; j++ {
				sum[c*dim+j] += float64(sample[i*dim+j])
			}
		}
		for c := 0; c < nlist; c++ {
			if cnt[c] == 0 { // empty cluster: reseed from a random point
				copy(cent[c*dim:(c+1)*dim], sample[r.IntN(n)*dim:])
				continue
			}
			for j := 0; j < dim; j++ {
				cent[c*dim+j] = float32(sum[c*dim+j] / float64(cnt[c]))
			}
		}
	}
	return cent
}

// parallel splits [0,n) over two goroutines per core-ish; the machine this runs on is small.
func parallel(n int, fn func(lo, hi int)) {
	const parts = 4
	var wg sync.WaitGroup
	for p := 0; p < parts; p++ {
		lo, hi := p*n/parts, (p+1)*n/parts
		wg.Add(1)
		go func() { defer wg.Done(); fn(lo, hi) }()
	}
	wg.Wait()
}

// AddBatch adds many vectors (keys[i] ↔ vecs[i*dim:]) with the centroid search spread
// over goroutines; used to build an index from the database or a benchmark.
func (x *Index) AddBatch(keys []string, vecs []float32) error {
	if len(vecs) != len(keys)*x.dim {
		return fmt.Errorf("vindex: %d floats for %d keys", len(vecs), len(keys))
	}
	cs := make([]int, len(keys))
	parallel(len(keys), func(lo, hi int) {
		for i := lo; i < hi; i++ {
			cs[i] = x.nearestCentroid(vecs[i*x.dim : (i+1)*x.dim])
		}
	})
	x.mu.Lock()
	defer x.mu.Unlock()
	for i, key := range keys {
		x.removeLocked(key)
		l := &x.lists[cs[i]]
		x.where[key] = loc{cs[i], len(l.keys)}
		l.keys = append(l.keys, key)
		l.vecs = append(l.vecs, vecs[i*x.dim:(i+1)*x.dim]...)
	}
	return nil
}
