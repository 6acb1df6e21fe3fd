package application

import (
	"bytes"
	"errors"
	"fmt"
)

// stripJPEG rewrites a JPEG file keeping only what draws the image: the frame, tables,
// scans and restart markers, plus a JFIF (APP0) or Adobe (APP14) header, which carry no
// personal data and tell decoders how to read the colours. Everything else is dropped:
// EXIF (GPS position, device, time), XMP, ICC profiles, comments, JFXX thumbnails,
// vendor segments, and any bytes after the end-of-image marker. The compressed data is
// copied as is, so the photo is unchanged pixel for pixel, at a fraction of the cost of
// decoding and encoding again (the compressed data is still decoded once, by verifyJPEG,
// to prove it draws).
//
// It refuses a file whose segment structure is broken: a truncated file, a segment that
// runs past the end, no frame or scan, or no end-of-image marker.
func stripJPEG(b []byte) ([]byte, error) {
	if len(b) < 4 || b[0] != 0xFF || b[1] != markerSOI {
		return nil, errors.New("no start-of-image marker")
	}
	out := make([]byte, 0, len(b))
	out = append(out, 0xFF, markerSOI)
	var frame, scan bool
	i := 2
	for {
		// A marker is 0xFF (any number of fill bytes) then a code.
		if i >= len(b) || b[i] != 0xFF {
			return nil, fmt.Errorf("expected a marker at byte %d", i)
		}
		for i < len(b) && b[i] == 0xFF {
			i++
		}
		if i >= len(b) {
			return nil, errors.New("the file ends inside a marker")
		}
		m := b[i]
		i++
		switch {
		case m == markerEOI:
			if !frame || !scan {
				return nil, errors.New("no image frame or scan before the end-of-image marker")
			}
			return append(out, 0xFF, markerEOI), nil // trailing bytes dropped
		case m == 0x00 || m == 0x01 || (m >= markerRST0 && m <= markerRST7) || m == markerSOI:
			return nil, fmt.Errorf("unexpected marker 0x%02X at byte %d", m, i-1)
		}
		if i+2 > len(b) {
			return nil, errors.New("the file ends inside a segment header")
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 || i+n > len(b) {
			return nil, fmt.Errorf("segment 0x%02X at byte %d runs past the end of the file", m, i-2)
		}
		seg := b[i-2 : i+n] // marker, length and payload
		payload := b[i+2 : i+n]
		i += n
		switch {
		case isSOF(m):
			frame = true
			out = append(out, seg...)
		case m == markerDHT || m == markerDQT || m == markerDRI || m == markerDNL:
			out = append(out, seg...)
		case m == markerAPP0 && bytes.HasPrefix(payload, []byte("JFIF\x00")):
			out = append(out, seg...)
		case m == markerAPP14 && bytes.HasPrefix(payload, []byte("Adobe")):
			out = append(out, seg...)
		case m == markerSOS:
			if !frame {
				return nil, errors.New("a scan before the image frame")
			}
			scan = true
			out = append(out, seg...)
			// Entropy-coded data runs to the next marker that is neither a stuffed 0xFF00
			// nor a restart marker.
			start := i
			for {
				if i+1 >= len(b) {
					return nil, errors.New("the file ends inside the image data (truncated)")
				}
				if b[i] == 0xFF {
					if next := b[i+1]; next != 0x00 && (next < markerRST0 || next > markerRST7) && next != 0xFF {
						break
					} else if next == 0xFF {
						i++ // fill byte before a marker
						continue
					}
					i += 2
					continue
				}
				i++
			}
			out = append(out, b[start:i]...)
		default:
			// APPn other than the two above, COM, and anything unknown: dropped.
		}
	}
}

const (
	markerSOI   = 0xD8
	markerEOI   = 0xD9
	markerSOS   = 0xDA
	markerDQT   = 0xDB
	markerDNL   = 0xDC
	markerDRI   = 0xDD
	markerDHT   = 0xC4
	markerRST0  = 0xD0
	markerRST7  = 0xD7
	markerAPP0  = 0xE0
	markerAPP14 = 0xEE
)

// isSOF: start-of-frame markers C0–CF except DHT (C4), JPG (C8) and DAC (CC).
func isSOF(m byte) bool {
	return m >= 0xC0 && m <= 0xCF && m != markerDHT && m != 0xC8 && m != 0xCC
}
