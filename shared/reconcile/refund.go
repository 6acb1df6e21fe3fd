package reconcile

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/audit"
)

// Refunds of abnormal transactions: money the channel took for an order the HIS never
// settled (class his-missing). A run requests them (status requested) under a number
// derived from the discrepancy (RefundNo); a staff member approves or rejects (audited);
// an approved refund goes to the payment channel, whose answer closes it (succeeded or
// failed). A channel that cannot be reached leaves it approved; the schedule retries.

// RefundOrder is what the payment channel is asked to refund.
type RefundOrder struct {
	RefundNo  string
	Channel   string
	Key       string // the order refunded
	AmountFen int64
}

// RefundAnswer is the channel's answer.
type RefundAnswer struct {
	RefundNo   string    `json:"refundNo"`
	ChannelRef string    `json:"channelRef"`
	Status     string    `json:"status"` // SUCCESS | FAIL
	At         time.Time `json:"at"`
}

// RefundChannel is the payment channel's refund interface (WeChat Pay, Alipay and
// UnionPay are each idempotent on the merchant refund number).
type RefundChannel interface {
	Refund(ctx context.Context, o RefundOrder) (RefundAnswer, error)
}

// ErrChannelUnavailable: the payment channel did not answer; retry later.
var ErrChannelUnavailable = errors.New("reconcile: the payment channel is unavailable")

// SimulatedChannel is the built-in simulated payment channel (development and tests):
// it keeps its own refund book in Postgres, answers the same refund number with the same
// answer, refuses a known number with a different amount, and fails while told to
// (recon_sim_channel_control.failing).
type SimulatedChannel struct{ Pool *pgxpool.Pool }

func (c *SimulatedChannel) Refund(ctx context.Context, o RefundOrder) (RefundAnswer, error) {
	var failing bool
	if err := c.Pool.QueryRow(ctx, `SELECT failing FROM recon_sim_channel_control`).Scan(&failing); err != nil {
		return RefundAnswer{}, err
	}
	if failing {
		return RefundAnswer{}, ErrChannelUnavailable
	}
	var ref string
	var amount int64
	var at time.Time
	err := c.Pool.QueryRow(ctx, `INSERT INTO recon_sim_channel_refunds (refund_no, channel, txn_key, amount_fen, channel_ref)
		VALUES ($1, $2, $3, $4, 'SIMRF' || substr(md5($1), 1, 16))
		ON CONFLICT (refund_no) DO UPDATE SET deliveries = recon_sim_channel_refunds.deliveries + 1
		RETURNING channel_ref, amount_fen, received_at`, o.RefundNo, o.Channel, o.Key, o.AmountFen).Scan(&ref, &amount, &at)
	if err != nil {
		return RefundAnswer{}, err
	}
	if amount != o.AmountFen {
		return RefundAnswer{RefundNo: o.RefundNo, Status: "FAIL", At: at}, nil
	}
	return RefundAnswer{RefundNo: o.RefundNo, ChannelRef: ref, Status: "SUCCESS", At: at}, nil
}

// Refund is a refund request as stored.
type Refund struct {
	RefundNo      string        `json:"refundNo"`
	Channel       string        `json:"channel"`
	BusinessDate  string        `json:"businessDate"`
	Key           string        `json:"txnKey"`
	Merchant      string        `json:"merchant"`
	AmountFen     int64         `json:"amountFen"`
	Status        string        `json:"status"`
	FirstRunID    string        `json:"firstRunId"`
	DecidedBy     *string       `json:"decidedBy,omitempty"`
	DecidedAt     *time.Time    `json:"decidedAt,omitempty"`
	ChannelAnswer *RefundAnswer `json:"channelAnswer,omitempty"`
	ClosedAt      *time.Time    `json:"closedAt,omitempty"`
	CreatedAt     time.Time     `json:"createdAt"`
}

const refundCols = `refund_no, channel, biz_date::text, txn_key, merchant, amount_fen, status, first_run_id, decided_by,
	decided_at, channel_answer, closed_at, created_at`

