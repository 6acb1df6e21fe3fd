package kiosk

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/sscard/platform/events"
	"github.com/sscard/platform/shared/outbox"
	"github.com/sscard/platform/shared/problem"
)

// Command statuses. A command is queued until its kiosk polls for it (delivered), then
// done or failed as the kiosk reports; one still queued past its expiry is expired and
// never delivered.
const (
	StatusQueued    = "queued"
	StatusDelivered = "delivered"
	StatusDone      = "done"
	StatusFailed    = "failed"
	StatusExpired   = "expired"
)

// MaxCommandKiosks bounds a batch command (a batch upgrade of many kiosks).
const MaxCommandKiosks = 1000

// Order is an administrator's command to one or more kiosks.
type Order struct {
	KioskIDs []string        `json:"kioskIds"`
	Command  string          `json:"command"`
	Args     json.RawMessage `json:"args"`
}

// UpgradeArgs are the arguments of upgrade: where the new build is (a presigned URL),
// the SM2 signature over it that the edge-bridge verifies before swapping, and its version.
type UpgradeArgs struct {
	URL       string `json:"url"`
	Signature string `json:"signature"` // base64 of the DER SM2 signature over the file
	Version   string `json:"version"`
	SHA256    string `json:"sha256,omitempty"`
}

// Command is a command as administrators see it.
type Command struct {
	ID          string          `json:"id"`
	KioskID     string          `json:"kioskId"`
	Command     string          `json:"command"`
	Args        json.RawMessage `json:"args"`
	Status      string          `json:"status"`
	IssuedBy    string          `json:"issuedBy"`
	IssuedAt    time.Time       `json:"issuedAt"`
	ExpiresAt   time.Time       `json:"expiresAt"`
	DeliveredAt *time.Time      `json:"deliveredAt,omitempty"`
	FinishedAt  *time.Time      `json:"finishedAt,omitempty"`
	Detail      string          `json:"detail,omitempty"`
}

// Delivery is a command as the kiosk receives it.
type Delivery struct {
	ID       string          `json:"id"`
	Command  string          `json:"command"`
	Args     json.RawMessage `json:"args"`
	IssuedAt time.Time       `json:"issuedAt"`
}

