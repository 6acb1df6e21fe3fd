// Package sms is the platform's SMS: templates with named parameters, contact groups,
// one record per SMS to one number (queued → submitted → delivered | failed | expired),
// routing by number prefix to the carriers' gateways, verification codes with abuse
// limits, and the daily report. The carrier protocols live in the subpackages (link,
// cmpp); this package holds no net/http.
//
// Who gets an SMS is a reference, never a number in an event: a person id (the phone is
// read from the person register, shared/person) or "group:<name>", one SMS per member of
// that contact group. One SMS per (message id, recipient) is ever sent.
package sms

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/mask"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/problem"
)

// Producer is the outbox producer (function name) of sms-alert's events.
const Producer = "sms-alert"

// Source is the CloudEvents source of SMSDelivered.
const Source = "/functions/sms-alert"

// Statuses of a record.
const (
	StatusQueued    = "queued"
	StatusSubmitted = "submitted"
	StatusDelivered = "delivered"
	StatusFailed    = "failed"
	StatusExpired   = "expired"
)

// GroupPrefix marks a RecipientRef naming a contact group.
const GroupPrefix = "group:"

// Service records and queues SMS; the Dispatcher sends them.
type Service struct {
	Pool    *pgxpool.Pool
	Protect person.Protector
	Persons *person.Store
	Routes  *Routes
}

// Request asks for one templated SMS per recipient of RecipientRef (SMSRequestedData),
// or to one number (Phone, for verification codes; RecipientRef is then "").
type Request struct {
	MessageID    string
	Template     string
	Params       map[string]string
	RecipientRef string
	Phone        string
	Purpose      events.SMSPurpose
	SourceEvent  string
}

