// Package identity recognises and validates the identity documents an applicant for a
// social security card (社会保障卡) may present, and the names that go onto the card.
//
// Document kinds (facts and sources: ../shared/ref/domain.md §2):
//
//   - ResidentID: 居民身份证, GB 11643-1999, 18 characters: 6-digit address code
//     (GB/T 2260) + birth date YYYYMMDD + 3-digit order (odd = male) + ISO 7064 MOD 11-2
//     check character ('X' stands for 10).
//   - ResidentID15: the first-generation number, GB 11643-1989, 15 digits: address code +
//     birth date YYMMDD (always 19YY) + order, no check digit. Upgrade15To18 converts it.
//   - HKMacaoTaiwanPermit: 港澳台居民居住证 (issued since 2018-09), 18 characters with the
//     same layout and check as ResidentID but the address code fixed to 810000 (香港),
//     820000 (澳门) or 830000 (台湾).
//   - ForeignPermanentResident: 外国人永久居留身份证, 2023 format (issued from 2023-12-01):
//     "9" + 2-digit province of the accepting office + 3-digit ISO 3166-1 numeric
//     nationality + birth YYYYMMDD + 3-digit sequence (odd last digit = male) + MOD 11-2
//     check.
//   - ForeignPermanentResident15: the older 15-character card: ISO 3166-1 alpha-3
//     nationality + 4-digit accepting-office code + birth YYMMDD + 1 sequence digit
//     (odd = male) + 1 check digit computed with the ICAO 9303 MRZ 7-3-1 weighting.
//
// Every date rule is evaluated in China time (UTC+8) regardless of the server's zone.
// Errors never contain the number they reject: ID numbers are personal data.
//
// The package has no I/O; it is safe for concurrent use.
package identity

import (
	"fmt"
	"strings"
	"time"
)

// ChinaTime is the fixed UTC+8 zone every date rule uses. A fixed zone rather than
// time.LoadLocation("Asia/Shanghai") keeps the package independent of the host's tzdata;
// China has had no daylight saving time since 1991.
var ChinaTime = time.FixedZone("CST", 8*60*60)

// FieldIDNumber is the Field of every error Parse returns.
const FieldIDNumber = "idNumber"

// Kind is the type of identity document a number belongs to.
type Kind int

// The document kinds. The zero value is KindUnknown, which Parse never returns.
const (
	KindUnknown Kind = iota
	ResidentID
	ResidentID15
	HKMacaoTaiwanPermit
	ForeignPermanentResident
	ForeignPermanentResident15
)

var kindNames = [...]string{
	KindUnknown:                "unknown",
	ResidentID:                 "resident_id",
	ResidentID15:               "resident_id_15",
	HKMacaoTaiwanPermit:        "hk_macao_taiwan_permit",
	ForeignPermanentResident:   "foreign_permanent_resident",
	ForeignPermanentResident15: "foreign_permanent_resident_15",
}

// String returns the stable snake_case name of the kind (also its JSON form).
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return fmt.Sprintf("Kind(%d)", int(k))
	}
	return kindNames[k]
}

// MarshalText encodes the kind as its String form.
func (k Kind) MarshalText() ([]byte, error) {
	if k <= KindUnknown || int(k) >= len(kindNames) {
		return nil, fmt.Errorf("identity: cannot marshal %v", k)
	}
	return []byte(kindNames[k]), nil
}

// UnmarshalText decodes a kind from its String form.
func (k *Kind) UnmarshalText(b []byte) error {
	for i, n := range kindNames {
		if i != int(KindUnknown) && n == string(b) {
			*k = Kind(i)
			return nil
		}
	}
	return fmt.Errorf("identity: unknown document kind %q", b)
}

// RequiresOutletChannel reports whether an application with this document may only be
// accepted at a community outlet (社区网点): true for both foreign permanent residence
// ID kinds (004 §2(11)2). Which channel a request came through is the caller's business.
func (k Kind) RequiresOutletChannel() bool {
	return k == ForeignPermanentResident || k == ForeignPermanentResident15
}

// Sex as encoded in the document's order/sequence digits.
type Sex int

// Sex values. The codes follow GB/T 2261.1 (1 male, 2 female), which is also what the
// card's EF06 sex byte holds.
const (
	SexUnknown Sex = iota
	Male
	Female
)

// String returns "male", "female" or "unknown".
func (s Sex) String() string {
	switch s {
	case Male:
		return "male"
	case Female:
		return "female"
	}
	return "unknown"
}

