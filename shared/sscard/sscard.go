// Package sscard reads the basic data of a social security card (社会保障卡) through any
// APDU transport: the SSSE application's EF05 (card and issuer) and EF06 (holder) records,
// as LD/T 32-2015 lays them out. Parsing is strict: a record whose tag, length or content
// is not what the specification says is an error, and Read returns either a whole card
// or an error, never a half-filled card.
package sscard

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/sscard/platform/shared/identity"
)

// AID is the SSSE application: "sx1.sh." followed by 社会保障 in GBK.
var AID = []byte{0x73, 0x78, 0x31, 0x2E, 0x73, 0x68, 0x2E, 0xC9, 0xE7, 0xBB, 0xE1, 0xB1, 0xA3, 0xD5, 0xCF}

// Short file identifiers of the two files readable without a PIN.
const (
	SFIEF05 = 0x05 // 发卡机构数据: the card and its issuer
	SFIEF06 = 0x06 // 持卡人基本信息: the holder
)

// Field is one record of EF05 or EF06: its record number, its tag and its value length.
type Field struct {
	Name   string
	SFI    byte
	Record byte
	Tag    byte
	Len    int
}

// The records read, with their fixed lengths (LD/T 32.6).
var (
	IdentCode   = Field{"identificationCode", SFIEF05, 1, 0x01, 16} // 卡识别码
	CardType    = Field{"cardType", SFIEF05, 2, 0x02, 1}            // 卡类别
	SpecVersion = Field{"specVersion", SFIEF05, 3, 0x03, 4}         // 规范版本, "2.00"
	IssueDate   = Field{"issueDate", SFIEF05, 5, 0x05, 4}           // 发卡日期, BCD YYYYMMDD
	ExpiryDate  = Field{"expiryDate", SFIEF05, 6, 0x06, 4}          // 卡有效期, BCD YYYYMMDD
	CardNo      = Field{"cardNo", SFIEF05, 7, 0x07, 9}              // 社保卡号, letter + 8 digits
	SSN         = Field{"ssn", SFIEF06, 1, 0x08, 18}                // 社会保障号码
	Name        = Field{"name", SFIEF06, 2, 0x09, 30}               // 姓名, GBK, 0x00-padded
	Sex         = Field{"sex", SFIEF06, 4, 0x0A, 1}                 // 性别 '1' or '2' (record 3 on 1st-gen cards)
	Ethnicity   = Field{"ethnicity", SFIEF06, 5, 0x0B, 1}           // 民族, BCD code
	BirthDate   = Field{"birthDate", SFIEF06, 7, 0x0D, 4}           // 出生日期, BCD YYYYMMDD
)

// Card is the basic data of one card. Name and SSN are the holder's personal data: they
// stay on the kiosk (see Public).
type Card struct {
	IdentificationCode string    `json:"identificationCode"` // 32 hex digits
	RegionCode         string    `json:"regionCode"`         // 发卡地 行政区划, the first 6 digits of the identification code
	CardType           string    `json:"cardType"`
	SpecVersion        string    `json:"specVersion"`
	Generation         int       `json:"generation"` // 1, 2 or 3, from the spec version
	IssueDate          time.Time `json:"issueDate"`
	ExpiryDate         time.Time `json:"expiryDate"`
	CardNo             string    `json:"cardNo"`
	SSN                string    `json:"ssn"`
	Name               string    `json:"name"`
	Sex                string    `json:"sex"` // "1" male, "2" female (GB/T 2261.1)
	Ethnicity          string    `json:"ethnicity"`
	BirthDate          time.Time `json:"birthDate"`
}

// Public is what may leave the kiosk about a card: no name, no social security number.
type Public struct {
	CardNo             string `json:"cardNo"`
	CardType           string `json:"cardType"`
	SpecVersion        string `json:"specVersion"`
	IdentificationCode string `json:"identificationCode"`
	RegionCode         string `json:"regionCode"`
	IssueDate          string `json:"issueDate"`  // YYYY-MM-DD
	ExpiryDate         string `json:"expiryDate"` // YYYY-MM-DD
}

// Public returns the card's data without the holder's personal data.
func (c *Card) Public() Public {
	return Public{CardNo: c.CardNo, CardType: c.CardType, SpecVersion: c.SpecVersion,
		IdentificationCode: c.IdentificationCode, RegionCode: c.RegionCode,
		IssueDate: c.IssueDate.Format(time.DateOnly), ExpiryDate: c.ExpiryDate.Format(time.DateOnly)}
}

// Expired reports whether the card's validity ended before day (China time).
func (c *Card) Expired(now time.Time) bool {
	return now.In(China).After(c.ExpiryDate.AddDate(0, 0, 1))
}

// China is the time zone card dates are written in.
var China = time.FixedZone("CST", 8*3600)

