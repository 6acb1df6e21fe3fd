package vindex

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// Snapshot format (little-endian): magic, dim, nlist, nprobe, the centroids, then for each
// list its length and its entries (key length, key bytes, vector). The lists are written
// as they are, so loading does not re-run the centroid search.
const magic = "SSFACEIVF1\n"

// WriteTo writes a snapshot of the index.
func (x *Index) WriteTo(w io.Writer) (int64, error) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	bw := bufio.NewWriterSize(w, 1<<20)
	cw := &countWriter{w: bw}
	put := func(v uint32) { binary.Write(cw, binary.LittleEndian, v) }
	io.WriteString(cw, magic)
	put(uint32(x.dim))
	put(uint32(len(x.lists)))
	put(uint32(x.nprobe))
	writeFloats(cw, x.centroids)
	for _, l := range x.lists {
		put(uint32(len(l.keys)))
		for i, k := range l.keys {
			put(uint32(len(k)))
			io.WriteString(cw, k)
			writeFloats(cw, l.vecs[i*x.dim:(i+1)*x.dim])
		}
	}
	if cw.err != nil {
		return cw.n, cw.err
	}
	return cw.n, bw.Flush()
}

// Read loads a snapshot written by WriteTo.
func Read(r io.Reader) (*Index, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	m := make([]byte, len(magic))
	if _, err := io.ReadFull(br, m); err != nil || string(m) != magic {
		return nil, errors.New("vindex: not an index snapshot")
	}
	var hdr [3]uint32
	if err := binary.Read(br, binary.LittleEndian, &hdr); err != nil {
		return nil, fmt.Errorf("vindex: snapshot header: %w", err)
	}
	dim, nlist := int(hdr[0]), int(hdr[1])
	if dim <= 0 || dim > 4096 || nlist <= 0 || nlist > 1<<20 {
		return nil, fmt.Errorf("vindex: snapshot header dim=%d nlist=%d out of range", dim, nlist)
	}
	cent := make([]float32, dim*nlist)
	if err := readFloats(br, cent); err != nil {
		return nil, err
	}
	x, err := New(dim, cent, int(hdr[2]))
	if err != nil {
		return nil, err
	}
	for li := range x.lists {
		var n uint32
		if err := binary.Read(br, binary.LittleEndian, &n); err != nil {
			return nil, fmt.Errorf("vindex: snapshot list %d: %w", li, err)
		}
		l := &x.lists[li]
		l.keys = make([]string, n)
		l.vecs = make([]float32, int(n)*dim)
		for i := range l.keys {
			var kl uint32
			if err := binary.Read(br, binary.LittleEndian, &kl); err != nil || kl > 1024 {
				return nil, fmt.Errorf("vindex: snapshot key in list %d: bad length (%v)", li, err)
			}
			kb := make([]byte, kl)
			if _, err := io.ReadFull(br, kb); err != nil {
				return nil, err
			}
			l.keys[i] = string(kb)
			if err := readFloats(br, l.vecs[i*dim:(i+1)*dim]); err != nil {
				return nil, err
			}
			x.where[l.keys[i]] = loc{li, i}
		}
	}
	return x, nil
}

type countWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.err = err
	return n, err
}

func writeFloats(w io.Writer, f []float32) {
	b := make([]byte, 4*len(f))
	for i, v := range f {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	w.Write(b)
}

func readFloats(r io.Reader, f []float32) error {
	b := make([]byte, 4*len(f))
	if _, err := io.ReadFull(r, b); err != nil {
		return fmt.Errorf("vindex: snapshot truncated: %w", err)
	}
	for i := range f {
		f[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return nil
}