// Code returns the GB/T 2261.1 code: "1" male, "2" female, "0" unknown.
func (s Sex) Code() string {
	switch s {
	case Male:
		return "1"
	case Female:
		return "2"
	}
	return "0"
}

// MarshalText encodes the sex as its String form.
func (s Sex) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes "male", "female" or "unknown".
func (s *Sex) UnmarshalText(b []byte) error {
	switch string(b) {
	case "male":
		*s = Male
	case "female":
		*s = Female
	case "unknown", "":
		*s = SexUnknown
	default:
		return fmt.Errorf("identity: unknown sex %q", b)
	}
	return nil
}

// Region is the home region of a 港澳台居民居住证 holder (ISO 3166-1 alpha-2 style codes).
type Region string

// Regions of the residence permit kind; empty for the other kinds.
const (
	RegionHongKong Region = "HK" // 810000
	RegionMacao    Region = "MO" // 820000
	RegionTaiwan   Region = "TW" // 830000
)

// NationalityChina is the nationality (国家/地区) of resident ID holders.
const NationalityChina = "中国"

// ID is a parsed, validated identity document number.
type ID struct {
	Kind Kind `json:"kind"`
	// Number is the normalised number: ASCII, upper-case, no surrounding space.
	Number string `json:"number"`
	// BirthDate is midnight of the birth date in ChinaTime.
	BirthDate time.Time `json:"birthDate"`
	Sex       Sex       `json:"sex"`
	// Region is set for HKMacaoTaiwanPermit only.
	Region Region `json:"region,omitempty"`
	// NationalityCode is the ISO 3166-1 code the document carries: numeric ("398") for
	// ForeignPermanentResident, alpha-3 ("KAZ") for ForeignPermanentResident15, empty for
	// the other kinds (whose nationality is implied).
	NationalityCode string `json:"nationalityCode,omitempty"`
	// Nationality is the Chinese display name of the country or region (国家/地区):
	// 中国 for resident IDs, 中国香港/中国澳门/中国台湾 for permits, the built-in table's
	// name for foreigners. Empty when NationalityUnknown.
	Nationality string `json:"nationality"`
	// NationalityUnknown is true when the document carries a valid ISO 3166-1 code that
	// the built-in name table lacks: the caller should ask the applicant for 国家/地区.
	NationalityUnknown bool `json:"nationalityUnknown,omitempty"`
}

// Canonical returns the number a person is keyed by: the 18-digit form for ResidentID15
// (see Upgrade15To18), Number for every other kind. Use it for one-person-one-card checks
// so that a 15-digit and an 18-digit number of the same person collide.
func (id ID) Canonical() string {
	if id.Kind == ResidentID15 {
		if n, err := upgrade(id.Number); err == nil {
			return n
		}
	}
	return id.Number
}

// Masked returns the number with all but the first 3 and last 4 characters replaced by
// '*' (110***********1234), the platform's display rule for ID numbers.
func (id ID) Masked() string { return Mask(id.Number) }

// String describes the ID with the number masked, so that logging an ID with %v or %s
// does not leak the full number.
func (id ID) String() string {
	return fmt.Sprintf("%s %s", id.Kind, id.Masked())
}

// GoString masks the number for %#v as well.
func (id ID) GoString() string {
	return fmt.Sprintf("identity.ID{Kind:%s, Number:%q}", id.Kind, id.Masked())
}

// Mask keeps the first 3 and last 4 characters of s and replaces the rest with '*'.
// Strings of 7 characters or fewer are masked entirely.
func Mask(s string) string {
	r := []rune(s)
	if len(r) <= 7 {
		return strings.Repeat("*", len(r))
	}
	return string(r[:3]) + strings.Repeat("*", len(r)-7) + string(r[len(r)-4:])
}

// ErrorCode classifies a validation failure for callers that branch on it.
type ErrorCode string

// Error codes.
const (
	CodeEmpty       ErrorCode = "empty"
	CodeLength      ErrorCode = "length"
	CodeFormat      ErrorCode = "format"
	CodeProvince    ErrorCode = "province"
	CodePrefix      ErrorCode = "prefix"
	CodeNationality ErrorCode = "nationality"
	CodeDate        ErrorCode = "date"
	CodeFutureDate  ErrorCode = "future_date"
	CodeCheckDigit  ErrorCode = "check_digit"
	CodeCharacter   ErrorCode = "character"
	CodeEncoding    ErrorCode = "encoding"
	CodeTooLong     ErrorCode = "too_long"
)