// Transmitter sends one command APDU and returns the response APDU (data + SW1 SW2).
type Transmitter interface {
	Transmit(cmd []byte) ([]byte, error)
}

// StatusError is a card's answer other than 9000.
type StatusError struct {
	Command []byte
	SW      uint16
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("sscard: card answered %04X to %X", e.SW, e.Command[:min(4, len(e.Command))])
}

// FieldError is a record that does not parse: wrong tag, wrong length, bad content.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "sscard: " + e.Field + ": " + e.Reason }

// ErrShortResponse: an answer without its status word.
var ErrShortResponse = errors.New("sscard: response shorter than a status word")

// Exchange sends cmd and returns the response data, following 61xx (GET RESPONSE) and
// 6Cxx (send again with the right Le) as T=0 readers need; any final status other than
// 9000 is a *StatusError.
func Exchange(t Transmitter, cmd []byte) ([]byte, error) {
	var data []byte
	for range 8 { // a card that keeps chaining is broken: stop
		rsp, err := t.Transmit(cmd)
		if err != nil {
			return nil, err
		}
		if len(rsp) < 2 {
			return nil, ErrShortResponse
		}
		body, sw1, sw2 := rsp[:len(rsp)-2], rsp[len(rsp)-2], rsp[len(rsp)-1]
		switch {
		case sw1 == 0x90 && sw2 == 0x00:
			return append(data, body...), nil
		case sw1 == 0x61:
			data = append(data, body...)
			cmd = []byte{0x00, 0xC0, 0x00, 0x00, sw2}
		case sw1 == 0x6C && len(cmd) >= 5:
			cmd = append(bytes.Clone(cmd[:4]), sw2)
		default:
			return nil, &StatusError{Command: cmd, SW: uint16(sw1)<<8 | uint16(sw2)}
		}
	}
	return nil, errors.New("sscard: too many response continuations")
}

// SelectSSSE is the SELECT of the SSSE application by name.
func SelectSSSE() []byte {
	return append([]byte{0x00, 0xA4, 0x04, 0x00, byte(len(AID))}, AID...)
}

// ReadRecord is READ RECORD of f by record number and short file identifier, asking for
// exactly the TLV the record holds.
func ReadRecord(f Field) []byte {
	return []byte{0x00, 0xB2, f.Record, f.SFI<<3 | 0x04, byte(f.Len + 2)}
}

// Read selects the SSSE application and reads the card's EF05 and EF06 records.
func Read(t Transmitter) (*Card, error) {
	if _, err := Exchange(t, SelectSSSE()); err != nil {
		return nil, fmt.Errorf("select SSSE: %w", err)
	}
	read := func(f Field) ([]byte, error) {
		rsp, err := Exchange(t, ReadRecord(f))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", f.Name, err)
		}
		return ParseRecord(f, rsp)
	}
	var c Card
	ident, err := read(IdentCode)
	if err != nil {
		return nil, err
	}
	c.IdentificationCode = fmt.Sprintf("%X", ident)
	c.RegionCode = c.IdentificationCode[:6]
	if !allDigits(c.RegionCode) {
		return nil, &FieldError{IdentCode.Name, "does not start with a region code"}
	}
	v, err := read(CardType)
	if err != nil {
		return nil, err
	}
	if !isAlnum(v[0]) {
		return nil, &FieldError{CardType.Name, fmt.Sprintf("byte %02X is not a type code", v[0])}
	}
	c.CardType = string(v)
	if v, err = read(SpecVersion); err != nil {
		return nil, err
	}
	if v[1] != '.' || v[0] < '1' || v[0] > '3' || !allDigits(string(v[2:])) {
		return nil, &FieldError{SpecVersion.Name, fmt.Sprintf("%q is not a version", v)}
	}
	c.SpecVersion, c.Generation = string(v), int(v[0]-'0')
	for _, d := range []struct {
		f  Field
		to *time.Time
	}{{IssueDate, &c.IssueDate}, {ExpiryDate, &c.ExpiryDate}} {
		if v, err = read(d.f); err != nil {
			return nil, err
		}
		if *d.to, err = bcdDate(d.f, v); err != nil {
			return nil, err
		}
	}
	if !c.ExpiryDate.After(c.IssueDate) {
		return nil, &FieldError{ExpiryDate.Name, "not after the issue date"}
	}
	if v, err = read(CardNo); err != nil {
		return nil, err
	}
	if !ValidCardNo(string(v)) {
		return nil, &FieldError{CardNo.Name, "not a letter and 8 digits"}
	}
	c.CardNo = string(v)

	if v, err = read(SSN); err != nil {
		return nil, err
	}
	if !validSSN(v) {
		return nil, &FieldError{SSN.Name, "not 17 digits and their MOD 11-2 check character"}
	}
	c.SSN = string(v)
	if v, err = read(Name); err != nil {
		return nil, err
	}
	if c.Name, err = decodeName(v); err != nil {
		return nil, err
	}
	sex := Sex
	if c.Generation == 1 {
		sex.Record = 3
	}
	if v, err = read(sex); err != nil {
		return nil, err
	}
	if v[0] != '1' && v[0] != '2' && v[0] != '0' && v[0] != '9' {
		return nil, &FieldError{Sex.Name, fmt.Sprintf("byte %02X is not a sex code", v[0])}
	}
	c.Sex = string(v)
	if v, err = read(Ethnicity); err != nil {
		return nil, err
	}
	if c.Ethnicity = fmt.Sprintf("%02X", v[0]); !allDigits(c.Ethnicity) {
		return nil, &FieldError{Ethnicity.Name, "not a BCD code"}
	}
	if v, err = read(BirthDate); err != nil {
		return nil, err
	}
	if c.BirthDate, err = bcdDate(BirthDate, v); err != nil {
		return nil, err
	}
	return &c, nil
}

