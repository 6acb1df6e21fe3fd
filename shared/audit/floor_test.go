package audit

import (
	"testing"
	"time"
)

func TestSealFloorRisesOnlyPastEntriesSealedAGraceAgo(t *testing.T) {
	t0 := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	f := sealFloor{grace: time.Second, sweep: 10 * time.Second}
	steps := []struct {
		name   string
		now    time.Duration
		sealed int64 // what the look sealed up to (0: nothing)
		want   int64 // where the look starts
	}{
		{"the first look is full", 0, 100, 0},
		{"seq 100 was sealed less than a grace ago", 500 * time.Millisecond, 150, 0},
		{"100 is a grace old", time.Second, 0, 100},
		{"150 is not yet", 1400 * time.Millisecond, 120, 100}, // 120 < 150: no new mark
		{"150 is", 1600 * time.Millisecond, 0, 150},
		{"nothing newer", 5 * time.Second, 0, 150},
		{"a full look every sweep", 10 * time.Second, 200, 0},
		{"the floor does not fall after it", 10500 * time.Millisecond, 0, 150},
		{"200 is a grace old", 11 * time.Second, 0, 200},
	}
	for _, s := range steps {
		if got := f.next(at(s.now)); got != s.want {
			t.Fatalf("%s: look starts above %d, want %d", s.name, got, s.want)
		}
		f.sealed(at(s.now), s.sealed)
	}
	if len(f.marks) != 0 {
		t.Fatalf("marks older than a grace are kept: %v", f.marks)
	}
}