// Error is a validation failure of one input field. Reason is a sentence for the caller
// (it fits an RFC 9457 invalid-params entry) and never contains the rejected value.
type Error struct {
	Field  string    `json:"field"`
	Reason string    `json:"reason"`
	Code   ErrorCode `json:"code"`
}

func (e *Error) Error() string { return e.Field + ": " + e.Reason }

func idErr(code ErrorCode, format string, args ...any) *Error {
	return &Error{Field: FieldIDNumber, Code: code, Reason: fmt.Sprintf(format, args...)}
}

// Parse recognises the kind of raw and validates it. Surrounding white space is ignored,
// full-width ASCII (as typed with a Chinese input method) is folded to ASCII and letters
// are upper-cased, so "11010519491231002x" is accepted as "11010519491231002X". now is
// the reference for "birth date not in the future" and is read in China time.
//
// The error is always an *Error with Field "idNumber".
func Parse(raw string, now time.Time) (ID, error) {
	s := normalise(raw)
	if s == "" {
		return ID{}, idErr(CodeEmpty, "is required")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isDigit(c) && !isUpper(c) {
			return ID{}, idErr(CodeFormat, "may contain only digits and letters (character %d is neither)", runeIndex(s, i)+1)
		}
	}
	today := dateOf(now)
	switch len(s) {
	case 18:
		return parse18(s, today)
	case 15:
		if isUpper(s[0]) || isUpper(s[1]) || isUpper(s[2]) {
			return parseFPR15(s, today)
		}
		return parseResident15(s)
	}
	return ID{}, idErr(CodeLength, "must be 18 characters (15 for first-generation resident IDs and old permanent residence cards), got %d", len(s))
}

// Upgrade15To18 converts a first-generation 15-digit resident ID number into the 18-digit
// form: the century "19" is inserted before the birth year and the MOD 11-2 check
// character appended. The input is validated as ResidentID15 first.
func Upgrade15To18(id15 string) (string, error) {
	s := normalise(id15)
	if len(s) != 15 || !allDigits(s) {
		return "", idErr(CodeFormat, "must be a 15-digit first-generation resident ID number")
	}
	if _, err := parseResident15(s); err != nil {
		return "", err
	}
	return upgrade(s)
}

func upgrade(s string) (string, error) {
	body := s[:6] + "19" + s[6:]
	c, ok := mod11_2(body)
	if !ok {
		return "", idErr(CodeFormat, "must be a 15-digit first-generation resident ID number")
	}
	return body + string(c), nil
}

// CheckChar returns the ISO 7064 MOD 11-2 check character ('0'–'9' or 'X') for the first
// 17 digits of an 18-character number (GB 11643-1999; also used by the residence permits
// and the 2023 permanent residence ID). ok is false unless body is exactly 17 digits.
func CheckChar(body string) (c byte, ok bool) { return mod11_2(body) }

// mod11_2: weights w_i = 2^(18-i) mod 11 for positions i = 1..17; r = Σ a_i·w_i mod 11;
// the check character is "10X98765432"[r] (so that the full sum including the check value
// is ≡ 1 mod 11).
func mod11_2(body string) (byte, bool) {
	if len(body) != 17 {
		return 0, false
	}
	sum, w := 0, 1
	// Walk right to left: position 17 has weight 2, then 4, 8, 16≡5, ...
	for i := 16; i >= 0; i-- {
		c := body[i]
		if !isDigit(c) {
			return 0, false
		}
		w = w * 2 % 11
		sum += int(c-'0') * w
	}
	return "10X98765432"[sum%11], true
}

// MRZCheckDigit computes the ICAO 9303 check digit over s: characters valued 0–9 for
// digits, 10–35 for A–Z and 0 for the filler '<', weighted 7, 3, 1 repeating, summed
// modulo 10. ok is false if s holds any other character.
func MRZCheckDigit(s string) (d byte, ok bool) {
	weights := [3]int{7, 3, 1}
	sum := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		var v int
		switch {
		case isDigit(c):
			v = int(c - '0')
		case isUpper(c):
			v = int(c-'A') + 10
		case c == '<':
			v = 0
		default:
			return 0, false
		}
		sum += v * weights[i%3]
	}
	return byte('0' + sum%10), true
}