// ParseRecord checks that rsp is exactly the TLV of f (its tag, its length, nothing
// more) and returns the value.
func ParseRecord(f Field, rsp []byte) ([]byte, error) {
	switch {
	case len(rsp) < 2:
		return nil, &FieldError{f.Name, fmt.Sprintf("record of %d bytes has no tag and length", len(rsp))}
	case rsp[0] != f.Tag:
		return nil, &FieldError{f.Name, fmt.Sprintf("tag %02X, want %02X", rsp[0], f.Tag)}
	case int(rsp[1]) != f.Len:
		return nil, &FieldError{f.Name, fmt.Sprintf("length %d, want %d", rsp[1], f.Len)}
	case len(rsp) != 2+f.Len:
		return nil, &FieldError{f.Name, fmt.Sprintf("%d value bytes for length %d", len(rsp)-2, f.Len)}
	}
	return rsp[2:], nil
}

// EncodeRecord is the TLV of f holding v (for writers and test cards).
func EncodeRecord(f Field, v []byte) []byte {
	return append([]byte{f.Tag, byte(len(v))}, v...)
}

func bcdDate(f Field, v []byte) (time.Time, error) {
	s := hex.EncodeToString(v)
	t, err := time.ParseInLocation("20060102", s, China)
	if err != nil || !allDigits(s) {
		// the value is not quoted: a birth date is the holder's personal data
		return time.Time{}, &FieldError{f.Name, "not a BCD date"}
	}
	return t, nil
}

// EncodeBCDDate writes t as the 4-byte BCD date of the card files.
func EncodeBCDDate(t time.Time) []byte {
	b, _ := hex.DecodeString(t.In(China).Format("20060102"))
	return b
}

// decodeName decodes the GBK name field: the name, then 0x00 padding (some issuers pad
// with spaces or 0xFF; those are trimmed too). An empty name or invalid GBK is an error.
func decodeName(v []byte) (string, error) {
	end := len(v)
	for end > 0 && (v[end-1] == 0x00 || v[end-1] == 0x20 || v[end-1] == 0xFF) {
		end--
	}
	if end == 0 {
		return "", &FieldError{Name.Name, "empty"}
	}
	if bytes.IndexByte(v[:end], 0) >= 0 {
		return "", &FieldError{Name.Name, "NUL inside the name"}
	}
	// GB18030 decodes every GBK name and the rare characters (生僻字) some issuers write
	// with GB18030's four-byte codes.
	s, err := simplifiedchinese.GB18030.NewDecoder().Bytes(v[:end])
	if err != nil || !utf8.Valid(s) || bytes.ContainsRune(s, utf8.RuneError) {
		return "", &FieldError{Name.Name, "not valid GBK/GB18030"}
	}
	return string(s), nil
}

// EncodeName writes name as the 30-byte GB18030 field, 0x00-padded; a name longer than
// the field is an error (the card's byte limit).
func EncodeName(name string) ([]byte, error) {
	b, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(name))
	if err != nil {
		return nil, err
	}
	if len(b) > Name.Len {
		return nil, fmt.Errorf("sscard: name needs %d bytes, the card holds %d", len(b), Name.Len)
	}
	return append(b, make([]byte, Name.Len-len(b))...), nil
}

// ValidCardNo: 社保卡号 is a capital letter and 8 digits.
func ValidCardNo(s string) bool {
	return len(s) == 9 && s[0] >= 'A' && s[0] <= 'Z' && allDigits(s[1:])
}

func validSSN(v []byte) bool {
	if len(v) != 18 || !allDigits(string(v[:17])) {
		return false
	}
	c, ok := identity.CheckChar(string(v[:17]))
	return ok && c == v[17]
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isAlnum(b byte) bool {
	return (b >= '0' && b <= '9') || (b >= 'A' && b <= 'Z')
}