func scanRefund(row pgx.Row) (*Refund, error) {
	var r Refund
	err := row.Scan(&r.RefundNo, &r.Channel, &r.BusinessDate, &r.Key, &r.Merchant, &r.AmountFen, &r.Status, &r.FirstRunID,
		&r.DecidedBy, &r.DecidedAt, &r.ChannelAnswer, &r.ClosedAt, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &r, err
}

// GetRefund returns one refund.
func (s *Service) GetRefund(ctx context.Context, refundNo string) (*Refund, error) {
	return scanRefund(s.Pool.QueryRow(ctx, `SELECT `+refundCols+` FROM recon_refunds WHERE refund_no = $1`, refundNo))
}

// Refunds lists refunds, newest first, optionally of one status.
func (s *Service) Refunds(ctx context.Context, status string, page Page) ([]Refund, int64, error) {
	var total int64
	if err := s.Pool.QueryRow(ctx, `SELECT count(*) FROM recon_refunds WHERE $1 = '' OR status = $1`, status).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+refundCols+` FROM recon_refunds WHERE $1 = '' OR status = $1
		ORDER BY created_at DESC, refund_no LIMIT $2 OFFSET $3`, status, page.Size, page.offset())
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Refund
	for rows.Next() {
		r, err := scanRefund(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *r)
	}
	return out, total, rows.Err()
}

// RefundStateError: the refund is not in a state the decision applies to.
type RefundStateError struct{ Status string }

func (e *RefundStateError) Error() string { return "the refund is " + e.Status }

// Decide approves (approve=true) or rejects a requested refund as actor, audited in the
// same transaction. Deciding again the same way answers the refund as it is; the
// other way is a RefundStateError. An approved refund is sent to the channel at once.
func (s *Service) Decide(ctx context.Context, refundNo string, approve bool, actor, requestID string) (*Refund, error) {
	to := "rejected"
	if approve {
		to = "approved"
	}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		r, err := scanRefund(tx.QueryRow(ctx, `SELECT `+refundCols+` FROM recon_refunds WHERE refund_no = $1 FOR UPDATE`, refundNo))
		if err != nil {
			return err
		}
		if r.Status != "requested" {
			if r.Status == to || (approve && (r.Status == "succeeded" || r.Status == "failed")) {
				return nil
			}
			return &RefundStateError{Status: r.Status}
		}
		if _, err := tx.Exec(ctx, `UPDATE recon_refunds SET status = $2, decided_by = $3, decided_at = now() WHERE refund_no = $1`,
			refundNo, to, actor); err != nil {
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Actor: actor, Channel: "admin", Action: "reconcile.refund." + map[bool]string{true: "approve", false: "reject"}[approve],
			ObjectType: "refund", ObjectID: refundNo, RequestID: requestID,
			Detail: map[string]string{"amountFen": strconv.FormatInt(r.AmountFen, 10), "channel": r.Channel, "run": r.FirstRunID}})
		return err
	})
	if err != nil {
		return nil, err
	}
	if approve {
		if err := s.sendRefund(ctx, refundNo, requestID); err != nil && !errors.Is(err, ErrChannelUnavailable) {
			return nil, err
		}
	}
	return s.GetRefund(ctx, refundNo)
}

// sendRefund sends an approved refund to the channel and closes it with the answer.
func (s *Service) sendRefund(ctx context.Context, refundNo, requestID string) error {
	r, err := s.GetRefund(ctx, refundNo)
	if err != nil {
		return err
	}
	if r.Status != "approved" {
		return nil
	}
	if s.Channel == nil {
		return ErrChannelUnavailable
	}
	ans, err := s.Channel.Refund(ctx, RefundOrder{RefundNo: r.RefundNo, Channel: r.Channel, Key: r.Key, AmountFen: r.AmountFen})
	if err != nil {
		return err
	}
	status := "succeeded"
	if ans.Status != "SUCCESS" {
		status = "failed"
	}
	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE recon_refunds SET status = $2, channel_answer = $3, closed_at = now()
			WHERE refund_no = $1 AND status = 'approved'`, refundNo, status, ans)
		if err != nil || tag.RowsAffected() == 0 {
			return err
		}
		_, err = s.Audit.AppendTx(ctx, tx, audit.Entry{Actor: "system", Channel: "schedule", Action: "reconcile.refund.close",
			ObjectType: "refund", ObjectID: refundNo, RequestID: requestID,
			Detail: map[string]string{"status": status, "channelRef": ans.ChannelRef}})
		return err
	})
}

// SendApproved sends every approved refund the channel has not answered yet (the
// schedule's retry); it returns how many were closed.
func (s *Service) SendApproved(ctx context.Context, requestID string) (int, error) {
	rows, err := s.Pool.Query(ctx, `SELECT refund_no FROM recon_refunds WHERE status = 'approved' ORDER BY created_at LIMIT 1000`)
	if err != nil {
		return 0, err
	}
	nos, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, err
	}
	n := 0
	for _, no := range nos {
		if err := s.sendRefund(ctx, no, requestID); err != nil {
			if errors.Is(err, ErrChannelUnavailable) {
				return n, nil
			}
			return n, fmt.Errorf("refund %s: %w", no, err)
		}
		n++
	}
	return n, nil
}
