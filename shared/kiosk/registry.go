package kiosk

import (
	"context"
	"crypto/ecdsa"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emmansun/gmsm/sm2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/problem"
)

// Registration is one kiosk as an administrator enrols it. ID is the device ID: it is the
// kiosk's callsign app id and never changes.
type Registration struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	RegionCode string `json:"regionCode"`
	Address    string `json:"address"`
	Model      string `json:"model"`
	// PublicKey is the kiosk's SM2 public key: PKIX PEM, or the 65-byte uncompressed point
	// in hex (04‖X‖Y), which fits an Excel cell.
	PublicKey string `json:"publicKey"`
}

// Edit changes the fields of a kiosk; nil leaves one as it is. The device ID is not
// among them.
type Edit struct {
	Name       *string `json:"name"`
	RegionCode *string `json:"regionCode"`
	Address    *string `json:"address"`
	Model      *string `json:"model"`
	PublicKey  *string `json:"publicKey"`
}

// Kiosk is a registry entry as administrators see it.
type Kiosk struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	RegionCode   string     `json:"regionCode"`
	Address      string     `json:"address"`
	Model        string     `json:"model"`
	KeyID        string     `json:"keyId"`
	Registered   bool       `json:"registered"`
	RegisteredAt *time.Time `json:"registeredAt,omitempty"`
	RevokedAt    *time.Time `json:"revokedAt,omitempty"`
	Health
}

// Field names of a registration, as problems name them.
const (
	FieldID         = "id"
	FieldName       = "name"
	FieldRegionCode = "regionCode"
	FieldAddress    = "address"
	FieldModel      = "model"
	FieldPublicKey  = "publicKey"
)

var deviceID = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// ValidID reports whether id can be a device ID (it is a callsign app id).
func ValidID(id string) bool { return deviceID.MatchString(id) }

func text(add func(string, string), field, v string, required bool, max int) {
	switch {
	case required && strings.TrimSpace(v) == "":
		add(field, "is required")
	case !utf8.ValidString(v) || utf8.RuneCountInString(v) > max:
		add(field, fmt.Sprintf("must be at most %d characters of UTF-8", max))
	case strings.ContainsAny(v, "\x00\r\n\t"):
		add(field, "must be one line of text")
	}
}

// ParsePublicKey reads an SM2 public key as PEM or as the hex of its uncompressed point.
func ParsePublicKey(s string) (*ecdsa.PublicKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		return gm.ParsePublicKeyPEM([]byte(s))
	}
	raw, err := hex.DecodeString(s)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		return nil, errors.New("want PEM or the hex of an uncompressed SM2 point (130 hex digits starting 04)")
	}
	return sm2.NewPublicKey(raw)
}

// check validates reg and returns its key; region scoping is the caller's business.
func (reg *Registration) check() (*ecdsa.PublicKey, []problem.InvalidParam) {
	var params []problem.InvalidParam
	add := func(f, why string) { params = append(params, problem.Field(f, why)) }
	reg.ID, reg.RegionCode = strings.TrimSpace(reg.ID), strings.TrimSpace(reg.RegionCode)
	reg.Name, reg.Address, reg.Model = strings.TrimSpace(reg.Name), strings.TrimSpace(reg.Address), strings.TrimSpace(reg.Model)
	if !ValidID(reg.ID) {
		add(FieldID, "must be 1 to 64 characters of A-Z a-z 0-9 . _ -")
	}
	text(add, FieldName, reg.Name, true, 64)
	if !ValidRegion(reg.RegionCode) {
		add(FieldRegionCode, "must be a 6-digit administrative division code")
	}
	text(add, FieldAddress, reg.Address, false, 200)
	text(add, FieldModel, reg.Model, false, 64)
	var pub *ecdsa.PublicKey
	if strings.TrimSpace(reg.PublicKey) == "" {
		add(FieldPublicKey, "is required")
	} else if k, err := ParsePublicKey(reg.PublicKey); err != nil {
		add(FieldPublicKey, "is not an SM2 public key: "+err.Error())
	} else {
		pub = k
	}
	return pub, params
}

