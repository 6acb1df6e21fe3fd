// Package workday is working-day arithmetic in China time: weekends are days off, official
// holidays (法定节假日) are days off, and make-up working days (调休上班, usually a Saturday
// or Sunday next to a holiday) are working days. The exceptions are data an administrator
// maintains (the State Council publishes each year's arrangement in November); this
// package only reasons over them.
//
// The overdue rule (004 §3(23), "审核超过3个工作日"): the day of the application does not
// count, because it is rarely a whole day; the clock counts whole working days after it.
// An application made on a weekend or holiday therefore starts counting on the next
// working day, exactly like one made late on the working day before. A photo applied for
// on day A is overdue on day T when at least N working days lie strictly between A and T,
// i.e. from the start (00:00 China time) of the day after the Nth working day after A.
// Thursday + 3: Friday, Monday, Tuesday → overdue from Wednesday 00:00.
package workday

import (
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/sscard/platform/events"
)

// Kind is what an exception makes of a day.
type Kind string

const (
	// Holiday: a day off although it may be a weekday (法定节假日 and the weekdays moved
	// into a holiday block).
	Holiday Kind = "holiday"
	// MakeUp: a working day although it is a Saturday or Sunday (调休上班).
	MakeUp Kind = "workday"
)

// Valid reports whether k is a known kind.
func (k Kind) Valid() bool { return k == Holiday || k == MakeUp }

// Date is a calendar date in China time.
type Date struct{ t time.Time } // midnight UTC of the civil date, so AddDate is exact

// NewDate returns the date y-m-d.
func NewDate(y int, m time.Month, d int) Date { return Date{time.Date(y, m, d, 0, 0, 0, 0, time.UTC)} }

// DateOf is the China-time date containing the instant t (23:30 China time = 15:30 UTC is
// still that China day; 16:00 UTC is the next).
func DateOf(t time.Time) Date {
	c := t.In(events.ChinaTime)
	return NewDate(c.Year(), c.Month(), c.Day())
}

// ParseDate reads "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return Date{}, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return Date{t}, nil
}

func (d Date) String() string                { return d.t.Format(time.DateOnly) }
func (d Date) IsZero() bool                  { return d.t.IsZero() }
func (d Date) Year() int                     { return d.t.Year() }
func (d Date) Weekday() time.Weekday         { return d.t.Weekday() }
func (d Date) AddDays(n int) Date            { return Date{d.t.AddDate(0, 0, n)} }
func (d Date) Before(o Date) bool            { return d.t.Before(o.t) }
func (d Date) After(o Date) bool             { return d.t.After(o.t) }
func (d Date) Weekend() bool                 { w := d.t.Weekday(); return w == time.Saturday || w == time.Sunday }
func (d Date) Civil() (int, time.Month, int) { return d.t.Date() }

// Start is the instant the day begins: 00:00 China time.
func (d Date) Start() time.Time {
	y, m, day := d.t.Date()
	return time.Date(y, m, day, 0, 0, 0, 0, events.ChinaTime)
}

// Day is one exception of the calendar.
type Day struct {
	Date Date
	Kind Kind
	Name string // e.g. "春节", "国庆节调休"
}

// Check says what is wrong with an exception: a make-up working day must fall on a weekend
// (a weekday is a working day already), and the name must be short text.
func (d Day) Check() error {
	switch {
	case d.Date.IsZero():
		return errors.New("date is required")
	case !d.Kind.Valid():
		return fmt.Errorf("kind %q: want holiday or workday", d.Kind)
	case d.Kind == MakeUp && !d.Date.Weekend():
		return fmt.Errorf("%s is a %s: a make-up working day (workday) must be a Saturday or Sunday", d.Date, d.Date.Weekday())
	case len(d.Name) > 64:
		return errors.New("name longer than 64 bytes")
	}
	return nil
}

// Calendar answers which days are working days.
type Calendar struct {
	days  map[Date]Day
	years map[int]bool // years with at least one exception
}

// NewCalendar builds a calendar from its exceptions; each must pass Check and no date may
// appear twice.
func NewCalendar(days []Day) (*Calendar, error) {
	c := &Calendar{days: make(map[Date]Day, len(days)), years: map[int]bool{}}
	for _, d := range days {
		if err := d.Check(); err != nil {
			return nil, err
		}
		if _, dup := c.days[d.Date]; dup {
			return nil, fmt.Errorf("%s appears twice", d.Date)
		}
		c.days[d.Date] = d
		c.years[d.Date.Year()] = true
	}
	return c, nil
}

// IsWorkingDay: a make-up day works, a holiday does not, otherwise Monday to Friday.
func (c *Calendar) IsWorkingDay(d Date) bool {
	if x, ok := c.days[d]; ok {
		return x.Kind == MakeUp
	}
	return !d.Weekend()
}

// Covers reports whether the calendar holds any exception in year: a year without one was
// probably never entered (every year has holidays), and the arithmetic then silently
// treats its holidays as working days.
func (c *Calendar) Covers(year int) bool { return c.years[year] }

// Days lists the exceptions in date order.
func (c *Calendar) Days() []Day {
	out := make([]Day, 0, len(c.days))
	for _, d := range c.days {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Date.Before(out[j].Date) })
	return out
}

// MaxThreshold bounds a threshold (about a year of working days).
const MaxThreshold = 250

// span bounds every walk: more days than any threshold plus holidays can need.
const span = 2 * 366

// WorkingDaysBetween counts the working days strictly after a and strictly before b
// (0 when b is not after a+1).
func (c *Calendar) WorkingDaysBetween(a, b Date) int {
	n := 0
	for d := a.AddDays(1); d.Before(b); d = d.AddDays(1) {
		if c.IsWorkingDay(d) {
			n++
		}
	}
	return n
}

// Overdue reports whether a photo applied for on day applied is overdue on day today with
// a threshold of n working days.
func (c *Calendar) Overdue(applied, today Date, n int) bool {
	return c.WorkingDaysBetween(applied, today) >= n
}

// FirstOverdueDay is the first day on which an application made on day applied is
// overdue: the day after its nth working day.
func (c *Calendar) FirstOverdueDay(applied Date, n int) (Date, error) {
	if n < 1 || n > MaxThreshold {
		return Date{}, fmt.Errorf("threshold %d: want 1..%d working days", n, MaxThreshold)
	}
	d, seen := applied, 0
	for i := 0; i < span+n; i++ {
		d = d.AddDays(1)
		if c.IsWorkingDay(d) {
			if seen++; seen == n {
				return d.AddDays(1), nil
			}
		}
	}
	return Date{}, errors.New("the calendar has no working days in reach")
}

// Cutoff is the instant that splits the photos of day today: one submitted before it is
// overdue with a threshold of n working days, one submitted at or after it is not. It is
// 00:00 China time of the nth working day before today, because an application on day A
// is overdue exactly when A is before that day. One instant, so the count is a single
// index range scan whatever the calendar says.
func (c *Calendar) Cutoff(today Date, n int) (time.Time, error) {
	if n < 1 || n > MaxThreshold {
		return time.Time{}, fmt.Errorf("threshold %d: want 1..%d working days", n, MaxThreshold)
	}
	d, seen := today, 0
	for i := 0; i < span+n; i++ {
		d = d.AddDays(-1)
		if c.IsWorkingDay(d) {
			if seen++; seen == n {
				return d.Start(), nil
			}
		}
	}
	return time.Time{}, errors.New("the calendar has no working days in reach")
}
