package reconcile

import (
	"bytes"
	"cmp"
	"hash/maphash"
	"runtime"
	"slices"
	"sync"
	"unsafe"
)

// Class is the outcome of matching one key.
type Class string

const (
	// Summary-only classes: counted, never listed.
	ClassMatched         Class = "matched"
	ClassMatchedCrossDay Class = "matched-cross-day" // a pending row of the previous date found its counterpart
	// Discrepancies, platform vs channel.
	ClassLong      Class = "long"            // 长款: the channel has money the platform has no record of
	ClassShort     Class = "short"           // 短款: the platform has a record the channel has no money for
	ClassAmount    Class = "amount-mismatch" // both have it, amounts differ
	ClassStatus    Class = "status-mismatch" // both have it, states differ
	ClassDuplicate Class = "duplicate"       // the same key twice in one source
	ClassPending   Class = "pending"         // unmatched near the day's cut-off: held for the next run
	// Discrepancies, platform vs HIS (three-way runs only).
	ClassHISMissing Class = "his-missing"         // the channel took money, the HIS has no settlement: refund candidate
	ClassHISExtra   Class = "his-extra"           // the HIS settled what the platform has no record of
	ClassHISAmount  Class = "his-amount-mismatch" // platform and HIS amounts differ
)

// Classes lists every class in report order.
func Classes() []Class { return slices.Clone(classList) }

var classList = []Class{ClassMatched, ClassMatchedCrossDay, ClassLong, ClassShort, ClassAmount, ClassStatus, ClassDuplicate,
	ClassPending, ClassHISMissing, ClassHISExtra, ClassHISAmount}

// classIndex is a linear search: matched, the hot case, is first.
func classIndex(c Class) int {
	for i, k := range classList {
		if k == c {
			return i
		}
	}
	return -1
}

var nClasses = len(classList)

// Discrepancy is one listed outcome. Amounts are fen; Has* say which sides had the key.
type Discrepancy struct {
	Class          Class  `json:"class"`
	Side           Side   `json:"-"` // for pending and duplicate: the side the row came from
	Key            string `json:"key"`
	Merchant       string `json:"merchant"`
	Kind           Kind   `json:"-"`
	PlatformFen    int64  `json:"platformFen"`
	ChannelFen     int64  `json:"channelFen"`
	HISFen         int64  `json:"hisFen"`
	PlatformStatus Status `json:"-"`
	ChannelStatus  Status `json:"-"`
	Time           int64  `json:"time"` // unix seconds of the row that raised it
	Line           int64  `json:"line"` // statement line, when the channel or HIS row raised it
	// Fen is the size of the discrepancy: the unmatched amount, or |difference|.
	Fen int64 `json:"fen"`
}

// SummaryRow is one (merchant, class) count with its fen sum.
type SummaryRow struct {
	Merchant string `json:"merchant"`
	Class    Class  `json:"class"`
	Count    int64  `json:"count"`
	Fen      int64  `json:"fen"`
}

// Totals are the control totals of each side as matched (rows and fen, pay minus refund
// for money).
type Totals struct {
	PlatformRows int64 `json:"platformRows"`
	PlatformFen  int64 `json:"platformFen"`
	ChannelRows  int64 `json:"channelRows"`
	ChannelFen   int64 `json:"channelFen"`
	HISRows      int64 `json:"hisRows"`
	HISFen       int64 `json:"hisFen"`
}

// Result is a finished join.
type Result struct {
	Discrepancies []Discrepancy
	Summary       []SummaryRow
	Totals        Totals
}

// Counts returns the count per class over all merchants.
func (r *Result) Counts() map[Class]int64 {
	m := map[Class]int64{}
	for _, s := range r.Summary {
		m[s.Class] += s.Count
	}
	return m
}

