package workday

import (
	"os"
	"regexp"
	"testing"
	"time"
)

// seeded is the calendar the migration seeds (2025 and 2026), read from the migration
// itself, so these tests check the data administrators start from.
func seeded(t *testing.T) *Calendar {
	t.Helper()
	b, err := os.ReadFile("../db/migrations/015_photoaudit.sql")
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`\('(\d{4}-\d\d-\d\d)', '(holiday|workday)', '([^']*)'\)`)
	var days []Day
	for _, m := range re.FindAllStringSubmatch(string(b), -1) {
		d, err := ParseDate(m[1])
		if err != nil {
			t.Fatal(err)
		}
		days = append(days, Day{Date: d, Kind: Kind(m[2]), Name: m[3]})
	}
	c, err := NewCalendar(days)
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	return c
}

func date(t *testing.T, s string) Date {
	t.Helper()
	d, err := ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSeed_Shape(t *testing.T) {
	c := seeded(t)
	// The notices give 2025 five make-up days and 2026 six.
	makeUp := map[int]int{}
	for _, d := range c.Days() {
		if d.Kind == MakeUp {
			makeUp[d.Date.Year()]++
		}
	}
	if makeUp[2025] != 5 || makeUp[2026] != 6 {
		t.Errorf("make-up days per year: %v, want 2025:5 2026:6", makeUp)
	}
	if !c.Covers(2025) || !c.Covers(2026) || c.Covers(2027) {
		t.Errorf("covers: 2025 %v 2026 %v 2027 %v", c.Covers(2025), c.Covers(2026), c.Covers(2027))
	}
	for s, want := range map[string]bool{
		"2026-10-01": false, // 国庆节, Thursday
		"2026-10-10": true,  // 调休 Saturday
		"2026-10-11": false, // plain Sunday
		"2026-02-14": true,  // 春节调休 Saturday
		"2026-02-23": false, // last day of 春节, Monday
		"2026-12-04": true,  // plain Friday
		"2026-12-05": false, // plain Saturday
		"2025-01-26": true,  // 春节调休 Sunday
	} {
		if got := c.IsWorkingDay(date(t, s)); got != want {
			t.Errorf("%s working: %v, want %v", s, got, want)
		}
	}
}

// The first day on which a photo applied for on day applied is overdue (threshold 3).
func TestFirstOverdueDay(t *testing.T) {
	c := seeded(t)
	for _, tc := range []struct{ applied, first, why string }{
		{"2026-12-03", "2026-12-09", "Thursday: Fri, Mon, Tue → Wednesday"},
		{"2026-12-04", "2026-12-10", "Friday: Mon, Tue, Wed → Thursday"},
		{"2026-12-05", "2026-12-10", "Saturday counts from Monday, like Friday"},
		{"2026-12-06", "2026-12-10", "Sunday too"},
		{"2026-12-07", "2026-12-11", "Monday: Tue, Wed, Thu → Friday"},
		{"2026-12-09", "2026-12-15", "Wednesday: Thu, Fri, Mon → Tuesday"},
		{"2026-09-30", "2026-10-11", "before the National Day week: Oct 8, 9 and the make-up Saturday Oct 10"},
		{"2026-10-03", "2026-10-11", "inside the holiday week, on a Saturday"},
		{"2026-02-13", "2026-02-26", "Spring Festival: make-up Sat Feb 14, then Feb 24, 25"},
		{"2026-02-27", "2026-03-04", "Friday before the make-up Saturday: Feb 28, Mar 2, 3"},
		{"2026-02-28", "2026-03-05", "on the make-up Saturday itself: the day does not count"},
		{"2026-04-30", "2026-05-09", "month end into May Day: May 6, 7, 8 → overdue on the make-up Saturday"},
		{"2026-07-30", "2026-08-05", "month end: Jul 31, Aug 3, 4"},
		{"2026-06-30", "2026-07-04", "month end: Jul 1, 2, 3 → overdue from Saturday"},
		{"2025-12-31", "2026-01-07", "year end: New Year Jan 1-3 off, make-up Sunday Jan 4, Jan 5, 6"},
		{"2025-12-30", "2026-01-06", "year end: Dec 31, Jan 4 (make-up), Jan 5"},
		{"2026-12-31", "2027-01-06", "into 2027, not yet in the calendar: Jan 1 2027 counts as working (Covers warns)"},
		{"2025-09-30", "2025-10-12", "2025 National Day: Oct 1-8 off; Oct 9, 10 and the make-up Saturday Oct 11"},
	} {
		got, err := c.FirstOverdueDay(date(t, tc.applied), 3)
		if err != nil || got.String() != tc.first {
			t.Errorf("%s (%s): first overdue %s %v, want %s", tc.applied, tc.why, got, err, tc.first)
		}
		// The day before it is not overdue, the day itself is.
		if a, f := date(t, tc.applied), date(t, tc.first); c.Overdue(a, f.AddDays(-1), 3) || !c.Overdue(a, f, 3) {
			t.Errorf("%s: Overdue disagrees with FirstOverdueDay %s", tc.applied, tc.first)
		}
	}
}

// China time decides the application day: 23:30 China time is 15:30 UTC of the same day;
// 00:00 China time is 16:00 UTC of the day before.
func TestCutoff_TimeZoneEdges(t *testing.T) {
	c := seeded(t)
	wed := date(t, "2026-12-09")
	cut, err := c.Cutoff(wed, 3)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC); !cut.Equal(want) {
		t.Fatalf("cutoff on Wed 2026-12-09: %s, want Friday 00:00 China time = %s", cut.UTC(), want)
	}
	thuLate := time.Date(2026, 12, 3, 15, 30, 0, 0, time.UTC) // Thursday 23:30 China time
	friEarly := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC) // Friday 00:00 China time
	if DateOf(thuLate).String() != "2026-12-03" || DateOf(friEarly).String() != "2026-12-04" {
		t.Fatalf("DateOf: %s %s", DateOf(thuLate), DateOf(friEarly))
	}
	if !thuLate.Before(cut) || friEarly.Before(cut) {
		t.Errorf("Thursday 23:30 must be overdue on Wednesday, Friday 00:00 not")
	}
	// The previous day's cutoff leaves Thursday 23:30 out.
	tue, _ := c.Cutoff(date(t, "2026-12-08"), 3)
	if thuLate.Before(tue) {
		t.Errorf("Thursday's photo must not be overdue on Tuesday (cutoff %s)", tue)
	}
	// A UTC date is not the China date: 2026-12-31T16:30Z is 2027-01-01 00:30 China time.
	if DateOf(time.Date(2026, 12, 31, 16, 30, 0, 0, time.UTC)).String() != "2027-01-01" {
		t.Error("year boundary in China time")
	}
}

