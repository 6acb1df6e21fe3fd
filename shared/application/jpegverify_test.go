package application

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sscard/platform/shared/gm/gmbench"
)

// photoJPEG encodes a w×h portrait-like image (gradient background, an oval, a striped
// collar, deterministic noise) with Go's encoder: 4:2:0 colour, or one component.
func photoJPEG(t testing.TB, w, h, quality int, gray bool) []byte {
	t.Helper()
	var img image.Image
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := uint32(w*7919 + h)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			seed = seed*1664525 + 1013904223
			n := int(seed>>26) - 32
			r, g, b := 200-y*60/h, 210-y*30/h, 230
			if dx, dy := (x-w/2)*45/max(w, 1), (y-h*2/5)*59/max(h, 1); dx*dx*4+dy*dy*2 < 700 {
				r, g, b = 225-dy+x%7, 180-dx, 150+y%5
			}
			if y > h*4/5 && (x/4)%2 == 0 {
				r, g, b = 30, 40, 120
			}
			rgba.Set(x, y, color.RGBA{clampByte(r + n), clampByte(g + n/2), clampByte(b - n), 255})
		}
	}
	img = rgba
	if gray {
		g := image.NewGray(rgba.Bounds())
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				g.Set(x, y, rgba.At(x, y))
			}
		}
		img = g
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func clampByte(v int) uint8 { return uint8(max(0, min(255, v))) }