// Options shape a Join.
type Options struct {
	// Partitions: hash partitions joined in parallel (default GOMAXPROCS).
	Partitions int
	// ExpectRows: the expected platform (build side) rows, to size tables once.
	ExpectRows int
	// PendingFrom: an unmatched row stamped at or after this unix second (the last
	// minutes of the business day) is held as pending, not reported; 0 holds nothing.
	PendingFrom int64
	// ThreeWay: HIS rows are part of this run, so platform vs HIS is checked too.
	ThreeWay bool
	// StatusOnly compares states, not amounts (银社对账).
	StatusOnly bool
}

// Join is a streaming hash join of one channel and date. Build it from the platform
// (and HIS) rows, then probe it with the channel's rows, then Finish. Each phase takes
// rows from any number of Feeders at once; rows are routed by key hash to P partitions,
// each with its own table and goroutine, so both cores work without locks.
type Join struct {
	opt   Options
	seed  maphash.Seed
	parts []*partition
	pool  sync.Pool

	mu        sync.Mutex
	merchants []string
	merchIdx  map[string]uint16

	phase Side // SidePlatform: build; SideChannel: probe
	wg    sync.WaitGroup
}

// NewJoin starts an empty join.
func NewJoin(opt Options) *Join {
	if opt.Partitions <= 0 {
		opt.Partitions = runtime.GOMAXPROCS(0)
	}
	j := &Join{opt: opt, seed: maphash.MakeSeed(), merchants: []string{""}, merchIdx: map[string]uint16{"": 0}}
	j.pool.New = func() any { return &batch{rows: make([]brow, 0, batchRows), keys: make([]byte, 0, batchRows*24)} }
	for range opt.Partitions {
		j.parts = append(j.parts, newPartition(j, opt.ExpectRows/opt.Partitions+1))
	}
	return j
}

// Begin starts a phase: build (SidePlatform, which also takes SideHIS rows) or probe
// (SideChannel). End waits until the phase's rows are all applied.
func (j *Join) Begin(phase Side) {
	j.phase = phase
	for _, p := range j.parts {
		p.in = make(chan *batch, 4)
		j.wg.Add(1)
		go p.run(phase)
	}
}

// End closes the phase begun last. Every Feeder of the phase must be Closed first.
func (j *Join) End() {
	for _, p := range j.parts {
		close(p.in)
	}
	j.wg.Wait()
}

func (j *Join) merchantID(b []byte) uint16 {
	j.mu.Lock()
	defer j.mu.Unlock()
	if id, ok := j.merchIdx[string(b)]; ok {
		return id
	}
	id := uint16(len(j.merchants))
	if len(j.merchants) >= 65535 {
		id = 65535 // beyond 65k merchants the rest share one summary line
	} else {
		j.merchants = append(j.merchants, string(b))
		j.merchIdx[string(b)] = id
	}
	return id
}

const batchRows = 2048

// brow is a row in transit to its partition; its key is in the batch's key buffer.
type brow struct {
	hash     uint64
	keyOff   uint32
	keyLen   uint16
	merchant uint16
	kind     Kind
	status   Status
	side     Side
	carried  bool
	amount   int64
	time     int64
	line     int64
}

type batch struct {
	rows []brow
	keys []byte
}

// Feeder routes one producer's rows to the partitions. A Feeder is used by one
// goroutine; run several for parallel parsing.
type Feeder struct {
	j       *Join
	side    Side
	out     []*batch
	lastM   []byte
	lastMID uint16
}

// Feeder returns a producer for side in the current phase.
func (j *Join) Feeder(side Side) *Feeder {
	f := &Feeder{j: j, side: side, out: make([]*batch, len(j.parts))}
	for i := range f.out {
		f.out[i] = j.pool.Get().(*batch)
	}
	return f
}

