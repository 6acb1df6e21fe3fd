package vindex

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"
)

// build makes an index of n synthetic people, keys "p<i>".
func build(t testing.TB, n, nlist, nprobe int) (*Index, *Synthetic, []float32) {
	t.Helper()
	s := NewSynthetic(128, 1)
	people := s.People(n)
	train := people[:min(n, 10000)*128]
	x, err := New(128, Train(128, train, nlist, 6, 7), nprobe)
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("p%d", i)
	}
	if err := x.AddBatch(keys, people); err != nil {
		t.Fatal(err)
	}
	return x, s, people
}

// TestRecall100k: over 100k synthetic people, IVF search finds what exact search finds —
// recall@1 ≥ 0.99 and recall@10 reported — for genuine probes (a person's vector plus
// noise, as a second photo of them gives) and for probes of nobody enrolled.
func TestRecall100k(t *testing.T) {
	const n, queries = 100_000, 300
	start := time.Now()
	x, s, people := build(t, n, 256, 16)
	t.Logf("built 100k in %v", time.Since(start).Round(time.Millisecond))
	var r1, r10 float64
	var lat []time.Duration
	mates := 0
	for q := 0; q < queries; q++ {
		i := (q * 7919) % n
		probe := s.Probe(people[i*128:(i+1)*128], 0.3)
		t0 := time.Now()
		got := x.Search(probe, 10)
		lat = append(lat, time.Since(t0))
		want := x.Exact(probe, 10)
		if got[0].Key == want[0].Key {
			r1++
		}
		if want[0].Key == fmt.Sprintf("p%d", i) {
			mates++
		}
		r10 += overlap(got, want) / 10
	}
	r1 /= queries
	r10 /= queries
	slices.Sort(lat)
	t.Logf("genuine probes: recall@1 %.3f recall@10 %.3f vs exact; exact top-1 is the mate in %d/%d; p50 %v p99 %v",
		r1, r10, mates, queries, lat[len(lat)/2], lat[len(lat)*99/100])
	if r1 < 0.99 {
		t.Errorf("recall@1 %.3f < 0.99", r1)
	}
	if r10 < 0.5 {
		t.Errorf("recall@10 %.3f < 0.5", r10)
	}
}

func overlap(a, b []Hit) float64 {
	n := 0
	for _, h := range a {
		for _, w := range b {
			if h.Key == w.Key {
				n++
				break
			}
		}
	}
	return float64(n)
}

func TestAddRemoveReplaceSnapshot(t *testing.T) {
	x, s, people := build(t, 5000, 32, 4)
	v := people[42*128 : 43*128]
	if h := x.Search(v, 1); h[0].Key != "p42" || h[0].Distance != 0 {
		t.Fatalf("self search: %+v", h)
	}
	if !x.Remove("p42") || x.Remove("p42") {
		t.Fatal("remove should succeed once")
	}
	if h := x.Search(v, 1); h[0].Key == "p42" {
		t.Fatal("removed key still found")
	}
	// Replace p43's vector with p42's: p43 now answers for it, and only once.
	if err := x.Add("p43", v); err != nil {
		t.Fatal(err)
	}
	if h := x.Search(v, 2); h[0].Key != "p43" || h[1].Key == "p43" {
		t.Fatalf("replaced: %+v", h)
	}
	if x.Len() != 4999 {
		t.Fatalf("len %d", x.Len())
	}
	var buf bytes.Buffer
	if _, err := x.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	y, err := Read(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if y.Len() != x.Len() {
		t.Fatalf("snapshot has %d, index %d", y.Len(), x.Len())
	}
	for q := 0; q < 50; q++ {
		p := s.Probe(people[q*97*128:(q*97+1)*128], 0.3)
		a, b := x.Search(p, 5), y.Search(p, 5)
		if !slices.Equal(a, b) {
			t.Fatalf("snapshot answers differ: %+v vs %+v", a, b)
		}
	}
	if _, err := Read(bytes.NewReader([]byte("garbage"))); err == nil {
		t.Fatal("garbage read as a snapshot")
	}
}

// TestConcurrent: searches run while people are enrolled and removed (run with -race).
func TestConcurrent(t *testing.T) {
	x, s, people := build(t, 2000, 16, 4)
	// Probes are drawn before the goroutines start: the synthetic source's random stream
	// is not goroutine-safe (the index is what this test puts under concurrent use).
	probes := make([][]float32, 2000)
	for k := range probes {
		probes[k] = s.Probe(people[k*128:(k+1)*128], 0.2)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := (g*300 + i) % 2000
				switch i % 3 {
				case 0:
					x.Remove(fmt.Sprintf("p%d", k))
				case 1:
					x.Add(fmt.Sprintf("p%d", k), people[k*128:(k+1)*128])
				default:
					h := x.Search(probes[k], 3)
					if !sort.SliceIsSorted(h, func(a, b int) bool { return h[a].Distance < h[b].Distance }) || math.IsNaN(h[0].Distance) {
						t.Error("bad result")
					}
				}
			}
		}()
	}
	wg.Wait()
}

func TestSqDistKernels(t *testing.T) {
	s := NewSynthetic(128, 3)
	v := s.People(2)
	asm := sqDist(v[:128], v[128:])
	saved := useAsm
	useAsm = false
	gen := sqDist(v[:128], v[128:])
	useAsm = saved
	if math.Abs(float64(asm-gen)) > 1e-5*float64(gen) {
		t.Fatalf("asm %v, portable %v", asm, gen)
	}
}
