package identity

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "500154199301135886", "440308199901101512",
		"810000199408230021", "830000199201300022", "KAZ110090123105", "911398199012310021",
		"110105491231002", "110105194912310021", "KAA110090123105", "", " ", "１１０１０５",
		"11010520250616001X", "999999999999999999", "AAA000000000000", "身份证",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		id, err := Parse(in, now)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field != FieldIDNumber || e.Reason == "" || e.Code == "" {
				t.Fatalf("want *Error on idNumber with a reason and code, got %#v", err)
			}
			if n := normalise(in); len(n) >= 8 && strings.Contains(err.Error(), n) {
				t.Fatalf("error text contains the input: %q", err.Error())
			}
			if id != (ID{}) {
				t.Fatalf("want zero ID with an error, got %+v", fields(id))
			}
			return
		}
		again, err := Parse(id.Number, now)
		if err != nil || again != id {
			t.Fatalf("accepted %q as %s but re-parsing %q gives %s (%v)", in, fields(id), id.Number, fields(again), err)
		}
		n := id.Number
		switch id.Kind {
		case ResidentID, HKMacaoTaiwanPermit, ForeignPermanentResident:
			if len(n) != 18 || withCheck(t, n[:17]) != n {
				t.Fatalf("accepted %s with a wrong check character", fields(id))
			}
		case ForeignPermanentResident15:
			if len(n) != 15 || withMRZ(t, n[:14]) != n {
				t.Fatalf("accepted %s with a wrong check digit", fields(id))
			}
		case ResidentID15:
			if len(n) != 15 || !allDigits(n) {
				t.Fatalf("accepted %s as a 15-digit resident ID", fields(id))
			}
			if _, err := Upgrade15To18(n); err != nil {
				t.Fatalf("accepted %s but cannot upgrade it: %v", fields(id), err)
			}
		default:
			t.Fatalf("accepted with kind %v", id.Kind)
		}
		if id.BirthDate.Year() < 1900 || id.BirthDate.After(now) || id.Sex == SexUnknown {
			t.Fatalf("accepted %s with birth date %v sex %v", fields(id), id.BirthDate, id.Sex)
		}
		if id.Nationality == "" && !id.NationalityUnknown {
			t.Fatalf("accepted %s without a nationality and without the unknown flag", fields(id))
		}
	})
}

func FuzzSplitForCard(f *testing.F) {
	for _, s := range []string{"张三", strings.Repeat("张", 16), strings.Repeat("张", 14) + rare, "阿依古丽·买买提",
		strings.Repeat(rare, 14), "葛\U000E0100", "A\u0301\u0302B", "", "\xff", "€"} {
		f.Add(s, CardNameFieldBytes)
	}
	f.Add("张三李四", 3)
	f.Fuzz(func(t *testing.T, name string, field int) {
		field %= 64 // keep the sizes card-like; negative stays negative
		m, x, err := SplitForCard(name, field)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field != FieldName {
				t.Fatalf("want *Error on name, got %#v", err)
			}
			return
		}
		if m+x != name {
			t.Fatalf("main %q + extension %q != input %q", m, x, name)
		}
		lm, err1 := GB18030Len(m)
		lx, err2 := GB18030Len(x)
		if err1 != nil || err2 != nil || lm > field || lx > CardNameExtensionBytes {
			t.Fatalf("parts do not fit: main %d bytes (limit %d), extension %d bytes (limit %d) (%v %v)",
				lm, field, lx, CardNameExtensionBytes, err1, err2)
		}
		if !utf8.ValidString(m) || !utf8.ValidString(x) {
			t.Fatalf("split inside a character: %q | %q", m, x)
		}
		if r, _ := utf8.DecodeRuneInString(x); x != "" && m != "" && unicode.IsMark(r) {
			t.Fatalf("split a character from its combining mark: %q | %q", m, x)
		}
	})
}
