package reconcile

import (
	"errors"
	"time"
)

var (
	errAmount = errors.New("not an amount")
	errTime   = errors.New("not a time yyyy-mm-dd hh:mm:ss")
)

// ParseYuan reads a decimal amount in 元 ("12.30", "-0.12", "+5", "1,234.50") as fen,
// with integer arithmetic only. More than two decimals are accepted only when the extra
// digits are zeros (WeChat writes fees with five): a fraction of a fen is an error, not a
// rounding.
func ParseYuan(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 {
		return 0, errAmount
	}
	var whole, frac int64
	digits, fracDigits := 0, 0
	inFrac := false
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			if inFrac {
				if fracDigits < 2 {
					frac = frac*10 + int64(c-'0')
				} else if c != '0' {
					return 0, errAmount
				}
				fracDigits++
			} else {
				if whole > (1<<62)/1000 {
					return 0, errAmount
				}
				whole = whole*10 + int64(c-'0')
				digits++
			}
		case c == '.' && !inFrac:
			inFrac = true
		case c == ',' && !inFrac && digits > 0:
		default:
			return 0, errAmount
		}
	}
	if digits == 0 {
		return 0, errAmount
	}
	if fracDigits == 1 {
		frac *= 10
	}
	v := whole*100 + frac
	if neg {
		v = -v
	}
	return v, nil
}

// parseInt reads a signed decimal integer.
func parseInt(b []byte) (int64, error) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, errAmount
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errAmount
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	return v, nil
}

// ParseChinaTime reads "yyyy-mm-dd hh:mm:ss" (or with '/' or 'T' separators) as China
// time, without the allocation and generality of time.Parse: it runs once per row.
func ParseChinaTime(b []byte) (int64, error) {
	if len(b) != 19 {
		return 0, errTime
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, s := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60 {
		return 0, errTime
	}
	return daysFromCivil(y, mo, d)*86400 + int64(h*3600+mi*60+s) - 8*3600, nil
}

// daysFromCivil: days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
// algorithm).
func daysFromCivil(y, m, d int) int64 {
	if m <= 2 {
		y--
	}
	era := y / 400
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return int64(era*146097 + doe - 719468)
}

// DayStart is the first second of business date d (yyyy-mm-dd, China time).
func DayStart(d time.Time) int64 {
	y, m, dd := d.In(China).Date()
	return daysFromCivil(y, int(m), dd)*86400 - 8*3600
}

// ParseDate reads a business date yyyy-mm-dd in China time.
func ParseDate(s string) (time.Time, error) {
	return time.ParseInLocation("2006-01-02", s, China)
}
