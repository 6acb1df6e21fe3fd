package application

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
)

// verifyJPEG proves that image/jpeg's Decode would draw b, without drawing it: it checks
// the segment structure and tables as image/jpeg does and entropy-decodes every block of
// every scan, skipping the coefficients' values, dequantisation, IDCT and colour
// conversion (the pixels are never used, and they were most of CheckPhoto's cost).
//
// It handles what an ID photo is: sequential Huffman-coded frames (SOF0, SOF1) of 8-bit
// precision with 1, 3 or 4 components, every subsampling image/jpeg accepts, interleaved
// and non-interleaved scans, restart intervals. For anything else (progressive,
// arithmetic coding, 12-bit, …), and for deviations image/jpeg tolerates but this does
// not follow (bytes it skips between segments or before a restart marker, an over-full
// Huffman table), it returns an error wrapping errVerifyUnsupported: the caller then
// decodes with image/jpeg, whose answer stands.
//
// It refuses three things image/jpeg lets through, none of which an encoder writes
// (damaged data often shows as the first): an AC run past coefficient 63 (image/jpeg
// ends the block there, and for a non-zero coefficient drops its magnitude bits, so it
// reads the rest of the scan unlike libjpeg), an end-of-band run in a sequential scan
// (image/jpeg applies it, libjpeg takes it as an end of block), and a scan of a
// component whose quantisation table was never defined (image/jpeg draws it flat grey,
// libjpeg refuses it).
func verifyJPEG(b []byte) (width, height int, err error) {
	v := verifiers.Get().(*jpegVerifier)
	v.reset()
	width, height, err = v.run(b)
	verifiers.Put(v)
	return width, height, err
}

// verifiers keeps the verifiers' Huffman tables (about 30 KB each) off the request
// goroutines' stacks and out of the garbage.
var verifiers = sync.Pool{New: func() any { return &jpegVerifier{huff: new([2][4]huffTable)} }}

// reset readies v for another image. Tables are rebuilt whole by build before a scan
// can use them, so only their state needs resetting.
func (v *jpegVerifier) reset() {
	*v = jpegVerifier{huff: v.huff}
	for c := range v.huff {
		for i := range v.huff[c] {
			v.huff[c][i].state = huffUndefined
		}
	}
}

// errVerifyUnsupported: verifyJPEG cannot decide; decode with image/jpeg instead.
var errVerifyUnsupported = errors.New("not handled by the fast JPEG check")

var (
	errJPEGBadCode      = errors.New("invalid Huffman code")
	errJPEGBadACSymbol  = errors.New("end-of-band run in a sequential scan")
	errJPEGACOverrun    = errors.New("AC coefficients run past the end of a block")
	errJPEGBadDC        = errors.New("DC difference longer than 16 bits")
	errJPEGShort        = errors.New("the image data ends early (truncated, or a marker inside it)")
	errJPEGRestartOrder = errors.New("restart marker missing or out of order")
	errJPEGNoEOI        = errors.New("no end-of-image marker")
	errJPEGNoQuant      = errors.New("a scan uses an undefined quantisation table")
)

func unsupported(what string) error { return fmt.Errorf("%w: %s", errVerifyUnsupported, what) }

type jpegVerifier struct {
	width, height int
	ncomp         int // 0 until the frame header
	comp          [4]struct{ id, h, v, tq uint8 }
	baseline      bool
	quant         [4]bool
	huff          *[2][4]huffTable // [class: 0 DC, 1 AC][id]
	ri            int              // restart interval in MCUs, 0 for none
	rstNext       byte             // the restart marker due next in this scan
	rstLeft       int              // MCUs before it
	adobe         bool             // an Adobe APP14 segment: image/jpeg needs it for 4 components
	scanned       bool
	br            bitReader
}

