package identity

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/text/language"
)

// now is the reference instant of the tests: 2025-06-15 12:00 China time.
var now = time.Date(2025, 6, 15, 12, 0, 0, 0, ChinaTime)

// withCheck appends the MOD 11-2 check character to a 17-digit body. It is written
// independently of the package (left to right, weights 2^(18-i) mod 11) to cross-check it.
func withCheck(t testing.TB, body string) string {
	t.Helper()
	if len(body) != 17 {
		t.Fatalf("withCheck: body must be 17 digits, got %d", len(body))
	}
	sum := 0
	for i := 0; i < 17; i++ {
		w := 1
		for k := 0; k < 17-i; k++ { // 2^(17-i) for 0-based i == 2^(18-pos) for 1-based pos
			w = w * 2 % 11
		}
		sum += int(body[i]-'0') * w
	}
	// The full weighted sum including the check value (weight 1) must be ≡ 1 mod 11.
	v := (12 - sum%11) % 11
	if v == 10 {
		return body + "X"
	}
	return body + string(rune('0'+v))
}

// withMRZ appends the ICAO 9303 7-3-1 check digit, computed independently of the package.
func withMRZ(t testing.TB, body string) string {
	t.Helper()
	sum := 0
	for i, c := range body {
		v := 0
		switch {
		case c >= '0' && c <= '9':
			v = int(c - '0')
		case c >= 'A' && c <= 'Z':
			v = int(c-'A') + 10
		default:
			t.Fatalf("withMRZ: bad character at %d", i)
		}
		sum += v * []int{7, 3, 1}[i%3]
	}
	return body + string(rune('0'+sum%10))
}

func day(y, m, d int) time.Time { return time.Date(y, time.Month(m), d, 0, 0, 0, 0, ChinaTime) }

