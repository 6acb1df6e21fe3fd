package audit

import "time"

// sealFloor is the sealer's low-water mark: the seq at or below which it no longer looks.
//
// Unsealed entries are found through a partial index (pos IS NULL). The index keeps an
// entry for every row sealed since the last VACUUM, dead, and a look from its start
// crosses them all: at 4,000 entries a second that was 10 ms a look after half a minute,
// with a look every SealPoll, and autovacuum comes rarely to a large append-only table.
//
// An entry's seq is drawn when it is inserted and its transaction commits soon after, not
// in seq order. A pass that sealed seq S at time t saw S committed, so every seq up to S
// had been drawn by t. From t+grace on, each of those entries was drawn at least grace
// ago: if its transaction took less than that, it committed while looks still started
// below it, and the pass after its commit sealed it. So a look may start above the newest
// S sealed at least grace ago. A full look every sweep seals the entries of slower
// transactions, and those other instances left behind.
type sealFloor struct {
	grace, sweep time.Duration

	marks []sealMark // seqs sealed, with when; oldest first, none older than grace
	floor int64
	swept time.Time // the last full look
}

type sealMark struct {
	at  time.Time
	seq int64
}

// next returns where a look at now starts: above the returned seq (0: a full look).
func (f *sealFloor) next(now time.Time) int64 {
	if now.Sub(f.swept) >= f.sweep {
		f.swept = now
		return 0
	}
	for len(f.marks) > 0 && now.Sub(f.marks[0].at) >= f.grace {
		f.floor = max(f.floor, f.marks[0].seq)
		f.marks = f.marks[1:]
	}
	return f.floor
}

// sealed records that a look ending at now sealed entries up to seq (0: none).
func (f *sealFloor) sealed(now time.Time, seq int64) {
	if n := len(f.marks); seq > f.floor && (n == 0 || seq > f.marks[n-1].seq) {
		f.marks = append(f.marks, sealMark{now, seq})
	}
}