// Emit implements Emitter.
func (f *Feeder) Emit(r *Row) {
	h := maphash.Bytes(f.j.seed, r.Key)
	p := int((h >> 40) % uint64(len(f.out)))
	b := f.out[p]
	mid := uint16(0)
	if len(r.Merchant) > 0 {
		if bytes.Equal(r.Merchant, f.lastM) {
			mid = f.lastMID
		} else {
			mid = f.j.merchantID(r.Merchant)
			f.lastM, f.lastMID = append(f.lastM[:0], r.Merchant...), mid
		}
	}
	klen := len(r.Key)
	if klen > 65535 {
		klen = 65535
	}
	b.rows = append(b.rows, brow{hash: h, keyOff: uint32(len(b.keys)), keyLen: uint16(klen), merchant: mid,
		kind: r.Kind, status: r.Status, side: f.side, carried: r.Carried, amount: r.AmountFen, time: r.Time, line: r.Line})
	b.keys = append(b.keys, r.Key[:klen]...)
	if len(b.rows) == batchRows {
		f.j.parts[p].in <- b
		f.out[p] = f.j.pool.Get().(*batch)
	}
}

// Close sends what is left.
func (f *Feeder) Close() {
	for p, b := range f.out {
		if len(b.rows) > 0 {
			f.j.parts[p].in <- b
		} else {
			f.j.pool.Put(b)
		}
		f.out[p] = nil
	}
}

const (
	fPlatform uint8 = 1 << iota
	fHIS
	fChannel
	fCarried
	fChannelCarried
)

// entry is one key in a partition's table: the platform's and HIS's view of it, and
// whether the channel has been seen. It is one 64-byte cache line, with keys of up to
// inlineKey bytes (order numbers are) inside it, so a lookup costs the slot and this
// line; longer keys live in the arena.
type entry struct {
	pAmt     int64
	hAmt     int64
	time     int64
	keyOff   uint32
	keyLen   uint16
	merchant uint16
	kind     Kind
	pStatus  Status
	flags    uint8
	inline   [inlineKey]byte
}

const inlineKey = 29

const (
	chunkBits  = 16
	arenaBits  = 24 // 16 MB key chunks: growing never copies what is stored
	arenaChunk = 1 << arenaBits
)

type partition struct {
	j  *Join
	in chan *batch
	// slots: open addressing with linear probing; each is the key's hash tag (high 32
	// bits) and entry index + 1, so a probe rarely touches an entry that is not the one.
	slots   []uint64
	mask    uint64
	n       int
	entries [][]entry // chunks of 1<<chunkBits, so growing never copies entries either
	arena   [][]byte
	out     []Discrepancy
	frees   []func()    // bigAlloc regions of the slots and entries
	sum     [][]counter // [merchant][class]
	totals  Totals
	touched uint64 // keeps the touching loads in run from being optimised away
}

type counter struct{ n, fen int64 }

func newPartition(j *Join, expect int) *partition {
	size := 1024
	for float64(size)*0.7 < float64(expect) {
		size *= 2
	}
	p := &partition{j: j, mask: uint64(size - 1)}
	p.slots = p.uint64s(size)
	return p
}

func (p *partition) uint64s(n int) []uint64 {
	b, free := bigAlloc(n * 8)
	p.frees = append(p.frees, free)
	return unsafe.Slice((*uint64)(unsafe.Pointer(&b[0])), n)
}

func (p *partition) entryChunk() []entry {
	const n = 1 << chunkBits
	b, free := bigAlloc(n * int(unsafe.Sizeof(entry{})))
	p.frees = append(p.frees, free)
	return unsafe.Slice((*entry)(unsafe.Pointer(&b[0])), n)
}

// release returns the table's memory; the partition is unusable after.
func (p *partition) release() {
	p.slots, p.entries, p.arena = nil, nil, nil
	for _, f := range p.frees {
		f()
	}
	p.frees = nil
}

func (p *partition) entry(i uint32) *entry { return &p.entries[i>>chunkBits][i&(1<<chunkBits-1)] }

func (p *partition) key(e *entry) []byte {
	if e.keyLen <= inlineKey {
		return e.inline[:e.keyLen]
	}
	c := p.arena[e.keyOff>>arenaBits]
	o := e.keyOff & (arenaChunk - 1)
	return c[o : o+uint32(e.keyLen)]
}