func outsideRegion(a Admin) *problem.Problem {
	return problem.New(http.StatusForbidden, "outside-region", "Kiosk outside your region",
		"an administrator of region "+a.Region+" manages only kiosks of that region and its sub-regions")
}

// execer queues statements into a batch: callsign.PutApp and PutKey write through it,
// so a batch of enrolments is one round trip instead of three per kiosk.
type execer struct{ b *pgx.Batch }

func (e execer) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	e.b.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (e execer) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errors.New("kiosk: queries are not batched")
}

// enrolled is a registration that passed its checks.
type enrolled struct {
	Registration
	pub   *ecdsa.PublicKey
	keyID string
}

// KioskRoutes are the routes a kiosk caller gets: channelauth's kiosk preset, which
// includes this function's kiosk-side routes.
func KioskRoutes() []string { return channelauth.Routes(channelauth.KindKiosk) }

// queueEnrol adds to b the statements that register one kiosk: its callsign caller
// (app id = device ID, its key), and its registry row. The kiosks row may exist from
// heartbeats (unregistered); one registered before, even revoked, is not re-enrolled.
func (s *Service) queueEnrol(b *pgx.Batch, e enrolled, admin Admin, now time.Time) error {
	x := execer{b}
	ctx := context.Background()
	if err := callsign.PutApp(ctx, x, s.MACKey, callsign.App{ID: e.ID, Name: "kiosk " + e.ID, Kind: channelauth.KindKiosk,
		Active: true, Routes: KioskRoutes()}); err != nil {
		return err
	}
	if err := callsign.PutKey(ctx, x, s.MACKey, callsign.Key{AppID: e.ID, ID: e.keyID, Public: e.pub,
		NotBefore: now.Add(-time.Minute)}); err != nil {
		return err
	}
	b.Queue(`INSERT INTO kiosks (kiosk_id, registered, name, region_code, address, model, key_id, registered_by,
			registered_at, updated_at)
		VALUES ($1, true, $2, $3, $4, $5, $6, $7, $8, $8)
		ON CONFLICT (kiosk_id) DO UPDATE SET registered = true, name = $2, region_code = $3, address = $4, model = $5,
			key_id = $6, registered_by = $7, registered_at = $8, updated_at = $8
		WHERE kiosks.registered_at IS NULL`,
		e.ID, e.Name, e.RegionCode, e.Address, e.Model, e.keyID, admin.ID, now)
	return nil
}

// Failure is one registration that was refused, and why.
type Failure struct {
	Index  int    `json:"index"` // position in the request (the row number for a workbook)
	ID     string `json:"id"`
	Reason string `json:"reason"`
}

func reasons(params []problem.InvalidParam) string {
	out := make([]string, len(params))
	for i, p := range params {
		out[i] = p.Name + " " + p.Reason
	}
	return strings.Join(out, "; ")
}

