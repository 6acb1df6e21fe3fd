package identity

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Field names used by the name validators' errors.
const (
	FieldName        = "name"
	FieldEnglishName = "englishName"
)

// MaxNameRunes caps a (Chinese) name. 身份证 names are at most a few dozen characters even
// for transliterated minority and foreign names; 50 leaves room for those and stops
// abuse. Whether a name fits the card is a separate question answered by SplitForCard.
const MaxNameRunes = 50

// MaxEnglishNameLen caps an English name. The passport's visual zone, not its 39-character
// MRZ field, is the source of the name, and long names there run past 39 characters; 80
// is generous for real names and still bounded.
const MaxEnglishNameLen = 80

// CardNameFieldBytes is the size of the name record on the card: EF06 record 02 (tag 09),
// 30 bytes GBK, 0x00-padded (domain.md §3.3).
const CardNameFieldBytes = 30

// CardNameExtensionBytes is the size this package assumes for the name-extension record
// (EF06 record 03, 2nd/3rd-generation cards under LD/T 32). UNVERIFIED: the public
// sources name the record but not its length; 30 bytes, the size of the name record, is
// assumed. SplitName takes both sizes when a card producer's spec says otherwise.
const CardNameExtensionBytes = 30

// MiddleDot is the separator of name parts in minority and foreign names (U+00B7, GBK A1A4).
const MiddleDot = '·'

// dotLookalikes are characters typed in place of the middle dot; NormalizeName maps them
// to MiddleDot.
var dotLookalikes = map[rune]bool{
	'\u2022': true, // • bullet
	'\u2027': true, // ‧ hyphenation point
	'\u2219': true, // ∙ bullet operator
	'\u22C5': true, // ⋅ dot operator
	'\u30FB': true, // ・ katakana middle dot
	'\uFF0E': true, // ． full-width full stop
	'\uFF65': true, // ･ half-width katakana middle dot
}

// NormalizeName returns the form of a Chinese name to store and validate: surrounding
// white space removed and middle-dot look-alikes replaced by MiddleDot.
func NormalizeName(name string) string {
	name = strings.TrimSpace(name)
	return strings.Map(func(r rune) rune {
		if dotLookalikes[r] {
			return MiddleDot
		}
		return r
	}, name)
}

func nameErr(field string, code ErrorCode, reason string) *Error {
	return &Error{Field: field, Code: code, Reason: reason}
}

// ValidateName checks a (Chinese) name as it would be stored, i.e. NormalizeName(name):
//   - valid UTF-8, not empty, at most MaxNameRunes characters;
//   - letters of any script (Han characters including 生僻字 outside the BMP, and
//     〇 U+3007), combining marks (so ideographic variation sequences survive), and the
//     middle dot · between parts — not first, not last, not doubled;
//   - no control or format characters, no white space, digits or other punctuation;
//   - no private-use characters: legacy systems put 生僻字 there before Unicode and
//     GB18030-2005/2022 gave them standard code points, and a private-use code point
//     prints as whatever glyph the card producer's font has in that slot;
//   - encodable in GB18030, the encoding the card and the card producer use.
//
// The error is an *Error with Field "name"; its reason never repeats the name.
func ValidateName(name string) error {
	if !utf8.ValidString(name) {
		return nameErr(FieldName, CodeEncoding, "is not valid UTF-8")
	}
	name = NormalizeName(name)
	if name == "" {
		return nameErr(FieldName, CodeEmpty, "is required")
	}
	if utf8.RuneCountInString(name) > MaxNameRunes {
		return nameErr(FieldName, CodeTooLong, fmt.Sprintf("must be at most %d characters", MaxNameRunes))
	}
	prevDot := true // a dot may not come first
	for i, r := range name {
		switch {
		case r == MiddleDot:
			if prevDot {
				return nameErr(FieldName, CodeCharacter, "the middle dot · may only separate name parts")
			}
			prevDot = true
			continue
		case unicode.IsControl(r) || unicode.Is(unicode.Cf, r):
			return nameErr(FieldName, CodeCharacter, "must not contain control or format characters")
		case unicode.Is(unicode.Co, r):
			return nameErr(FieldName, CodeCharacter, "contains a private-use character (a legacy encoding of a rare character); enter the standard Unicode character")
		case unicode.IsSpace(r):
			return nameErr(FieldName, CodeCharacter, "must not contain spaces; separate name parts with ·")
		case unicode.IsMark(r):
			if i == 0 {
				return nameErr(FieldName, CodeCharacter, "must not start with a combining mark")
			}
		case unicode.IsLetter(r) || r == '〇':
		default:
			return nameErr(FieldName, CodeCharacter, "may contain only letters and the middle dot ·")
		}
		prevDot = false
	}
	if prevDot {
		return nameErr(FieldName, CodeCharacter, "the middle dot · may only separate name parts")
	}
	if _, err := GB18030Len(name); err != nil {
		return nameErr(FieldName, CodeEncoding, "contains a character that cannot be encoded in GB18030")
	}
	return nil
}

