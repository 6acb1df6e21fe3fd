package sms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/pii"
)

// Gateway sends one message's segments to one number over a carrier connection and
// returns the gateway's message id of each accepted segment.
type Gateway interface {
	Carrier() events.SMSCarrier
	Send(ctx context.Context, phone string, segs []Segment) ([]string, error)
}

// RefusedError is a gateway's final refusal of a submit. WrongNumber marks refusals that
// mean "not a number of this carrier" (ported numbers), which the fallback may serve.
type RefusedError struct {
	Carrier     events.SMSCarrier
	Code        uint32
	WrongNumber bool
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("%s gateway refused the submit (result %d)", e.Carrier, e.Code)
}

// Report is a carrier's delivery report for one segment.
type Report struct {
	MsgID     string
	Stat      string
	Delivered bool
	At        time.Time
}

// Dispatcher sends queued records through the gateways and applies delivery reports.
// Several dispatchers (replicas) may run on one database: records are claimed with a
// lease, so each is sent by one of them.
type Dispatcher struct {
	Service  *Service
	Gateways map[string]Gateway // by channel
	Log      *slog.Logger
	// Batch records are claimed at a time and up to Parallel sent at once (defaults 64, 32).
	Batch, Parallel int
	// Poll is the fallback poll interval when no notification arrives (default 1 s);
	// Lease how long a claimed record is held (default 60 s); MaxAttempts the tries before a
	// record fails (default 8); ReportWait how long a submitted record waits for its
	// report before it is expired (default 72 h).
	Poll, Lease, ReportWait time.Duration
	MaxAttempts             int
	// ReportMatch is how long a report may wait for its submit to be recorded (default 10 s).
	ReportMatch time.Duration
}

func (d *Dispatcher) defaults() {
	if d.Batch <= 0 {
		d.Batch = 64
	}
	if d.Parallel <= 0 {
		d.Parallel = 32
	}
	if d.Poll <= 0 {
		d.Poll = time.Second
	}
	if d.Lease <= 0 {
		d.Lease = 60 * time.Second
	}
	if d.MaxAttempts <= 0 {
		d.MaxAttempts = 8
	}
	if d.ReportWait <= 0 {
		d.ReportWait = 72 * time.Hour
	}
	if d.ReportMatch <= 0 {
		d.ReportMatch = 10 * time.Second
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
}

// Run sends until ctx ends: woken by the commit of new records (LISTEN sms_queued), and
// polling in case a notification was missed or a lease ran out.
func (d *Dispatcher) Run(ctx context.Context) {
	d.defaults()
	wake := make(chan struct{}, 1)
	go d.listen(ctx, wake)
	lastSweep := time.Time{}
	for ctx.Err() == nil {
		n, err := d.Once(ctx)
		if err != nil && ctx.Err() == nil {
			d.Log.Warn("sms dispatch", "error", err.Error())
		}
		if time.Since(lastSweep) > time.Minute {
			if err := d.Expire(ctx); err != nil && ctx.Err() == nil {
				d.Log.Warn("sms expiry", "error", err.Error())
			}
			lastSweep = time.Now()
		}
		if n == d.Batch {
			continue // more are waiting
		}
		select {
		case <-ctx.Done():
		case <-wake:
		case <-time.After(d.Poll):
		}
	}
}

func (d *Dispatcher) listen(ctx context.Context, wake chan<- struct{}) {
	for ctx.Err() == nil {
		conn, err := d.Service.Pool.Acquire(ctx)
		if err != nil {
			time.Sleep(d.Poll)
			continue
		}
		if _, err := conn.Exec(ctx, `LISTEN sms_queued`); err == nil {
			for {
				if _, err := conn.Conn().WaitForNotification(ctx); err != nil {
					break
				}
				select {
				case wake <- struct{}{}:
				default:
				}
			}
		}
		conn.Release()
		conn.Conn().Close(context.Background()) //nolint:errcheck // a LISTENing session is not reused
		if ctx.Err() == nil {
			time.Sleep(d.Poll)
		}
	}
}

type claimed struct {
	id, phoneEnc, textEnc, channel, messageID string
	attempts                                  int
}

// Once claims a batch of queued records and sends them; it returns how many it claimed.
func (d *Dispatcher) Once(ctx context.Context) (int, error) {
	d.defaults()
	rows, err := d.Service.Pool.Query(ctx, `UPDATE sms_messages m SET lease_until = now() + make_interval(secs => $2), attempts = attempts + 1
		WHERE id IN (SELECT id FROM sms_messages WHERE status = 'queued' AND (lease_until IS NULL OR lease_until < now())
			ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
		RETURNING id, phone_enc, text_enc, channel, message_id, attempts`, d.Batch, d.Lease.Seconds())
	if err != nil {
		return 0, err
	}
	var batch []claimed
	for rows.Next() {
		var c claimed
		if err := rows.Scan(&c.id, &c.phoneEnc, &c.textEnc, &c.channel, &c.messageID, &c.attempts); err != nil {
			rows.Close()
			return 0, err
		}
		batch = append(batch, c)
	}
	if err := rows.Err(); err != nil {
		return 0, err
	}
	sem := make(chan struct{}, d.Parallel)
	var wg sync.WaitGroup
	for _, c := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := d.send(ctx, c); err != nil && ctx.Err() == nil {
				d.Log.Warn("sms send", "sms", c.id, "error", err.Error())
			}
		})
	}
	wg.Wait()
	return len(batch), nil
}