func testdataJPEG(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodes reports whether image/jpeg decodes b, and its size.
func decodes(b []byte) (w, h int, ok bool) {
	img, err := jpeg.Decode(bytes.NewReader(b))
	if err != nil {
		return 0, 0, false
	}
	return img.Bounds().Dx(), img.Bounds().Dy(), true
}

func TestVerifyJPEG_GoEncoded(t *testing.T) {
	for _, s := range [][2]int{{358, 441}, {361, 443}, {260, 320}, {1, 1}, {8, 8}, {15, 17}, {33, 31}, {17, 64}} {
		for _, q := range []int{10, 50, 75, 90, 100} {
			for _, gray := range []bool{false, true} {
				b := photoJPEG(t, s[0], s[1], q, gray)
				w, h, err := verifyJPEG(b)
				if err != nil || w != s[0] || h != s[1] {
					t.Errorf("%dx%d q%d gray %v: got %dx%d %v", s[0], s[1], q, gray, w, h, err)
				}
			}
		}
	}
	if w, h, err := verifyJPEG(jpegOf(t, 358, 441)); err != nil || w != 358 || h != 441 {
		t.Errorf("jpegOf: %dx%d %v", w, h, err)
	}
}

// Each fixture: what verifyJPEG says, and image/jpeg must agree (on an unsupported one,
// image/jpeg's answer is the answer).
func TestVerifyJPEG_Fixtures(t *testing.T) {
	const (
		ok = iota
		fallback
		reject
	)
	cases := map[string]int{
		"rst-rows.jpg": ok, "rst-2b.jpg": ok, "rst-1b-444.jpg": ok, "rst-1b-422.jpg": ok,
		"s444.jpg": ok, "s422.jpg": ok, "s440.jpg": ok, "s411.jpg": ok, "s410.jpg": ok,
		"gray.jpg": ok, "gray-rst.jpg": ok, "optimize.jpg": ok, "rgb.jpg": ok,
		"q100-444.jpg": ok, "q5.jpg": ok, "separate.jpg": ok, "separate-444-rst.jpg": ok,
		"progressive.jpg": fallback, "arithmetic.jpg": fallback,
		"photo-progressive.jpg": fallback, "photo-arithmetic.jpg": fallback,
		// Valid JPEGs (libjpeg draws them) that image/jpeg refuses, and so does verifyJPEG,
		// which counts blocks as image/jpeg does: non-interleaved scans with restart
		// intervals of a component with more than one block per MCU, and a component
		// sampled 2 of the frame's 4 in a non-interleaved scan.
		"separate-rst.jpg": reject, "chroma-scan.jpg": reject, "s42-21-separate.jpg": reject,
	}
	files, _ := filepath.Glob("testdata/*.jpg")
	if len(files) != len(cases) {
		t.Errorf("%d fixtures, %d cases", len(files), len(cases))
	}
	for name, want := range cases {
		b := testdataJPEG(t, name)
		w, h, err := verifyJPEG(b)
		dw, dh, dok := decodes(b)
		switch want {
		case ok:
			if err != nil || !dok || w != dw || h != dh || w == 0 {
				t.Errorf("%s: verify %dx%d %v, decode %dx%d %v", name, w, h, err, dw, dh, dok)
			}
		case fallback:
			if !errors.Is(err, errVerifyUnsupported) {
				t.Errorf("%s: want unsupported, got %v", name, err)
			}
		case reject:
			if err == nil || errors.Is(err, errVerifyUnsupported) || dok {
				t.Errorf("%s: verify %v, decode %v", name, err, dok)
			}
		}
	}
}

// jpegDataRange returns the start and end of the first scan's entropy-coded data.
func jpegDataRange(t testing.TB, b []byte) (int, int) {
	t.Helper()
	i := 2
	for i+4 <= len(b) && b[i] == 0xFF {
		n := int(b[i+2])<<8 | int(b[i+3])
		if b[i+1] == markerSOS {
			start := i + 2 + n
			end := start
			for end+1 < len(b) && !(b[end] == 0xFF && b[end+1] != 0 && (b[end+1] < markerRST0 || b[end+1] > markerRST7)) {
				end++
			}
			return start, end
		}
		i += 2 + n
	}
	t.Fatal("no scan")
	return 0, 0
}

// The positions of the restart markers in b's first scan.
func restartMarkers(t testing.TB, b []byte) []int {
	start, end := jpegDataRange(t, b)
	var at []int
	for i := start; i < end; i++ {
		if b[i] == 0xFF && b[i+1] >= markerRST0 && b[i+1] <= markerRST7 {
			at = append(at, i)
		}
	}
	return at
}

func splice(b []byte, at, drop int, insert ...byte) []byte {
	out := append([]byte{}, b[:at]...)
	out = append(out, insert...)
	return append(out, b[at+drop:]...)
}

// Damaged real images: verifyJPEG refuses what image/jpeg refuses, and leaves to it what
// only image/jpeg's leniency accepts.
func TestVerifyJPEG_Damaged(t *testing.T) {
	rst := testdataJPEG(t, "rst-1b-444.jpg")
	rsts := restartMarkers(t, rst)
	if len(rsts) < 16 {
		t.Fatalf("%d restart markers", len(rsts))
	}
	plain := photoJPEG(t, 64, 80, 75, false)
	start, end := jpegDataRange(t, plain)
	eoi := len(rst) - 2
	fills := rst
	for i := len(rsts) - 1; i >= 0; i-- {
		fills = splice(fills, rsts[i], 0, 0xFF, 0xFF)
	}
	fills = splice(fills, len(fills)-2, 0, 0xFF)

	cases := []verifyCase{
		{"restart markers in order", rst, nil, true},
		{"fill bytes before the restart markers and EOI", fills, nil, true},
		{"restart marker after the last MCU", splice(rst, eoi, 0, 0xFF, 0xD5), nil, true},
		{"wrong restart marker", splice(rst, rsts[3]+1, 1, 0xD4), errJPEGRestartOrder, false},
		{"restart markers swapped", splice(splice(rst, rsts[1]+1, 1, 0xD2), rsts[2]+1, 1, 0xD1), errJPEGRestartOrder, false},
		{"restart marker missing", splice(rst, rsts[5], 2), errJPEGRestartOrder, false},
		{"restart marker in an image without intervals", splice(plain, (start+end)/2, 0, 0xFF, 0xD0), errJPEGShort, false},
		{"EOI inside the scan", splice(plain, (start+end)/2, 0, 0xFF, 0xD9), errJPEGShort, false},
		{"no EOI", plain[:len(plain)-2], errJPEGShort, false},
		{"scan cut and closed", append(append([]byte{}, plain[:(start+end)/2]...), 0xFF, 0xD9), errJPEGShort, false},
		{"bytes after the last block", splice(plain, len(plain)-2, 0, 0x12, 0x34), errVerifyUnsupported, true},
		{"bytes before a restart marker", splice(rst, rsts[4], 0, 0x12), errVerifyUnsupported, true},
		{"16 one bits: no such code", splice(plain, (start+end)/2, 4, 0xFF, 0x00, 0xFF, 0x00), errJPEGBadCode, false},
	}
	runVerifyCases(t, cases)
}

// Every truncation is refused, whether or not an EOI is put back after the cut.
func TestVerifyJPEG_Truncated(t *testing.T) {
	for _, name := range []string{"rst-1b-444.jpg", "s410.jpg", "gray-rst.jpg", "optimize.jpg", "separate.jpg"} {
		b := testdataJPEG(t, name)
		_, end := jpegDataRange(t, b)
		for n := 0; n < len(b); n++ {
			if _, _, err := verifyJPEG(b[:n]); err == nil || errors.Is(err, errVerifyUnsupported) {
				t.Fatalf("%s cut at %d of %d: %v", name, n, len(b), err)
			}
			closed := append(append([]byte{}, b[:n]...), 0xFF, markerEOI)
			_, _, err := verifyJPEG(closed)
			if err == nil && n < end-1 {
				t.Fatalf("%s cut at %d of %d and closed: accepted", name, n, len(b))
			}
			if err == nil {
				if _, _, ok := decodes(closed); !ok {
					t.Fatalf("%s cut at %d and closed: accepted, image/jpeg refuses", name, n)
				}
			}
		}
	}
	b := photoJPEG(t, 361, 443, 85, false)
	for n := 0; n < len(b); n += 37 {
		if _, _, err := verifyJPEG(b[:n]); err == nil || errors.Is(err, errVerifyUnsupported) {
			t.Fatalf("cut at %d of %d: %v", n, len(b), err)
		}
	}
}

// Bytes of the entropy-coded data changed, one at a time: whatever verifyJPEG
// accepts, image/jpeg decodes; whatever image/jpeg refuses, verifyJPEG refuses or leaves
// to it (bar the stricter rules, which are counted).
func TestVerifyJPEG_FlippedBytes(t *testing.T) {
	var badCode, stricter int
	for _, f := range []struct {
		name   string
		stride int
	}{{"rst-1b-422.jpg", 1}, {"s440.jpg", 1}, {"gray.jpg", 1}, {"q100-444.jpg", 13}} {
		name, b := f.name, testdataJPEG(t, f.name)
		start, end := jpegDataRange(t, b)
		for i := start; i < end; i += f.stride {
			for _, x := range []byte{0x01, 0x10, 0x80, 0xFF} {
				d := append([]byte{}, b...)
				d[i] ^= x
				_, _, err := verifyJPEG(d)
				_, _, ok := decodes(d)
				switch {
				case err == nil && !ok:
					t.Fatalf("%s byte %d ^ %#x: verify accepts, image/jpeg refuses", name, i, x)
				case errors.Is(err, errVerifyUnsupported):
				case err != nil && ok:
					if !stricterThanDecode(err) {
						t.Fatalf("%s byte %d ^ %#x: verify refuses (%v), image/jpeg decodes", name, i, x, err)
					}
					stricter++
				case errors.Is(err, errJPEGBadCode):
					badCode++
				}
			}
		}
	}
	if badCode == 0 {
		t.Error("no damage gave an invalid Huffman code")
	}
	t.Logf("%d invalid codes; %d refused by the stricter rules only", badCode, stricter)
}

// Hand-made JPEGs, for what no encoder writes.

func seg(m byte, payload ...byte) []byte {
	n := len(payload) + 2
	return append([]byte{0xFF, m, byte(n >> 8), byte(n)}, payload...)
}

func sofSeg(m byte, w, h int, comps ...[3]byte) []byte { return sofPrec(m, 8, w, h, comps...) }

func sofPrec(m, prec byte, w, h int, comps ...[3]byte) []byte { // comps: id, h<<4|v, tq
	p := []byte{prec, byte(h >> 8), byte(h), byte(w >> 8), byte(w), byte(len(comps))}
	for _, c := range comps {
		p = append(p, c[:]...)
	}
	return seg(m, p...)
}

func dqtSeg(ids ...byte) []byte {
	var p []byte
	for _, id := range ids {
		p = append(p, id)
		p = append(p, bytes.Repeat([]byte{1}, 64)...)
	}
	return seg(markerDQT, p...)
}

func sosSeg(comps ...[2]byte) []byte { // comps: id, td<<4|ta
	p := []byte{byte(len(comps))}
	for _, c := range comps {
		p = append(p, c[:]...)
	}
	return seg(markerSOS, append(p, 0, 63, 0)...)
}

type testHuff struct {
	counts [16]byte
	vals   []byte
}

func (t testHuff) dht(class, id byte) []byte {
	p := append([]byte{class<<4 | id}, t.counts[:]...)
	return seg(markerDHT, append(p, t.vals...)...)
}

// code returns the canonical code of symbol s.
func (t testHuff) code(s byte) (uint32, int) {
	code, k := uint32(0), 0
	for l := 1; l <= 16; l++ {
		for range int(t.counts[l-1]) {
			if t.vals[k] == s {
				return code, l
			}
			code, k = code+1, k+1
		}
		code <<= 1
	}
	panic(fmt.Sprintf("no symbol %#x", s))
}

var (
	// "00" 0, "01" 1, "10" 2; nothing starts "11".
	testDC = testHuff{counts: [16]byte{0, 3}, vals: []byte{0, 1, 2}}
	// "00" EOB, "01" 0x01, "100" ZRL, "101" 0xF1, "110" 0xE1, "1110" 0x10 (an EOB run);
	// nothing starts "1111".
	testAC = testHuff{counts: [16]byte{0, 2, 3, 1}, vals: []byte{0x00, 0x01, 0xF0, 0xF1, 0xE1, 0x10}}
)

type bitWriter struct {
	out []byte
	acc uint32
	n   int
}

func (w *bitWriter) bits(v uint32, n int) {
	for i := n - 1; i >= 0; i-- {
		w.acc = w.acc<<1 | v>>i&1
		if w.n++; w.n == 8 {
			w.out = append(w.out, byte(w.acc))
			if byte(w.acc) == 0xFF {
				w.out = append(w.out, 0)
			}
			w.acc, w.n = 0, 0
		}
	}
}

// sym writes the code of s in t and, after it, s's magnitude bits (all ones).
func (w *bitWriter) sym(t testHuff, s byte, dc bool) {
	w.bits(t.code(s))
	size := int(s & 0x0F)
	if dc {
		size = int(s)
	}
	w.bits(1<<size-1, size)
}

// blocks writes blocks, each its DC symbol then its AC symbols.
func (w *bitWriter) blocks(dc, ac testHuff, blocks ...[]byte) *bitWriter {
	for _, b := range blocks {
		w.sym(dc, b[0], true)
		for _, s := range b[1:] {
			w.sym(ac, s, false)
		}
	}
	return w
}

func (w *bitWriter) done() []byte {
	if w.n > 0 {
		w.bits(0xFF, 8-w.n)
	}
	return w.out
}

func join(parts ...[]byte) []byte {
	out := []byte{0xFF, markerSOI}
	for _, p := range parts {
		out = append(out, p...)
	}
	return append(out, 0xFF, markerEOI)
}

// gray8 is a baseline one-component image of len(blocks) blocks in a row.
func gray8(blocks ...[]byte) []byte {
	data := new(bitWriter).blocks(testDC, testAC, blocks...).done()
	return join(dqtSeg(0), sofSeg(0xC0, 8*len(blocks), 8, [3]byte{1, 0x11, 0}),
		testDC.dht(0, 0), testAC.dht(1, 0), sosSeg([2]byte{1, 0x00}), data)
}

func TestVerifyJPEG_Crafted(t *testing.T) {
	eob := []byte{0, 0x00}
	ones := bytes.Repeat([]byte{0x01}, 63)
	head := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tables := head(testDC.dht(0, 0), testAC.dht(1, 0))
	oneBlock := new(bitWriter).blocks(testDC, testAC, eob).done()
	gray := func(sof []byte, parts ...[]byte) []byte {
		return join(head(dqtSeg(0), sof, tables), head(parts...), sosSeg([2]byte{1, 0}), oneBlock)
	}
	sof1 := sofSeg(0xC0, 8, 8, [3]byte{1, 0x11, 0})
	exactBytes := new(bitWriter).blocks(testDC, testAC, []byte{0, 0x01, 0x01}).out // 8 bits: no EOB
	overfull := testHuff{counts: [16]byte{3}, vals: []byte{0, 1, 2}}
	// Four components, each a block per MCU, with an Adobe segment or without.
	cmykData := new(bitWriter).blocks(testDC, testAC, eob, eob, eob, eob).done()
	cmyk := func(extra ...[]byte) []byte {
		return join(head(dqtSeg(0), sofSeg(0xC0, 8, 8, [3]byte{1, 0x11, 0}, [3]byte{2, 0x11, 0}, [3]byte{3, 0x11, 0}, [3]byte{4, 0x11, 0}), tables),
			head(extra...), sosSeg([2]byte{1, 0}, [2]byte{2, 0}, [2]byte{3, 0}, [2]byte{4, 0}), cmykData)
	}
	adobe := seg(markerAPP14, []byte("Adobe\x00\x64\x00\x00\x00\x00\x02")...)
	// Three components in one interleaved scan: an 8×8 image, one MCU.
	three := func(hv0, hv1, hv2 byte) []byte {
		n := 0
		for _, hv := range []byte{hv0, hv1, hv2} {
			n += int(hv>>4) * int(hv&0x0F)
		}
		data := new(bitWriter)
		for range n {
			data.blocks(testDC, testAC, eob)
		}
		return join(head(dqtSeg(0), sofSeg(0xC0, 8, 8, [3]byte{1, hv0, 0}, [3]byte{2, hv1, 0}, [3]byte{3, hv2, 0}), tables),
			sosSeg([2]byte{1, 0}, [2]byte{2, 0}, [2]byte{3, 0}), data.done())
	}
	badAC := new(bitWriter).blocks(testDC, testAC, []byte{0, 0x01})
	badAC.bits(0x0F, 4)

	cases := []verifyCase{
		{"one block", gray8(eob), nil, true},
		{"63 coefficients, no end of block needed", gray8(append([]byte{1}, ones...), eob), nil, true},
		{"zero runs up to coefficient 63 exactly", gray8([]byte{2, 0xF0, 0xF0, 0xE1, 0xF0}, []byte{1, 0x01, 0x00}), nil, true},
		{"zero run past coefficient 63", gray8([]byte{0, 0xF0, 0xF0, 0xF0, 0xF0}, eob), errJPEGACOverrun, true},
		{"coefficient past 63", gray8([]byte{0, 0xF0, 0xF0, 0xF0, 0xF1}, eob), errJPEGACOverrun, false},
		{"end-of-band run in a sequential scan", gray8([]byte{0, 0x10}, eob, eob), errJPEGBadACSymbol, true},
		{"invalid AC code", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{1, 0}), badAC.done()), errJPEGBadCode, false},
		{"invalid DC code", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{1, 0}), []byte{0xFF, 0x00, 0xFF, 0x00}), errJPEGBadCode, false},
		{"DC difference of 17 bits", join(dqtSeg(0), sof1, testHuff{counts: [16]byte{0, 3}, vals: []byte{0, 1, 17}}.dht(0, 0), testAC.dht(1, 0),
			sosSeg([2]byte{1, 0}), new(bitWriter).blocks(testHuff{counts: [16]byte{0, 3}, vals: []byte{0, 1, 17}}, testAC, []byte{17, 0x00}).done()), errJPEGBadDC, false},
		{"data ends at a byte boundary inside a block", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{1, 0}), exactBytes), errJPEGShort, false},
		{"two blocks' data for three", join(dqtSeg(0), sofSeg(0xC0, 24, 8, [3]byte{1, 0x11, 0}), tables, sosSeg([2]byte{1, 0}),
			new(bitWriter).blocks(testDC, testAC, eob, eob).done()), errJPEGShort, false},
		{"scan of a DC table defined for AC only", join(dqtSeg(0), sof1, tables, testAC.dht(1, 1), sosSeg([2]byte{1, 0x11}), oneBlock), errors.New("undefined Huffman"), false},
		{"quantisation table after the frame header", join(sof1, dqtSeg(0), tables, sosSeg([2]byte{1, 0}), oneBlock), nil, true},
		{"undefined quantisation table", join(dqtSeg(1), sof1, tables, sosSeg([2]byte{1, 0}), oneBlock), errJPEGNoQuant, true},
		{"scan with an undefined DC table", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{1, 0x10}), oneBlock), errors.New("undefined Huffman"), false},
		{"scan with an undefined AC table", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{1, 0x01}), oneBlock), errors.New("undefined Huffman"), false},
		{"over-full Huffman table in use", join(dqtSeg(0), sof1, overfull.dht(0, 0), testAC.dht(1, 0), sosSeg([2]byte{1, 0}), oneBlock), errVerifyUnsupported, false},
		{"over-full Huffman table unused", gray(sof1, overfull.dht(0, 1)), nil, true},
		{"baseline table id 2", gray(sof1, testDC.dht(0, 2)), errors.New("table id"), false},
		{"extended table id 2", join(dqtSeg(0), sofSeg(0xC1, 8, 8, [3]byte{1, 0x11, 0}), testDC.dht(0, 2), testAC.dht(1, 3), sosSeg([2]byte{1, 0x23}), oneBlock), nil, true},
		{"baseline scan of table 2 defined before the frame", join(dqtSeg(0), testDC.dht(0, 2), sof1, tables, sosSeg([2]byte{1, 0x20}), oneBlock), errors.New("selector"), false},
		{"two frame headers", gray(sof1, sof1), errors.New("frame"), false},
		{"scan before the frame header", join(dqtSeg(0), tables, sosSeg([2]byte{1, 0}), oneBlock, sof1), errors.New("frame"), false},
		{"scan of an unknown component", join(dqtSeg(0), sof1, tables, sosSeg([2]byte{2, 0}), oneBlock), errors.New("component"), false},
		{"scan repeating a component", join(head(dqtSeg(0), sofSeg(0xC0, 8, 8, [3]byte{1, 0x11, 0}, [3]byte{2, 0x11, 0}, [3]byte{3, 0x11, 0}), tables),
			sosSeg([2]byte{1, 0}, [2]byte{1, 0}), oneBlock), errors.New("repeats"), false},
		{"repeated component id", gray(sofSeg(0xC0, 8, 8, [3]byte{1, 0x11, 0}, [3]byte{1, 0x11, 0}, [3]byte{3, 0x11, 0})), errors.New("repeated component"), false},
		{"4:2:0 as three components", three(0x22, 0x11, 0x11), nil, true},
		{"sampling factor 0", three(0x20, 0x11, 0x11), errors.New("sampling"), false},
		{"sampling factor 5", three(0x51, 0x11, 0x11), errors.New("sampling"), false},
		{"sampling factor 3", three(0x31, 0x11, 0x11), errVerifyUnsupported, false},
		{"chroma sampled more than luma", three(0x11, 0x21, 0x21), errVerifyUnsupported, false},
		{"Cb and Cr sampled differently", three(0x22, 0x11, 0x21), errVerifyUnsupported, false},
		{"too many blocks per MCU", three(0x22, 0x22, 0x22), errors.New("blocks per MCU"), false},
		{"four components with an Adobe segment", cmyk(adobe), nil, true},
		{"four components without", cmyk(), errVerifyUnsupported, false},
		{"two components", gray(sofSeg(0xC0, 8, 8, [3]byte{1, 0x11, 0}, [3]byte{2, 0x11, 0})), errVerifyUnsupported, false},
		{"12-bit precision", gray(sofPrec(0xC1, 12, 8, 8, [3]byte{1, 0x11, 0})), errVerifyUnsupported, false},
		{"lossless frame", gray(sofSeg(0xC3, 8, 8, [3]byte{1, 0x11, 0})), errVerifyUnsupported, false},
		{"zero height", gray(sofSeg(0xC0, 8, 0, [3]byte{1, 0x11, 0})), errVerifyUnsupported, true},
		{"DNL segment", gray(sof1, seg(markerDNL, 0, 8)), errVerifyUnsupported, false},
		{"reserved marker", gray(sof1, seg(0x02)), errors.New("unknown marker"), false},
		{"DRI of the wrong length", gray(sof1, seg(markerDRI, 0, 1, 0)), errors.New("DRI"), false},
		{"DQT of the wrong length", gray(sof1, seg(markerDQT, 0, 1, 2)), errors.New("DQT"), false},
		{"DQT with a trailing table header", gray(sof1, seg(markerDQT, append(dqtSeg(0)[4:], 1)...)), nil, true},
		{"DHT without codes", gray(sof1, seg(markerDHT, make([]byte, 17)...)), errors.New("table size"), false},
		{"comment and APP segments", gray(sof1, seg(0xFE, 'h', 'i'), seg(0xE1, 'E', 'x'), seg(0xEE, 'x')), nil, true},
		{"no scan", join(dqtSeg(0), sof1, tables), errors.New("no image scan"), false},
		{"no SOI", gray8(eob)[2:], errors.New("start-of-image"), false},
		{"segment past the end", join(dqtSeg(0), sof1, tables)[:30], errors.New("past the end"), false},
	}
	runVerifyCases(t, cases)
}

