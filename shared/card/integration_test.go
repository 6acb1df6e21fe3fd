//go:build integration

package card_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/event"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/card"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/inbox"
	"github.com/sscard/platform/tests/testenv"
)

var ctx = context.Background()

// newService gives a test its own migrated database and a service on it with the
// default settings plus environ.
func newService(t testing.TB, environ ...string) (*card.Service, *pgxpool.Pool) {
	t.Helper()
	env := testenv.Load(t)
	dsn := env.NewDatabase(t)
	cfg, err := pgxpool.ParseConfig(dsn + "&pool_max_conns=24")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.Password = env.Secret(t, "postgres-password")
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	c, err := card.LoadConfig(envconf.New(environ))
	if err != nil {
		t.Fatal(err)
	}
	return &card.Service{Pool: pool, Config: c, Bank: &card.SimulatedBank{Pool: pool}}, pool
}

var cardSeq struct {
	sync.Mutex
	n int
}

func newCard(t testing.TB, svc *card.Service) card.Card {
	t.Helper()
	cardSeq.Lock()
	cardSeq.n++
	no := fmt.Sprintf("B%08d", cardSeq.n)
	cardSeq.Unlock()
	c, err := svc.Create(ctx, card.NewCard{CardNo: no, Actor: "op-1"})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// requestFor builds a request that satisfies transition tr's channel and identity rules.
func requestFor(c card.Card, tr card.Transition) card.Request {
	return card.Request{Card: c.No, Action: tr.Action, Channel: tr.Channels[0], IdentityVerified: tr.Identity,
		Actor: "op-1", RequestID: "req-12345678"}
}

func transition(t testing.TB, from card.Status, a card.Action) card.Transition {
	t.Helper()
	for _, tr := range card.Transitions() {
		if tr.From == from && tr.Action == a {
			return tr
		}
	}
	t.Fatalf("no transition %s from %s", a, from)
	return card.Transition{}
}

// driveTo brings a fresh card to status s.
func driveTo(t testing.TB, svc *card.Service, s card.Status) card.Card {
	t.Helper()
	c := newCard(t, svc)
	var a card.Action
	switch s {
	case card.Normal:
		return c
	case card.TemporaryLoss:
		a = card.ActTemporaryLoss
	case card.FormalLoss:
		a = card.ActFormalLoss
	case card.Cancelled:
		a = card.ActCancel
	}
	res, err := svc.Change(ctx, requestFor(c, transition(t, card.Normal, a)))
	if err != nil {
		t.Fatal(err)
	}
	return res.Card
}

type counts struct {
	history, blacklist, outbox, audit int
	version                           int64
}

func countsOf(t testing.TB, pool *pgxpool.Pool, cardID string) counts {
	t.Helper()
	var c counts
	// The blacklist version is drawn when a change is sequenced, as every reader does.
	if _, err := (&card.Service{Pool: pool}).Sequence(ctx); err != nil {
		t.Fatal(err)
	}
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM card_status_history WHERE card_id = $1),
		(SELECT count(*) FROM blacklist_changes WHERE card_id = $1),
		(SELECT count(*) FROM outbox WHERE producer = 'loss-report' AND event->>'subject' = $1),
		(SELECT count(*) FROM audit_log WHERE object_id = $1),
		(SELECT version FROM blacklist_meta)`, cardID).Scan(&c.history, &c.blacklist, &c.outbox, &c.audit, &c.version)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func outboxEvents(t testing.TB, pool *pgxpool.Pool, cardID string) []event.Event {
	t.Helper()
	rows, err := pool.Query(ctx, `SELECT event FROM outbox WHERE producer = 'loss-report' AND event->>'subject' = $1
		ORDER BY id`, cardID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		t.Fatal(err)
	}
	out := make([]event.Event, len(raw))
	for i, b := range raw {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func statusData(t testing.TB, ev event.Event) events.CardStatusChangedData {
	t.Helper()
	d, err := events.Decode[events.CardStatusChangedData](ev)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// Every legal transition, from a card really in its from-status, writes the card, one
// history row, one blacklist change, one audit entry and one event, all agreeing; every
// illegal one is refused naming the current status and writes nothing.
func TestChange_EveryTransition(t *testing.T) {
	svc, pool := newService(t)
	codes := svc.Config.Codes
	for _, tr := range card.Transitions() {
		if tr.Action == card.ActLapse {
			continue // TestLapse
		}
		t.Run(fmt.Sprintf("%s from %s", tr.Action, tr.From), func(t *testing.T) {
			c := driveTo(t, svc, tr.From)
			before := countsOf(t, pool, c.ID)
			res, err := svc.Change(ctx, requestFor(c, tr))
			if err != nil {
				t.Fatal(err)
			}
			after := countsOf(t, pool, c.ID)
			if res.Card.Status != tr.To || res.From != tr.From || res.Card.StatusCode != codes.Code(tr.To) ||
				res.Card.Listed != tr.To.Listed() || res.Card.Version != c.Version+1 {
				t.Errorf("result: %+v", res)
			}
			if after.history != before.history+1 || after.blacklist != before.blacklist+1 || after.outbox != before.outbox+1 ||
				after.audit != before.audit+1 || after.version != before.version+1 {
				t.Errorf("want one of each written: before %+v after %+v", before, after)
			}
			got, err := svc.Get(ctx, c.ID)
			if err != nil || got.Status != tr.To || (got.TempLossExpiresAt != nil) != (tr.To == card.TemporaryLoss) ||
				got.Version != res.Card.Version {
				t.Errorf("stored card: %+v %v", got, err)
			}
			h, err := svc.History(ctx, c.No)
			if last := h[len(h)-1]; err != nil || last.From != tr.From || last.To != tr.To || last.Action != tr.Action ||
				last.Channel != string(tr.Channels[0]) || last.Seq != got.Version {
				t.Errorf("history: %+v %v", h, err)
			}
			evs := outboxEvents(t, pool, c.ID)
			d := statusData(t, evs[len(evs)-1])
			if d.From != codes.Code(tr.From) || d.To != codes.Code(tr.To) || d.StatusVersion != got.Version || d.CardID != c.ID {
				t.Errorf("event data: %+v", d)
			}
			var op, detail string
			if err := pool.QueryRow(ctx, `SELECT op FROM blacklist_changes WHERE version = $1`, after.version).Scan(&op); err != nil ||
				(op == "add") != tr.To.Listed() {
				t.Errorf("blacklist op %q %v for %s", op, err, tr.To)
			}
			if err := pool.QueryRow(ctx, `SELECT detail->>'to' FROM audit_log WHERE object_id = $1 ORDER BY seq DESC LIMIT 1`,
				c.ID).Scan(&detail); err != nil || detail != string(tr.To) {
				t.Errorf("audit detail to=%q %v", detail, err)
			}
		})
	}
	legal := map[[2]string]bool{}
	for _, tr := range card.Transitions() {
		legal[[2]string{string(tr.From), string(tr.Action)}] = true
	}
	for _, from := range card.Statuses() {
		for _, a := range card.Actions() {
			if legal[[2]string{string(from), string(a)}] {
				continue
			}
			c := driveTo(t, svc, from)
			before := countsOf(t, pool, c.ID)
			_, err := svc.Change(ctx, card.Request{Card: c.ID, Action: a, Channel: card.ChannelOutlet, IdentityVerified: true})
			var te *card.TransitionError
			if !errors.As(err, &te) || te.Current != from || te.CurrentCode != codes.Code(from) {
				t.Errorf("%s from %s: want a transition error naming %s, got %v", a, from, from, err)
			}
			if after := countsOf(t, pool, c.ID); after != before {
				t.Errorf("%s from %s: something was written: %+v → %+v", a, from, before, after)
			}
		}
	}
	// Unknown card, malformed reference.
	if _, err := svc.Change(ctx, card.Request{Card: "Z99999999", Action: card.ActUnlock, Channel: card.ChannelPhone}); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("unknown card: %v", err)
	}
	var ie *card.InputError
	if _, err := svc.Change(ctx, card.Request{Card: "nope", Action: card.ActUnlock, Channel: card.ChannelPhone}); !errors.As(err, &ie) {
		t.Errorf("bad reference: %v", err)
	}
	// An operator id shaped like a phone number never reaches the audit log.
	pii := newCard(t, svc)
	before := countsOf(t, pool, pii.ID)
	_, err := svc.Change(ctx, card.Request{Card: pii.No, Action: card.ActTemporaryLoss, Channel: card.ChannelPhone,
		Actor: "op-13812345678"})
	if !errors.As(err, &ie) || ie.Fields[0].Name != "operator" {
		t.Errorf("PII-shaped operator: want an input error on operator, got %v", err)
	}
	if after := countsOf(t, pool, pii.ID); after != before {
		t.Errorf("PII-shaped operator: something was written")
	}
	existing := newCard(t, svc)
	if _, err := svc.Create(ctx, card.NewCard{CardNo: strings.ToLower(existing.No)}); !errors.Is(err, card.ErrCardExists) {
		t.Errorf("duplicate card number: %v", err)
	}
	verifyAudit(t, pool)
}

// verifyAudit seals what is pending (the function's sealer would) and checks the chain.
func verifyAudit(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	if _, err := (&audit.Log{}).Seal(ctx, pool); err != nil {
		t.Fatal(err)
	}
	r, err := audit.Verify(ctx, pool)
	if err != nil || r.Broken != nil || r.Entries == 0 || r.Pending != 0 {
		t.Errorf("audit chain: %+v %v", r, err)
	}
}

// 20 concurrent changes of one card: each is carried out on the status left by the one
// before it, or refused; none is lost.
func TestChange_ConcurrentChangesSerialise(t *testing.T) {
	svc, pool := newService(t)
	c := newCard(t, svc)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	start := make(chan struct{})
	for i := range 20 {
		wg.Go(func() {
			<-start
			r := card.Request{Card: c.No, Channel: card.ChannelPhone, Action: card.ActTemporaryLoss}
			switch i % 4 {
			case 1, 3:
				r.Action, r.Channel, r.IdentityVerified = card.ActUnlock, card.ChannelBank, true
			case 2:
				r.Action, r.Channel, r.IdentityVerified = card.ActFormalLoss, card.ChannelOutlet, true
			}
			_, err := svc.Change(ctx, r)
			var te *card.TransitionError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.As(err, &te):
				refused++
			default:
				t.Errorf("change %d: %v", i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	h, err := svc.History(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok == 0 || ok+refused != 20 || len(h) != ok+1 {
		t.Fatalf("ok %d refused %d, history %d rows", ok, refused, len(h))
	}
	for i := 1; i < len(h); i++ {
		if h[i].Seq != int64(i) || h[i].From != h[i-1].To {
			t.Errorf("history row %d does not follow row %d: %+v after %+v", i, i-1, h[i], h[i-1])
		}
	}
	// The card's blacklist changes were numbered in the order of its status changes.
	if _, err := svc.Sequence(ctx); err != nil {
		t.Fatal(err)
	}
	rows, _ := pool.Query(ctx, `SELECT status_version FROM blacklist_changes WHERE card_id = $1 ORDER BY version`, c.ID)
	sv, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil || len(sv) != ok {
		t.Fatalf("blacklist changes %v %v", sv, err)
	}
	for i, v := range sv {
		if v != int64(i+1) {
			t.Errorf("blacklist change %d is the card's change %d: versions out of order", i+1, v)
		}
	}
	got, _ := svc.Get(ctx, c.ID)
	n := countsOf(t, pool, c.ID)
	if got.Status != h[len(h)-1].To || got.Version != int64(ok) || n.blacklist != ok || n.outbox != ok || n.audit != ok+1 {
		t.Errorf("card %+v; counts %+v; %d changes", got, n, ok)
	}
	evs := outboxEvents(t, pool, c.ID)
	for i, ev := range evs {
		d := statusData(t, ev)
		if d.StatusVersion != h[i+1].Seq {
			t.Errorf("event %d carries version %d, history %d", i, d.StatusVersion, h[i+1].Seq)
		}
	}
	verifyAudit(t, pool)
}

func TestLapse_TemporaryLossReturnsToNormal(t *testing.T) {
	reported := time.Date(2025, 3, 1, 10, 0, 0, 0, events.ChinaTime)
	svc, pool := newService(t, "temporary_loss_days=3")
	svc.Now = func() time.Time { return reported }
	lost := driveTo(t, svc, card.TemporaryLoss)
	formal := driveTo(t, svc, card.TemporaryLoss)
	if _, err := svc.Change(ctx, requestFor(formal, transition(t, card.TemporaryLoss, card.ActFormalLoss))); err != nil {
		t.Fatal(err)
	}
	expiry := time.Date(2025, 3, 5, 0, 0, 0, 0, events.ChinaTime)
	if lost.TempLossExpiresAt == nil || !lost.TempLossExpiresAt.Equal(expiry) {
		t.Fatalf("expiry: want %s, got %v", expiry, lost.TempLossExpiresAt)
	}
	if n, err := svc.Lapse(ctx, expiry.Add(-time.Second)); err != nil || n != 0 {
		t.Fatalf("before expiry: %d %v", n, err)
	}
	before := countsOf(t, pool, lost.ID)
	if n, err := svc.Lapse(ctx, expiry); err != nil || n != 1 {
		t.Fatalf("at expiry: want 1 lapsed, got %d %v", n, err)
	}
	if n, _ := svc.Lapse(ctx, expiry.Add(time.Hour)); n != 0 {
		t.Errorf("second run: want nothing, got %d", n)
	}
	got, _ := svc.Get(ctx, lost.ID)
	if got.Status != card.Normal || !got.Since.Equal(expiry) || got.TempLossExpiresAt != nil || got.Listed {
		t.Errorf("lapsed card: %+v", got)
	}
	after := countsOf(t, pool, lost.ID)
	if after.history != before.history+1 || after.blacklist != before.blacklist+1 || after.outbox != before.outbox+1 ||
		after.audit != before.audit+1 {
		t.Errorf("bookkeeping: %+v → %+v", before, after)
	}
	h, _ := svc.History(ctx, lost.ID)
	if last := h[len(h)-1]; last.Action != card.ActLapse || last.Channel != "system" || last.Reason != card.ReasonLapsed {
		t.Errorf("history: %+v", last)
	}
	evs := outboxEvents(t, pool, lost.ID)
	d := statusData(t, evs[len(evs)-1])
	if d.From != "4" || d.To != "1" || !d.ChangedAt.Equal(expiry) || d.Channel != events.ChannelOutlet {
		t.Errorf("lapse event: %+v", d)
	}
	if f, _ := svc.Get(ctx, formal.ID); f.Status != card.FormalLoss {
		t.Errorf("a loss made formal must not lapse: %+v", f)
	}

	// Lazily on read: a service whose clock is past the expiry lapses the card it reads.
	lazy := driveTo(t, svc, card.TemporaryLoss)
	svc.Now = func() time.Time { return expiry.Add(time.Minute) }
	if c, err := svc.Check(ctx, lazy.No); err != nil || c.Listed || c.Status != card.Normal {
		t.Errorf("check after expiry: %+v %v", c, err)
	}
	if h, _ := svc.History(ctx, lazy.ID); h[len(h)-1].Action != card.ActLapse {
		t.Errorf("lazy lapse not recorded: %+v", h)
	}
}

// model is the test's own view of the cards.
type model map[string]card.Status

func (m model) listed() map[string]bool {
	out := map[string]bool{}
	for no, s := range m {
		if s.Listed() {
			out[no] = true
		}
	}
	return out
}

// client is a terminal syncing the blacklist by deltas.
type client struct {
	version int64
	held    map[string]bool
}

func (c *client) sync(t *testing.T, svc *card.Service, limit int) {
	t.Helper()
	if err := c.catchUp(svc, limit); err != nil {
		t.Fatal(err)
	}
}

// catchUp applies deltas until the terminal is current; safe off the test goroutine.
func (c *client) catchUp(svc *card.Service, limit int) error {
	for {
		d, err := svc.Delta(ctx, c.version, limit)
		if err != nil || d.SnapshotRequired {
			return fmt.Errorf("delta since %d: %+v %v", c.version, d, err)
		}
		if len(d.Adds)+len(d.Removes) > limit {
			return fmt.Errorf("delta of limit %d has %d entries", limit, len(d.Adds)+len(d.Removes))
		}
		for _, e := range d.Adds {
			c.held[e.CardNo] = true
		}
		for _, e := range d.Removes {
			delete(c.held, e.CardNo)
		}
		c.version = d.Version
		if !d.More {
			return nil
		}
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// A random sequence of losses, unlocks and cancels across 50 cards: deltas from 0,
// successive small deltas and the snapshot all agree with the model.
func TestBlacklist_DeltasMatchTheModel(t *testing.T) {
	svc, _ := newService(t)
	rng := rand.New(rand.NewPCG(5, 11))
	m := model{}
	var cards []card.Card
	for range 50 {
		c := newCard(t, svc)
		cards = append(cards, c)
		m[c.No] = card.Normal
	}
	everListed := map[string]bool{}
	terminals := []*client{{held: map[string]bool{}}, {held: map[string]bool{}}}
	actions := card.Actions()
	for i := range 400 {
		c := cards[rng.IntN(len(cards))]
		a := actions[rng.IntN(len(actions))]
		var tr *card.Transition
		for _, x := range card.Transitions() {
			if x.From == m[c.No] && x.Action == a {
				tr = &x
			}
		}
		req := card.Request{Card: c.No, Action: a, Channel: card.ChannelBank, IdentityVerified: true}
		res, err := svc.Change(ctx, req)
		if tr == nil {
			var te *card.TransitionError
			if !errors.As(err, &te) || te.Current != m[c.No] {
				t.Fatalf("step %d: %s from %s: want refused, got %v", i, a, m[c.No], err)
			}
			continue
		}
		if err != nil || res.Card.Status != tr.To {
			t.Fatalf("step %d: %s from %s: %+v %v", i, a, m[c.No], res, err)
		}
		m[c.No] = tr.To
		if tr.To.Listed() {
			everListed[c.No] = true
		}
		if i%37 == 0 {
			terminals[0].sync(t, svc, 3)
			if !sameSet(terminals[0].held, m.listed()) {
				t.Fatalf("step %d: terminal holds %d cards, model lists %d", i, len(terminals[0].held), len(m.listed()))
			}
		}
		if i%101 == 0 {
			terminals[1].sync(t, svc, card.MaxDeltaLimit)
		}
	}
	for _, term := range terminals {
		term.sync(t, svc, 7)
		if !sameSet(term.held, m.listed()) {
			t.Errorf("terminal: holds %d, model lists %d", len(term.held), len(m.listed()))
		}
	}
	full, err := svc.Delta(ctx, 0, card.MaxDeltaLimit)
	if err != nil || full.More {
		t.Fatal(full, err)
	}
	adds, removes := map[string]bool{}, map[string]bool{}
	for _, e := range full.Adds {
		adds[e.CardNo] = true
		if e.Status != m[e.CardNo] || e.StatusCode != svc.Config.Codes.Code(m[e.CardNo]) {
			t.Errorf("delta(0) entry %+v, model %s", e, m[e.CardNo])
		}
	}
	for _, e := range full.Removes {
		removes[e.CardNo] = true
	}
	wantRemoves := map[string]bool{}
	for no := range everListed {
		if !m[no].Listed() {
			wantRemoves[no] = true
		}
	}
	if !sameSet(adds, m.listed()) || !sameSet(removes, wantRemoves) {
		t.Errorf("delta(0): %d adds (model %d), %d removes (want %d)", len(adds), len(m.listed()), len(removes), len(wantRemoves))
	}
	snap, err := svc.Snapshot(ctx)
	if err != nil || snap.Version != full.Current {
		t.Fatal(snap.Version, err)
	}
	held := map[string]bool{}
	for _, e := range snap.Cards {
		held[e.CardNo] = true
	}
	if !sameSet(held, m.listed()) || snap.Count != len(held) {
		t.Errorf("snapshot: %d cards, model lists %d", len(held), len(m.listed()))
	}
	// The lapse job's list holds exactly the cards under temporary loss, with their expiry.
	var astray int
	if err := svc.Pool.QueryRow(ctx, `SELECT count(*) FROM cards c FULL JOIN card_temporary_losses t USING (card_id)
		WHERE t.expires_at IS DISTINCT FROM c.temp_loss_expires_at`).Scan(&astray); err != nil || astray != 0 {
		t.Errorf("%d cards where the temporary-loss list and the card disagree (%v)", astray, err)
	}
	for _, c := range cards[:10] {
		ck, err := svc.Check(ctx, c.No)
		if err != nil || ck.Listed != m[c.No].Listed() || ck.Status != m[c.No] || ck.BlacklistVersion != full.Current {
			t.Errorf("check %s: %+v %v (model %s)", c.No, ck, err, m[c.No])
		}
	}
}

// Changes on different cards do not wait for each other: with one change's transaction
// held open (its card locked, its blacklist change and audit entry written), a change on
// another card commits at once. Before sequencing, the blacklist counter row (and the
// audit chain lock) made every change wait for the open one.
func TestChange_DifferentCardsDoNotWaitForEachOther(t *testing.T) {
	svc, pool := newService(t)
	a, b := newCard(t, svc), newCard(t, svc)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := svc.ChangeTx(ctx, tx, card.Request{Card: a.No, Action: card.ActTemporaryLoss, Channel: card.ChannelOnline}); err != nil {
		t.Fatal(err)
	}
	quick, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := svc.Change(quick, card.Request{Card: b.No, Action: card.ActTemporaryLoss, Channel: card.ChannelOnline}); err != nil {
		t.Fatalf("a change on another card waited for the open one: %v", err)
	}
	// Readers see b's change and not a's uncommitted one, and the version covers b.
	ck, err := svc.Check(ctx, b.No)
	if err != nil || !ck.Listed || ck.BlacklistVersion < 1 {
		t.Fatalf("check b: %+v %v", ck, err)
	}
	d, err := svc.Delta(ctx, 0, 0)
	if err != nil || len(d.Adds) != 1 || d.Adds[0].CardNo != b.No {
		t.Fatalf("delta before a commits: %+v %v", d, err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	// a committed later with a smaller change id; it gets the next version, so a reader
	// that had reached b's version still receives it.
	d2, err := svc.Delta(ctx, d.Version, 0)
	if err != nil || len(d2.Adds) != 1 || d2.Adds[0].CardNo != a.No || d2.Version != d.Version+1 {
		t.Fatalf("delta after a commits: %+v %v", d2, err)
	}
}

// Many writers on many cards and readers syncing deltas, all at once: each reader's set
// ends equal to the cards really listed, versions are gapless, and every card's changes
// carry increasing versions in the order of its own status changes.
func TestBlacklist_ConcurrentWritersAndReadersAgree(t *testing.T) {
	svc, pool := newService(t)
	var cards []card.Card
	for range 24 {
		cards = append(cards, newCard(t, svc))
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	terms := make([]*client, 3)
	for i := range terms {
		terms[i] = &client{held: map[string]bool{}}
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					if err := terms[i].catchUp(svc, 5+i*20); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range 6 {
		writers.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 99))
			for range 40 {
				c := cards[rng.IntN(len(cards))]
				a := []card.Action{card.ActTemporaryLoss, card.ActUnlock}[rng.IntN(2)]
				_, err := svc.Change(ctx, card.Request{Card: c.No, Action: a, Channel: card.ChannelOnline})
				var te *card.TransitionError
				if err != nil && !errors.As(err, &te) {
					t.Errorf("change: %v", err)
				}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	listed := map[string]bool{}
	for _, c := range cards {
		got, err := svc.Get(ctx, c.No)
		if err != nil {
			t.Fatal(err)
		}
		if got.Listed {
			listed[c.No] = true
		}
	}
	for i, term := range terms {
		term.sync(t, svc, 50)
		if !sameSet(term.held, listed) {
			t.Errorf("reader %d holds %d cards, %d are listed", i, len(term.held), len(listed))
		}
	}
	var n, maxV, gaps int64
	if err := pool.QueryRow(ctx, `SELECT count(*), coalesce(max(version), 0),
			count(*) FILTER (WHERE version IS NULL) FROM blacklist_changes`).Scan(&n, &maxV, &gaps); err != nil || n != maxV || gaps != 0 {
		t.Errorf("versions: %d changes, highest %d, unsequenced %d, %v", n, maxV, gaps, err)
	}
	var disorder int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM (SELECT status_version,
			lag(status_version) OVER (PARTITION BY card_id ORDER BY version) AS before FROM blacklist_changes) x
		WHERE before IS NOT NULL AND status_version <= before`).Scan(&disorder); err != nil || disorder != 0 {
		t.Errorf("%d changes numbered out of their card's order (%v)", disorder, err)
	}
}

