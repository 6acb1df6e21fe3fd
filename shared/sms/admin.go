package sms

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
)

// Group is a contact group with its members (numbers masked).
type Group struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Members     []Member `json:"members"`
}

// Member is one contact of a group.
type Member struct {
	ID    string `json:"memberId"`
	Phone string `json:"phone"` // masked
}

var (
	groupRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)
	memberRE = regexp.MustCompile(`^[A-Za-z0-9._:@-]{1,64}$`)
)

// Groups lists the contact groups and their members.
func (s *Service) Groups(ctx context.Context) ([]Group, error) {
	rows, err := s.Pool.Query(ctx, `SELECT g.name, g.description, m.member_id, m.phone_masked
		FROM sms_contact_groups g LEFT JOIN sms_group_members m ON m.group_name = g.name ORDER BY g.name, m.member_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		var name, desc string
		var id, phone *string
		if err := rows.Scan(&name, &desc, &id, &phone); err != nil {
			return nil, err
		}
		if len(out) == 0 || out[len(out)-1].Name != name {
			out = append(out, Group{Name: name, Description: desc, Members: []Member{}})
		}
		if id != nil {
			g := &out[len(out)-1]
			g.Members = append(g.Members, Member{ID: *id, Phone: *phone})
		}
	}
	return out, rows.Err()
}

// PutGroup creates a contact group or changes its description.
func (s *Service) PutGroup(ctx context.Context, name, description string) error {
	if !groupRE.MatchString(name) {
		return problem.Invalid("bad group name", problem.Field("name", "lower-case letters, digits and -, at most 63"))
	}
	_, err := s.Pool.Exec(ctx, `INSERT INTO sms_contact_groups (name, description) VALUES ($1, $2)
		ON CONFLICT (name) DO UPDATE SET description = $2`, name, description)
	return err
}

// PutMember adds a member to a group or changes the member's number.
func (s *Service) PutMember(ctx context.Context, group, member, phone string) (Member, error) {
	var bad []problem.InvalidParam
	if !memberRE.MatchString(member) {
		bad = append(bad, problem.Field("memberId", "an opaque staff id of 1–64 letters, digits or ._:@-"))
	}
	p, ok := NormalisePhone(phone)
	if !ok {
		bad = append(bad, problem.Field("phone", "must be an 11-digit mainland mobile number"))
	}
	if len(bad) > 0 {
		return Member{}, problem.Invalid("the member has invalid fields", bad...)
	}
	enc, err := s.Protect.Encrypt(ctx, memberField(group, member), p)
	if err != nil {
		return Member{}, err
	}
	idx, err := s.Protect.BlindIndex(pii.KindPhone, p)
	if err != nil {
		return Member{}, err
	}
	m := Member{ID: member, Phone: mask.Phone(p)}
	tag, err := s.Pool.Exec(ctx, `INSERT INTO sms_group_members (group_name, member_id, phone_enc, phone_index, phone_masked)
		SELECT name, $2, $3, $4, $5 FROM sms_contact_groups WHERE name = $1
		ON CONFLICT (group_name, member_id) DO UPDATE SET phone_enc = $3, phone_index = $4, phone_masked = $5`,
		group, member, enc, idx, m.Phone)
	if err == nil && tag.RowsAffected() == 0 {
		return Member{}, problem.NotFound("no contact group " + group)
	}
	return m, err
}

// DeleteMember removes a member from a group.
func (s *Service) DeleteMember(ctx context.Context, group, member string) error {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM sms_group_members WHERE group_name = $1 AND member_id = $2`, group, member)
	if err == nil && tag.RowsAffected() == 0 {
		return problem.NotFound("no member " + member + " in group " + group)
	}
	return err
}

// Template is one version of a template.
type Template struct {
	Code      string    `json:"code"`
	Version   int       `json:"version"`
	Body      string    `json:"body"`
	Params    []string  `json:"params"`
	Active    bool      `json:"active"`
	CreatedBy string    `json:"createdBy"`
	CreatedAt time.Time `json:"createdAt"`
}

// Templates lists the active version of every template.
func (s *Service) Templates(ctx context.Context) ([]Template, error) {
	rows, err := s.Pool.Query(ctx, `SELECT code, version, body, active, created_by, created_at FROM sms_templates
		WHERE active ORDER BY code`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Template, error) {
		var t Template
		err := r.Scan(&t.Code, &t.Version, &t.Body, &t.Active, &t.CreatedBy, &t.CreatedAt)
		t.Params = Params(t.Body)
		return t, err
	})
}

var templateRE = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,99}$`)

// PublishTemplate makes body the new active version of code; records keep the version
// they were sent with.
func (s *Service) PublishTemplate(ctx context.Context, code, body, by string) (Template, error) {
	var bad []problem.InvalidParam
	if !templateRE.MatchString(code) {
		bad = append(bad, problem.Field("code", "lower-case letters, digits and _.-, at most 100"))
	}
	if body == "" || Parts(body) == 0 || Parts(body) > 3 {
		bad = append(bad, problem.Field("body", "required, at most three SMS long"))
	}
	if len(bad) > 0 {
		return Template{}, problem.Invalid("the template has invalid fields", bad...)
	}
	t := Template{Code: code, Body: body, Params: Params(body), Active: true, CreatedBy: by}
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('sms_template:' || $1))`, code); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sms_templates SET active = false WHERE code = $1 AND active`, code); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `INSERT INTO sms_templates (code, version, body, created_by)
			SELECT $1, coalesce(max(version), 0) + 1, $2, $3 FROM sms_templates WHERE code = $1
			RETURNING version, created_at`, code, body, by).Scan(&t.Version, &t.CreatedAt)
	})
	return t, err
}

// DailyRow is one line of the daily report.
type DailyRow struct {
	Carrier  string `json:"carrier"`
	Template string `json:"template"`
	Status   string `json:"status"`
	Messages int    `json:"messages"`
	Parts    int    `json:"parts"`
}

// Daily is the report of one China day: SMS by carrier, template and status.
type Daily struct {
	Date  string     `json:"date"`
	Rows  []DailyRow `json:"rows"`
	Total int        `json:"total"`
}

// DailyReport counts the records created on day (YYYY-MM-DD, China time).
func (s *Service) DailyReport(ctx context.Context, day string) (Daily, error) {
	d, err := time.ParseInLocation("2006-01-02", day, ChinaTime)
	if err != nil {
		return Daily{}, problem.Invalid("bad date", problem.Field("date", "must be YYYY-MM-DD (China time)"))
	}
	rows, err := s.Pool.Query(ctx, `SELECT coalesce(carrier, 'none'), template, status, count(*), coalesce(sum(parts), 0)
		FROM sms_messages WHERE created_at >= $1 AND created_at < $2
		GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`, d, d.AddDate(0, 0, 1))
	if err != nil {
		return Daily{}, err
	}
	out := Daily{Date: day, Rows: []DailyRow{}}
	out.Rows, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (DailyRow, error) {
		var x DailyRow
		err := r.Scan(&x.Carrier, &x.Template, &x.Status, &x.Messages, &x.Parts)
		return x, err
	})
	for _, r := range out.Rows {
		out.Total += r.Messages
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	return out, err
}