// Cutoff and Overdue are two views of one rule: for every application day of 2025-2026
// and thresholds 1..10, a photo submitted at any instant of day A is before the cutoff of
// day T exactly when A is overdue on T.
func TestCutoff_AgreesWithOverdue(t *testing.T) {
	c := seeded(t)
	for a := NewDate(2025, 1, 1); a.Before(NewDate(2027, 1, 1)); a = a.AddDays(1) {
		for n := 1; n <= 10; n++ {
			first, err := c.FirstOverdueDay(a, n)
			if err != nil {
				t.Fatal(err)
			}
			for _, today := range []Date{first.AddDays(-1), first, first.AddDays(3)} {
				cut, err := c.Cutoff(today, n)
				if err != nil {
					t.Fatal(err)
				}
				for _, at := range []time.Time{a.Start(), a.Start().Add(24*time.Hour - time.Second)} {
					if at.Before(cut) != c.Overdue(a, today, n) {
						t.Fatalf("A=%s T=%s n=%d at %s: cutoff %s disagrees with Overdue %v", a, today, n, at, cut, c.Overdue(a, today, n))
					}
				}
			}
		}
	}
}

func TestCalendar_RejectsBadDays(t *testing.T) {
	mon := NewDate(2026, 12, 7)
	sat := NewDate(2026, 12, 5)
	for _, days := range [][]Day{
		{{Date: mon, Kind: MakeUp}},                             // a weekday made a workday
		{{Date: sat, Kind: "off"}},                              // unknown kind
		{{Date: sat, Kind: Holiday}, {Date: sat, Kind: MakeUp}}, // twice
		{{Kind: Holiday}},                                       // no date
	} {
		if _, err := NewCalendar(days); err == nil {
			t.Errorf("%v accepted", days)
		}
	}
	if _, err := (&Calendar{}).Cutoff(mon, 0); err == nil {
		t.Error("threshold 0 accepted")
	}
	if _, err := ParseDate("2026-2-3"); err == nil {
		t.Error("non-canonical date accepted")
	}
}

// A calendar where everything is a holiday cannot loop for ever.
func TestCutoff_Bounded(t *testing.T) {
	var days []Day
	for d := NewDate(2026, 1, 1); d.Before(NewDate(2029, 1, 1)); d = d.AddDays(1) {
		days = append(days, Day{Date: d, Kind: Holiday})
	}
	c, err := NewCalendar(days)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cutoff(NewDate(2028, 6, 1), 3); err == nil {
		t.Error("want an error when no working day is in reach")
	}
}