func TestCheckHelpersAgreeWithPackage(t *testing.T) {
	for _, n := range []string{"11010519491231002X", "500154199301135886", "440308199901101512", "810000199408230021", "830000199201300022"} {
		if got := withCheck(t, n[:17]); got != n {
			t.Errorf("withCheck(%s): want %s, got %s", n[:17], n, got)
		}
		if c, ok := CheckChar(n[:17]); !ok || c != n[17] {
			t.Errorf("CheckChar(%s): want %c, got %c (ok=%v)", n[:17], n[17], c, ok)
		}
	}
	if _, ok := CheckChar("1234"); ok {
		t.Errorf("CheckChar of a short body: want ok=false, got true")
	}
	// The old permanent residence card vector: KAZ 1100 901231 0 5. The 7-3-1 sum over
	// the first 14 characters is 265, so the check digit is 5 — the vector and the
	// documented layout agree.
	if got := withMRZ(t, "KAZ11009012310"); got != "KAZ110090123105" {
		t.Errorf("withMRZ(KAZ11009012310): want KAZ110090123105, got %s", got)
	}
	if d, ok := MRZCheckDigit("KAZ11009012310"); !ok || d != '5' {
		t.Errorf("MRZCheckDigit(KAZ11009012310): want 5, got %c (ok=%v)", d, ok)
	}
	// ICAO 9303 Part 3 specimen: document number L898902C< has check digit 3.
	if d, ok := MRZCheckDigit("L898902C<"); !ok || d != '3' {
		t.Errorf("MRZCheckDigit(L898902C<): want 3, got %c (ok=%v)", d, ok)
	}
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name            string
		in              string
		kind            Kind
		number          string
		birth           time.Time
		sex             Sex
		region          Region
		nationalityCode string
		nationality     string
		unknown         bool
	}{
		// Samples from domain.md §2.
		{"resident X check", "11010519491231002X", ResidentID, "11010519491231002X", day(1949, 12, 31), Female, "", "", "中国", false},
		{"resident lower-case x", "11010519491231002x", ResidentID, "11010519491231002X", day(1949, 12, 31), Female, "", "", "中国", false},
		{"resident Chongqing", "500154199301135886", ResidentID, "500154199301135886", day(1993, 1, 13), Female, "", "", "中国", false},
		{"resident Shenzhen male", "440308199901101512", ResidentID, "440308199901101512", day(1999, 1, 10), Male, "", "", "中国", false},
		{"permit HK", "810000199408230021", HKMacaoTaiwanPermit, "810000199408230021", day(1994, 8, 23), Female, RegionHongKong, "", "中国香港", false},
		{"permit Taiwan", "830000199201300022", HKMacaoTaiwanPermit, "830000199201300022", day(1992, 1, 30), Female, RegionTaiwan, "", "中国台湾", false},
		{"old permanent residence KAZ", "KAZ110090123105", ForeignPermanentResident15, "KAZ110090123105", day(1990, 12, 31), Female, "", "KAZ", "哈萨克斯坦", false},
		// Constructed.
		{"resident leap day 2000", withCheck(t, "32010220000229001"), ResidentID, withCheck(t, "32010220000229001"), day(2000, 2, 29), Male, "", "", "中国", false},
		{"resident leap day 2004", withCheck(t, "65010220040229004"), ResidentID, withCheck(t, "65010220040229004"), day(2004, 2, 29), Female, "", "", "中国", false},
		{"resident 1900-01-01", withCheck(t, "21010219000101003"), ResidentID, withCheck(t, "21010219000101003"), day(1900, 1, 1), Male, "", "", "中国", false},
		{"resident born today", withCheck(t, "37010220250615005"), ResidentID, withCheck(t, "37010220250615005"), day(2025, 6, 15), Male, "", "", "中国", false},
		{"resident 15", "110105491231002", ResidentID15, "110105491231002", day(1949, 12, 31), Female, "", "", "中国", false},
		{"resident 15 male", "440308990110151", ResidentID15, "440308990110151", day(1999, 1, 10), Male, "", "", "中国", false},
		{"permit Macao", withCheck(t, "82000019900101001"), HKMacaoTaiwanPermit, withCheck(t, "82000019900101001"), day(1990, 1, 1), Male, RegionMacao, "", "中国澳门", false},
		{"foreign 2023 KAZ", "911398199012310021", ForeignPermanentResident, "911398199012310021", day(1990, 12, 31), Female, "", "398", "哈萨克斯坦", false},
		{"foreign 2023 USA Shanghai", withCheck(t, "93184020000101003"), ForeignPermanentResident, withCheck(t, "93184020000101003"), day(2000, 1, 1), Male, "", "840", "美国", false},
		{"foreign 2023 leading-zero code", withCheck(t, "94403619751130007"), ForeignPermanentResident, withCheck(t, "94403619751130007"), day(1975, 11, 30), Male, "", "036", "澳大利亚", false},
		{"foreign 2023 Andorra not in table", withCheck(t, "91102019800505002"), ForeignPermanentResident, withCheck(t, "91102019800505002"), day(1980, 5, 5), Female, "", "020", "", true},
		{"old permanent residence USA", withMRZ(t, "USA3101850615"+"1"), ForeignPermanentResident15, withMRZ(t, "USA31018506151"), day(1985, 6, 15), Male, "", "USA", "美国", false},
		{"old permanent residence born 2010", withMRZ(t, "JPN44011003052"), ForeignPermanentResident15, withMRZ(t, "JPN44011003052"), day(2010, 3, 5), Female, "", "JPN", "日本", false},
		{"old permanent residence YY=24 is 1924", withMRZ(t, "DEU11002401013"), ForeignPermanentResident15, withMRZ(t, "DEU11002401013"), day(1924, 1, 1), Male, "", "DEU", "德国", false},
		{"old permanent residence Andorra not in table", withMRZ(t, "AND31017007074"), ForeignPermanentResident15, withMRZ(t, "AND31017007074"), day(1970, 7, 7), Female, "", "AND", "", true},
		// Normalisation: white space, full-width characters, lower case.
		{"full-width and spaces", " １１０１０５１９４９１２３１００２ｘ\u3000", ResidentID, "11010519491231002X", day(1949, 12, 31), Female, "", "", "中国", false},
		{"lower-case alpha-3", "kaz110090123105", ForeignPermanentResident15, "KAZ110090123105", day(1990, 12, 31), Female, "", "KAZ", "哈萨克斯坦", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.in, now)
			if err != nil {
				t.Fatalf("want no error, got %v", err)
			}
			want := ID{Kind: tt.kind, Number: tt.number, BirthDate: tt.birth, Sex: tt.sex, Region: tt.region,
				NationalityCode: tt.nationalityCode, Nationality: tt.nationality, NationalityUnknown: tt.unknown}
			if id != want {
				t.Errorf("want %+v, got %+v", fields(want), fields(id))
			}
		})
	}
}

