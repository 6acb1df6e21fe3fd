package reconcile

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"os"
	"slices"
	"sync"
)

// A day larger than memory is joined in parts (grace hash join): every row goes to one of
// P spill files per side by the hash of its key, so a key's rows of all sides land in the
// same part; the parts are then joined one after another, each one in memory. The
// threshold is Config.SpillRows (docs/reconcile.md gives the memory per row it is based
// on).

type spillSet struct {
	seed  maphash.Seed
	parts []*spillFile
}

type spillFile struct {
	mu   sync.Mutex
	f    *os.File
	w    *bufio.Writer
	rows int64
}

func newSpillSet(dir string, parts int) (*spillSet, error) {
	s := &spillSet{seed: maphash.MakeSeed()}
	for range parts {
		f, err := os.CreateTemp(dir, "reconcile-spill-*")
		if err != nil {
			s.close()
			return nil, err
		}
		_ = os.Remove(f.Name())
		s.parts = append(s.parts, &spillFile{f: f, w: bufio.NewWriterSize(f, 1<<20)})
	}
	return s, nil
}

func (s *spillSet) close() {
	for _, p := range s.parts {
		p.f.Close()
	}
}

// spillEmitter buffers one producer's records per part and appends them under the
// part's lock.
type spillEmitter struct {
	set  *spillSet
	side Side
	bufs [][]byte
}

func (s *spillSet) emitter(side Side) *spillEmitter {
	return &spillEmitter{set: s, side: side, bufs: make([][]byte, len(s.parts))}
}

const spillHeader = 4 + 2 + 2 + 8 + 8 + 8

func (e *spillEmitter) Emit(r *Row) {
	p := int(maphash.Bytes(e.set.seed, r.Key) % uint64(len(e.set.parts)))
	b := e.bufs[p]
	var h [spillHeader]byte
	h[0], h[1], h[2], h[3] = byte(e.side), byte(r.Kind), byte(r.Status), 0
	if r.Carried {
		h[3] = 1
	}
	binary.LittleEndian.PutUint16(h[4:], uint16(len(r.Key)))
	binary.LittleEndian.PutUint16(h[6:], uint16(len(r.Merchant)))
	binary.LittleEndian.PutUint64(h[8:], uint64(r.AmountFen))
	binary.LittleEndian.PutUint64(h[16:], uint64(r.Time))
	binary.LittleEndian.PutUint64(h[24:], uint64(r.Line))
	b = append(append(append(b, h[:]...), r.Key...), r.Merchant...)
	if len(b) >= 256<<10 {
		e.flush(p, b)
		b = b[:0]
	}
	e.bufs[p] = b
}

func (e *spillEmitter) flush(p int, b []byte) {
	f := e.set.parts[p]
	f.mu.Lock()
	_, _ = f.w.Write(b) // a write error surfaces at Flush
	f.mu.Unlock()
}

func (e *spillEmitter) Close() {
	for p, b := range e.bufs {
		if len(b) > 0 {
			e.flush(p, b)
		}
		e.bufs[p] = nil
	}
}

// replay reads a part back, emitting the build side's rows (platform and HIS) or the
// probe side's (channel) to the emitter of their side.
func (f *spillFile) replay(build bool, out func(Side) Emitter) error {
	if _, err := f.f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f.f, 1<<20)
	var h [spillHeader]byte
	var key, merchant []byte
	for {
		if _, err := io.ReadFull(r, h[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("spill file: %w", err)
		}
		kl, ml := int(binary.LittleEndian.Uint16(h[4:])), int(binary.LittleEndian.Uint16(h[6:]))
		key, merchant = slices.Grow(key[:0], kl)[:kl], slices.Grow(merchant[:0], ml)[:ml]
		if _, err := io.ReadFull(r, key); err != nil {
			return err
		}
		if _, err := io.ReadFull(r, merchant); err != nil {
			return err
		}
		side := Side(h[0])
		if (side == SideChannel) == build {
			continue
		}
		out(side).Emit(&Row{Key: key, Merchant: merchant, Kind: Kind(h[1]), Status: Status(h[2]), Carried: h[3] == 1,
			AmountFen: int64(binary.LittleEndian.Uint64(h[8:])), Time: int64(binary.LittleEndian.Uint64(h[16:])),
			Line: int64(binary.LittleEndian.Uint64(h[24:]))})
	}
}

// joinSpilled writes every input to parts spill files, then joins part after part.
func joinSpilled(ctx context.Context, opt Options, in *runInputs, dir string, parts int) (*Result, error) {
	set, err := newSpillSet(dir, parts)
	if err != nil {
		return nil, err
	}
	defer set.close()
	var ems []*spillEmitter
	newEm := func(side Side) Emitter {
		e := set.emitter(side)
		ems = append(ems, e)
		return e
	}
	err = in.build(ctx, newEm)
	if err == nil {
		err = in.probe(ctx, newEm)
	}
	for _, e := range ems {
		e.Close()
	}
	if err != nil {
		return nil, err
	}
	for _, p := range set.parts {
		if err := p.w.Flush(); err != nil {
			return nil, fmt.Errorf("spill file: %w", err)
		}
	}
	return joinParts(ctx, opt, set)
}

func joinParts(ctx context.Context, opt Options, set *spillSet) (*Result, error) {
	opt.ExpectRows /= len(set.parts)
	total := &Result{}
	type sk struct {
		merchant string
		class    Class
	}
	sums := map[sk]*SummaryRow{}
	for _, p := range set.parts {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		j := NewJoin(opt)
		defer j.Close() // a no-op once Finish has released the part
		for _, build := range []bool{true, false} {
			begin := SideChannel
			if build {
				begin = SidePlatform
			}
			err := phase(ctx, j, begin, func(_ context.Context, newFeeder func(Side) Emitter) error {
				feeders := map[Side]Emitter{}
				return p.replay(build, func(side Side) Emitter {
					if feeders[side] == nil {
						feeders[side] = newFeeder(side)
					}
					return feeders[side]
				})
			})
			if err != nil {
				return nil, err
			}
		}
		r := j.Finish()
		total.Discrepancies = append(total.Discrepancies, r.Discrepancies...)
		t := &total.Totals
		t.PlatformRows += r.Totals.PlatformRows
		t.PlatformFen += r.Totals.PlatformFen
		t.ChannelRows += r.Totals.ChannelRows
		t.ChannelFen += r.Totals.ChannelFen
		t.HISRows += r.Totals.HISRows
		t.HISFen += r.Totals.HISFen
		for _, s := range r.Summary {
			k := sk{s.Merchant, s.Class}
			if sums[k] == nil {
				sums[k] = &SummaryRow{Merchant: s.Merchant, Class: s.Class}
			}
			sums[k].Count += s.Count
			sums[k].Fen += s.Fen
		}
	}
	SortDiscrepancies(total.Discrepancies)
	for _, s := range sums {
		total.Summary = append(total.Summary, *s)
	}
	sortSummary(total.Summary)
	return total, nil
}