// provinceCodes are the first two digits of GB/T 2260 province-level divisions of the
// mainland: 11–15, 21–23, 31–37, 41–46, 50–54, 61–65. 71 (台湾省) and 81/82 (香港/澳门) are
// deliberately absent: residents of those regions hold residence permits (81/82/83).
var provinceCodes = map[string]string{
	"11": "北京", "12": "天津", "13": "河北", "14": "山西", "15": "内蒙古",
	"21": "辽宁", "22": "吉林", "23": "黑龙江",
	"31": "上海", "32": "江苏", "33": "浙江", "34": "安徽", "35": "福建", "36": "江西", "37": "山东",
	"41": "河南", "42": "湖北", "43": "湖南", "44": "广东", "45": "广西", "46": "海南",
	"50": "重庆", "51": "四川", "52": "贵州", "53": "云南", "54": "西藏",
	"61": "陕西", "62": "甘肃", "63": "青海", "64": "宁夏", "65": "新疆",
}

// ProvinceName returns the short name of the mainland province-level division whose
// GB/T 2260 code starts with the two digits code ("44" → "广东").
func ProvinceName(code string) (string, bool) {
	n, ok := provinceCodes[code]
	return n, ok
}

var permitPrefixes = map[string]struct {
	region      Region
	nationality string
}{
	"810000": {RegionHongKong, "中国香港"},
	"820000": {RegionMacao, "中国澳门"},
	"830000": {RegionTaiwan, "中国台湾"},
}

func parse18(s string, today civilDate) (ID, error) {
	if !allDigits(s[:17]) || !(isDigit(s[17]) || s[17] == 'X') {
		return ID{}, idErr(CodeFormat, "must be 17 digits followed by a digit or X")
	}
	id := ID{Number: s}
	switch {
	case s[0] == '9':
		id.Kind = ForeignPermanentResident
		if _, ok := provinceCodes[s[1:3]]; !ok {
			return ID{}, idErr(CodeProvince, "characters 2-3 are not a valid province code of the accepting office")
		}
		id.NationalityCode = s[3:6]
		if e := setForeignNationality(&id, s[3:6]); e != nil {
			return ID{}, e
		}
	case s[0] == '8':
		p, ok := permitPrefixes[s[:6]]
		if !ok {
			return ID{}, idErr(CodePrefix, "a residence permit number must start with 810000, 820000 or 830000")
		}
		id.Kind = HKMacaoTaiwanPermit
		id.Region, id.Nationality = p.region, p.nationality
	default:
		if _, ok := provinceCodes[s[:2]]; !ok {
			return ID{}, idErr(CodeProvince, "the first two digits are not a valid province code")
		}
		id.Kind = ResidentID
		id.Nationality = NationalityChina
	}
	d, e := birthDate(s[6:14], today)
	if e != nil {
		return ID{}, e
	}
	id.BirthDate = d
	id.Sex = sexOf(s[16])
	if c, _ := mod11_2(s[:17]); c != s[17] {
		return ID{}, idErr(CodeCheckDigit, "check character (the 18th) does not match; the number has a typo")
	}
	return id, nil
}

func parseResident15(s string) (ID, error) {
	if !allDigits(s) {
		return ID{}, idErr(CodeFormat, "a 15-character number must be 15 digits or 3 letters followed by 12 digits")
	}
	if _, ok := provinceCodes[s[:2]]; !ok {
		return ID{}, idErr(CodeProvince, "the first two digits are not a valid province code")
	}
	// Any 19YY date is in the past, so the "future" reference does not matter here.
	d, e := birthDate("19"+s[6:12], civilDate{9999, 12, 31})
	if e != nil {
		return ID{}, e
	}
	return ID{Kind: ResidentID15, Number: s, BirthDate: d, Sex: sexOf(s[14]), Nationality: NationalityChina}, nil
}

// lastOldPermitIssue is the last day the 15-character permanent residence card was issued
// (the 2023 format starts on 2023-12-01).
var lastOldPermitIssue = civilDate{2023, 11, 30}

