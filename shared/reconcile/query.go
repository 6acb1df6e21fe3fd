package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// Page is a 1-based page of Size rows.
type Page struct{ Number, Size int }

// MaxPageSize bounds one page.
const MaxPageSize = 500

func (p Page) offset() int { return (p.Number - 1) * p.Size }

// Run is one attempt as stored.
type Run struct {
	RunID         string           `json:"runId"`
	Channel       string           `json:"channel"`
	BusinessDate  string           `json:"businessDate"`
	Attempt       int              `json:"attempt"`
	Status        string           `json:"status"`
	Current       bool             `json:"current"`
	Trigger       string           `json:"trigger"`
	RequestedBy   string           `json:"requestedBy"`
	ThreeWay      bool             `json:"threeWay"`
	ControlsOK    *bool            `json:"controlsOk,omitempty"`
	Discrepancies *int             `json:"discrepancies,omitempty"`
	Counts        map[Class]int64  `json:"counts,omitempty"`
	Totals        *Totals          `json:"totals,omitempty"`
	Manifest      *json.RawMessage `json:"manifest,omitempty"`
	ReportXLSX    *string          `json:"reportXlsx,omitempty"`
	ReportCSV     *string          `json:"reportCsv,omitempty"`
	Error         *string          `json:"error,omitempty"`
	StartedAt     time.Time        `json:"startedAt"`
	FinishedAt    *time.Time       `json:"finishedAt,omitempty"`
}

const runCols = `r.run_id, r.channel, r.biz_date::text, r.attempt, r.status, c.run_id IS NOT NULL, r.trigger, r.requested_by,
	r.three_way, r.controls_ok, r.discrepancies, r.totals, r.report_xlsx, r.report_csv, r.error, r.started_at, r.finished_at`

const runFrom = ` FROM recon_runs r LEFT JOIN recon_current c ON c.run_id = r.run_id`