// matches: err is want, or (for a want made up here) an error of verifyJPEG's own, not
// an unsupported one, whose message contains want's.
func matches(err, want error) bool {
	switch {
	case want == nil || err == nil:
		return err == want
	case errors.Is(err, want):
		return true
	}
	return !errors.Is(err, errVerifyUnsupported) && strings.Contains(err.Error(), want.Error())
}

func TestCheckPhoto_VerifiesOrFallsBack(t *testing.T) {
	// Progressive: not verified here, decoded by image/jpeg, accepted.
	ph, err := CheckPhoto("image/jpeg", testdataJPEG(t, "photo-progressive.jpg"))
	if err != nil || ph.Width != 358 || ph.Height != 441 {
		t.Errorf("progressive photo: %dx%d %v", ph.Width, ph.Height, err)
	}
	// Arithmetic coding: image/jpeg cannot decode it either.
	if _, err := CheckPhoto("image/jpeg", testdataJPEG(t, "photo-arithmetic.jpg")); !isCorrupt(err) {
		t.Errorf("arithmetic-coded photo: want corrupt, got %v", err)
	}
	good := photoJPEG(t, 358, 441, 85, false)
	if ph, err := CheckPhoto("", good); err != nil || ph.Width != 358 || ph.Height != 441 {
		t.Errorf("photo: %dx%d %v", ph.Width, ph.Height, err)
	}
	start, end := jpegDataRange(t, good)
	bad := splice(good, (start+end)/2, 4, 0xFF, 0x00, 0xFF, 0x00)
	if _, err := CheckPhoto("", bad); !isCorrupt(err) || !strings.Contains(err.Error(), "Huffman") {
		t.Errorf("damaged photo: want corrupt, got %v", err)
	}
}

