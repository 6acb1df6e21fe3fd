package reconcile

import (
	"io"
	"strings"
	"testing"
)

// feedPlain feeds a plain file to j as side through feeders it closes.
func feedPlain(j *Join, side Side, r io.Reader, workers int) (ParseReport, error) {
	var fs []*Feeder
	rep, err := FeedPlain(r, workers, func() Emitter { f := j.Feeder(side); fs = append(fs, f); return f })
	for _, f := range fs {
		f.Close()
	}
	return rep, err
}

func runPlain(t *testing.T, opt Options, platform, his, channel string) *Result {
	t.Helper()
	j := NewJoin(opt)
	j.Begin(SidePlatform)
	if _, err := feedPlain(j, SidePlatform, strings.NewReader(platform), 2); err != nil {
		t.Fatal(err)
	}
	if his != "" {
		if _, err := feedPlain(j, SideHIS, strings.NewReader(his), 1); err != nil {
			t.Fatal(err)
		}
	}
	j.End()
	j.Begin(SideChannel)
	rep, err := feedPlain(j, SideChannel, strings.NewReader(channel), 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Malformed) != 0 {
		t.Fatalf("malformed: %v", rep.Malformed)
	}
	j.End()
	return j.Finish()
}

func TestJoin_EveryClass(t *testing.T) {
	platform := `txn_id,amount_fen,status,ts
A1,100,SUCCESS,2026-12-03 10:00:00,m1
A2,200,SUCCESS,2026-12-03 10:00:00,m1
A3,300,SUCCESS,2026-12-03 10:00:00,m2
A4,400,CLOSED,2026-12-03 10:00:00,m2
A5,500,SUCCESS,2026-12-03 23:58:00,m2
A6,600,SUCCESS,2026-12-03 11:00:00,m1
`
	channel := `A1,100,SUCCESS,2026-12-03 10:00:01,m1
A3,301,SUCCESS,2026-12-03 10:00:01,m2
A4,400,SUCCESS,2026-12-03 10:00:01,m2
B9,900,SUCCESS,2026-12-03 10:00:01,m1
A6,600,SUCCESS,2026-12-03 11:00:00,m1
A6,600,SUCCESS,2026-12-03 11:00:00,m1
`
	day, _ := ParseDate("2026-12-03")
	res := runPlain(t, Options{PendingFrom: DayStart(day) + 86400 - 600}, platform, "", channel)
	got := map[Class]int64{}
	for c, n := range res.Counts() {
		got[c] = n
	}
	want := map[Class]int64{ClassMatched: 2, ClassLong: 1, ClassShort: 1, ClassAmount: 1, ClassStatus: 1,
		ClassDuplicate: 1, ClassPending: 1}
	for c, n := range want {
		if got[c] != n {
			t.Errorf("%s: want %d, got %d (all %v)", c, n, got[c], got)
		}
	}
	var keys []string
	for _, d := range res.Discrepancies {
		keys = append(keys, string(d.Class)+":"+d.Key)
	}
	if s := strings.Join(keys, " "); s != "long:B9 short:A2 amount-mismatch:A3 status-mismatch:A4 duplicate:A6 pending:A5" {
		t.Errorf("discrepancies: %s", s)
	}
	if res.Totals.PlatformRows != 6 || res.Totals.ChannelRows != 6 || res.Totals.PlatformFen != 2100 {
		t.Errorf("totals %+v", res.Totals)
	}
	for _, d := range res.Discrepancies {
		if d.Class == ClassAmount && (d.Fen != 1 || d.Merchant != "m2" || d.Line != 2) {
			t.Errorf("amount mismatch %+v", d)
		}
	}
}

func TestJoin_ThreeWayAndCarried(t *testing.T) {
	platform := "P1,100,SUCCESS,2026-12-03 10:00:00\nP2,200,SUCCESS,2026-12-03 10:00:00\nP3,300,SUCCESS,2026-12-03 10:00:00\n"
	his := "P1,100,SUCCESS,2026-12-03 10:00:00\nP3,250,SUCCESS,2026-12-03 10:00:00\nH9,50,SUCCESS,2026-12-03 10:00:00\n"
	channel := "P1,100,SUCCESS,2026-12-03 10:00:00\nP2,200,SUCCESS,2026-12-03 10:00:00\nP3,300,SUCCESS,2026-12-03 10:00:00\n"
	res := runPlain(t, Options{ThreeWay: true}, platform, his, channel)
	c := res.Counts()
	if c[ClassMatched] != 3 || c[ClassHISMissing] != 1 || c[ClassHISExtra] != 1 || c[ClassHISAmount] != 1 {
		t.Fatalf("counts %v", c)
	}

	// A carried platform row matches today; one that does not is short, not pending again.
	j := NewJoin(Options{PendingFrom: 1})
	j.Begin(SidePlatform)
	f := j.Feeder(SidePlatform)
	f.Emit(&Row{Key: []byte("C1"), AmountFen: 5, Status: StatusSuccess, Time: 10, Carried: true})
	f.Emit(&Row{Key: []byte("C2"), AmountFen: 6, Status: StatusSuccess, Time: 10, Carried: true})
	f.Close()
	j.End()
	j.Begin(SideChannel)
	f = j.Feeder(SideChannel)
	f.Emit(&Row{Key: []byte("C1"), AmountFen: 5, Status: StatusSuccess, Time: 20})
	f.Close()
	j.End()
	c = j.Finish().Counts()
	if c[ClassMatchedCrossDay] != 1 || c[ClassShort] != 1 || c[ClassPending] != 0 {
		t.Fatalf("carried: %v", c)
	}
}

func TestFeedPlain_MalformedLineIsReportedAndTheRestRead(t *testing.T) {
	j := NewJoin(Options{})
	j.Begin(SidePlatform)
	rep, err := feedPlain(j, SidePlatform, strings.NewReader("A,1,SUCCESS,2026-12-03 10:00:00\nB,x,SUCCESS,2026-12-03 10:00:00\nC,3,SUCCESS,1700000000\n"), 2)
	j.End()
	if err != nil || rep.Rows != 2 || len(rep.Malformed) != 1 || rep.Malformed[0].Line != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
}

func TestParseYuan(t *testing.T) {
	for in, want := range map[string]int64{"12.30": 1230, "-0.12": -12, "5": 500, "1,234.5": 123450, "0.00000": 0, "0.01000": 1} {
		if got, err := ParseYuan([]byte(in)); err != nil || got != want {
			t.Errorf("%s: %d %v", in, got, err)
		}
	}
	for _, in := range []string{"", "1.001", "abc", "1.2.3", "-"} {
		if _, err := ParseYuan([]byte(in)); err == nil {
			t.Errorf("%s: want error", in)
		}
	}
}