// fields prints an ID with its number, bypassing the masking String method.
func fields(id ID) string {
	return fmt.Sprintf("{%s %s %s %s %q %q %q %v}", id.Kind, id.Number, id.BirthDate.Format(time.DateOnly),
		id.Sex, id.Region, id.NationalityCode, id.Nationality, id.NationalityUnknown)
}

func TestParseInvalid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		code ErrorCode
	}{
		{"empty", "", CodeEmpty},
		{"blank", "  \t ", CodeEmpty},
		{"too short", "1101051949", CodeLength},
		{"17 digits", "11010519491231002", CodeLength},
		{"19 digits", "110105194912310021X", CodeLength},
		{"punctuation", "110105-19491231-002X", CodeFormat},
		{"Chinese characters", "身份证号码", CodeFormat},
		{"letter inside", "1101051949123100AX", CodeFormat},
		{"check char not digit or X", "11010519491231002Y", CodeFormat},
		{"X not last", "1101051949123100X2", CodeFormat},
		{"15 mixed", "KA1110090123105", CodeFormat},
		{"15 digits with letter", "11010549123100X", CodeFormat},
		{"old permanent residence X check", "KAZ11009012310X", CodeFormat},

		{"wrong check digit", "110105194912310021", CodeCheckDigit},
		{"wrong check digit Chongqing", "500154199301135885", CodeCheckDigit},
		{"wrong check digit permit", "810000199408230022", CodeCheckDigit},
		{"wrong check digit 2023", "911398199012310022", CodeCheckDigit},
		{"wrong check digit old permanent residence", "KAZ110090123104", CodeCheckDigit},
		{"transposed digits", "11010519491213002X", CodeCheckDigit},

		{"Feb 30", withCheck(t, "11010519490230002"), CodeDate},
		{"Feb 29 non-leap 2001", withCheck(t, "11010520010229001"), CodeDate},
		{"Feb 29 1900 (century, not leap)", withCheck(t, "11010519000229001"), CodeDate},
		{"Apr 31", withCheck(t, "11010519900431001"), CodeDate},
		{"month 13", withCheck(t, "11010519901301001"), CodeDate},
		{"month 00", withCheck(t, "11010519900001001"), CodeDate},
		{"day 00", withCheck(t, "11010519900100001"), CodeDate},
		{"before 1900", withCheck(t, "11010518991231001"), CodeDate},
		{"future birth date", withCheck(t, "11010520250616001"), CodeFutureDate},
		{"far future", withCheck(t, "11010530000101001"), CodeFutureDate},
		{"15 Feb 30", "110105490230002", CodeDate},
		{"15 Feb 29 1900", "110105000229001", CodeDate},
		{"permit impossible date", withCheck(t, "81000019930229002"), CodeDate},
		{"permit future date", withCheck(t, "83000020300101002"), CodeFutureDate},
		{"2023 impossible date", withCheck(t, "91139819900230002"), CodeDate},
		{"2023 future date", withCheck(t, "91139820260101002"), CodeFutureDate},
		{"old permanent residence month 00", "KAZ110090023105", CodeDate},
		{"old permanent residence Feb 30", withMRZ(t, "KAZ11009002301"), CodeDate},

		{"province 00", withCheck(t, "00010519491231002"), CodeProvince},
		{"province 16", withCheck(t, "16010519491231002"), CodeProvince},
		{"province 71 (Taiwan) on resident ID", withCheck(t, "71000019491231002"), CodeProvince},
		{"province 55", withCheck(t, "55010519491231002"), CodeProvince},
		{"15 bad province", "990105491231002", CodeProvince},
		{"2023 bad province", withCheck(t, "99939819900101002"), CodeProvince},
		{"2023 province 81", withCheck(t, "98139819900101002"), CodeProvince},
		{"old permanent residence bad province", "KAZ990090123105", CodeProvince},

		{"permit 810001", withCheck(t, "81000119940823002"), CodePrefix},
		{"permit 820100", withCheck(t, "82010019940823002"), CodePrefix},
		{"permit 840000", withCheck(t, "84000019940823002"), CodePrefix},
		{"permit 800000", withCheck(t, "80000019940823002"), CodePrefix},

		{"2023 nationality 000", withCheck(t, "91100019900101002"), CodeNationality},
		{"2023 nationality 999", withCheck(t, "91199919900101002"), CodeNationality},
		{"2023 nationality 001 (M.49 World)", withCheck(t, "91100119900101002"), CodeNationality},
		{"2023 nationality China", withCheck(t, "91115619900101002"), CodeNationality},
		{"2023 nationality Hong Kong", withCheck(t, "91134419900101002"), CodeNationality},
		{"old permanent residence KAA", "KAA110090123105", CodeNationality},
		{"old permanent residence CHN", withMRZ(t, "CHN11009012310"), CodeNationality},
		{"old permanent residence TWN", withMRZ(t, "TWN11009012310"), CodeNationality},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := Parse(tt.in, now)
			if err == nil {
				t.Fatalf("want error %s, got ID %+v", tt.code, fields(id))
			}
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("want *Error, got %T", err)
			}
			if e.Code != tt.code || e.Field != FieldIDNumber {
				t.Errorf("want code %s field %s, got code %s field %s (%v)", tt.code, FieldIDNumber, e.Code, e.Field, err)
			}
			if id != (ID{}) {
				t.Errorf("want zero ID with an error, got %+v", fields(id))
			}
			assertNoNumber(t, err, tt.in)
		})
	}
}