var versionShape = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,31}$`)

// checkArgs validates a command's arguments and returns them in canonical form.
func checkArgs(cmd string, raw json.RawMessage) (json.RawMessage, []problem.InvalidParam) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage(`{}`)
	}
	if raw[0] != '{' || !json.Valid(raw) {
		return nil, []problem.InvalidParam{problem.Field("args", "must be an object")}
	}
	if cmd != string(events.CommandUpgrade) {
		if string(raw) != "{}" {
			return nil, []problem.InvalidParam{problem.Field("args", cmd+" takes no arguments")}
		}
		return raw, nil
	}
	var a UpgradeArgs
	d := json.NewDecoder(bytes.NewReader(raw))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		return nil, []problem.InvalidParam{problem.Field("args", "upgrade takes url, signature, version and sha256")}
	}
	var params []problem.InvalidParam
	if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(a.URL) > 4096 {
		params = append(params, problem.Field("args.url", "must be an http(s) URL (a presigned download URL)"))
	}
	if sig, err := base64.StdEncoding.DecodeString(a.Signature); err != nil || len(sig) < 8 || len(sig) > 128 {
		params = append(params, problem.Field("args.signature", "must be the base64 of a DER SM2 signature"))
	}
	if !versionShape.MatchString(a.Version) {
		params = append(params, problem.Field("args.version", "must be a version such as 1.4.2"))
	}
	if a.SHA256 != "" && (len(a.SHA256) != 64 || strings.Trim(strings.ToLower(a.SHA256), "0123456789abcdef") != "") {
		params = append(params, problem.Field("args.sha256", "must be 64 hex digits"))
	}
	if len(params) > 0 {
		return nil, params
	}
	out, _ := json.Marshal(a)
	return out, nil
}

// Issue queues a command for every kiosk of the order, all or none: each must be a
// registered kiosk of the admin's region. Each command is announced as
// KioskCommandIssued through the outbox, in the same transaction.
func (s *Service) Issue(ctx context.Context, admin Admin, o Order) ([]Command, error) {
	var params []problem.InvalidParam
	if !events.KioskCommand(o.Command).Valid() {
		params = append(params, problem.Field("command", "must be one of "+strings.Join(events.KioskCommand("").Values(), ", ")))
	}
	if len(o.KioskIDs) == 0 || len(o.KioskIDs) > MaxCommandKiosks {
		params = append(params, problem.Field("kioskIds", fmt.Sprintf("must name 1 to %d kiosks", MaxCommandKiosks)))
	}
	seen := map[string]bool{}
	for i, id := range o.KioskIDs {
		if !ValidID(id) || seen[id] {
			params = append(params, problem.Field(fmt.Sprintf("kioskIds[%d]", i), "must be a device ID, named once"))
		}
		seen[id] = true
	}
	var args json.RawMessage
	if len(params) == 0 {
		args, params = checkArgs(o.Command, o.Args)
	}
	if len(params) > 0 {
		return nil, problem.Invalid("the command was not issued", params...)
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	rows, err := tx.Query(ctx, `SELECT kiosk_id, registered FROM kiosks WHERE kiosk_id = ANY($1) AND region_code LIKE $2 || '%'
		FOR SHARE`, o.KioskIDs, RegionPrefix(admin.Region))
	if err != nil {
		return nil, err
	}
	found := map[string]bool{}
	for rows.Next() {
		var id string
		var reg bool
		if err := rows.Scan(&id, &reg); err != nil {
			rows.Close()
			return nil, err
		}
		found[id] = reg
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing, revoked []string
	for _, id := range o.KioskIDs {
		reg, ok := found[id]
		switch {
		case !ok:
			missing = append(missing, id)
		case !reg:
			revoked = append(revoked, id)
		}
	}
	if len(missing) > 0 {
		return nil, problem.NotFound("no kiosk in your region named " + strings.Join(missing, ", "))
	}
	if len(revoked) > 0 {
		return nil, problem.Conflict("kiosks not registered (revoked): " + strings.Join(revoked, ", "))
	}
	now := s.now().UTC().Truncate(time.Microsecond)
	expires := now.Add(s.commandTTL())
	out := make([]Command, len(o.KioskIDs))
	ids := make([]string, len(o.KioskIDs))
	b := &pgx.Batch{}
	for i, k := range o.KioskIDs {
		ids[i] = uuid.NewString()
		out[i] = Command{ID: ids[i], KioskID: k, Command: o.Command, Args: args, Status: StatusQueued, IssuedBy: admin.ID,
			IssuedAt: now, ExpiresAt: expires}
		ev, err := events.New(events.KioskCommandIssued, s.source(), k, events.KioskCommandIssuedData{
			CommandID: ids[i], KioskID: k, Command: events.KioskCommand(o.Command), IssuedAt: now})
		if err != nil {
			return nil, err
		}
		if err := outbox.Queue(b, Producer, "", ev); err != nil {
			return nil, err
		}
	}
	b.Queue(`INSERT INTO kiosk_commands (command_id, kiosk_id, command, args, status, issued_by, issued_at, expires_at)
		SELECT c.id::uuid, c.kiosk, $3, $4, 'queued', $5, $6, $7 FROM unnest($1::text[], $2::text[]) AS c(id, kiosk)`,
		ids, o.KioskIDs, o.Command, string(args), admin.ID, now, expires)
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return nil, err
	}
	return out, tx.Commit(ctx)
}

// Poll hands kiosk id the commands waiting for it, oldest first, and marks them
// delivered: only a kiosk that asks gets a command, so nothing is ever "delivered" to a
// kiosk that is not there. Commands past their expiry are expired instead.
func (s *Service) Poll(ctx context.Context, c Caller, id string) ([]Delivery, error) {
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := s.AuthorizeKiosk(ctx, tx, c, id, false); err != nil {
		return nil, err
	}
	now := s.now()
	if _, err := tx.Exec(ctx, `UPDATE kiosk_commands SET status = 'expired', finished_at = $2
		WHERE kiosk_id = $1 AND status = 'queued' AND expires_at <= $2`, id, now); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `UPDATE kiosk_commands SET status = 'delivered', delivered_at = $2
		WHERE kiosk_id = $1 AND status = 'queued' RETURNING command_id::text, command, args, issued_at`, id, now)
	if err != nil {
		return nil, err
	}
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var args []byte
		if err := rows.Scan(&d.ID, &d.Command, &args, &d.IssuedAt); err != nil {
			rows.Close()
			return nil, err
		}
		d.Args = args
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].IssuedAt.Before(out[j].IssuedAt) })
	return out, tx.Commit(ctx)
}

// Commands lists a kiosk's commands, newest first; a queued one past its expiry shows as
// expired (the next poll records it so).
func (s *Service) Commands(ctx context.Context, admin Admin, id string, limit int) ([]Command, error) {
	if _, err := s.Get(ctx, admin, id); err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	rows, err := s.DB.Query(ctx, `SELECT command_id::text, kiosk_id, command, args,
			CASE WHEN status = 'queued' AND expires_at <= $2 THEN 'expired' ELSE status END,
			issued_by, issued_at, expires_at, delivered_at, finished_at, coalesce(detail, '')
		FROM kiosk_commands WHERE kiosk_id = $1 ORDER BY issued_at DESC LIMIT $3`, id, s.now(), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Command{}
	for rows.Next() {
		var c Command
		var args []byte
		if err := rows.Scan(&c.ID, &c.KioskID, &c.Command, &args, &c.Status, &c.IssuedBy, &c.IssuedAt, &c.ExpiresAt,
			&c.DeliveredAt, &c.FinishedAt, &c.Detail); err != nil {
			return nil, err
		}
		c.Args = args
		out = append(out, c)
	}
	return out, rows.Err()
}

// settleCommand records a kiosk's result for one of its own commands. A result for a
// command of another kiosk, or one already settled, changes nothing.
func (s *Service) settleCommand(ctx context.Context, tx pgx.Tx, id string, r *CommandResultData, at time.Time) error {
	var cmd string
	err := tx.QueryRow(ctx, `UPDATE kiosk_commands SET status = $3, finished_at = $4, detail = nullif($5, '')
		WHERE command_id = $2::uuid AND kiosk_id = $1 AND status IN ('queued', 'delivered') RETURNING command`,
		id, r.CommandID, r.Status, at, r.Detail).Scan(&cmd)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if r.Status == StatusDone && slices.Contains([]string{string(events.CommandPause), string(events.CommandResume)}, cmd) {
		_, err = tx.Exec(ctx, `UPDATE kiosks SET paused = $2 WHERE kiosk_id = $1`, id, cmd == string(events.CommandPause))
	}
	return err
}
