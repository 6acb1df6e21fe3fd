package pii

import (
	"errors"
	"strings"

	"github.com/sscard/platform/shared/identity"
)

// Kind says how a value is normalised for the blind index, and separates the indexes of
// different kinds of value.
type Kind string

// Kinds of indexed values.
const (
	KindIDNumber Kind = "id-number"
	KindPhone    Kind = "phone"
	// KindExact indexes the value as given, only trimmed.
	KindExact Kind = "exact"
)

// ErrNotNormalisable: the value cannot be an ID number or a mainland mobile number. The
// error never contains the value.
var ErrNotNormalisable = errors.New("pii: value does not have the shape of its kind")

// NormaliseIDNumber folds as identity.Parse does (full-width to ASCII, upper case: one
// normaliser, identity.Fold), then drops spaces, hyphens and brackets (HK "A123456(7)"):
// "11010119900307123x " and "１１０１０１１９９００３０７１２３ｘ" → "11010119900307123X".
func NormaliseIDNumber(s string) (string, error) {
	var b strings.Builder
	for _, r := range identity.Fold(s) {
		switch {
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '（' || r == '）':
		case r >= '0' && r <= '9' || r >= 'A' && r <= 'Z':
			b.WriteRune(r)
		case r >= 'a' && r <= 'z':
			b.WriteRune(r - 'a' + 'A')
		default:
			return "", ErrNotNormalisable
		}
	}
	if b.Len() < 6 || b.Len() > 20 {
		return "", ErrNotNormalisable
	}
	return b.String(), nil
}

// NormalisePhone returns the 11-digit mainland mobile number: separators dropped, and a
// +86, 0086 or 86 prefix removed, so "+86 138-1234-5678", "008613812345678" and
// "13812345678" index alike.
func NormalisePhone(s string) (string, error) {
	var b strings.Builder
	for _, r := range strings.TrimSpace(s) {
		switch {
		case r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
		case r >= '0' && r <= '9' || r == '+':
			b.WriteRune(r)
		default:
			return "", ErrNotNormalisable
		}
	}
	d := b.String()
	for _, p := range []string{"+86", "0086", "86"} {
		if len(d) == len(p)+11 && strings.HasPrefix(d, p) {
			d = d[len(p):]
			break
		}
	}
	if len(d) != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9' || strings.ContainsRune(d, '+') {
		return "", ErrNotNormalisable
	}
	return d, nil
}

// Normalise applies the rule of kind.
func Normalise(kind Kind, s string) (string, error) {
	switch kind {
	case KindIDNumber:
		return NormaliseIDNumber(s)
	case KindPhone:
		return NormalisePhone(s)
	case KindExact:
		if v := strings.TrimSpace(s); v != "" {
			return v, nil
		}
		return "", ErrNotNormalisable
	}
	return "", errors.New("pii: unknown index kind")
}