// assertNoNumber fails if the error text contains the number or any 8-character run of it.
func assertNoNumber(t *testing.T, err error, in string) {
	t.Helper()
	msg := err.Error()
	n := normalise(in)
	if len(n) >= 8 && strings.Contains(msg, n) {
		t.Errorf("error text contains the full number: %q", msg)
	}
	for i := 0; i+8 <= len(n); i++ {
		if strings.Contains(msg, n[i:i+8]) {
			t.Errorf("error text contains part %q of the number: %q", Mask(n[i:i+8]), msg)
		}
	}
}

func TestFutureDateUsesChinaTime(t *testing.T) {
	n := withCheck(t, "11010520250615002") // born 2025-06-15
	// 2025-06-14 17:00 UTC is already 2025-06-15 01:00 in China: born today, accepted.
	if _, err := Parse(n, time.Date(2025, 6, 14, 17, 0, 0, 0, time.UTC)); err != nil {
		t.Errorf("at 01:00 China time on the birth day: want no error, got %v", err)
	}
	// 2025-06-14 15:00 UTC is 23:00 on the 14th in China: the birth date is tomorrow.
	_, err := Parse(n, time.Date(2025, 6, 14, 15, 0, 0, 0, time.UTC))
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeFutureDate {
		t.Errorf("at 23:00 China time the day before: want %s, got %v", CodeFutureDate, err)
	}
}