// GB18030Len returns the length of s encoded in GB18030: 1 byte for ASCII, 2 for GBK
// characters, 4 for everything else (including 生僻字 outside the BMP such as 𠀀 U+20000).
func GB18030Len(s string) (int, error) {
	b, err := simplifiedchinese.GB18030.NewEncoder().String(s)
	if err != nil {
		return 0, err
	}
	return len(b), nil
}

// runeGB18030Len is the encoded size of one rune, or -1 if it has no encoding.
func runeGB18030Len(enc interface {
	String(string) (string, error)
}, r rune) int {
	switch {
	case r < utf8.RuneSelf:
		return 1
	case r > 0xFFFF && r <= unicode.MaxRune:
		// GB18030 maps all supplementary planes linearly onto four-byte sequences
		// 0x90308130–0xE3329A35; no table lookup needed.
		return 4
	}
	b, err := enc.String(string(r))
	if err != nil {
		return -1
	}
	return len(b)
}

// SplitForCard splits name for the card's name record (fieldBytes bytes, normally
// CardNameFieldBytes) and the name-extension record (CardNameExtensionBytes bytes). See
// SplitName.
func SplitForCard(name string, fieldBytes int) (main, extension string, err error) {
	return SplitName(name, fieldBytes, CardNameExtensionBytes)
}

// SplitName splits name so that main's GB18030 encoding fits mainBytes and extension's
// fits extBytes, filling main first. The split falls between characters, never inside
// one, and never between a character and the combining marks that follow it (e.g. an
// ideographic variation selector); a 4-byte GB18030 character counts as 4 bytes. main +
// extension == name. extension is empty when the name fits the main record. The name is
// not normalised: pass the stored form.
//
// It fails with a *Error (Field "name", Code CodeTooLong) when the name does not fit both
// records, and CodeEncoding when it is not valid UTF-8 or not encodable.
func SplitName(name string, mainBytes, extBytes int) (main, extension string, err error) {
	if mainBytes < 0 || extBytes < 0 {
		return "", "", nameErr(FieldName, CodeTooLong, "the card's name field sizes must not be negative")
	}
	if !utf8.ValidString(name) {
		return "", "", nameErr(FieldName, CodeEncoding, "is not valid UTF-8")
	}
	enc := simplifiedchinese.GB18030.NewEncoder()
	cut, used := -1, 0 // cut: byte offset in name where main ends
	for i := 0; i < len(name); {
		// One cluster: a rune and the combining marks after it.
		j, n := i, 0
		for first := true; j < len(name); first = false {
			r, size := utf8.DecodeRuneInString(name[j:])
			if !first && !unicode.IsMark(r) {
				break
			}
			l := runeGB18030Len(enc, r)
			if l < 0 {
				return "", "", nameErr(FieldName, CodeEncoding, "contains a character that cannot be encoded in GB18030")
			}
			n += l
			j += size
		}
		if cut < 0 && used+n > mainBytes {
			cut, used = i, 0
		}
		used += n
		if cut >= 0 && used > extBytes {
			return "", "", nameErr(FieldName, CodeTooLong, "is too long for the card's name and name-extension fields")
		}
		i = j
	}
	if cut < 0 {
		return name, "", nil
	}
	return name[:cut], name[cut:], nil
}

// ValidateEnglishName checks and normalises the English name of a permanent-residence
// applicant (required for them; their Chinese name is optional, 004 §2(7)). Accepted
// characters are those of passport names: ASCII letters, spaces, hyphens, apostrophes,
// commas and dots. The result is upper-cased with surrounding space removed and inner
// runs of spaces collapsed to one. It must start with a letter, contain no doubled
// punctuation, not end in a hyphen, comma or apostrophe, and be at most
// MaxEnglishNameLen characters long.
//
// The error is an *Error with Field "englishName"; its reason never repeats the name.
func ValidateEnglishName(s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", nameErr(FieldEnglishName, CodeEncoding, "is not valid UTF-8")
	}
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "", nameErr(FieldEnglishName, CodeEmpty, "is required")
	}
	if len(s) > MaxEnglishNameLen {
		return "", nameErr(FieldEnglishName, CodeTooLong, fmt.Sprintf("must be at most %d characters", MaxEnglishNameLen))
	}
	b := []byte(s)
	prevPunct := true // the name must start with a letter
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z':
			b[i] = c - ('a' - 'A')
			prevPunct = false
		case c >= 'A' && c <= 'Z':
			prevPunct = false
		case c == ' ':
			// Spaces are already single; "SMITH, JOHN" puts a space after a comma.
		case c == '-' || c == '\'' || c == ',' || c == '.':
			if prevPunct {
				return "", nameErr(FieldEnglishName, CodeCharacter, "must start with a letter and must not repeat punctuation")
			}
			prevPunct = true
		default:
			return "", nameErr(FieldEnglishName, CodeCharacter, "may contain only Latin letters, spaces, hyphens, apostrophes, commas and dots")
		}
	}
	if last := b[len(b)-1]; last == '-' || last == ',' || last == '\'' {
		return "", nameErr(FieldEnglishName, CodeCharacter, "must not end with a hyphen, comma or apostrophe")
	}
	return string(b), nil
}
