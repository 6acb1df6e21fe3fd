// Package gmbench puts a national-algorithm benchmark next to its standard-library
// counterpart in the same run and reports the ratio, so figures from a loaded machine
// still compare like with like.
package gmbench

import "testing"

// Compare runs std and then sm as sub-benchmarks of b (named stdName and smName) and
// reports on sm the metric "x-<stdName>": sm's time per operation divided by std's.
// When a -bench filter skips std, std is measured with testing.Benchmark instead.
func Compare(b *testing.B, stdName string, std func(*testing.B), smName string, sm func(*testing.B)) {
	var stdNs float64
	b.Run(stdName, func(b *testing.B) {
		std(b)
		stdNs = NsPerOp(b)
	})
	b.Run(smName, func(b *testing.B) {
		sm(b)
		if stdNs == 0 {
			r := testing.Benchmark(std)
			stdNs = float64(r.T.Nanoseconds()) / float64(max(r.N, 1))
		}
		if stdNs > 0 {
			b.ReportMetric(NsPerOp(b)/stdNs, "x-"+stdName)
		}
	})
}

// NsPerOp is the time per operation of the run b has just finished.
func NsPerOp(b *testing.B) float64 {
	if b.N == 0 {
		return 0
	}
	return float64(b.Elapsed().Nanoseconds()) / float64(b.N)
}