func TestUpgrade15To18(t *testing.T) {
	tests := []struct {
		in, want string
		code     ErrorCode
	}{
		{"110105491231002", "11010519491231002X", ""},
		{"440308990110151", withCheck(t, "44030819990110151"), ""},
		{" 500154930113588 ", withCheck(t, "50015419930113588"), ""},
		{"11010519491231002X", "", CodeFormat},
		{"KAZ110090123105", "", CodeFormat},
		{"110105490230002", "", CodeDate},
		{"990105491231002", "", CodeProvince},
	}
	for _, tt := range tests {
		got, err := Upgrade15To18(tt.in)
		if tt.code != "" {
			var e *Error
			if !errors.As(err, &e) || e.Code != tt.code {
				t.Errorf("Upgrade15To18(%s): want error %s, got %q, %v", tt.in, tt.code, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Upgrade15To18(%s): want %s, got %s (%v)", tt.in, tt.want, got, err)
			continue
		}
		// The upgraded number parses as the same person.
		id15, _ := Parse(tt.in, now)
		id18, err := Parse(got, now)
		if err != nil {
			t.Errorf("Parse(upgraded %s): want no error, got %v", got, err)
			continue
		}
		if id18.BirthDate != id15.BirthDate || id18.Sex != id15.Sex || id18.Kind != ResidentID {
			t.Errorf("upgraded %s: want birth %v sex %v, got %v %v", got, id15.BirthDate, id15.Sex, id18.BirthDate, id18.Sex)
		}
		if c := id15.Canonical(); c != got {
			t.Errorf("Canonical of %s: want %s, got %s", tt.in, got, c)
		}
		if c := id18.Canonical(); c != got {
			t.Errorf("Canonical of %s: want %s, got %s", got, got, c)
		}
	}
}

func TestRequiresOutletChannel(t *testing.T) {
	want := map[Kind]bool{
		KindUnknown: false, ResidentID: false, ResidentID15: false, HKMacaoTaiwanPermit: false,
		ForeignPermanentResident: true, ForeignPermanentResident15: true,
	}
	for k, w := range want {
		if got := k.RequiresOutletChannel(); got != w {
			t.Errorf("%s.RequiresOutletChannel(): want %v, got %v", k, w, got)
		}
	}
}

func TestKindText(t *testing.T) {
	for k := ResidentID; k <= ForeignPermanentResident15; k++ {
		b, err := k.MarshalText()
		if err != nil {
			t.Fatalf("MarshalText(%d): want no error, got %v", int(k), err)
		}
		var back Kind
		if err := back.UnmarshalText(b); err != nil || back != k {
			t.Errorf("UnmarshalText(%s): want %d, got %d (%v)", b, int(k), int(back), err)
		}
	}
	if _, err := KindUnknown.MarshalText(); err == nil {
		t.Errorf("MarshalText(KindUnknown): want error, got nil")
	}
	var k Kind
	if err := k.UnmarshalText([]byte("passport")); err == nil {
		t.Errorf("UnmarshalText(passport): want error, got nil")
	}
	if got := Kind(42).String(); got != "Kind(42)" {
		t.Errorf("Kind(42).String(): want Kind(42), got %s", got)
	}
	if Male.Code() != "1" || Female.Code() != "2" || SexUnknown.Code() != "0" {
		t.Errorf("sex codes: want 1 2 0, got %s %s %s", Male.Code(), Female.Code(), SexUnknown.Code())
	}
}

func TestIDFormattingMasksNumber(t *testing.T) {
	id, err := Parse("11010519491231002X", now)
	if err != nil {
		t.Fatal(err)
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		if got := fmt.Sprintf(verb, id); strings.Contains(got, id.Number) {
			t.Errorf("Sprintf(%s): want the number masked, got %s", verb, got)
		}
	}
	if got := id.Masked(); got != "110***********002X" {
		t.Errorf("Masked: want 110***********002X, got %s", got)
	}
	if got := Mask("KAZ110090123105"); got != "KAZ********3105" {
		t.Errorf("Mask(15): want KAZ********3105, got %s", got)
	}
	if got := Mask("1234567"); got != "*******" {
		t.Errorf("Mask(short): want *******, got %s", got)
	}
}

func TestNationalityDerivation(t *testing.T) {
	tests := []struct {
		in, nationality, code string
		unknown               bool
	}{
		{"11010519491231002X", "中国", "", false},
		{"110105491231002", "中国", "", false},
		{"810000199408230021", "中国香港", "", false},
		{withCheck(t, "82000019900101001"), "中国澳门", "", false},
		{"830000199201300022", "中国台湾", "", false},
		{"911398199012310021", "哈萨克斯坦", "398", false},
		{withCheck(t, "91141019900101002"), "韩国", "410", false},
		{withCheck(t, "91182619900101002"), "英国", "826", false},
		{withCheck(t, "91164319900101002"), "俄罗斯", "643", false},
		{withCheck(t, "91149619900101002"), "蒙古国", "496", false},
		{withCheck(t, "91102019900101002"), "", "020", true},
		{"KAZ110090123105", "哈萨克斯坦", "KAZ", false},
		{withMRZ(t, "GBR11009012310"), "英国", "GBR", false},
		{withMRZ(t, "PRK21019012310"), "朝鲜", "PRK", false},
		{withMRZ(t, "ISL11009012310"), "冰岛", "ISL", false},
		{withMRZ(t, "MCO11009012310"), "", "MCO", true},
	}
	for _, tt := range tests {
		id, err := Parse(tt.in, now)
		if err != nil {
			t.Errorf("Parse(%s): want no error, got %v", tt.in, err)
			continue
		}
		if id.Nationality != tt.nationality || id.NationalityCode != tt.code || id.NationalityUnknown != tt.unknown {
			t.Errorf("Parse(%s): want nationality %q code %q unknown %v, got %q %q %v",
				tt.in, tt.nationality, tt.code, tt.unknown, id.Nationality, id.NationalityCode, id.NationalityUnknown)
		}
	}
}

// TestCountryTable checks every entry against the ISO 3166-1 data in x/text, that both
// keys resolve, and that the countries the brief lists are present.
func TestCountryTable(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range countries {
		if seen[c.alpha3] || seen[c.numeric] {
			t.Errorf("duplicate entry %s/%s", c.alpha3, c.numeric)
		}
		seen[c.alpha3], seen[c.numeric] = true, true
		r, err := language.ParseRegion(c.alpha3)
		if err != nil || !r.IsCountry() || r.ISO3() != c.alpha3 || fmt.Sprintf("%03d", r.M49()) != c.numeric {
			t.Errorf("%s: want ISO 3166-1 numeric %s, got region %v numeric %03d (%v)", c.alpha3, c.numeric, r, r.M49(), err)
		}
		if c.name == "" {
			t.Errorf("%s: want a Chinese name, got empty", c.alpha3)
		}
		for _, key := range []string{c.alpha3, c.numeric} {
			if n, ok := NationalityName(key); !ok || n != c.name {
				t.Errorf("NationalityName(%s): want %s, got %q (%v)", key, c.name, n, ok)
			}
		}
	}
	required := strings.Fields(`US CA GB FR DE IT ES RU JP KR KP SG MY TH VN PH ID IN PK BD NP MM LA KH MN KZ UZ KG
		AU NZ BR AR MX ZA EG NG ET KE TR IR IQ SA AE IL UA PL NL BE SE NO DK FI CH AT PT GR IE CZ HU`)
	for _, a2 := range required {
		r := language.MustParseRegion(a2)
		if _, ok := NationalityName(r.ISO3()); !ok {
			t.Errorf("country %s (%s): want it in the table, missing", a2, r.ISO3())
		}
	}
	if len(countries) < 60 {
		t.Errorf("want at least 60 countries, got %d", len(countries))
	}
	if _, ok := NationalityName("XYZ"); ok {
		t.Errorf("NationalityName(XYZ): want not found, got found")
	}
}

func TestProvinceName(t *testing.T) {
	if n, ok := ProvinceName("44"); !ok || n != "广东" {
		t.Errorf("ProvinceName(44): want 广东, got %q %v", n, ok)
	}
	for _, c := range []string{"71", "81", "82", "83", "00"} {
		if _, ok := ProvinceName(c); ok {
			t.Errorf("ProvinceName(%s): want not a mainland province, got one", c)
		}
	}
	if got := len(provinceCodes); got != 31 {
		t.Errorf("mainland province-level divisions: want 31, got %d", got)
	}
}