func TestBlacklist_SnapshotRequiredWhenTooOld(t *testing.T) {
	svc, pool := newService(t, "blacklist_retention_days=10")
	var listed []string
	for range 5 {
		c := driveTo(t, svc, card.TemporaryLoss)
		listed = append(listed, c.No)
	}
	unlocked := driveTo(t, svc, card.TemporaryLoss)
	if _, err := svc.Change(ctx, card.Request{Card: unlocked.No, Action: card.ActUnlock, Channel: card.ChannelPhone}); err != nil {
		t.Fatal(err)
	}
	// Nothing is old enough yet.
	if n, err := svc.Compact(ctx, time.Now()); err != nil || n != 0 {
		t.Fatalf("compact of recent changes: %d %v", n, err)
	}
	current := countsOf(t, pool, "").version
	if n, err := svc.Compact(ctx, time.Now().Add(11*24*time.Hour)); err != nil || n != current {
		t.Fatalf("compact: want %d deleted, got %d %v", current, n, err)
	}
	for _, since := range []int64{0, current - 1, current + 1} {
		d, err := svc.Delta(ctx, since, 0)
		if err != nil || !d.SnapshotRequired || d.Current != current || d.Oldest != current || len(d.Adds) != 0 {
			t.Errorf("since %d: want snapshotRequired, got %+v %v", since, d, err)
		}
	}
	d, err := svc.Delta(ctx, current, 0)
	if err != nil || d.SnapshotRequired || len(d.Adds)+len(d.Removes) != 0 || d.Version != current {
		t.Errorf("since current: %+v %v", d, err)
	}
	snap, _ := svc.Snapshot(ctx)
	got := []string{}
	for _, e := range snap.Cards {
		got = append(got, e.CardNo)
	}
	sort.Strings(listed)
	if fmt.Sprint(got) != fmt.Sprint(listed) || snap.Version != current {
		t.Errorf("snapshot after compaction: %v at %d, want %v at %d", got, snap.Version, listed, current)
	}
	// A change after compaction is served to a caller at the snapshot's version.
	if _, err := svc.Change(ctx, card.Request{Card: listed[0], Action: card.ActUnlock, Channel: card.ChannelOnline}); err != nil {
		t.Fatal(err)
	}
	d, _ = svc.Delta(ctx, snap.Version, 0)
	if d.SnapshotRequired || len(d.Removes) != 1 || d.Removes[0].CardNo != listed[0] || d.Version != current+1 {
		t.Errorf("delta after the snapshot: %+v", d)
	}
}

