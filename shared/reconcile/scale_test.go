package reconcile

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// bigDay is a plain platform and channel file pair with n rows, long keys every 7th row
// (stored outside the entry), and one of each class per 1000 rows.
func bigDay(n int) (platform, channel string, want map[Class]int64) {
	var p, c strings.Builder
	want = map[Class]int64{}
	key := func(i int) string {
		if i%7 == 0 {
			return fmt.Sprintf("LONGKEY-%040d", i)
		}
		return fmt.Sprintf("K%d", i)
	}
	for i := 0; i < n; i++ {
		fmt.Fprintf(&p, "%s,%d,SUCCESS,2026-12-03 10:00:00,m%d\n", key(i), 100+i, i%3)
		switch i % 1000 {
		case 1:
			want[ClassShort]++
			continue
		case 2:
			fmt.Fprintf(&c, "%s,%d,SUCCESS,2026-12-03 10:00:01,m%d\n", key(i), 101+i, i%3)
			want[ClassAmount]++
			continue
		case 3:
			fmt.Fprintf(&c, "%s,%d,CLOSED,2026-12-03 10:00:01,m%d\n", key(i), 100+i, i%3)
			want[ClassStatus]++
			continue
		case 4:
			fmt.Fprintf(&c, "%s,%d,SUCCESS,2026-12-03 10:00:01,m%d\n", key(i), 100+i, i%3)
			want[ClassDuplicate]++
		case 5:
			fmt.Fprintf(&c, "X%d,5,SUCCESS,2026-12-03 10:00:01,m0\n", i)
			want[ClassLong]++
		}
		fmt.Fprintf(&c, "%s,%d,SUCCESS,2026-12-03 10:00:01,m%d\n", key(i), 100+i, i%3)
	}
	want[ClassMatched] = int64(n) - want[ClassShort] - want[ClassAmount] - want[ClassStatus]
	return p.String(), c.String(), want
}

// Many chunks, an unsized table that grows, long keys: the counts are exact.
func TestJoin_ManyChunksGrowthAndLongKeys(t *testing.T) {
	platform, channel, want := bigDay(200_000) // ~9 MB: more than one PlainChunk
	if len(channel) < PlainChunk {
		t.Fatalf("the sample should span chunks: %d bytes", len(channel))
	}
	res := runPlain(t, Options{}, platform, "", channel)
	got := res.Counts()
	for c, n := range want {
		if got[c] != n {
			t.Errorf("%s: want %d, got %d", c, n, got[c])
		}
	}
}

func TestFeedPlain_LineNumbersAcrossChunks(t *testing.T) {
	_, channel, _ := bigDay(200_000)
	lines := strings.Count(channel, "\n")
	j := NewJoin(Options{})
	j.Begin(SideChannel)
	rep, err := feedPlain(j, SideChannel, strings.NewReader(channel+"bad line\n"), 2)
	j.End()
	if err != nil || len(rep.Malformed) != 1 || rep.Malformed[0].Line != int64(lines+1) || rep.Rows != int64(lines) {
		t.Fatalf("want the bad line at %d and %d rows: %+v %v", lines+1, lines, rep.Malformed, err)
	}
}

// The spilled join (parts on disk, one in memory at a time) gives what the in-memory one
// gives.
func TestJoinSpilled_EqualsInMemory(t *testing.T) {
	platform, channel, _ := bigDay(30_000)
	mem := runPlain(t, Options{ThreeWay: true}, platform, "K10,110,SUCCESS,2026-12-03 10:00:00\n", channel)

	set, err := newSpillSet(t.TempDir(), 5)
	if err != nil {
		t.Fatal(err)
	}
	defer set.close()
	for _, in := range []struct {
		side Side
		text string
	}{{SidePlatform, platform}, {SideHIS, "K10,110,SUCCESS,2026-12-03 10:00:00\n"}, {SideChannel, channel}} {
		var ems []*spillEmitter
		if _, err := FeedPlain(strings.NewReader(in.text), 2, func() Emitter { e := set.emitter(in.side); ems = append(ems, e); return e }); err != nil {
			t.Fatal(err)
		}
		for _, e := range ems {
			e.Close()
		}
	}
	for _, p := range set.parts {
		if err := p.w.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	spilled, err := joinParts(context.Background(), Options{ThreeWay: true}, set)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(mem.Summary, spilled.Summary) || !reflect.DeepEqual(mem.Totals, spilled.Totals) ||
		!reflect.DeepEqual(mem.Discrepancies, spilled.Discrepancies) {
		t.Fatalf("spilled differs:\nmem %+v\nspilled %+v", mem.Summary, spilled.Summary)
	}
	if len(mem.Discrepancies) < 100 {
		t.Fatalf("too few discrepancies to compare: %d", len(mem.Discrepancies))
	}
}
