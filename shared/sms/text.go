package sms

import (
	"errors"
	"unicode/utf16"
)

// Message formats (Msg_Fmt / MessageCoding): the same numbers in CMPP, SMGP and SGIP.
const (
	FormatASCII = 0
	FormatUCS2  = 8
)

// Octets of user data in one SMS, and of a concatenation header (UDH: IEI 00, 8-bit
// reference): 140 octets hold 70 UCS2 characters alone, 67 per part of a long message.
const (
	segmentOctets = 140
	udhOctets     = 6
	// MaxParts caps a long message: the UDH counts parts in one octet, and carriers
	// refuse long chains well before 255.
	MaxParts = 10
)

// Segment is one SMS on the wire: its user data (with the UDH when UDHI is set) and its
// place in a long message (Total and Number are 1 for a single SMS).
type Segment struct {
	Format        byte
	UDHI          bool
	Total, Number int
	Data          []byte
}

// ErrTooLong reports a text that needs more than MaxParts segments.
var ErrTooLong = errors.New("sms: text needs more than 10 segments")

// Split encodes text as UCS2 (UTF-16BE, which is what every Chinese handset decodes)
// and cuts it into segments: one when it fits in 70 units, otherwise parts of at most 67
// units each carrying a concatenation header with ref, never splitting a surrogate pair
// (a rare character outside the BMP stays whole).
func Split(text string, ref byte) ([]Segment, error) {
	units := utf16.Encode([]rune(text))
	if len(units) == 0 {
		return nil, errors.New("sms: empty text")
	}
	if len(units) <= segmentOctets/2 {
		return []Segment{{Format: FormatUCS2, Total: 1, Number: 1, Data: ucs2(units)}}, nil
	}
	per := (segmentOctets - udhOctets) / 2
	var chunks [][]uint16
	for len(units) > 0 {
		n := min(per, len(units))
		if n < len(units) && utf16.IsSurrogate(rune(units[n-1])) && units[n-1] < 0xDC00 {
			n-- // high surrogate last: keep the pair together
		}
		chunks = append(chunks, units[:n])
		units = units[n:]
	}
	if len(chunks) > MaxParts {
		return nil, ErrTooLong
	}
	segs := make([]Segment, len(chunks))
	for i, c := range chunks {
		data := append([]byte{0x05, 0x00, 0x03, ref, byte(len(chunks)), byte(i + 1)}, ucs2(c)...)
		segs[i] = Segment{Format: FormatUCS2, UDHI: true, Total: len(chunks), Number: i + 1, Data: data}
	}
	return segs, nil
}

// Parts is how many SMS the text takes (for reports and billing), 0 when it cannot be sent.
func Parts(text string) int {
	s, err := Split(text, 0)
	if err != nil {
		return 0
	}
	return len(s)
}

func ucs2(units []uint16) []byte {
	b := make([]byte, 2*len(units))
	for i, u := range units {
		b[2*i], b[2*i+1] = byte(u>>8), byte(u)
	}
	return b
}

// Concat is the concatenation header of a segment's user data: reference, total and
// number (8-bit or 16-bit reference), ok false when it has none.
func Concat(data []byte) (ref uint16, total, number int, body []byte, ok bool) {
	if len(data) < 1 || int(data[0])+1 > len(data) {
		return 0, 0, 0, data, false
	}
	hdr, body := data[1:1+int(data[0])], data[1+int(data[0]):]
	for len(hdr) >= 2 {
		iei, l := hdr[0], int(hdr[1])
		if 2+l > len(hdr) {
			break
		}
		v := hdr[2 : 2+l]
		switch {
		case iei == 0x00 && l == 3:
			return uint16(v[0]), int(v[1]), int(v[2]), body, true
		case iei == 0x08 && l == 4:
			return uint16(v[0])<<8 | uint16(v[1]), int(v[2]), int(v[3]), body, true
		}
		hdr = hdr[2+l:]
	}
	return 0, 0, 0, body, false
}

// DecodeUCS2 turns UTF-16BE user data back into text.
func DecodeUCS2(b []byte) string {
	units := make([]uint16, len(b)/2)
	for i := range units {
		units[i] = uint16(b[2*i])<<8 | uint16(b[2*i+1])
	}
	return string(utf16.Decode(units))
}