// The change and its event commit together: inside the transaction both are there; after
// a rollback neither is.
func TestChange_EventCommitsWithTheChange(t *testing.T) {
	svc, pool := newService(t)
	c := newCard(t, svc)
	before := countsOf(t, pool, c.ID)
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	res, err := svc.ChangeTx(ctx, tx, card.Request{Card: c.No, Action: card.ActTemporaryLoss, Channel: card.ChannelOnline})
	if err != nil {
		t.Fatal(err)
	}
	var inTx int
	_ = tx.QueryRow(ctx, `SELECT count(*) FROM outbox WHERE event_id = $1`, res.EventID).Scan(&inTx)
	if inTx != 1 {
		t.Fatalf("the event is not in the outbox inside the transaction")
	}
	if n := countsOf(t, pool, c.ID); n != before {
		t.Errorf("uncommitted change visible outside: %+v", n)
	}
	_ = tx.Rollback(ctx)
	if n := countsOf(t, pool, c.ID); n != before {
		t.Errorf("after rollback: %+v, want %+v", n, before)
	}
	if got, _ := svc.Get(ctx, c.ID); got.Status != card.Normal {
		t.Errorf("after rollback the card is %s", got.Status)
	}

	res, err = svc.Change(ctx, card.Request{Card: c.No, Action: card.ActTemporaryLoss, Channel: card.ChannelOnline})
	if err != nil {
		t.Fatal(err)
	}
	evs := outboxEvents(t, pool, c.ID)
	if len(evs) != 1 || evs[0].ID() != res.EventID || evs[0].Source() != card.Source || evs[0].Type() != string(events.CardStatusChanged) {
		t.Fatalf("committed: want the one event, got %v", evs)
	}
	if d := statusData(t, evs[0]); d.StatusVersion != res.Card.Version || d.Channel != events.ChannelH5 || d.Reason != "lost" {
		t.Errorf("event data: %+v", d)
	}
}