func (d *Dispatcher) send(ctx context.Context, c claimed) error {
	p := d.Service.Protect
	phone, err := p.Decrypt(ctx, pii.Field{Table: "sms_messages", Column: "phone", Row: c.id}, c.phoneEnc)
	if err != nil {
		return err
	}
	text, err := p.Decrypt(ctx, pii.Field{Table: "sms_messages", Column: "text", Row: c.id}, c.textEnc)
	if err != nil {
		return err
	}
	channel := c.channel
	gw := d.Gateways[channel]
	if gw == nil && channel != ChannelFallback {
		channel, gw = ChannelFallback, d.Gateways[ChannelFallback]
	}
	if gw == nil {
		return d.fail(ctx, c.id, "", "no gateway configured for channel "+c.channel)
	}
	segs, err := Split(text, c.id[len(c.id)-1]^c.id[len(c.id)-2]<<4)
	if err != nil {
		return d.fail(ctx, c.id, gw.Carrier(), err.Error())
	}
	ids, err := gw.Send(ctx, phone, segs)
	var refused *RefusedError
	switch {
	case err == nil:
		return d.submitted(ctx, c.id, channel, gw.Carrier(), ids)
	case len(ids) > 0:
		// Part of a long message went out: it cannot be taken back, and sending it again
		// would repeat those parts.
		if e := d.submitted(ctx, c.id, channel, gw.Carrier(), ids); e != nil {
			return e
		}
		return d.fail(ctx, c.id, gw.Carrier(), "only part of the message was accepted: "+err.Error())
	case errors.As(err, &refused) && refused.WrongNumber && channel != ChannelFallback && d.Gateways[ChannelFallback] != nil:
		_, e := d.Service.Pool.Exec(ctx, `UPDATE sms_messages SET channel = 'fallback', lease_until = NULL, error = $2
			WHERE id = $1 AND status = 'queued'`, c.id, err.Error())
		return e
	case errors.As(err, &refused):
		return d.fail(ctx, c.id, gw.Carrier(), err.Error())
	case c.attempts >= d.MaxAttempts:
		return d.fail(ctx, c.id, gw.Carrier(), fmt.Sprintf("gave up after %d attempts: %v", c.attempts, err))
	default:
		// Gateway unreachable or busy beyond the link's own retries: try again later.
		wait := time.Duration(c.attempts) * 5 * time.Second
		_, e := d.Service.Pool.Exec(ctx, `UPDATE sms_messages SET lease_until = now() + make_interval(secs => $2), error = $3
			WHERE id = $1 AND status = 'queued'`, c.id, wait.Seconds(), err.Error())
		return e
	}
}

