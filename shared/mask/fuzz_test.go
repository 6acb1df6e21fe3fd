package mask

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// check holds the invariants every masking function keeps: valid UTF-8, no character that
// was not in the input, at most limit characters shown, and something hidden whenever
// the (normalised) input has at least two characters.
func check(t *testing.T, name, in, out string, limit int) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s(%q) = %q: invalid UTF-8", name, in, out)
	}
	inRunes := map[rune]bool{}
	for _, r := range in {
		inRunes[r] = true
	}
	shown, hidden := 0, 0
	for _, r := range out {
		switch {
		case r == Star:
			hidden++
		case r == utf8.RuneError:
			shown++ // stands for an invalid input byte
		case !inRunes[r]:
			t.Fatalf("%s(%q) = %q: %q was not in the input", name, in, out, r)
		default:
			shown++
		}
	}
	if shown > limit {
		t.Fatalf("%s(%q) = %q: shows %d characters, rule allows %d", name, in, out, shown, limit)
	}
	if utf8.RuneCountInString(out) >= 2 && hidden == 0 && !strings.ContainsRune(in, Star) {
		t.Fatalf("%s(%q) = %q: nothing hidden", name, in, out)
	}
}

func seeds(f *testing.F) {
	for _, s := range []string{"110101199003071234", "13812341234", "+8613812341234", "张三", "欧阳娜娜",
		"John Smith", "6222021234567890123", "", "\xff", "a b c d e", "欧阳", " \t", "**", "·-·"} {
		f.Add(s)
	}
}

func FuzzIDNumber(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		out := IDNumber(s)
		check(t, "IDNumber", s, out, 7)
		if utf8.RuneCountInString(out) != utf8.RuneCountInString(strings.TrimSpace(s)) {
			t.Fatalf("length changed: %q → %q", s, out)
		}
	})
}

func FuzzPhone(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, s string) { check(t, "Phone", s, Phone(s), 7) })
}

func FuzzName(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, s string) {
		out := Name(s)
		// separators of Latin names are shown as well; count letters only.
		letters := strings.Map(func(r rune) rune {
			if isNameSeparator(r) {
				return -1
			}
			return r
		}, out)
		limit := 2
		check(t, "Name", s, letters, limit)
		if utf8.RuneCountInString(out) != utf8.RuneCountInString(strings.TrimSpace(s)) {
			t.Fatalf("length changed: %q → %q", s, out)
		}
	})
}

func FuzzBankAccount(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, s string) { check(t, "BankAccount", s, BankAccount(s), 10) })
}