// enrol checks regs and registers the valid ones in one transaction; the others come
// back as failures. index gives each registration's position for the failure list.
func (s *Service) enrol(ctx context.Context, admin Admin, regs []Registration, index func(int) int) (int, []Failure, error) {
	var failures []Failure
	fail := func(i int, reason string) {
		failures = append(failures, Failure{Index: index(i), ID: regs[i].ID, Reason: reason})
	}
	var ok []enrolled
	seen := map[string]int{}
	keys := map[string]string{}
	for i := range regs {
		pub, params := regs[i].check()
		switch {
		case len(params) > 0:
			fail(i, reasons(params))
		case !Covers(admin.Region, regs[i].RegionCode):
			fail(i, FieldRegionCode+" "+regs[i].RegionCode+" is outside the administrator's region "+admin.Region)
		case seen[regs[i].ID] > 0:
			fail(i, fmt.Sprintf("%s %s appears twice in this request (first at %d)", FieldID, regs[i].ID, seen[regs[i].ID]))
		default:
			kid := gm.KeyID(pub)
			if other, dup := keys[kid]; dup {
				fail(i, FieldPublicKey+" is the key of "+other+" in this request: each kiosk has its own key")
				continue
			}
			seen[regs[i].ID], keys[kid] = index(i), regs[i].ID
			ok = append(ok, enrolled{Registration: regs[i], pub: pub, keyID: kid})
		}
	}
	if len(ok) == 0 {
		return 0, failures, nil
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	ids := make([]string, len(ok))
	for i, e := range ok {
		ids[i] = e.ID
	}
	// Who is taken already: a registered (or revoked) kiosk, or a caller of another kind.
	taken := map[string]string{}
	rows, err := tx.Query(ctx, `SELECT kiosk_id, 'is registered already (edit it instead)' FROM kiosks
			WHERE kiosk_id = ANY($1) AND registered_at IS NOT NULL
		UNION ALL SELECT app_id, 'is the app id of a caller of kind ' || kind FROM callsign_apps
			WHERE app_id = ANY($1) AND kind <> 'kiosk'`, ids)
	if err != nil {
		return 0, nil, err
	}
	for rows.Next() {
		var id, why string
		if err := rows.Scan(&id, &why); err != nil {
			rows.Close()
			return 0, nil, err
		}
		taken[id] = why
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, nil, err
	}
	now := s.now()
	b := &pgx.Batch{}
	n := 0
	for i, e := range ok {
		if why, t := taken[e.ID]; t {
			failures = append(failures, Failure{Index: seen[e.ID], ID: e.ID, Reason: FieldID + " " + e.ID + " " + why})
			continue
		}
		if err := s.queueEnrol(b, ok[i], admin, now); err != nil {
			return 0, nil, err
		}
		n++
	}
	if n > 0 {
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return 0, nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return 0, nil, err
		}
	}
	sortFailures(failures)
	return n, failures, nil
}

// Register enrols one kiosk. A registration outside the admin's region is 403, a
// device ID in use 409, invalid fields 400.
func (s *Service) Register(ctx context.Context, admin Admin, reg Registration) (Kiosk, error) {
	if _, params := reg.check(); len(params) > 0 {
		return Kiosk{}, problem.Invalid("the registration has invalid fields", params...)
	}
	if !Covers(admin.Region, reg.RegionCode) {
		return Kiosk{}, outsideRegion(admin)
	}
	n, failures, err := s.enrol(ctx, admin, []Registration{reg}, func(int) int { return 0 })
	if err != nil {
		return Kiosk{}, err
	}
	if n == 0 {
		reason := "the kiosk could not be registered"
		if len(failures) > 0 {
			reason = failures[0].Reason
		}
		return Kiosk{}, problem.Conflict(reason)
	}
	return s.Get(ctx, admin, reg.ID)
}

const kioskColumns = `kiosk_id, coalesce(name, ''), coalesce(region_code, ''), coalesce(address, ''), coalesce(model, ''),
	coalesce(key_id, ''), registered, registered_at, revoked_at, last_seen_at, coalesce(last_status, ''),
	coalesce(version, ''), components, queued_events, paused,
	(SELECT count(*) FROM kiosk_heartbeats h WHERE h.kiosk_id = kiosks.kiosk_id)
		+ (SELECT count(*) FROM kiosk_events e WHERE e.kiosk_id = kiosks.kiosk_id AND e.type = 'kiosk.heartbeat')`

func (s *Service) scanKiosk(r pgx.Row, k *Kiosk) error {
	var lastSeen *time.Time
	var status, version string
	var comps map[string]string
	var queued *int
	var paused bool
	var beats int64
	if err := r.Scan(&k.ID, &k.Name, &k.RegionCode, &k.Address, &k.Model, &k.KeyID, &k.Registered, &k.RegisteredAt,
		&k.RevokedAt, &lastSeen, &status, &version, &comps, &queued, &paused, &beats); err != nil {
		return err
	}
	k.Health = health(lastSeen, status, comps, queued, s.now(), s.offlineAfter())
	k.Version, k.Paused, k.Heartbeats = version, paused, beats
	return nil
}

