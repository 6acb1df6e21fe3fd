package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/outbox"
)

// Producer is the function that emits the reconciliation events.
const Producer = "reconcile"

const eventSource = "/functions/reconcile"

// publish writes the reports, then in one transaction the run's discrepancies and
// summary, its completion, the current pointer (the previous current run becomes
// superseded), refund requests, notices and events.
func (s *Service) publish(ctx context.Context, req RunRequest, runID string, day time.Time, res *Result, man *Manifest, threeWay bool) error {
	date := day.Format(time.DateOnly)
	controlsOK := true
	for _, in := range man.Inputs {
		controlsOK = controlsOK && in.DigestOK && in.ControlsOK && len(in.Report.Malformed) == 0
	}
	info := ReportInfo{RunID: runID, Channel: req.Channel, BusinessDate: date, Totals: res.Totals, ControlsOK: controlsOK}
	xlsx, err := WriteXLSX(info, res)
	if err != nil {
		return err
	}
	csvBody := WriteCSV(info, res)
	base := fmt.Sprintf("reconcile/%s/%s/%s", req.Channel, date, runID)
	if err := s.Objects.Put(ctx, ReportBucket, base+".xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if err := s.Objects.Put(ctx, ReportBucket, base+".csv", "text/csv; charset=utf-8", csvBody); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	s.hook("reported")

	return pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		rows := make([][]any, len(res.Discrepancies))
		for i, d := range res.Discrepancies {
			var at *time.Time
			if d.Time != 0 {
				t := time.Unix(d.Time, 0).UTC()
				at = &t
			}
			rows[i] = []any{runID, i + 1, string(d.Class), d.Side.String(), d.Key, d.Merchant, d.Kind.String(), d.PlatformFen,
				d.ChannelFen, d.HISFen, d.PlatformStatus.String(), d.ChannelStatus.String(), d.Fen, at, d.Line}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"recon_discrepancies"}, []string{"run_id", "seq", "class", "side", "txn_key",
			"merchant", "kind", "platform_fen", "channel_fen", "his_fen", "platform_status", "channel_status", "fen", "txn_time", "line"},
			pgx.CopyFromRows(rows)); err != nil {
			return fmt.Errorf("discrepancies: %w", err)
		}
		sum := make([][]any, len(res.Summary))
		for i, r := range res.Summary {
			sum[i] = []any{runID, r.Merchant, string(r.Class), r.Count, r.Fen}
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"recon_summary"}, []string{"run_id", "merchant", "class", "count", "fen"},
			pgx.CopyFromRows(sum)); err != nil {
			return fmt.Errorf("summary: %w", err)
		}
		listed := 0
		for _, d := range res.Discrepancies {
			if d.Class != ClassPending {
				listed++
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE recon_runs SET status = 'succeeded', finished_at = now(), three_way = $2,
			controls_ok = $3, manifest = $4, totals = $5, discrepancies = $6, report_xlsx = $7, report_csv = $8
			WHERE run_id = $1 AND status = 'running'`, runID, threeWay, controlsOK, man, res.Totals, listed,
			base+".xlsx", base+".csv"); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE recon_runs SET status = 'superseded'
			WHERE run_id = (SELECT run_id FROM recon_current WHERE channel = $1 AND biz_date = $2)`, req.Channel, date); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO recon_current (channel, biz_date, run_id) VALUES ($1, $2, $3)
			ON CONFLICT (channel, biz_date) DO UPDATE SET run_id = EXCLUDED.run_id`, req.Channel, date, runID); err != nil {
			return err
		}
		if err := s.requestRefunds(ctx, tx, req.Channel, date, runID, res); err != nil {
			return err
		}
		fresh, err := s.notices(ctx, tx, req.Channel, date, runID, res)
		if err != nil {
			return err
		}
		b := &pgx.Batch{}
		matched := res.Counts()[ClassMatched] + res.Counts()[ClassMatchedCrossDay]
		ev, err := events.New(events.ReconciliationCompleted, eventSource, runID, events.ReconciliationCompletedData{
			RunID: runID, BusinessDate: events.Date(date), Bank: req.Channel, Matched: int(matched), Discrepancies: listed,
			TotalFen: res.Totals.ChannelFen})
		if err != nil {
			return err
		}
		if err := outbox.Queue(b, Producer, "", ev); err != nil {
			return err
		}
		for _, d := range fresh {
			ev, err := events.New(events.DiscrepancyFound, eventSource, d.Key, events.DiscrepancyFoundData{
				RunID: runID, BusinessDate: events.Date(date), Kind: events.DiscrepancyKind(d.Class), AmountFen: d.Fen, TxnRef: d.Key})
			if err != nil {
				return err
			}
			// The id is the discrepancy's identity: a redelivered batch cannot announce it twice.
			ev.SetID(noticeID(req.Channel, date, d))
			if err := outbox.Queue(b, Producer, "", ev); err != nil {
				return err
			}
		}
		if s.Audit != nil {
			if err := s.Audit.Queue(b, audit.Entry{Actor: req.Actor, Channel: auditChannel(req.Trigger), Action: "reconcile.run.complete",
				ObjectType: "recon-run", ObjectID: runID, RequestID: req.RequestID, Detail: map[string]string{
					"discrepancies": strconv.Itoa(listed), "controlsOk": strconv.FormatBool(controlsOK)}}); err != nil {
				return err
			}
		}
		return tx.SendBatch(ctx, b).Close()
	})
}

func auditChannel(t Trigger) string {
	if t == TriggerManual {
		return "admin"
	}
	return "schedule"
}

func noticeID(channel, date string, d Discrepancy) string {
	h := sha256.Sum256([]byte(channel + "\x00" + date + "\x00" + string(d.Class) + "\x00" + d.Key))
	return "recon-" + hex.EncodeToString(h[:16])
}

// requestRefunds asks a refund for each his-missing discrepancy, once per (channel, key).
func (s *Service) requestRefunds(ctx context.Context, tx pgx.Tx, channel, date, runID string, res *Result) error {
	var nos, keys, merchants []string
	var amounts []int64
	for _, d := range res.Discrepancies {
		if d.Class == ClassHISMissing && d.ChannelFen > 0 {
			nos, keys, merchants, amounts = append(nos, RefundNo(channel, d.Key)), append(keys, d.Key), append(merchants, d.Merchant),
				append(amounts, d.ChannelFen)
		}
	}
	if len(nos) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `INSERT INTO recon_refunds (refund_no, channel, biz_date, txn_key, merchant, amount_fen, status, first_run_id)
		SELECT no, $5, $6, k, m, a, 'requested', $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS t(no, k, m, a)
		ON CONFLICT DO NOTHING`, nos, keys, merchants, amounts, channel, date, runID)
	return err
}

// notices records each discrepancy identity once and returns those new to this run, up
// to NotifyMax: they are announced.
func (s *Service) notices(ctx context.Context, tx pgx.Tx, channel, date, runID string, res *Result) ([]Discrepancy, error) {
	var classes, keys []string
	byKey := map[string]Discrepancy{}
	for _, d := range res.Discrepancies {
		if d.Class == ClassPending {
			continue
		}
		k := string(d.Class) + "\x00" + d.Key
		if _, dup := byKey[k]; dup {
			continue
		}
		byKey[k] = d
		classes, keys = append(classes, string(d.Class)), append(keys, d.Key)
	}
	if len(keys) == 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `INSERT INTO recon_notices (channel, biz_date, class, txn_key, first_run_id)
		SELECT $3, $4, c, k, $5 FROM unnest($1::text[], $2::text[]) AS t(c, k)
		ON CONFLICT DO NOTHING RETURNING class, txn_key`, classes, keys, channel, date, runID)
	if err != nil {
		return nil, err
	}
	var fresh []Discrepancy
	for rows.Next() {
		var c, k string
		if err := rows.Scan(&c, &k); err != nil {
			return nil, err
		}
		fresh = append(fresh, byKey[c+"\x00"+k])
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	SortDiscrepancies(fresh)
	max := s.Config.NotifyMax
	if max <= 0 {
		max = 100
	}
	if len(fresh) > max {
		fresh = fresh[:max]
	}
	return fresh, nil
}