func (v *jpegVerifier) run(b []byte) (int, int, error) {
	if len(b) < 2 || b[0] != 0xFF || b[1] != markerSOI {
		return 0, 0, errors.New("no start-of-image marker")
	}
	for i := 2; ; {
		if i >= len(b) {
			return 0, 0, errJPEGNoEOI
		}
		if b[i] != 0xFF {
			return 0, 0, unsupported("bytes between segments") // image/jpeg skips them
		}
		for i < len(b) && b[i] == 0xFF { // fill bytes
			i++
		}
		if i >= len(b) {
			return 0, 0, errJPEGNoEOI
		}
		m := b[i]
		i++
		switch {
		case m == 0x00:
			return 0, 0, unsupported("a stuffed 0xFF between segments") // image/jpeg skips it
		case m == markerEOI:
			return v.finish()
		case m >= markerRST0 && m <= markerRST7:
			continue // image/jpeg ignores a restart marker after a scan's last MCU
		}
		if i+2 > len(b) {
			return 0, 0, errJPEGNoEOI
		}
		n := int(b[i])<<8 | int(b[i+1])
		if n < 2 {
			return 0, 0, fmt.Errorf("segment 0x%02X has a length below 2", m)
		}
		if i+n > len(b) {
			return 0, 0, fmt.Errorf("segment 0x%02X runs past the end of the file", m)
		}
		p := b[i+2 : i+n]
		i += n
		var err error
		switch {
		case m == 0xC0 || m == 0xC1:
			err = v.sof(m, p)
		case m == 0xC2:
			err = unsupported("progressive")
		case m == markerDHT:
			err = v.dht(p)
		case m == markerDQT:
			err = v.dqt(p)
		case m == markerDRI:
			if len(p) != 2 {
				err = errors.New("DRI has the wrong length")
				break
			}
			v.ri = int(p[0])<<8 | int(p[1])
		case m == markerSOS:
			i, err = v.sos(b, p, i)
		case m == markerAPP14:
			if len(p) >= 12 && string(p[:5]) == "Adobe" {
				v.adobe = true
			}
		case m >= markerAPP0 && m <= 0xEF || m == 0xFE:
			// APPn and COM carry nothing that draws.
		case m < 0xC0:
			err = fmt.Errorf("unknown marker 0x%02X", m)
		default:
			err = unsupported(fmt.Sprintf("marker 0x%02X", m)) // other SOFn, DAC, DNL, …
		}
		if err != nil {
			return 0, 0, err
		}
	}
}

func (v *jpegVerifier) finish() (int, int, error) {
	if !v.scanned {
		return 0, 0, errors.New("no image scan")
	}
	if v.ncomp == 4 && !v.adobe {
		return 0, 0, unsupported("4 components without an Adobe segment") // image/jpeg refuses it
	}
	return v.width, v.height, nil
}

// sof reads a frame header with the checks and limits of image/jpeg.
func (v *jpegVerifier) sof(m byte, p []byte) error {
	if v.ncomp != 0 {
		return errors.New("more than one frame header")
	}
	v.baseline = m == 0xC0
	nc := 0
	switch len(p) {
	case 6 + 3*1:
		nc = 1
	case 6 + 3*3:
		nc = 3
	case 6 + 3*4:
		nc = 4
	default:
		return unsupported("number of components")
	}
	if p[0] != 8 {
		return unsupported("precision")
	}
	v.height = int(p[1])<<8 | int(p[2])
	v.width = int(p[3])<<8 | int(p[4])
	if int(p[5]) != nc {
		return errors.New("frame header has the wrong length")
	}
	if v.width == 0 || v.height == 0 {
		// A height defined later (DNL) or an empty image: nothing to verify here.
		return unsupported("zero width or height")
	}
	for i := 0; i < nc; i++ {
		c := &v.comp[i]
		c.id, c.tq = p[6+3*i], p[8+3*i]
		for j := 0; j < i; j++ {
			if v.comp[j].id == c.id {
				return errors.New("repeated component identifier")
			}
		}
		if c.tq > 3 {
			return errors.New("bad quantisation table selector")
		}
		hv := p[7+3*i]
		h, vv := hv>>4, hv&0x0F
		if h < 1 || h > 4 || vv < 1 || vv > 4 {
			return errors.New("bad sampling factor")
		}
		if h == 3 || vv == 3 {
			return unsupported("sampling factor 3")
		}
		// The subsamplings image/jpeg can draw (it says "unsupported" to the rest).
		switch nc {
		case 1:
			h, vv = 1, 1 // one component is never interleaved: its MCU is one block
		case 3:
			y := &v.comp[0]
			switch {
			case i == 0 && vv == 4,
				i == 1 && (y.h%h != 0 || y.v%vv != 0),
				i == 2 && (v.comp[1].h != h || v.comp[1].v != vv):
				return unsupported("subsampling ratio")
			}
		case 4:
			switch {
			case i == 0 && hv != 0x11 && hv != 0x22,
				(i == 1 || i == 2) && hv != 0x11,
				i == 3 && (v.comp[0].h != h || v.comp[0].v != vv):
				return unsupported("subsampling ratio")
			}
		}
		c.h, c.v = h, vv
	}
	v.ncomp = nc
	return nil
}

