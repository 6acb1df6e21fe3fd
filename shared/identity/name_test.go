package identity

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

const rare = "\U00020000" // 𠀀, CJK Extension B: outside the BMP, 4 bytes in GB18030

func TestValidateName(t *testing.T) {
	valid := []string{
		"张三",
		"欧阳娜娜",
		"阿依古丽·买买提",
		"迪丽热巴・迪力木拉提", // katakana middle dot, normalised to ·
		"李" + rare,
		"王〇",
		"㐀",                     // CJK Extension A
		"葛\U000E0100",           // ideographic variation sequence
		" 张三 ",                  // trimmed
		"Anna",                  // Latin letters in a Chinese-name field
		strings.Repeat("张", 50), // at the limit
	}
	for _, n := range valid {
		if err := ValidateName(n); err != nil {
			t.Errorf("ValidateName(%q): want nil, got %v", n, err)
		}
	}
	invalid := []struct {
		name, in string
		code     ErrorCode
	}{
		{"empty", "", CodeEmpty},
		{"blank", " \u3000 ", CodeEmpty},
		{"too long", strings.Repeat("张", 51), CodeTooLong},
		{"NUL", "张\x00三", CodeCharacter},
		{"newline", "张\n三", CodeCharacter},
		{"zero-width space", "张\u200b三", CodeCharacter},
		{"right-to-left override", "张\u202e三", CodeCharacter},
		{"inner space", "张 三", CodeCharacter},
		{"digit", "张3", CodeCharacter},
		{"symbol", "张@三", CodeCharacter},
		{"emoji", "张😀", CodeCharacter},
		{"leading dot", "·张三", CodeCharacter},
		{"trailing dot", "张三·", CodeCharacter},
		{"double dot", "张··三", CodeCharacter},
		{"only dot", "·", CodeCharacter},
		{"leading combining mark", "\u0301张", CodeCharacter},
		{"invalid UTF-8", "张\xff", CodeEncoding},
		{"private use", "张\ue000", CodeCharacter},
	}
	for _, tt := range invalid {
		err := ValidateName(tt.in)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Field != FieldName {
			t.Errorf("ValidateName %s: want %s on field name, got %v", tt.name, tt.code, err)
			continue
		}
		// (A one-character input such as "·" may legitimately appear in the reason.)
		if in := strings.TrimSpace(tt.in); len([]rune(in)) > 1 && strings.Contains(err.Error(), in) {
			t.Errorf("ValidateName %s: error text repeats the name: %v", tt.name, err)
		}
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		" 阿依古丽•买买提 ": "阿依古丽·买买提",
		"阿依古丽‧买买提":   "阿依古丽·买买提",
		"阿依古丽．买买提":   "阿依古丽·买买提",
		"张三":         "张三",
		"\u3000张三\t": "张三",
	} {
		if got := NormalizeName(in); got != want {
			t.Errorf("NormalizeName(%q): want %q, got %q", in, want, got)
		}
	}
}

func TestGB18030Len(t *testing.T) {
	for in, want := range map[string]int{
		"":         0,
		"A":        1,
		"张三":       4,
		"·":        2,
		rare:       4,
		"李" + rare: 6,
		"㐀":        4, // Extension A is in the BMP but not in GBK
		"\u20ac":   2, // € is in GB18030's two-byte area (0x80)
	} {
		got, err := GB18030Len(in)
		if err != nil || got != want {
			t.Errorf("GB18030Len(%q): want %d, got %d (%v)", in, want, got, err)
		}
	}
}

func TestRuneLenShortcutAgreesWithEncoder(t *testing.T) {
	enc := simplifiedchinese.GB18030.NewEncoder()
	for _, r := range []rune{'A', '张', '·', '㐀', '€', 0x10000, 0x20000, 0x2A6D6, 0x31350, 0xE0100, 0xF0000, 0x10FFFF} {
		want, err := GB18030Len(string(r))
		if got := runeGB18030Len(enc, r); err != nil || got != want {
			t.Errorf("U+%04X: want %d bytes, got %d (%v)", r, want, got, err)
		}
	}
}