func parseFPR15(s string, today civilDate) (ID, error) {
	if !isUpper(s[0]) || !isUpper(s[1]) || !isUpper(s[2]) || !allDigits(s[3:]) {
		return ID{}, idErr(CodeFormat, "a 15-character number must be 15 digits or 3 letters followed by 12 digits")
	}
	id := ID{Kind: ForeignPermanentResident15, Number: s, NationalityCode: s[:3]}
	if e := setForeignNationality(&id, s[:3]); e != nil {
		return ID{}, e
	}
	if _, ok := provinceCodes[s[3:5]]; !ok {
		return ID{}, idErr(CodeProvince, "characters 4-5 are not a valid province code of the accepting office")
	}
	// The card carries YYMMDD. It was issued 2004–2023, so holders born 2000–2023 exist
	// (children of permanent residents) as well as holders born in the 1900s. Take 20YY
	// when that date is not after both today and the last issue day of this format,
	// otherwise 19YY. A holder born 1900–1923 is read as born a century later; the
	// applicant's passport settles such cases.
	yymmdd := s[7:13]
	d, e := birthDate("20"+yymmdd, minDate(today, lastOldPermitIssue))
	if e != nil && e.Code == CodeFutureDate {
		d, e = birthDate("19"+yymmdd, today)
	}
	if e != nil {
		return ID{}, e
	}
	id.BirthDate = d
	id.Sex = sexOf(s[13])
	if c, _ := MRZCheckDigit(s[:14]); c != s[14] {
		return ID{}, idErr(CodeCheckDigit, "check digit (the 15th character) does not match; the number has a typo")
	}
	return id, nil
}

func setForeignNationality(id *ID, code string) *Error {
	c, ok := lookupCountry(code)
	if !ok {
		return idErr(CodeNationality, "the nationality code is not an ISO 3166-1 country code")
	}
	switch c.alpha3 {
	case "CHN", "HKG", "MAC", "TWN":
		// Chinese citizens hold resident IDs; residents of Hong Kong, Macao and Taiwan hold
		// residence permits.
		return idErr(CodeNationality, "a foreign permanent residence ID cannot carry the code of China or of a region of China")
	}
	id.Nationality = c.name
	id.NationalityUnknown = c.name == ""
	return nil
}

func sexOf(c byte) Sex {
	if (c-'0')%2 == 1 {
		return Male
	}
	return Female
}

// civilDate is a calendar date without a zone.
type civilDate struct{ y, m, d int }

func (a civilDate) after(b civilDate) bool {
	if a.y != b.y {
		return a.y > b.y
	}
	if a.m != b.m {
		return a.m > b.m
	}
	return a.d > b.d
}

func minDate(a, b civilDate) civilDate {
	if a.after(b) {
		return b
	}
	return a
}

func dateOf(t time.Time) civilDate {
	y, m, d := t.In(ChinaTime).Date()
	return civilDate{y, int(m), d}
}

// birthDate validates YYYYMMDD: a real calendar date (leap years included), not before
// 1900-01-01 and not after latest.
func birthDate(s string, latest civilDate) (time.Time, *Error) {
	y := atoi(s[:4])
	m := atoi(s[4:6])
	d := atoi(s[6:8])
	if m < 1 || m > 12 || d < 1 || d > daysIn(y, m) {
		return time.Time{}, idErr(CodeDate, "the birth date encoded in the number is not a real date")
	}
	if y < 1900 {
		return time.Time{}, idErr(CodeDate, "the birth date encoded in the number is before 1900")
	}
	if (civilDate{y, m, d}).after(latest) {
		return time.Time{}, idErr(CodeFutureDate, "the birth date encoded in the number is in the future")
	}
	return time.Date(y, time.Month(m), d, 0, 0, 0, 0, ChinaTime), nil
}

func daysIn(y, m int) int {
	switch m {
	case 2:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// normalise trims white space, folds full-width ASCII (U+FF01–U+FF5E) and the ideographic
// space to ASCII and upper-cases ASCII letters.
// Fold is the one normaliser of ID-number characters, shared by Parse and the blind index
// (shared/pii), so a number typed one way is found when typed another: full-width ASCII (as
// typed with a Chinese input method) becomes ASCII, the ideographic space a space, letters
// upper case, and surrounding space is dropped.
func Fold(raw string) string { return normalise(raw) }

func normalise(raw string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for _, r := range raw {
		switch {
		case r >= 0xFF01 && r <= 0xFF5E:
			r -= 0xFF01 - '!'
		case r == 0x3000:
			r = ' '
		}
		if r >= 'a' && r <= 'z' {
			r -= 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return strings.TrimSpace(b.String())
}

func runeIndex(s string, byteIdx int) int { return len([]rune(s[:byteIdx])) }

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isDigit(s[i]) {
			return false
		}
	}
	return true
}