// dqt only notes which tables are defined: their values do not matter for drawing.
func (v *jpegVerifier) dqt(p []byte) error {
	for len(p) > 0 {
		x := p[0]
		p = p[1:]
		tq := x & 0x0F
		if tq > 3 {
			return errors.New("bad quantisation table id")
		}
		size := 64
		switch x >> 4 {
		case 0:
		case 1:
			size = 128
		default:
			return errors.New("bad quantisation table precision")
		}
		if len(p) < size {
			if len(p) == 0 {
				break // image/jpeg accepts a trailing table header without a table
			}
			return errors.New("DQT has the wrong length")
		}
		v.quant[tq] = true
		p = p[size:]
	}
	return nil
}

func (v *jpegVerifier) dht(p []byte) error {
	for len(p) > 0 {
		if len(p) < 17 {
			return errors.New("DHT has the wrong length")
		}
		tc, th := p[0]>>4, p[0]&0x0F
		if tc > 1 {
			return errors.New("bad Huffman table class")
		}
		if th > 3 || (v.baseline && th > 1) {
			return errors.New("bad Huffman table id")
		}
		total := 0
		for _, c := range p[1:17] {
			total += int(c)
		}
		if total == 0 || total > 256 {
			return errors.New("bad Huffman table size")
		}
		if len(p) < 17+total {
			return errors.New("DHT has the wrong length")
		}
		v.huff[tc][th].build(tc, p[1:17], p[17:17+total])
		p = p[17+total:]
	}
	return nil
}