func (d *Dispatcher) submitted(ctx context.Context, id, channel string, carrier events.SMSCarrier, ids []string) error {
	return pgx.BeginFunc(ctx, d.Service.Pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(`UPDATE sms_messages SET status = 'submitted', channel = $2, carrier = $3, submitted_at = now(),
			lease_until = NULL, error = NULL WHERE id = $1 AND status = 'queued'`, id, channel, string(carrier))
		for i, gid := range ids {
			b.Queue(`INSERT INTO sms_segments (channel, gateway_msg_id, sms_id, part) VALUES ($1, $2, $3, $4)
				ON CONFLICT DO NOTHING`, channel, gid, id, i+1)
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

// fail ends a record as failed and announces it (when a carrier was involved).
func (d *Dispatcher) fail(ctx context.Context, id string, carrier events.SMSCarrier, why string) error {
	return pgx.BeginFunc(ctx, d.Service.Pool, func(tx pgx.Tx) error {
		return d.finish(ctx, tx, id, []string{StatusQueued, StatusSubmitted}, StatusFailed, why, carrier, time.Now())
	})
}

// finish moves record id from one of the from statuses to status and queues SMSDelivered.
func (d *Dispatcher) finish(ctx context.Context, tx pgx.Tx, id string, from []string, status, why string, carrier events.SMSCarrier, at time.Time) error {
	var messageID string
	var stored *string
	err := tx.QueryRow(ctx, `UPDATE sms_messages SET status = $2, done_at = $3, lease_until = NULL,
			error = coalesce($4, error), carrier = coalesce(carrier, nullif($5, ''))
		WHERE id = $1 AND status = ANY($6) RETURNING message_id, carrier`,
		id, status, at, nullable(why), string(carrier), from).Scan(&messageID, &stored)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil // already final
	}
	if err != nil || stored == nil {
		return err
	}
	ev, err := events.New(events.SMSDelivered, Source, id, events.SMSDeliveredData{MessageID: messageID,
		Carrier: events.SMSCarrier(*stored), Status: events.SMSStatus(status), DeliveredAt: at.UTC()})
	if err != nil {
		return err
	}
	return outbox.Enqueue(ctx, tx, Producer, "", ev)
}

// OnReport applies a delivery report from channel's gateway. A report can arrive before
// its submit is recorded (the gateway answers, then reports at once): it waits for that
// briefly; a report that matches nothing after that is dropped with a warning.
func (d *Dispatcher) OnReport(ctx context.Context, channel string, r Report) error {
	d.defaults()
	deadline := time.Now().Add(d.ReportMatch)
	for {
		matched := false
		err := pgx.BeginFunc(ctx, d.Service.Pool, func(tx pgx.Tx) error {
			var id string
			var parts int
			err := tx.QueryRow(ctx, `UPDATE sms_segments s SET stat = $3, reported_at = $4
				FROM sms_messages m WHERE s.channel = $1 AND s.gateway_msg_id = $2 AND m.id = s.sms_id
				RETURNING s.sms_id, m.parts`, channel, r.MsgID, r.Stat, r.At).Scan(&id, &parts)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil
			}
			if err != nil {
				return err
			}
			matched = true
			var reported, delivered int
			if err := tx.QueryRow(ctx, `SELECT count(stat), count(*) FILTER (WHERE stat = 'DELIVRD') FROM sms_segments WHERE sms_id = $1`,
				id).Scan(&reported, &delivered); err != nil {
				return err
			}
			at := r.At
			if at.IsZero() {
				at = time.Now()
			}
			switch {
			case !r.Delivered && r.Stat == "EXPIRED":
				return d.finish(ctx, tx, id, []string{StatusSubmitted}, StatusExpired, "carrier: "+r.Stat, "", at)
			case !r.Delivered:
				return d.finish(ctx, tx, id, []string{StatusSubmitted}, StatusFailed, "carrier: "+r.Stat, "", at)
			case delivered == parts:
				return d.finish(ctx, tx, id, []string{StatusSubmitted}, StatusDelivered, "", "", at)
			}
			return nil
		})
		if err != nil || matched {
			return err
		}
		if time.Now().After(deadline) {
			d.Log.Warn("sms report matches no submitted segment", "channel", channel, "gateway_msg_id", r.MsgID)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Expire ends records whose report never came within ReportWait.
func (d *Dispatcher) Expire(ctx context.Context) error {
	d.defaults()
	rows, err := d.Service.Pool.Query(ctx, `SELECT id FROM sms_messages WHERE status = 'submitted'
		AND submitted_at < now() - make_interval(secs => $1) LIMIT 500`, d.ReportWait.Seconds())
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := pgx.BeginFunc(ctx, d.Service.Pool, func(tx pgx.Tx) error {
			return d.finish(ctx, tx, id, []string{StatusSubmitted}, StatusExpired, "no delivery report", "", time.Now())
		}); err != nil {
			return err
		}
	}
	return nil
}