// Get returns one kiosk of the admin's region (404 for one outside it: an admin does
// not learn which device IDs other regions use).
func (s *Service) Get(ctx context.Context, admin Admin, id string) (Kiosk, error) {
	var k Kiosk
	err := s.scanKiosk(s.DB.QueryRow(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE kiosk_id = $1
		AND region_code LIKE $2 || '%'`, id, RegionPrefix(admin.Region)), &k)
	if errors.Is(err, pgx.ErrNoRows) {
		return Kiosk{}, problem.NotFound("no kiosk " + id + " in your region")
	}
	return k, err
}

// ListFilter narrows a listing.
type ListFilter struct {
	Region string // a sub-region of the admin's; "" for all of it
	After  string // device ID to continue after (paging)
	Limit  int    // default 100, at most 1000
}

// List returns the kiosks of the admin's region (or a sub-region of it), by device ID.
func (s *Service) List(ctx context.Context, admin Admin, f ListFilter) ([]Kiosk, error) {
	prefix := RegionPrefix(admin.Region)
	if f.Region != "" {
		if !Covers(admin.Region, f.Region) {
			return nil, outsideRegion(admin)
		}
		prefix = RegionPrefix(f.Region)
	}
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 100
	}
	rows, err := s.DB.Query(ctx, `SELECT `+kioskColumns+` FROM kiosks WHERE region_code LIKE $1 || '%' AND kiosk_id > $2
		ORDER BY kiosk_id LIMIT $3`, prefix, f.After, f.Limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Kiosk{}
	for rows.Next() {
		var k Kiosk
		if err := s.scanKiosk(rows, &k); err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// Update edits a kiosk of the admin's region: any field but the device ID. Moving it to
// a region outside the admin's is refused; a new public key replaces the enrolled one
// (the old key is revoked at once).
func (s *Service) Update(ctx context.Context, admin Admin, id string, e Edit) (Kiosk, error) {
	cur, err := s.Get(ctx, admin, id)
	if err != nil {
		return Kiosk{}, err
	}
	if cur.RevokedAt != nil {
		return Kiosk{}, problem.Conflict("kiosk " + id + " is revoked")
	}
	reg := Registration{ID: id, Name: cur.Name, RegionCode: cur.RegionCode, Address: cur.Address, Model: cur.Model,
		PublicKey: "-"}
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&reg.Name, e.Name)
	set(&reg.RegionCode, e.RegionCode)
	set(&reg.Address, e.Address)
	set(&reg.Model, e.Model)
	newKey := e.PublicKey != nil
	if newKey {
		reg.PublicKey = *e.PublicKey
	}
	pub, params := reg.check()
	if !newKey {
		params = withoutField(params, FieldPublicKey)
	}
	if len(params) > 0 {
		return Kiosk{}, problem.Invalid("the edit has invalid fields", params...)
	}
	if !Covers(admin.Region, reg.RegionCode) {
		return Kiosk{}, outsideRegion(admin)
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return Kiosk{}, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	now := s.now()
	keyID := cur.KeyID
	if newKey && gm.KeyID(pub) != cur.KeyID {
		keyID = gm.KeyID(pub)
		if err := callsign.PutKey(ctx, tx, s.MACKey, callsign.Key{AppID: id, ID: keyID, Public: pub,
			NotBefore: now.Add(-time.Minute)}); err != nil {
			return Kiosk{}, err
		}
		if err := s.revokeKey(ctx, tx, id, cur.KeyID); err != nil {
			return Kiosk{}, err
		}
	}
	tag, err := tx.Exec(ctx, `UPDATE kiosks SET name = $2, region_code = $3, address = $4, model = $5, key_id = $6,
			updated_at = $7
		WHERE kiosk_id = $1 AND revoked_at IS NULL AND region_code LIKE $8 || '%'`,
		id, reg.Name, reg.RegionCode, reg.Address, reg.Model, keyID, now, RegionPrefix(admin.Region))
	if err != nil {
		return Kiosk{}, err
	}
	if tag.RowsAffected() != 1 {
		return Kiosk{}, problem.Conflict("kiosk " + id + " changed meanwhile; read it again")
	}
	if err := tx.Commit(ctx); err != nil {
		return Kiosk{}, err
	}
	return s.Get(ctx, admin, id)
}

func withoutField(params []problem.InvalidParam, name string) []problem.InvalidParam {
	out := params[:0]
	for _, p := range params {
		if p.Name != name {
			out = append(out, p)
		}
	}
	return out
}

// revokeKey marks an enrolled key revoked in the caller registry (re-signing its row).
func (s *Service) revokeKey(ctx context.Context, tx pgx.Tx, appID, keyID string) error {
	if keyID == "" {
		return nil
	}
	var pemText string
	var notBefore time.Time
	var notAfter *time.Time
	err := tx.QueryRow(ctx, `SELECT public_key, not_before, not_after FROM callsign_keys WHERE app_id = $1 AND key_id = $2`,
		appID, keyID).Scan(&pemText, &notBefore, &notAfter)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	pub, err := gm.ParsePublicKeyPEM([]byte(pemText))
	if err != nil {
		return err
	}
	k := callsign.Key{AppID: appID, ID: keyID, Public: pub, NotBefore: notBefore, Revoked: true}
	if notAfter != nil {
		k.NotAfter = *notAfter
	}
	return callsign.PutKey(ctx, tx, s.MACKey, k)
}

// Revoke ends a kiosk's registration: card-apply's gate and this function refuse it from
// the commit on (both read kiosks.registered), and its caller key is revoked and its app
// suspended in the caller registry, which every instance sees on its next lookup (the
// registry version, migration 017).
func (s *Service) Revoke(ctx context.Context, admin Admin, id string) (Kiosk, error) {
	cur, err := s.Get(ctx, admin, id)
	if err != nil {
		return Kiosk{}, err
	}
	if cur.RevokedAt != nil {
		return cur, nil
	}
	tx, err := s.DB.Begin(ctx)
	if err != nil {
		return Kiosk{}, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(ctx, `UPDATE kiosks SET registered = false, revoked_at = $2, updated_at = $2 WHERE kiosk_id = $1`,
		id, s.now()); err != nil {
		return Kiosk{}, err
	}
	if err := s.revokeKey(ctx, tx, id, cur.KeyID); err != nil {
		return Kiosk{}, err
	}
	if err := callsign.PutApp(ctx, tx, s.MACKey, callsign.App{ID: id, Name: "kiosk " + id, Kind: channelauth.KindKiosk,
		Active: false, Routes: KioskRoutes()}); err != nil {
		return Kiosk{}, err
	}
	// Commands still waiting will never be delivered.
	if _, err := tx.Exec(ctx, `UPDATE kiosk_commands SET status = 'expired', finished_at = $2, detail = 'kiosk revoked'
		WHERE kiosk_id = $1 AND status = 'queued'`, id, s.now()); err != nil {
		return Kiosk{}, err
	}
	if err := tx.Commit(ctx); err != nil {
		return Kiosk{}, err
	}
	return s.Get(ctx, admin, id)
}

// unknownKiosk is the answer to a signed kiosk call from a kiosk the registry does not
// hold as registered under that key: the same for unknown, revoked and rotated-out keys.
func unknownKiosk() *problem.Problem {
	return problem.New(http.StatusForbidden, "kiosk-not-registered", "Kiosk not registered",
		"the signing kiosk is not registered under this key, or was revoked")
}

// AuthorizeKiosk checks that a signed call on /kiosks/{id}/… comes from kiosk id itself,
// registered and not revoked, under its enrolled key. It reads the registry row, so a
// revocation is refused from its commit on, whatever the caller registry's cache holds.
func (s *Service) AuthorizeKiosk(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, c Caller, id string, lock bool) error {
	if c.Kind != channelauth.KindKiosk {
		return channelauth.Mismatch("only a kiosk caller may use the kiosk's own routes")
	}
	if c.AppID != id {
		return channelauth.Mismatch("a kiosk acts under its own id: the signed app id and the kiosk id differ")
	}
	var registered bool
	var keyID *string
	sql := `SELECT registered, key_id FROM kiosks WHERE kiosk_id = $1`
	if lock {
		// Batches of one kiosk apply in turn, and a revocation waits for the batch.
		sql += ` FOR NO KEY UPDATE`
	}
	err := q.QueryRow(ctx, sql, id).Scan(&registered, &keyID)
	if errors.Is(err, pgx.ErrNoRows) || err == nil && (!registered || keyID == nil || *keyID != c.KeyID) {
		return unknownKiosk()
	}
	return err
}