// sos checks a scan header and entropy-decodes the scan that starts at b[i]; it returns
// the position of the marker after the scan.
func (v *jpegVerifier) sos(b, p []byte, i int) (int, error) {
	if v.ncomp == 0 {
		return 0, errors.New("a scan before the frame header")
	}
	if len(p) < 6 || len(p) > 4+2*v.ncomp || len(p)%2 != 0 || len(p) != 4+2*int(p[0]) {
		return 0, errors.New("scan header has the wrong length")
	}
	ns := int(p[0])
	var sc [4]struct {
		comp   int
		dc, ac *huffTable
	}
	totalHV := 0
	for j := 0; j < ns; j++ {
		k := -1
		for c := 0; c < v.ncomp; c++ {
			if v.comp[c].id == p[1+2*j] {
				k = c
			}
		}
		if k < 0 {
			return 0, errors.New("scan names an unknown component")
		}
		for jj := 0; jj < j; jj++ {
			if sc[jj].comp == k {
				return 0, errors.New("scan repeats a component")
			}
		}
		c := &v.comp[k]
		totalHV += int(c.h) * int(c.v)
		td, ta := p[2+2*j]>>4, p[2+2*j]&0x0F
		if td > 3 || ta > 3 || (v.baseline && (td > 1 || ta > 1)) {
			return 0, errors.New("bad Huffman table selector")
		}
		dc, ac := &v.huff[0][td], &v.huff[1][ta]
		// Every component of a scan has at least one block, so image/jpeg would meet an
		// undefined table at once.
		if dc.state == huffUndefined || ac.state == huffUndefined {
			return 0, errors.New("scan uses an undefined Huffman table")
		}
		if !v.quant[c.tq] {
			return 0, errJPEGNoQuant
		}
		sc[j].comp, sc[j].dc, sc[j].ac = k, dc, ac
	}
	if v.ncomp > 1 && totalHV > 10 {
		return 0, errors.New("too many blocks per MCU")
	}
	for j := 0; j < ns; j++ {
		if sc[j].dc.state == huffOverfull || sc[j].ac.state == huffOverfull {
			return 0, unsupported("over-full Huffman table")
		}
	}
	// Ss, Se, Ah and Al are ignored in a sequential scan, as image/jpeg and libjpeg do.
	v.scanned = true

	// The MCU grid is the first component's, as in image/jpeg: image/jpeg requires it to
	// have the largest sampling factors.
	h0, v0 := int(v.comp[0].h), int(v.comp[0].v)
	mxx, myy := (v.width+8*h0-1)/(8*h0), (v.height+8*v0-1)/(8*v0)
	mcus := mxx * myy
	br := &v.br
	br.reset(b, i)
	v.rstNext, v.rstLeft = markerRST0, v.ri
	if ns > 1 {
		// Interleaved: each MCU holds h×v blocks of each component in turn.
		var blocks [10]struct{ dc, ac *huffTable }
		nb := 0
		for j := 0; j < ns; j++ {
			c := &v.comp[sc[j].comp]
			for range int(c.h) * int(c.v) {
				blocks[nb].dc, blocks[nb].ac = sc[j].dc, sc[j].ac
				nb++
			}
		}
		for mcu := 1; mcu <= mcus; mcu++ {
			for _, bl := range blocks[:nb] {
				if err := br.block(bl.dc, bl.ac); err != nil {
					return 0, err
				}
			}
			if err := v.endMCU(mcu, mcus); err != nil {
				return 0, err
			}
		}
	} else {
		// Non-interleaved: blocks in raster order over the component's padded grid, with
		// those wholly outside the image left out. The count follows image/jpeg, which
		// takes the image's width and height for every component and counts restart
		// intervals in groups of h×v such positions (the spec says one block); for the
		// usual h×v = 1 the two agree.
		c := &v.comp[sc[0].comp]
		hv, q := int(c.h)*int(c.v), mxx*int(c.h)
		dc, ac := sc[0].dc, sc[0].ac
		bx, by := 0, 0
		for mcu := 1; mcu <= mcus; mcu++ {
			for range hv {
				if bx*8 < v.width && by*8 < v.height {
					if err := br.block(dc, ac); err != nil {
						return 0, err
					}
				}
				if bx++; bx == q {
					bx, by = 0, by+1
				}
			}
			if err := v.endMCU(mcu, mcus); err != nil {
				return 0, err
			}
		}
	}
	return br.dataEnd()
}

// endMCU follows MCU number mcu (from 1) of mcus: it stops a scan that has read past its
// data (rather than decode zeros to the end), and checks the restart marker that ends
// each interval but the last.
func (v *jpegVerifier) endMCU(mcu, mcus int) error {
	if v.br.n < v.br.pad {
		return errJPEGShort
	}
	if v.ri == 0 {
		return nil
	}
	if v.rstLeft--; v.rstLeft > 0 || mcu == mcus {
		return nil
	}
	i, err := v.br.restart(v.rstNext)
	if err != nil {
		return err
	}
	v.br.reset(v.br.b, i)
	v.rstNext, v.rstLeft = markerRST0+(v.rstNext+1)&7, v.ri
	return nil
}

// Huffman decoding. A table is decoded through a lutBits-bit look-up of the next bits;
// longer codes (rare) are found by length. Each entry already says how many bits the
// code and the magnitude bits after it take together, since the values are not needed.
// AC tables have a second look-up, of multiBits bits, that takes up to three whole
// symbols in one step: a 30 KB photo holds about 13 AC symbols per block, most of them
// a few bits long, and each single look-up waits on the shift the one before it made.
const lutBits = 9

const (
	huffUndefined = iota
	huffUsable
	huffOverfull // more codes than the code space: image/jpeg decodes it in its own way
)

// A huffEntry is nbits | adv<<8: nbits is the number of bits to skip (code and
// magnitude), 0 for a code not in the look-up table. For an AC table adv is how far the
// symbol moves along the block (run+1, 16 for ZRL, 0 for end of block, badSymbol for a
// symbol a sequential scan cannot hold); for a DC table it is 0 or badSymbol.
type huffEntry = uint16

const badSymbol = 0x80

type huffTable struct {
	state   uint8
	lut     [1 << lutBits]huffEntry
	maxCode [17]int32 // by code length: the largest code, -1 for none
	valOff  [17]int32 // by code length: code + valOff is the symbol's index
	sym     [256]huffEntry
	multi   [1 << multiBits]multiEntry
}