// The bank is down: the event is not applied (the broker will redeliver it); when the
// bank is back the change is acknowledged, once, however often it is delivered.
func TestSyncBank_RetriedUntilTheBankAcknowledges(t *testing.T) {
	svc, pool := newService(t)
	bank := svc.Bank.(*card.SimulatedBank)
	c := newCard(t, svc)
	lost, err := svc.Change(ctx, card.Request{Card: c.No, Action: card.ActTemporaryLoss, Channel: card.ChannelBank})
	if err != nil {
		t.Fatal(err)
	}
	unlocked, err := svc.Change(ctx, card.Request{Card: c.No, Action: card.ActUnlock, Channel: card.ChannelBank})
	if err != nil {
		t.Fatal(err)
	}
	evs := outboxEvents(t, pool, c.ID)
	deliver := func(ev event.Event) (inbox.Outcome, error) {
		return inbox.Process(ctx, pool, "loss-report", ev, func(ctx context.Context, tx pgx.Tx) error {
			return svc.SyncBank(ctx, tx, ev)
		})
	}
	if err := bank.SetFailing(ctx, true); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := deliver(evs[0]); !errors.Is(err, card.ErrBankUnavailable) {
			t.Fatalf("bank failing: want ErrBankUnavailable, got %v", err)
		}
	}
	var refused, processed, acks int
	_ = pool.QueryRow(ctx, `SELECT refused FROM bank_sim_control`).Scan(&refused)
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM processed_events`).Scan(&processed)
	if refused != 3 || processed != 0 {
		t.Fatalf("while failing: refused %d, processed %d", refused, processed)
	}
	if _, err := bank.Card(ctx, c.No); !errors.Is(err, card.ErrNotFound) {
		t.Errorf("the bank knows the card before acknowledging: %v", err)
	}

	_ = bank.SetFailing(ctx, false)
	// Newest first: the older change arriving late must not roll the bank back.
	for _, ev := range []event.Event{evs[1], evs[0], evs[0], evs[1]} {
		if _, err := deliver(ev); err != nil {
			t.Fatal(err)
		}
	}
	bc, err := bank.Card(ctx, c.No)
	if err != nil || bc.StatusCode != "1" || bc.StatusVersion != unlocked.Card.Version || bc.Requests != 2 || bc.Deliveries != 2 {
		t.Errorf("bank state: %+v %v", bc, err)
	}
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM bank_sync_acks WHERE card_id = $1`, c.ID).Scan(&acks)
	if acks != 2 {
		t.Errorf("want 2 acknowledgements recorded, got %d", acks)
	}
	if got, _ := svc.Get(ctx, c.ID); got.BankSyncedVersion != unlocked.Card.Version || lost.Card.Version >= unlocked.Card.Version {
		t.Errorf("card bank sync: %+v", got)
	}
	// The bank itself is idempotent on the request: a repeat is acknowledged with the same reference.
	ch := card.BankChange{RequestID: "r-1", CardNo: c.No, FromCode: "1", ToCode: "4", StatusVersion: 1}
	a1, err1 := bank.Notify(ctx, ch)
	a2, err2 := bank.Notify(ctx, ch)
	if err1 != nil || err2 != nil || a1.Ref != a2.Ref || a1.Duplicate || !a2.Duplicate {
		t.Errorf("repeat: %+v %+v %v %v", a1, a2, err1, err2)
	}
	// An event for a card that does not exist can never apply.
	bad, _ := events.New(events.CardStatusChanged, card.Source, "", events.CardStatusChangedData{CardID: "card-none",
		From: "1", To: "4", Reason: "lost", Channel: events.ChannelBank, ChangedAt: time.Now(), StatusVersion: 9})
	if _, err := deliver(bad); !errors.Is(err, card.ErrBadEvent) {
		t.Errorf("unknown card: want ErrBadEvent, got %v", err)
	}
}