func TestSplitForCard(t *testing.T) {
	han := func(n int) string { return strings.Repeat("张", n) }
	tests := []struct {
		name      string
		in        string
		field     int
		main, ext string
		code      ErrorCode
	}{
		{"short", "张三", CardNameFieldBytes, "张三", "", ""},
		{"exactly 30 bytes", han(15), CardNameFieldBytes, han(15), "", ""},
		{"one character over", han(16), CardNameFieldBytes, han(15), "张", ""},
		{"rare character does not fit the last 2 bytes", han(14) + rare, CardNameFieldBytes, han(14), rare, ""},
		{"rare character fits the last 4 bytes", han(13) + rare + "张", CardNameFieldBytes, han(13) + rare, "张", ""},
		{"minority name with dot", "阿依古丽·买买提·艾合买提江·阿不都热合曼", CardNameFieldBytes, "阿依古丽·买买提·艾合买提江·", "阿不都热合曼", ""},
		{"variation sequence kept whole", han(14) + "葛\U000E0100", CardNameFieldBytes, han(14), "葛\U000E0100", ""},
		{"ASCII", strings.Repeat("A", 40), CardNameFieldBytes, strings.Repeat("A", 30), strings.Repeat("A", 10), ""},
		{"fills both fields", han(30), CardNameFieldBytes, han(15), han(15), ""},
		{"15 rare characters do not fit", strings.Repeat(rare, 15), CardNameFieldBytes, "", "", CodeTooLong},
		{"too long", han(31), CardNameFieldBytes, "", "", CodeTooLong},
		{"empty", "", CardNameFieldBytes, "", "", ""},
		{"zero main field", "张三", 0, "", "张三", ""},
		{"negative field", "张三", -1, "", "", CodeTooLong},
		{"invalid UTF-8", "张\xff", CardNameFieldBytes, "", "", CodeEncoding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, x, err := SplitForCard(tt.in, tt.field)
			if tt.code != "" {
				var e *Error
				if !errors.As(err, &e) || e.Code != tt.code {
					t.Fatalf("want error %s, got %q %q %v", tt.code, m, x, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			if m != tt.main || x != tt.ext {
				t.Errorf("want %q + %q, got %q + %q", tt.main, tt.ext, m, x)
			}
		})
	}
	// 15 rare characters are 60 bytes but a 4-byte character cannot straddle the 30-byte
	// boundary: 7 fit in each field (28 bytes), so 14 is the most that fits.
	if m, x, err := SplitForCard(strings.Repeat(rare, 14), CardNameFieldBytes); err != nil || m != strings.Repeat(rare, 7) || x != strings.Repeat(rare, 7) {
		t.Errorf("14 rare characters: want 7 + 7, got %d + %d runes (%v)", len([]rune(m)), len([]rune(x)), err)
	}
}

func TestSplitName(t *testing.T) {
	m, x, err := SplitName("张三李四", 4, 4)
	if err != nil || m != "张三" || x != "李四" {
		t.Errorf("SplitName(张三李四, 4, 4): want 张三 + 李四, got %q + %q (%v)", m, x, err)
	}
	if _, _, err := SplitName("张三李四", 4, 3); err == nil {
		t.Errorf("SplitName(张三李四, 4, 3): want error, got nil")
	}
}

func TestValidateEnglishName(t *testing.T) {
	valid := map[string]string{
		"john smith":                           "JOHN SMITH",
		"  Anna   Maria  ":                     "ANNA MARIA",
		"O'Neil, Mary-Jane":                    "O'NEIL, MARY-JANE",
		"SMITH JR.":                            "SMITH JR.",
		"VAN DER BERG":                         "VAN DER BERG",
		"abdul-rahman al-saud":                 "ABDUL-RAHMAN AL-SAUD",
		strings.Repeat("A", MaxEnglishNameLen): strings.Repeat("A", MaxEnglishNameLen),
	}
	for in, want := range valid {
		got, err := ValidateEnglishName(in)
		if err != nil || got != want {
			t.Errorf("ValidateEnglishName(%q): want %q, got %q (%v)", in, want, got, err)
		}
	}
	invalid := []struct {
		in   string
		code ErrorCode
	}{
		{"", CodeEmpty},
		{"   ", CodeEmpty},
		{"José", CodeCharacter},
		{"J0HN", CodeCharacter},
		{"张三", CodeCharacter},
		{"JOHN_SMITH", CodeCharacter},
		{"JOHN\tSMITH\x00", CodeCharacter},
		{"-JOHN", CodeCharacter},
		{".JOHN", CodeCharacter},
		{"JOHN--SMITH", CodeCharacter},
		{"JOHN-", CodeCharacter},
		{"SMITH,", CodeCharacter},
		{strings.Repeat("A", MaxEnglishNameLen+1), CodeTooLong},
		{"JOHN\xff", CodeEncoding},
	}
	for _, tt := range invalid {
		got, err := ValidateEnglishName(tt.in)
		var e *Error
		if !errors.As(err, &e) || e.Code != tt.code || e.Field != FieldEnglishName {
			t.Errorf("ValidateEnglishName(%q): want %s on englishName, got %q %v", tt.in, tt.code, got, err)
		}
	}
}