// multiBits is the window of the AC tables' multi-symbol look-up. On the bench photo,
// 10 bits decoded fastest: a wider window takes more symbols per step but costs more to
// build for each image than it saves.
const multiBits = 10

// A multiEntry covers the whole symbols (code and magnitude) that lie in the next
// multiBits bits: nbits | adv<<6 | eob<<12, where adv is how far they move along the
// block together and eob says the last is the end of block. 0: decode one symbol the
// long way (a code not in lut, a bad symbol, a symbol longer than the window).
type multiEntry = uint16

const multiEOB = 1 << 12

// buildMulti fills multi from lut, combining up to three symbols. A symbol joins only if
// its code and magnitude bits all lie in the window, so the look-up of each was made on
// known bits; none joins after an end of block, a bad symbol or a long code.
func (t *huffTable) buildMulti() {
	for x := range t.multi {
		var nb, adv uint
		var m multiEntry
		for range 3 {
			y := uint(x) << nb & (1<<multiBits - 1)
			e := t.lut[y>>(multiBits-lutBits)]
			en, ea := uint(e&0xFF), uint(e>>8)
			if e == 0 || ea == badSymbol || nb+en > multiBits {
				break
			}
			nb, adv = nb+en, adv+ea
			m = multiEntry(nb | adv<<6)
			if ea == 0 {
				m |= multiEOB
				break
			}
		}
		t.multi[x] = m
	}
}

func (t *huffTable) build(class byte, counts, vals []byte) {
	for k, s := range vals {
		var e huffEntry
		if class == 0 {
			e = huffEntry(s)
			if s > 16 {
				e = badSymbol << 8
			}
		} else {
			switch run, size := s>>4, s&0x0F; {
			case size != 0:
				e = huffEntry(size) | huffEntry(run+1)<<8
			case s == 0x00: // end of block
			case s == 0xF0: // sixteen zeros
				e = 16 << 8
			default:
				e = badSymbol << 8
			}
		}
		t.sym[k] = e
	}
	clear(t.lut[:])
	code, k := 0, 0
	for l := 1; l <= 16; l++ {
		n := int(counts[l-1])
		t.maxCode[l], t.valOff[l] = -1, int32(k-code)
		if n > 0 {
			t.maxCode[l] = int32(code + n - 1)
		}
		if code+n > 1<<l {
			t.state = huffOverfull
			return
		}
		if l <= lutBits {
			for c := code; c < code+n; c++ {
				e := t.sym[k+c-code] + huffEntry(l)
				lo := c << (lutBits - l)
				for x := lo; x < lo+1<<(lutBits-l); x++ {
					t.lut[x] = e
				}
			}
		}
		code, k = (code+n)<<1, k+n
	}
	t.state = huffUsable
	if class == 1 {
		t.buildMulti()
	}
}

// slow finds a code longer than lutBits in the top 16 bits of acc; 0 if there is none.
func (t *huffTable) slow(acc uint64) huffEntry {
	for l := lutBits + 1; l <= 16; l++ {
		if c := int32(acc >> (64 - l)); c <= t.maxCode[l] {
			return t.sym[c+t.valOff[l]] + huffEntry(l)
		}
	}
	return 0
}

// bitReader reads the entropy-coded data of a scan from b[pos:], unstuffing 0xFF00. At
// a marker (or the end of b) it stops and supplies zero bits, counting them in pad: the
// bits actually in the file that are left are n-pad, and reading past them is an error
// found after each MCU (as image/jpeg fails when it needs a bit the data does not have).
type bitReader struct {
	b   []byte
	pos int
	acc uint64 // the next n bits, most significant first; the bits below them are 0
	n   int
	pad int
	end bool // reached a marker or the end of b
}

func (r *bitReader) reset(b []byte, pos int) {
	*r = bitReader{b: b, pos: pos}
}