// Record is an SMS as answers show it (masked number).
type Record struct {
	ID          string     `json:"id"`
	MessageID   string     `json:"messageId"`
	Recipient   string     `json:"recipient"`
	Template    string     `json:"template"`
	Version     int        `json:"templateVersion,omitempty"`
	Purpose     string     `json:"purpose"`
	Phone       string     `json:"phone,omitempty"` // masked
	Channel     string     `json:"channel,omitempty"`
	Carrier     string     `json:"carrier,omitempty"`
	Parts       int        `json:"parts"`
	Status      string     `json:"status"`
	Error       string     `json:"error,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	SubmittedAt *time.Time `json:"submittedAt,omitempty"`
	DoneAt      *time.Time `json:"doneAt,omitempty"`
	// Repeated: the record existed already (same message id and recipient); nothing new is sent.
	Repeated bool `json:"repeated,omitempty"`
}

// recipient is one number to send to.
type recipient struct {
	key, phone string
}

// Validate checks a request's fields, naming each bad one.
func (r Request) Validate() error {
	var bad []problem.InvalidParam
	if r.MessageID == "" || len(r.MessageID) > 200 {
		bad = append(bad, problem.Field("messageId", "required, at most 200 characters"))
	}
	if r.Template == "" || len(r.Template) > 100 {
		bad = append(bad, problem.Field("template", "required, at most 100 characters"))
	}
	if (r.RecipientRef == "") == (r.Phone == "") {
		bad = append(bad, problem.Field("recipientRef", "required: a person id or group:<name>"))
	}
	if !r.Purpose.Valid() {
		bad = append(bad, problem.Field("purpose", "must be notice, code or alert"))
	}
	if len(bad) > 0 {
		return problem.Invalid("the SMS request has invalid fields", bad...)
	}
	return nil
}

// Enqueue records the SMS of req in tx, one per recipient, queued for the dispatcher;
// records that exist already are answered as Repeated and not queued again. An unknown
// template or person, or a missing parameter, is a 422 problem (an event carrying it is
// refused for good); a person without a phone number gets a failed record saying so.
func (s *Service) Enqueue(ctx context.Context, tx pgx.Tx, req Request) ([]Record, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	var body string
	var version int
	err := tx.QueryRow(ctx, `SELECT body, version FROM sms_templates WHERE code = $1 AND active`, req.Template).Scan(&body, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, problem.New(422, "unknown-template", "Unknown SMS template", "no active template "+req.Template).
			With("invalid-params", []problem.InvalidParam{problem.Field("template", "no active template with this code")})
	}
	if err != nil {
		return nil, err
	}
	text, err := Render(body, req.Params)
	if err != nil {
		return nil, problem.Invalid("the template's parameters are incomplete", problem.Field("params", err.Error()))
	}
	parts := Parts(text)
	if parts == 0 {
		return nil, problem.Invalid("the text is too long for an SMS", problem.Field("params", "the rendered text needs more than 10 segments"))
	}
	recips, noPhone, err := s.resolve(ctx, tx, req)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, r := range recips {
		rec, err := s.insert(ctx, tx, req, version, r, text, parts, "")
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	for _, key := range noPhone {
		rec, err := s.insert(ctx, tx, req, version, recipient{key: key}, "", 0, "no phone number on record")
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}
	// Wakes the dispatchers when (and only if) the transaction commits.
	if _, err := tx.Exec(ctx, `SELECT pg_notify('sms_queued', '')`); err != nil {
		return nil, err
	}
	return out, nil
}

// resolve turns the request's reference into numbers.
func (s *Service) resolve(ctx context.Context, tx pgx.Tx, req Request) (with []recipient, without []string, err error) {
	switch {
	case req.Phone != "":
		phone, ok := NormalisePhone(req.Phone)
		if !ok {
			return nil, nil, problem.Invalid("not a mainland mobile number", problem.Field("phone", "must be an 11-digit mainland mobile number"))
		}
		idx, err := s.Protect.BlindIndex(pii.KindPhone, phone)
		if err != nil {
			return nil, nil, err
		}
		return []recipient{{key: "phone:" + hex.EncodeToString(idx), phone: phone}}, nil, nil
	case strings.HasPrefix(req.RecipientRef, GroupPrefix):
		name := strings.TrimPrefix(req.RecipientRef, GroupPrefix)
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM sms_contact_groups WHERE name = $1)`, name).Scan(&exists); err != nil {
			return nil, nil, err
		}
		if !exists {
			return nil, nil, problem.New(422, "unknown-group", "Unknown contact group", "no contact group "+name).
				With("invalid-params", []problem.InvalidParam{problem.Field("recipientRef", "no contact group with this name")})
		}
		rows, err := tx.Query(ctx, `SELECT member_id, phone_enc FROM sms_group_members WHERE group_name = $1 ORDER BY member_id`, name)
		if err != nil {
			return nil, nil, err
		}
		type m struct{ id, enc string }
		var ms []m
		for rows.Next() {
			var x m
			if err := rows.Scan(&x.id, &x.enc); err != nil {
				return nil, nil, err
			}
			ms = append(ms, x)
		}
		if err := rows.Err(); err != nil {
			return nil, nil, err
		}
		for _, x := range ms {
			phone, err := s.Protect.Decrypt(ctx, memberField(name, x.id), x.enc)
			if err != nil {
				return nil, nil, err
			}
			with = append(with, recipient{key: GroupPrefix + name + ":" + x.id, phone: phone})
		}
		return with, nil, nil
	default:
		p, err := s.Persons.Get(ctx, req.RecipientRef)
		if errors.Is(err, person.ErrNotFound) {
			return nil, nil, problem.New(422, "unknown-person", "Unknown person", "no person "+req.RecipientRef).
				With("invalid-params", []problem.InvalidParam{problem.Field("recipientRef", "no person with this id")})
		}
		if err != nil {
			return nil, nil, err
		}
		key := "person:" + req.RecipientRef
		phone, ok := NormalisePhone(p.Phone)
		if !ok {
			return nil, []string{key}, nil
		}
		return []recipient{{key: key, phone: phone}}, nil, nil
	}
}