func isCorrupt(err error) bool {
	var pe *PhotoError
	return errors.As(err, &pe) && pe.Status == 400 && pe.Code == "corrupt"
}

// seedJPEGs are the fuzz seeds: every fixture and Go-encoded images.
func seedJPEGs(t testing.TB) [][]byte {
	files, _ := filepath.Glob("testdata/*.jpg")
	var seeds [][]byte
	for _, f := range files {
		seeds = append(seeds, testdataJPEG(t, filepath.Base(f)))
	}
	for _, s := range [][2]int{{1, 1}, {15, 17}, {33, 31}} {
		for _, gray := range []bool{false, true} {
			seeds = append(seeds, photoJPEG(t, s[0], s[1], 60, gray))
		}
	}
	return append(seeds, gray8([]byte{0, 0x01, 0x00}, []byte{1, 0xF0, 0x00}))
}

// stricterThanDecode: the refusals that image/jpeg may not share (see verifyJPEG).
func stricterThanDecode(err error) bool {
	return errors.Is(err, errJPEGACOverrun) || errors.Is(err, errJPEGBadACSymbol) || errors.Is(err, errJPEGNoQuant)
}

// Differential: whatever verifyJPEG accepts, image/jpeg decodes at the same size;
// whatever it refuses, image/jpeg refuses too unless one of the stricter rules refused
// it; on the seeds (valid files, and files both refuse) they agree, verifyJPEG's
// unsupported leaving the answer to image/jpeg. Never a panic.
func FuzzVerifyJPEG(f *testing.F) {
	seeds := map[string]bool{}
	for _, s := range seedJPEGs(f) {
		seeds[string(s)] = true
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		w, h, err := verifyJPEG(b)
		if cfg, cerr := jpeg.DecodeConfig(bytes.NewReader(b)); cerr == nil && cfg.Width*cfg.Height > 1<<20 {
			return // image/jpeg would allocate the whole image
		}
		dw, dh, ok := decodes(b)
		switch {
		case err == nil && (!ok || w != dw || h != dh):
			t.Fatalf("verify accepts %dx%d, image/jpeg: %v %dx%d", w, h, ok, dw, dh)
		case err != nil && ok && !errors.Is(err, errVerifyUnsupported) && !stricterThanDecode(err):
			t.Fatalf("verify refuses (%v), image/jpeg decodes", err)
		case seeds[string(b)] && !errors.Is(err, errVerifyUnsupported) && (err == nil) != ok:
			t.Fatalf("seed: verify %v, image/jpeg decodes: %v", err, ok)
		}
	})
}