// fill tops acc up to more than 56 bits.
func (r *bitReader) fill() {
	if !r.end && r.pos+8 <= len(r.b) {
		w := binary.BigEndian.Uint64(r.b[r.pos:])
		if x := ^w; (x-0x0101010101010101)&^x&0x8080808080808080 == 0 { // no 0xFF byte
			nb := (64 - r.n) >> 3
			r.acc |= w >> (64 - 8*nb) << (64 - 8*nb - r.n)
			r.pos += nb
			r.n += 8 * nb
			return
		}
	}
	for r.n <= 56 {
		if r.end {
			r.pad += 64 - r.n
			r.n = 64
			return
		}
		if r.pos >= len(r.b) {
			r.end = true
			continue
		}
		c := r.b[r.pos]
		if c == 0xFF {
			if r.pos+1 >= len(r.b) || r.b[r.pos+1] != 0x00 {
				r.end = true
				continue
			}
			r.pos++
		}
		r.pos++
		r.acc |= uint64(c) << (56 - r.n)
		r.n += 8
	}
}

// block decodes one 8×8 block: a DC difference and AC coefficients up to the end of
// the block. (The bit buffer is kept in locals: fields behind r cost a load and a store
// per code.)
func (r *bitReader) block(dc, ac *huffTable) error {
	acc, n := r.acc, r.n
	if n < 32 { // a code (≤ 16 bits) and its magnitude bits (≤ 16)
		r.acc, r.n = acc, n
		r.fill()
		acc, n = r.acc, r.n
	}
	e := dc.lut[acc>>(64-lutBits)]
	if e == 0 {
		if e = dc.slow(acc); e == 0 {
			return errJPEGBadCode
		}
	}
	if e>>8 != 0 {
		return errJPEGBadDC
	}
	// nbits is at most 32; masking with 63 spares the compiler's handling of shifts of 64
	// bits or more, in the hottest loop there is.
	acc <<= e & 63
	n -= int(e & 0xFF)
	k := 1
	for k < 64 {
		if n < 32 {
			r.acc, r.n = acc, n
			r.fill()
			acc, n = r.acc, r.n
		}
		// Several symbols at once, if none of them can end the block by position: the
		// next block's DC code must not be read as AC. Otherwise one, the long way.
		if m := ac.multi[acc>>(64-multiBits)]; m != 0 && k+int(m>>6&63) < 64 {
			acc <<= m & 63
			n -= int(m & 63)
			k += int(m >> 6 & 63)
			if m&multiEOB != 0 {
				break
			}
			continue
		}
		e := ac.lut[acc>>(64-lutBits)]
		if e == 0 {
			if e = ac.slow(acc); e == 0 {
				return errJPEGBadCode
			}
		}
		acc <<= e & 63
		n -= int(e & 0xFF)
		adv := int(e >> 8)
		if adv == 0 {
			break
		}
		k += adv
	}
	r.acc, r.n = acc, n
	switch {
	case k > 64+16:
		return errJPEGBadACSymbol
	case k > 64:
		return errJPEGACOverrun
	}
	return nil
}

// dataEnd checks that only the padding bits of the last byte are left of the data read
// so far and returns the position of the marker that must follow.
func (r *bitReader) dataEnd() (int, error) {
	if r.n < r.pad {
		return 0, errJPEGShort
	}
	if r.n-r.pad >= 8 {
		return 0, unsupported("data after the last block") // image/jpeg skips it
	}
	i := r.pos
	if i+1 >= len(r.b) {
		return 0, errJPEGShort
	}
	if r.b[i] != 0xFF || r.b[i+1] == 0x00 {
		return 0, unsupported("data after the last block")
	}
	return i, nil
}

// restart checks that the restart marker want ends the interval and returns the
// position after it. Data before the marker is what image/jpeg skips to resynchronise
// (it fails only if the marker is not the one due), so that is left to it.
func (r *bitReader) restart(want byte) (int, error) {
	if r.n < r.pad {
		return 0, errJPEGShort
	}
	extra := r.n-r.pad >= 8
	i := r.pos
	for {
		if i+1 >= len(r.b) {
			return 0, errJPEGShort
		}
		if r.b[i] != 0xFF {
			i, extra = i+1, true
			continue
		}
		if r.b[i+1] == 0xFF { // fill byte
			i++
			continue
		}
		if r.b[i+1] != 0x00 {
			break
		}
		i, extra = i+2, true
	}
	switch {
	case r.b[i+1] != want:
		return 0, errJPEGRestartOrder
	case extra:
		return 0, unsupported("data before a restart marker")
	}
	return i + 2, nil
}