func scanRun(row pgx.Row) (*Run, error) {
	var r Run
	err := row.Scan(&r.RunID, &r.Channel, &r.BusinessDate, &r.Attempt, &r.Status, &r.Current, &r.Trigger, &r.RequestedBy,
		&r.ThreeWay, &r.ControlsOK, &r.Discrepancies, &r.Totals, &r.ReportXLSX, &r.ReportCSV, &r.Error, &r.StartedAt, &r.FinishedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	return &r, err
}

// GetRun returns one run with its counts per class and its manifest.
func (s *Service) GetRun(ctx context.Context, runID string) (*Run, error) {
	r, err := scanRun(s.Pool.QueryRow(ctx, `SELECT `+runCols+runFrom+` WHERE r.run_id = $1`, runID))
	if err != nil {
		return nil, err
	}
	var man json.RawMessage
	if err := s.Pool.QueryRow(ctx, `SELECT coalesce(manifest, 'null') FROM recon_runs WHERE run_id = $1`, runID).Scan(&man); err != nil {
		return nil, err
	}
	if string(man) != "null" {
		r.Manifest = &man
	}
	rows, err := s.Pool.Query(ctx, `SELECT class, sum(count) FROM recon_summary WHERE run_id = $1 GROUP BY class`, runID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var n int64
		if err := rows.Scan(&c, &n); err != nil {
			return nil, err
		}
		if r.Counts == nil {
			r.Counts = map[Class]int64{}
		}
		r.Counts[Class(c)] = n
	}
	return r, rows.Err()
}

// RunFilter selects runs.
type RunFilter struct {
	Channel, Date, Status string
	CurrentOnly           bool
}

// Runs lists runs, newest business date first.
func (s *Service) Runs(ctx context.Context, f RunFilter, page Page) ([]Run, int64, error) {
	where := ` WHERE ($1 = '' OR r.channel = $1) AND ($2 = '' OR r.biz_date = NULLIF($2, '')::date) AND ($3 = '' OR r.status = $3)
		AND (NOT $4 OR c.run_id IS NOT NULL)`
	args := []any{f.Channel, f.Date, f.Status, f.CurrentOnly}
	var total int64
	if err := s.Pool.QueryRow(ctx, `SELECT count(*)`+runFrom+where, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT `+runCols+runFrom+where+` ORDER BY r.biz_date DESC, r.channel, r.attempt DESC
		LIMIT $5 OFFSET $6`, append(args, page.Size, page.offset())...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, *r)
	}
	return out, total, rows.Err()
}

// Summary returns a run's summary rows.
func (s *Service) Summary(ctx context.Context, runID string) ([]SummaryRow, error) {
	if _, err := s.GetRun(ctx, runID); err != nil {
		return nil, err
	}
	rows, err := s.Pool.Query(ctx, `SELECT merchant, class, count, fen FROM recon_summary WHERE run_id = $1`, runID)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SummaryRow, error) {
		var s SummaryRow
		var c string
		err := r.Scan(&s.Merchant, &c, &s.Count, &s.Fen)
		s.Class = Class(c)
		return s, err
	})
	sortSummary(out)
	return out, err
}

// DiscrepancyView is a stored discrepancy.
type DiscrepancyView struct {
	RunID          string     `json:"runId"`
	Seq            int        `json:"seq"`
	Class          string     `json:"class"`
	Side           string     `json:"side"`
	Key            string     `json:"txnKey"`
	Merchant       string     `json:"merchant"`
	Kind           string     `json:"kind"`
	PlatformFen    int64      `json:"platformFen"`
	ChannelFen     int64      `json:"channelFen"`
	HISFen         int64      `json:"hisFen"`
	PlatformStatus string     `json:"platformStatus"`
	ChannelStatus  string     `json:"channelStatus"`
	Fen            int64      `json:"fen"`
	Time           *time.Time `json:"txnTime,omitempty"`
	Line           int64      `json:"line"`
}

// DiscrepancyFilter selects discrepancies: of RunID, or else of the current runs of
// Channel and Date (either may be empty).
type DiscrepancyFilter struct {
	RunID, Channel, Date, Class, Merchant string
}

// Discrepancies lists discrepancies in the run's order.
func (s *Service) Discrepancies(ctx context.Context, f DiscrepancyFilter, page Page) ([]DiscrepancyView, int64, error) {
	from := ` FROM recon_discrepancies d JOIN recon_runs r ON r.run_id = d.run_id
		WHERE ($1 = '' OR d.class = $1) AND ($2 = '' OR d.merchant = $2)`
	args := []any{f.Class, f.Merchant}
	if f.RunID != "" {
		from += ` AND d.run_id = $3`
		args = append(args, f.RunID)
	} else {
		from += ` AND d.run_id IN (SELECT run_id FROM recon_current WHERE ($3 = '' OR channel = $3) AND ($4 = '' OR biz_date = NULLIF($4, '')::date))`
		args = append(args, f.Channel, f.Date)
	}
	var total int64
	if err := s.Pool.QueryRow(ctx, `SELECT count(*)`+from, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	n := len(args)
	rows, err := s.Pool.Query(ctx, `SELECT d.run_id, d.seq, d.class, d.side, d.txn_key, d.merchant, d.kind, d.platform_fen,
		d.channel_fen, d.his_fen, d.platform_status, d.channel_status, d.fen, d.txn_time, d.line`+from+
		` ORDER BY r.biz_date DESC, r.channel, d.seq LIMIT $`+strconv.Itoa(n+1)+` OFFSET $`+strconv.Itoa(n+2), append(args, page.Size, page.offset())...)
	if err != nil {
		return nil, 0, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (DiscrepancyView, error) {
		var d DiscrepancyView
		err := r.Scan(&d.RunID, &d.Seq, &d.Class, &d.Side, &d.Key, &d.Merchant, &d.Kind, &d.PlatformFen, &d.ChannelFen, &d.HISFen,
			&d.PlatformStatus, &d.ChannelStatus, &d.Fen, &d.Time, &d.Line)
		return d, err
	})
	return out, total, err
}

// Report returns a run's stored report ("xlsx" or "csv"): its bytes and object key.
func (s *Service) Report(ctx context.Context, runID, format string) ([]byte, string, error) {
	r, err := s.GetRun(ctx, runID)
	if err != nil {
		return nil, "", err
	}
	key := r.ReportXLSX
	if format == "csv" {
		key = r.ReportCSV
	}
	if key == nil {
		return nil, "", ErrNotFound
	}
	obj, err := s.Objects.Get(ctx, ReportBucket, *key)
	if err != nil {
		if errors.Is(err, ErrNoObject) {
			return nil, "", ErrNotFound
		}
		return nil, "", err
	}
	defer obj.Body.Close()
	b, err := io.ReadAll(obj.Body)
	return b, *key, err
}