func (s *Service) insert(ctx context.Context, tx pgx.Tx, req Request, version int, r recipient, text string, parts int, failure string) (Record, error) {
	rec := Record{ID: newID(), MessageID: req.MessageID, Recipient: r.key, Template: req.Template, Version: version,
		Purpose: string(req.Purpose), Parts: parts, Status: StatusQueued}
	var phoneEnc, textEnc, masked, channel *string
	if r.phone != "" {
		pe, err := s.Protect.Encrypt(ctx, pii.Field{Table: "sms_messages", Column: "phone", Row: rec.ID}, r.phone)
		if err != nil {
			return Record{}, err
		}
		te, err := s.Protect.Encrypt(ctx, pii.Field{Table: "sms_messages", Column: "text", Row: rec.ID}, text)
		if err != nil {
			return Record{}, err
		}
		m, ch := mask.Phone(r.phone), s.Routes.Channel(r.phone)
		phoneEnc, textEnc, masked, channel = &pe, &te, &m, &ch
		rec.Phone, rec.Channel = m, ch
	}
	var errText *string
	if failure != "" {
		rec.Status, errText, rec.Error = StatusFailed, &failure, failure
	}
	err := tx.QueryRow(ctx, `INSERT INTO sms_messages (id, message_id, recipient, template, template_version, purpose,
			phone_enc, phone_masked, text_enc, parts, channel, status, error, source_event, done_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, CASE WHEN $12 = 'failed' THEN now() END)
		ON CONFLICT (message_id, recipient) DO NOTHING
		RETURNING created_at`,
		rec.ID, rec.MessageID, rec.Recipient, rec.Template, rec.Version, rec.Purpose, phoneEnc, masked, textEnc, parts,
		channel, rec.Status, errText, nullable(req.SourceEvent)).Scan(&rec.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		old, err := s.lookup(ctx, tx, `message_id = $1 AND recipient = $2`, req.MessageID, r.key)
		if err != nil {
			return Record{}, err
		}
		old.Repeated = true
		return old, nil
	}
	return rec, err
}

const recordColumns = `id, message_id, recipient, template, coalesce(template_version, 0), purpose, coalesce(phone_masked, ''),
	coalesce(channel, ''), coalesce(carrier, ''), parts, status, coalesce(error, ''), created_at, submitted_at, done_at`

type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Service) lookup(ctx context.Context, q querier, where string, args ...any) (Record, error) {
	var r Record
	err := q.QueryRow(ctx, `SELECT `+recordColumns+` FROM sms_messages WHERE `+where, args...).Scan(&r.ID, &r.MessageID,
		&r.Recipient, &r.Template, &r.Version, &r.Purpose, &r.Phone, &r.Channel, &r.Carrier, &r.Parts, &r.Status, &r.Error,
		&r.CreatedAt, &r.SubmittedAt, &r.DoneAt)
	return r, err
}

// Get returns one record by its id.
func (s *Service) Get(ctx context.Context, id string) (Record, error) {
	r, err := s.lookup(ctx, s.Pool, `id = $1`, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return Record{}, problem.NotFound("no SMS record " + id)
	}
	return r, err
}

// ByMessage returns the records of one message id (every recipient).
func (s *Service) ByMessage(ctx context.Context, messageID string) ([]Record, error) {
	rows, err := s.Pool.Query(ctx, `SELECT id FROM sms_messages WHERE message_id = $1 ORDER BY recipient`, messageID)
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	out := make([]Record, 0, len(ids))
	for _, id := range ids {
		r, err := s.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func memberField(group, member string) pii.Field {
	return pii.Field{Table: "sms_group_members", Column: "phone", Row: group + ":" + member}
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "sms_" + hex.EncodeToString(b[:])
}

// Yuan renders integer fen as yuan with two decimals, for texts.
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	return fmt.Sprintf("%s%d.%02d", sign, fen/100, fen%100)
}