// find returns the entry of key, or the empty slot where it would go.
func (p *partition) find(h uint64, key []byte) (slot uint64, e *entry) {
	i := h & p.mask
	tag := h >> 32
	for {
		s := p.slots[i]
		if s == 0 {
			return i, nil
		}
		if s>>32 == tag {
			e := p.entry(uint32(s) - 1)
			if int(e.keyLen) == len(key) && bytes.Equal(p.key(e), key) {
				return i, e
			}
		}
		i = (i + 1) & p.mask
	}
}

func (p *partition) insert(slot uint64, h uint64, key []byte) *entry {
	if float64(p.n+1) > 0.7*float64(len(p.slots)) {
		p.grow()
		slot, _ = p.find(h, key)
	}
	idx := uint32(p.n)
	if int(idx>>chunkBits) == len(p.entries) {
		p.entries = append(p.entries, p.entryChunk())
	}
	e := p.entry(idx)
	*e = entry{keyLen: uint16(len(key))}
	if len(key) <= inlineKey {
		copy(e.inline[:], key)
	} else {
		e.keyOff = p.store(key)
	}
	p.slots[slot] = h>>32<<32 | uint64(idx+1)
	p.n++
	return e
}

func (p *partition) store(key []byte) uint32 {
	last := len(p.arena) - 1
	if last < 0 || len(p.arena[last])+len(key) > arenaChunk {
		p.arena = append(p.arena, make([]byte, 0, arenaChunk))
		last++
	}
	off := uint32(last)<<arenaBits | uint32(len(p.arena[last]))
	p.arena[last] = append(p.arena[last], key...)
	return off
}

func (p *partition) grow() {
	old := p.frees
	p.frees = nil
	slots := p.uint64s(2 * len(p.slots))
	p.frees = append(p.frees, old[1:]...) // the old slots were the first region
	defer old[0]()
	mask := uint64(len(slots) - 1)
	for i := 0; i < p.n; i++ {
		h := maphash.Bytes(p.j.seed, p.key(p.entry(uint32(i)))) // growing is rare: tables are sized from ExpectRows
		j := h & mask
		for slots[j] != 0 {
			j = (j + 1) & mask
		}
		slots[j] = h>>32<<32 | uint64(i+1)
	}
	p.slots, p.mask = slots, mask
}

func (p *partition) count(merchant uint16, c Class, fen int64) {
	for int(merchant) >= len(p.sum) {
		p.sum = append(p.sum, make([]counter, nClasses))
	}
	k := &p.sum[merchant][classIndex(c)]
	k.n++
	k.fen += fen
}

func signed(k Kind, fen int64) int64 {
	if k == KindRefund {
		return -fen
	}
	return fen
}

func (p *partition) run(phase Side) {
	defer p.j.wg.Done()
	for b := range p.in {
		// Touch each row's slot first: independent loads the CPU overlaps, so the
		// lookups below mostly find their slot in cache instead of waiting one by one.
		var touch uint64
		for i := range b.rows {
			touch += p.slots[b.rows[i].hash&p.mask]
		}
		p.touched += touch
		for i := range b.rows {
			r := &b.rows[i]
			key := b.keys[r.keyOff : r.keyOff+uint32(r.keyLen)]
			if phase == SideChannel {
				p.probe(r, key)
			} else {
				p.build(r, key)
			}
		}
		b.rows, b.keys = b.rows[:0], b.keys[:0]
		p.j.pool.Put(b)
	}
}

