package pii

import (
	"testing"
	"time"

	"github.com/sscard/platform/shared/identity"
)

// One normaliser: whatever identity.Parse accepts, the blind index folds to the same
// number, so a number applied for in one form is found in another; what neither can read
// both refuse.
func TestNormaliseIDNumber_AgreesWithParse(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, in := range []string{
		"11010519491231002X",
		"11010519491231002x",
		"１１０１０５１９４９１２３１００２Ｘ", // full-width, as a Chinese input method types it
		"１１０１０５１９４９１２３１００２ｘ",
		"　11010519491231002x ", // ideographic space
		"110105491231002",
	} {
		id, err := identity.Parse(in, now)
		if err != nil {
			t.Fatalf("%q: Parse: %v", in, err)
		}
		got, err := NormaliseIDNumber(in)
		if err != nil || got != id.Number {
			t.Errorf("%q: index form %q %v, Parse %q", in, got, err, id.Number)
		}
	}
	for _, in := range []string{"１１０１０５１９４９１２３１００２＃", "11010519491231002Ω", "一一〇一〇五"} {
		if _, err := identity.Parse(in, now); err == nil {
			t.Errorf("%q: Parse accepted", in)
		}
		if _, err := NormaliseIDNumber(in); err == nil {
			t.Errorf("%q: the index accepted what Parse refuses", in)
		}
	}
}
