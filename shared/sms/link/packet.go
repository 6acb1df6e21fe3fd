package link

import (
	"bytes"
	"encoding/binary"
	"strconv"
	"time"

	"github.com/sscard/platform/shared/sms"
)

// Helpers for the packet layouts the three protocols share: big-endian integers, fixed
// octet strings padded with NUL, a 4-byte total length first.

// Header starts a packet with the 12-octet header of CMPP and SMGP: length (filled in
// by Finish), command, sequence.
func Header(b *bytes.Buffer, cmd, seq uint32) {
	b.Write(make([]byte, 4))
	_ = binary.Write(b, binary.BigEndian, cmd)
	_ = binary.Write(b, binary.BigEndian, seq)
}

// Finish writes the total length into the first four octets.
func Finish(b *bytes.Buffer) []byte {
	p := b.Bytes()
	binary.BigEndian.PutUint32(p, uint32(len(p)))
	return p
}

// Octets writes s as a fixed field of n octets (cut or NUL-padded).
func Octets(b *bytes.Buffer, s string, n int) {
	f := make([]byte, n)
	copy(f, s)
	b.Write(f)
}

// CStr reads a NUL-padded fixed field.
func CStr(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}

// Timestamp is the MMDDHHMMSS login timestamp of t in China time, as a number and as
// the 10-character string the authenticators hash.
func Timestamp(t time.Time) (uint32, string) {
	s := t.In(sms.ChinaTime).Format("0102150405")
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n), s
}