func (p *partition) build(r *brow, key []byte) {
	slot, e := p.find(r.hash, key)
	if r.side == SideHIS {
		p.totals.HISRows++
		p.totals.HISFen += signed(r.kind, r.amount)
	} else {
		p.totals.PlatformRows++
		p.totals.PlatformFen += signed(r.kind, r.amount)
	}
	if e == nil {
		e = p.insert(slot, r.hash, key)
		e.merchant, e.kind, e.time = r.merchant, r.kind, r.time
	}
	if r.side == SideHIS {
		if e.flags&fHIS != 0 {
			p.discrepancy(ClassDuplicate, SideHIS, e, key, r, r.amount)
			return
		}
		e.flags |= fHIS
		e.hAmt = r.amount
		return
	}
	if e.flags&fPlatform != 0 {
		p.discrepancy(ClassDuplicate, SidePlatform, e, key, r, r.amount)
		return
	}
	e.flags |= fPlatform
	if r.carried {
		e.flags |= fCarried
	}
	e.pAmt, e.pStatus, e.merchant, e.kind, e.time = r.amount, r.status, r.merchant, r.kind, r.time
}

// discrepancy lists one outcome raised by row r (nil: raised by the entry alone).
func (p *partition) discrepancy(c Class, side Side, e *entry, key []byte, r *brow, fen int64) {
	d := Discrepancy{Class: c, Side: side, Key: string(key), Fen: fen}
	if e != nil {
		d.Merchant, d.Kind, d.Time = p.j.merchantName(e.merchant), e.kind, e.time
		if e.flags&fPlatform != 0 {
			d.PlatformFen, d.PlatformStatus = e.pAmt, e.pStatus
		}
		if e.flags&fHIS != 0 {
			d.HISFen = e.hAmt
		}
	}
	if r != nil {
		d.Merchant, d.Kind, d.Time, d.Line = p.j.merchantName(r.merchant), r.kind, r.time, r.line
		switch r.side {
		case SideChannel:
			d.ChannelFen, d.ChannelStatus = r.amount, r.status
		case SidePlatform:
			d.PlatformFen, d.PlatformStatus = r.amount, r.status
		case SideHIS:
			d.HISFen = r.amount
		}
	}
	merchant := uint16(0)
	if r != nil {
		merchant = r.merchant
	} else if e != nil {
		merchant = e.merchant
	}
	p.count(merchant, c, fen)
	p.out = append(p.out, d)
}

func (j *Join) merchantName(id uint16) string {
	j.mu.Lock()
	defer j.mu.Unlock()
	if int(id) < len(j.merchants) {
		return j.merchants[id]
	}
	return "(other)"
}