// The card photo (358×441, about 30 KB): image/jpeg's full decode against verifyJPEG.
func BenchmarkPhotoCheck(b *testing.B) {
	photo := benchPhoto(b)
	gmbench.Compare(b, "decode", func(b *testing.B) {
		b.SetBytes(int64(len(photo)))
		for b.Loop() {
			if _, err := jpeg.Decode(bytes.NewReader(photo)); err != nil {
				b.Fatal(err)
			}
		}
	}, "verify", func(b *testing.B) {
		b.SetBytes(int64(len(photo)))
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := verifyJPEG(photo); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// benchPhoto is a 358×441 photo of 28–34 KB.
func benchPhoto(t testing.TB) []byte {
	for q := 95; q > 20; q -= 5 {
		if p := photoJPEG(t, 358, 441, q, false); len(p) <= 34<<10 {
			return p
		}
	}
	t.Fatal("no quality gives a 30 KB photo")
	return nil
}

// verifyCase is an input, what verifyJPEG must answer (nil: accepted; errVerifyUnsupported:
// left to image/jpeg; another error: refused with it), and whether image/jpeg decodes it.
type verifyCase struct {
	name string
	b    []byte
	want error
	dec  bool
}

func runVerifyCases(t *testing.T, cases []verifyCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := verifyJPEG(c.b); !matches(err, c.want) {
				t.Errorf("want %v, got %v", c.want, err)
			}
			if _, _, ok := decodes(c.b); ok != c.dec {
				t.Errorf("image/jpeg decodes it: %v, the test says %v", ok, c.dec)
			}
		})
	}
}
