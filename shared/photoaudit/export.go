package photoaudit

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/audit"
	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/workday"
)

// Export is a finished overdue export.
type Export struct {
	XLSX     []byte
	Rows     int
	Full     bool // names and ID numbers in full; masked otherwise
	FileName string
}

// exportSQL lists the overdue photos with their person, oldest first per provider.
const exportSQL = `SELECT c.provider, c.application_id, c.submitted_at, a.person_id
	FROM photo_audit_clock c JOIN applications a ON a.application_id = c.application_id
	WHERE c.audited_at IS NULL AND c.submitted_at IS NOT NULL AND c.submitted_at < $1 AND ($2 = '' OR c.provider = $2)
	ORDER BY c.provider, c.submitted_at, c.application_id LIMIT $3`

// Export writes the overdue people of q (provider, citizen name, ID number) as xlsx: in
// full for a caller allowed to see them (full), masked (张*, 110***********1234)
// otherwise. Names and ID numbers are decrypted here only. Every export is written to the
// audit chain before the file is handed out; no audit record, no file.
func (s *Service) Export(ctx context.Context, q Query, full bool, a Actor) (Export, error) {
	cal, err := s.Calendar(ctx)
	if err != nil {
		return Export{}, err
	}
	cut, err := cal.Cutoff(q.AsOf, q.Threshold)
	if err != nil {
		return Export{}, invalid("threshold", err.Error())
	}
	type item struct {
		provider, app, person string
		at                    time.Time
	}
	rows, err := s.Pool.Query(ctx, exportSQL, cut, q.Provider, s.Config.ExportLimit+1)
	if err != nil {
		return Export{}, err
	}
	var items []item
	for rows.Next() {
		var it item
		if err := rows.Scan(&it.provider, &it.app, &it.at, &it.person); err != nil {
			return Export{}, err
		}
		items = append(items, it)
	}
	if err := rows.Err(); err != nil {
		return Export{}, err
	}
	if len(items) > s.Config.ExportLimit {
		return Export{}, invalid("provider", fmt.Sprintf("more than %d overdue photos: export one provider at a time", s.Config.ExportLimit))
	}

	f := excelize.NewFile()
	defer f.Close()
	sheet := f.GetSheetName(0)
	header := []string{"第三方审核机构", "姓名", "证件号码", "申请编号", "照片提交时间", "已过工作日"}
	write := func(r int, values []string) error {
		for c, v := range values {
			cell, err := excelize.CoordinatesToCellName(c+1, r)
			if err != nil {
				return err
			}
			if err := f.SetCellStr(sheet, cell, v); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(1, header); err != nil {
		return Export{}, err
	}
	for i, it := range items {
		p, err := s.People.Get(ctx, it.person)
		if err != nil {
			return Export{}, fmt.Errorf("photo-audit export: person of %s: %w", it.app, err)
		}
		name, idn := p.Name, p.IDNumber
		if !full {
			name, idn = mask.Name(name), mask.IDNumber(idn)
		}
		waited := cal.WorkingDaysBetween(workday.DateOf(it.at), q.AsOf)
		if err := write(i+2, []string{it.provider, name, idn, it.app, it.at.In(events.ChinaTime).Format("2006-01-02 15:04:05"),
			strconv.Itoa(waited)}); err != nil {
			return Export{}, err
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return Export{}, err
	}
	action := "photo-audit.export.masked"
	if full {
		action = "photo-audit.export.full"
	}
	detail := map[string]string{"asOf": q.AsOf.String(), "threshold": strconv.Itoa(q.Threshold), "rows": strconv.Itoa(len(items))}
	if q.Provider != "" {
		detail["provider"] = q.Provider
	}
	if _, err := s.Audit.Append(ctx, s.Pool, audit.Entry{Actor: a.ID, Channel: "admin", Action: action,
		ObjectType: "photo-audit-overdue", ObjectID: q.AsOf.String(), RequestID: a.RequestID, Detail: detail}); err != nil {
		return Export{}, fmt.Errorf("photo-audit export: audit record: %w", err)
	}
	return Export{XLSX: buf.Bytes(), Rows: len(items), Full: full,
		FileName: "photo-audit-overdue-" + q.AsOf.String() + ".xlsx"}, nil
}