func (p *partition) probe(r *brow, key []byte) {
	o := p.j.opt
	p.totals.ChannelRows++
	p.totals.ChannelFen += signed(r.kind, r.amount)
	slot, e := p.find(r.hash, key)
	if e != nil && e.flags&fChannel != 0 {
		p.discrepancy(ClassDuplicate, SideChannel, e, key, r, r.amount)
		return
	}
	if e == nil || e.flags&fPlatform == 0 {
		if e == nil {
			e = p.insert(slot, r.hash, key)
			e.merchant, e.kind, e.time = r.merchant, r.kind, r.time
		}
		e.flags |= fChannel
		if r.carried {
			e.flags |= fChannelCarried
		}
		if !r.carried && o.PendingFrom > 0 && r.time >= o.PendingFrom {
			p.discrepancy(ClassPending, SideChannel, e, key, r, r.amount)
			return
		}
		p.discrepancy(ClassLong, SideChannel, e, key, r, r.amount)
		if o.ThreeWay && e.flags&fHIS == 0 && r.kind == KindPay && r.status == StatusSuccess {
			p.discrepancy(ClassHISMissing, SideChannel, e, key, r, r.amount)
		}
		return
	}
	e.flags |= fChannel
	if r.carried {
		e.flags |= fChannelCarried
	}
	switch {
	case !o.StatusOnly && e.pAmt != r.amount:
		p.discrepancy(ClassAmount, SideChannel, e, key, r, abs(e.pAmt-r.amount))
	case e.pStatus != r.status:
		p.discrepancy(ClassStatus, SideChannel, e, key, r, r.amount)
	case e.flags&fCarried != 0 || r.carried:
		p.count(e.merchant, ClassMatchedCrossDay, r.amount)
	default:
		p.count(e.merchant, ClassMatched, r.amount)
	}
	if o.ThreeWay && e.flags&fHIS == 0 && r.kind == KindPay && r.status == StatusSuccess {
		p.discrepancy(ClassHISMissing, SideChannel, e, key, r, r.amount)
	}
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

// finish scans the table for what the channel never showed, and HIS differences.
func (p *partition) finish() {
	o := p.j.opt
	for i := 0; i < p.n; i++ {
		e := p.entry(uint32(i))
		hasP, hasH, hasC := e.flags&fPlatform != 0, e.flags&fHIS != 0, e.flags&fChannel != 0
		if hasP && !hasC {
			k := p.key(e)
			if e.flags&fCarried == 0 && o.PendingFrom > 0 && e.time >= o.PendingFrom {
				p.discrepancy(ClassPending, SidePlatform, e, k, nil, e.pAmt)
			} else {
				p.discrepancy(ClassShort, SidePlatform, e, k, nil, e.pAmt)
			}
		}
		if !o.ThreeWay {
			continue
		}
		switch {
		case hasH && !hasP:
			p.discrepancy(ClassHISExtra, SideHIS, e, p.key(e), nil, e.hAmt)
		case hasH && hasP && e.hAmt != e.pAmt:
			p.discrepancy(ClassHISAmount, SideHIS, e, p.key(e), nil, abs(e.pAmt-e.hAmt))
		}
	}
}

// Finish scans what is left and returns the discrepancies (sorted by class, key, side),
// the summary (sorted by merchant, class) and the control totals. The join is spent.
func (j *Join) Finish() *Result {
	var wg sync.WaitGroup
	for _, p := range j.parts {
		wg.Add(1)
		go func() { defer wg.Done(); p.finish() }()
	}
	wg.Wait()
	res := &Result{}
	sums := map[uint16][]counter{}
	for _, p := range j.parts {
		res.Discrepancies = append(res.Discrepancies, p.out...)
		t := &res.Totals
		t.PlatformRows += p.totals.PlatformRows
		t.PlatformFen += p.totals.PlatformFen
		t.ChannelRows += p.totals.ChannelRows
		t.ChannelFen += p.totals.ChannelFen
		t.HISRows += p.totals.HISRows
		t.HISFen += p.totals.HISFen
		for m, cs := range p.sum {
			acc := sums[uint16(m)]
			if acc == nil {
				acc = make([]counter, nClasses)
				sums[uint16(m)] = acc
			}
			for c := range cs {
				acc[c].n += cs[c].n
				acc[c].fen += cs[c].fen
			}
		}
		p.release()
	}
	SortDiscrepancies(res.Discrepancies)
	for m, cs := range sums {
		for c, k := range cs {
			if k.n > 0 {
				res.Summary = append(res.Summary, SummaryRow{Merchant: j.merchantName(m), Class: classList[c], Count: k.n, Fen: k.fen})
			}
		}
	}
	sortSummary(res.Summary)
	return res
}

func sortSummary(s []SummaryRow) {
	slices.SortFunc(s, func(a, b SummaryRow) int {
		return cmp.Or(cmp.Compare(a.Merchant, b.Merchant), cmp.Compare(classIndex(a.Class), classIndex(b.Class)))
	})
}

// Close releases the join's tables without finishing it (a run that failed midway);
// Finish releases them itself. Safe to call twice.
func (j *Join) Close() {
	for _, p := range j.parts {
		p.release()
	}
}

// SortDiscrepancies puts discrepancies in their one deterministic order.
func SortDiscrepancies(ds []Discrepancy) {
	slices.SortFunc(ds, func(a, b Discrepancy) int {
		return cmp.Or(cmp.Compare(classIndex(a.Class), classIndex(b.Class)), cmp.Compare(a.Key, b.Key),
			cmp.Compare(a.Side, b.Side), cmp.Compare(a.Line, b.Line))
	})
}
