package kiosk

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/problem"
)

// LogFile is one log file a kiosk uploaded.
type LogFile struct {
	ID         string    `json:"id"`
	KioskID    string    `json:"kioskId"`
	Date       string    `json:"date"` // the day the log covers (X-Log-Date), China time
	Bytes      int64     `json:"bytes"`
	Gzip       bool      `json:"gzip"`
	UploadedAt time.Time `json:"uploadedAt"`
}

// Upload stores a kiosk's log file (as sent: plain text, or gzip when gz) in the log
// bucket and records it. The object is written first: a failed insert leaves an object no
// row names, never a row without its object.
func (s *Service) Upload(ctx context.Context, c Caller, id, date string, body []byte, gz bool) (LogFile, error) {
	if err := s.AuthorizeKiosk(ctx, s.DB, c, id, false); err != nil {
		return LogFile{}, err
	}
	day, err := time.Parse(time.DateOnly, date)
	if err != nil {
		return LogFile{}, problem.Invalid("X-Log-Date names the day the log covers", problem.Field("X-Log-Date", "must be YYYY-MM-DD"))
	}
	if len(body) == 0 {
		return LogFile{}, problem.Invalid("the log is empty", problem.Field("body", "must not be empty"))
	}
	if gz && (len(body) < 18 || body[0] != 0x1f || body[1] != 0x8b) {
		return LogFile{}, problem.Invalid("the body is not gzip", problem.Field("body", "Content-Encoding gzip, but no gzip header"))
	}
	if s.Logs == nil {
		return LogFile{}, errors.New("kiosk: no log store configured")
	}
	f := LogFile{ID: uuid.NewString(), KioskID: id, Date: day.Format(time.DateOnly), Bytes: int64(len(body)), Gzip: gz,
		UploadedAt: s.now().UTC().Truncate(time.Microsecond)}
	key, ct := "kiosks/"+id+"/"+f.Date+"/"+f.ID+".log", "text/plain; charset=utf-8"
	if gz {
		key, ct = key+".gz", "application/gzip"
	}
	if err := s.Logs.Put(ctx, key, body, ct); err != nil {
		return LogFile{}, err
	}
	if _, err := s.DB.Exec(ctx, `INSERT INTO kiosk_logs (log_id, kiosk_id, log_date, object_key, bytes, gzip, uploaded_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, f.ID, id, day, key, f.Bytes, gz, f.UploadedAt); err != nil {
		return LogFile{}, err
	}
	return f, nil
}

// Logs lists the log files of a kiosk of the admin's region, newest day first.
func (s *Service) ListLogs(ctx context.Context, admin Admin, id string, limit int) ([]LogFile, error) {
	if _, err := s.Get(ctx, admin, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 200
	}
	rows, err := s.DB.Query(ctx, `SELECT log_id::text, kiosk_id, log_date, bytes, gzip, uploaded_at FROM kiosk_logs
		WHERE kiosk_id = $1 ORDER BY log_date DESC, uploaded_at DESC LIMIT $2`, id, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []LogFile{}
	for rows.Next() {
		var f LogFile
		var day time.Time
		if err := rows.Scan(&f.ID, &f.KioskID, &day, &f.Bytes, &f.Gzip, &f.UploadedAt); err != nil {
			return nil, err
		}
		f.Date = day.Format(time.DateOnly)
		out = append(out, f)
	}
	return out, rows.Err()
}

// ReadLog returns one log file of a kiosk of the admin's region, as uploaded.
func (s *Service) ReadLog(ctx context.Context, admin Admin, id, logID string) (LogFile, []byte, error) {
	if _, err := s.Get(ctx, admin, id); err != nil {
		return LogFile{}, nil, err
	}
	if _, err := uuid.Parse(logID); err != nil {
		return LogFile{}, nil, problem.NotFound("no such log")
	}
	var f LogFile
	var day time.Time
	var key string
	err := s.DB.QueryRow(ctx, `SELECT log_id::text, kiosk_id, log_date, bytes, gzip, uploaded_at, object_key FROM kiosk_logs
		WHERE kiosk_id = $1 AND log_id = $2`, id, logID).Scan(&f.ID, &f.KioskID, &day, &f.Bytes, &f.Gzip, &f.UploadedAt, &key)
	if errors.Is(err, pgx.ErrNoRows) {
		return LogFile{}, nil, problem.NotFound("no such log")
	}
	if err != nil {
		return LogFile{}, nil, err
	}
	f.Date = day.Format(time.DateOnly)
	body, err := s.Logs.Get(ctx, key)
	return f, body, err
}