// BenchmarkLossUnlock measures a temporary loss and its unlock (two full changes with
// their history, blacklist, audit and outbox writes) against Postgres.
func BenchmarkLossUnlock(b *testing.B) {
	svc, _ := newService(b)
	c := newCard(b, svc)
	loss := card.Request{Card: c.No, Action: card.ActTemporaryLoss, Channel: card.ChannelPhone}
	unlock := card.Request{Card: c.No, Action: card.ActUnlock, Channel: card.ChannelPhone}
	for b.Loop() {
		if _, err := svc.Change(ctx, loss); err != nil {
			b.Fatal(err)
		}
		if _, err := svc.Change(ctx, unlock); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLossUnlockParallel runs loss/unlock round trips on distinct cards from
// GOMAXPROCS×8 goroutines (-cpu sets the spread) and reports the p50 and p99 of one
// change. Changes of different cards share no lock (the audit chain and the blacklist
// are sealed and sequenced after commit), so they queue only for the database itself.
func BenchmarkLossUnlockParallel(b *testing.B) {
	svc, _ := newService(b)
	var mu sync.Mutex
	var lat []time.Duration
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		c := newCard(b, svc)
		loss := card.Request{Card: c.No, Action: card.ActTemporaryLoss, Channel: card.ChannelPhone}
		unlock := card.Request{Card: c.No, Action: card.ActUnlock, Channel: card.ChannelPhone}
		var mine []time.Duration
		for pb.Next() {
			for _, r := range []card.Request{loss, unlock} {
				t0 := time.Now()
				if _, err := svc.Change(ctx, r); err != nil {
					b.Error(err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
		}
		mu.Lock()
		lat = append(lat, mine...)
		mu.Unlock()
	})
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}
