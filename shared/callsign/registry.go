package callsign

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sscard/platform/shared/gm"
)

// App is a registered caller: an H5 app back end, a bank, a kiosk fleet, a partner.
// Routes is the access-control data: which function routes the caller may call.
type App struct {
	ID     string
	Name   string // organisation or system name, never a person's
	Kind   string // app, bank, kiosk, partner, service
	Active bool
	// Routes: "METHOD function /pattern" — METHOD or function may be "*"; a pattern
	// segment "{name}" matches one segment, a final "*" the rest of the path.
	Routes []string
}

// Key is one SM2 public key of an app. Keys rotate by adding a key with a new ID, moving
// the caller over, then revoking or expiring the old one.
type Key struct {
	AppID     string
	ID        string
	Public    *ecdsa.PublicKey
	NotBefore time.Time
	NotAfter  time.Time // zero: no expiry
	Revoked   bool
}

// Entry is what a lookup returns.
type Entry struct {
	App App
	Key Key
}

// Registry answers which key and routes a caller has. An unknown app or key is
// ErrUnknownCaller; any other error means the registry could not be consulted and the
// request fails closed with 503.
type Registry interface {
	Lookup(ctx context.Context, appID, keyID string) (*Entry, error)
}

// ErrUnknownCaller: no such app or key.
var ErrUnknownCaller = errors.New("callsign: unknown caller key")

// usable reports whether the entry may authenticate a request at now.
func (e *Entry) usable(now time.Time) bool {
	k := e.Key
	return e.App.Active && !k.Revoked && !now.Before(k.NotBefore) && (k.NotAfter.IsZero() || now.Before(k.NotAfter))
}

// route is a parsed entry of App.Routes.
type route struct {
	method, function string
	parts            []string
	rest             bool
}

// ParseRoute checks a route entry.
func ParseRoute(s string) error { _, err := parseRoute(s); return err }

func parseRoute(s string) (route, error) {
	f := strings.Fields(s)
	if len(f) != 3 || strings.Join(f, " ") != s {
		return route{}, fmt.Errorf("route %q: want \"METHOD function /pattern\"", s)
	}
	r := route{method: f[0], function: f[1]}
	if r.method != "*" && !isMethod(r.method) || r.function != "*" && !isFunction(r.function) || !strings.HasPrefix(f[2], "/") {
		return route{}, fmt.Errorf("route %q: bad method, function or pattern", s)
	}
	r.parts = splitPath(f[2])
	if n := len(r.parts); n > 0 && r.parts[n-1] == "*" {
		r.rest, r.parts = true, r.parts[:n-1]
	}
	for _, p := range r.parts {
		if p == "*" || p == "" {
			return route{}, fmt.Errorf("route %q: \"*\" only as the last segment", s)
		}
	}
	return r, nil
}

func splitPath(p string) []string {
	p = strings.Trim(p, "/")
	if p == "" {
		return nil
	}
	return strings.Split(p, "/")
}

func (r route) allows(method, function string, path []string) bool {
	if r.method != "*" && r.method != method || r.function != "*" && r.function != function {
		return false
	}
	if len(path) < len(r.parts) || !r.rest && len(path) != len(r.parts) {
		return false
	}
	for i, p := range r.parts {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if path[i] == "" {
				return false
			}
			continue
		}
		if p != path[i] {
			return false
		}
	}
	return true
}

// Allows reports whether the app may call method on function at path (below the function).
// HEAD is allowed where GET is, as the router serves it.
func (a *App) Allows(method, function, path string) bool {
	parts := splitPath(path)
	for _, s := range a.Routes {
		r, err := parseRoute(s)
		if err != nil {
			continue
		}
		if r.allows(method, function, parts) || method == "HEAD" && r.allows("GET", function, parts) {
			return true
		}
	}
	return false
}

func status(active bool, yes, no string) string {
	if active {
		return yes
	}
	return no
}

// appMAC is HMAC-SM3 over the canonical app row.
func appMAC(macKey []byte, a *App) []byte {
	parts := []string{"callsign_apps/v1", a.ID, a.Name, a.Kind, status(a.Active, "active", "suspended"), strconv.Itoa(len(a.Routes))}
	return gm.HMAC(macKey, gm.LengthPrefixed(append(parts, a.Routes...)...))
}

func micros(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixMicro(), 10)
}

// keyMAC is HMAC-SM3 over the canonical key row; the PEM text is what is stored.
func keyMAC(macKey []byte, k *Key, pemText string) []byte {
	return gm.HMAC(macKey, gm.LengthPrefixed("callsign_keys/v1", k.AppID, k.ID, pemText, micros(k.NotBefore), micros(k.NotAfter),
		status(!k.Revoked, "active", "revoked")))
}

// DB is what the registry needs of a pool or a transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func checkApp(a *App) error {
	if !isID(a.ID) {
		return errors.New("callsign: app id must match [A-Za-z0-9._-]{1,64}")
	}
	if a.Kind == "" || a.Name == "" {
		return errors.New("callsign: app needs a name and a kind")
	}
	for _, r := range a.Routes {
		if err := ParseRoute(r); err != nil {
			return err
		}
	}
	return nil
}

// PutApp inserts or replaces an app row with its MAC (admin tooling and tests).
func PutApp(ctx context.Context, db DB, macKey []byte, a App) error {
	if err := checkApp(&a); err != nil {
		return err
	}
	if a.Routes == nil {
		a.Routes = []string{}
	}
	_, err := db.Exec(ctx, `INSERT INTO callsign_apps (app_id, name, kind, status, routes, mac)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (app_id) DO UPDATE SET name = $2, kind = $3, status = $4, routes = $5, mac = $6, updated_at = now()`,
		a.ID, a.Name, a.Kind, status(a.Active, "active", "suspended"), a.Routes, appMAC(macKey, &a))
	return err
}

// PutKey inserts or replaces a key row with its MAC. Times are kept to the microsecond.
func PutKey(ctx context.Context, db DB, macKey []byte, k Key) error {
	if !isID(k.AppID) || !isID(k.ID) {
		return errors.New("callsign: app id and key id must match [A-Za-z0-9._-]{1,64}")
	}
	pemText, err := gm.MarshalPublicKeyPEM(k.Public)
	if err != nil {
		return err
	}
	k.NotBefore = k.NotBefore.Truncate(time.Microsecond)
	k.NotAfter = k.NotAfter.Truncate(time.Microsecond)
	var notAfter *time.Time
	if !k.NotAfter.IsZero() {
		notAfter = &k.NotAfter
	}
	_, err = db.Exec(ctx, `INSERT INTO callsign_keys (app_id, key_id, public_key, not_before, not_after, status, mac)
		VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (app_id, key_id) DO UPDATE SET public_key = $3, not_before = $4, not_after = $5, status = $6,
			mac = $7, updated_at = now()`,
		k.AppID, k.ID, string(pemText), k.NotBefore, notAfter, status(!k.Revoked, "active", "revoked"),
		keyMAC(macKey, &k, string(pemText)))
	return err
}

// Snapshot is a verified copy of the registry.
type Snapshot struct {
	apps map[string]*App
	keys map[[2]string]*Key
	// Refused lists the rows whose MAC did not verify ("app <id>", "key <app>/<key>");
	// they are left out, so their callers are rejected.
	Refused []string
}

// Lookup implements Registry on a fixed snapshot.
func (s *Snapshot) Lookup(_ context.Context, appID, keyID string) (*Entry, error) {
	a, ok := s.apps[appID]
	if !ok {
		return nil, ErrUnknownCaller
	}
	k, ok := s.keys[[2]string{appID, keyID}]
	if !ok {
		return nil, ErrUnknownCaller
	}
	return &Entry{App: *a, Key: *k}, nil
}

// App returns a verified app row (admin tooling edits it without re-signing tampered data).
func (s *Snapshot) App(appID string) (App, bool) {
	a, ok := s.apps[appID]
	if !ok {
		return App{}, false
	}
	out := *a
	out.Routes = append([]string(nil), a.Routes...)
	return out, true
}

// Static builds a snapshot from values (tests, tools, a kiosk talking to a fixed set).
func Static(apps []App, keys []Key) (*Snapshot, error) {
	s := &Snapshot{apps: map[string]*App{}, keys: map[[2]string]*Key{}}
	for i := range apps {
		if err := checkApp(&apps[i]); err != nil {
			return nil, err
		}
		s.apps[apps[i].ID] = &apps[i]
	}
	for i := range keys {
		if keys[i].Public == nil {
			return nil, errors.New("callsign: key without public key")
		}
		s.keys[[2]string{keys[i].AppID, keys[i].ID}] = &keys[i]
	}
	return s, nil
}

// LoadSnapshot reads and verifies every registry row. A row whose MAC fails is refused
// and logged (by IDs only); a key of a refused or missing app is refused too.
func LoadSnapshot(ctx context.Context, db DB, macKey []byte, log *slog.Logger) (*Snapshot, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Snapshot{apps: map[string]*App{}, keys: map[[2]string]*Key{}}
	rows, err := db.Query(ctx, `SELECT app_id, name, kind, status, routes, mac FROM callsign_apps`)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var a App
		var st string
		var mac []byte
		if err := rows.Scan(&a.ID, &a.Name, &a.Kind, &st, &a.Routes, &mac); err != nil {
			rows.Close()
			return nil, err
		}
		a.Active = st == "active"
		if a.Routes == nil {
			a.Routes = []string{}
		}
		if !gm.HMACEqual(mac, appMAC(macKey, &a)) || (st != "active" && st != "suspended") {
			s.Refused = append(s.Refused, "app "+a.ID)
			log.Error("callsign registry: app row fails its MAC check; refused", "app_id", a.ID)
			continue
		}
		s.apps[a.ID] = &a
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = db.Query(ctx, `SELECT app_id, key_id, public_key, not_before, not_after, status, mac FROM callsign_keys`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var k Key
		var pemText, st string
		var notAfter *time.Time
		var mac []byte
		if err := rows.Scan(&k.AppID, &k.ID, &pemText, &k.NotBefore, &notAfter, &st, &mac); err != nil {
			return nil, err
		}
		if notAfter != nil {
			k.NotAfter = *notAfter
		}
		k.Revoked = st != "active"
		name := "key " + k.AppID + "/" + k.ID
		if !gm.HMACEqual(mac, keyMAC(macKey, &k, pemText)) || (st != "active" && st != "revoked") {
			s.Refused = append(s.Refused, name)
			log.Error("callsign registry: key row fails its MAC check; refused", "app_id", k.AppID, "key_id", k.ID)
			continue
		}
		if _, ok := s.apps[k.AppID]; !ok {
			s.Refused = append(s.Refused, name)
			log.Error("callsign registry: key of an unknown or refused app; refused", "app_id", k.AppID, "key_id", k.ID)
			continue
		}
		if k.Public, err = gm.ParsePublicKeyPEM([]byte(pemText)); err != nil {
			s.Refused = append(s.Refused, name)
			log.Error("callsign registry: key row holds no SM2 public key; refused", "app_id", k.AppID, "key_id", k.ID)
			continue
		}
		s.keys[[2]string{k.AppID, k.ID}] = &k
	}
	return s, rows.Err()
}

// PGRegistry serves lookups from a verified snapshot of the Postgres registry, reloaded
// when older than TTL, and at once when the registry's version row (migration 017, bumped
// by a trigger on every change) differs from the snapshot's: each lookup reads that one
// row, outside the lock, so a suspended caller or revoked key is refused on its next
// call. When the version cannot be read or a reload fails, the previous snapshot keeps
// serving until it is MaxStale old; after that (or before a first load) lookups fail
// closed.
type PGRegistry struct {
	DB       DB
	MACKey   []byte
	Log      *slog.Logger
	TTL      time.Duration // default 30 s
	MaxStale time.Duration // default 5 min
	Now      func() time.Time

	mu       sync.Mutex
	snap     *Snapshot
	loadedAt time.Time
	version  int64 // of the registry when snap was read
	// After a failed reload the stale snapshot serves without new attempts until
	// retryAt, so an outage does not add a connect timeout to every request.
	retryAt time.Time
}

// Lookup implements Registry.
func (r *PGRegistry) Lookup(ctx context.Context, appID, keyID string) (*Entry, error) {
	if v, err := r.readVersion(ctx); err == nil {
		r.mu.Lock()
		if r.snap != nil && v != r.version {
			r.loadedAt = time.Time{} // changed since: reload now
			r.retryAt = time.Time{}
		}
		r.mu.Unlock()
	}
	snap, err := r.current(ctx)
	if err != nil {
		return nil, err
	}
	return snap.Lookup(ctx, appID, keyID)
}

// Reload forces a fresh snapshot (after an admin change, or at start to fail fast).
func (r *PGRegistry) Reload(ctx context.Context) (*Snapshot, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reloadLocked(ctx)
}

func (r *PGRegistry) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

func (r *PGRegistry) current(ctx context.Context) (*Snapshot, error) {
	ttl, maxStale := r.TTL, r.MaxStale
	if ttl <= 0 {
		ttl = 30 * time.Second
	}
	if maxStale <= 0 {
		maxStale = 5 * time.Minute
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	age := now.Sub(r.loadedAt)
	if r.snap != nil && (age < ttl || age < maxStale && now.Before(r.retryAt)) {
		return r.snap, nil
	}
	snap, err := r.reloadLocked(ctx)
	if err == nil {
		return snap, nil
	}
	if r.snap != nil && age < maxStale {
		r.retryAt = now.Add(min(ttl, 5*time.Second))
		if r.Log != nil {
			r.Log.Warn("callsign registry: reload failed; serving the previous snapshot", "age", age.String(), "error", err.Error())
		}
		return r.snap, nil
	}
	return nil, err
}

func (r *PGRegistry) reloadLocked(ctx context.Context) (*Snapshot, error) {
	if r.DB == nil || len(r.MACKey) == 0 {
		return nil, errors.New("callsign registry: no database or MAC key")
	}
	// The version first: a change during the load shows as a newer version next time.
	version, err := r.readVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("callsign registry version: %w", err)
	}
	snap, err := LoadSnapshot(ctx, r.DB, r.MACKey, r.Log)
	if err != nil {
		return nil, fmt.Errorf("callsign registry: %w", err)
	}
	r.snap, r.loadedAt, r.version = snap, r.now(), version
	return snap, nil
}

// readVersion reads the registry's change counter: one indexed row.
func (r *PGRegistry) readVersion(ctx context.Context) (int64, error) {
	if r.DB == nil {
		return 0, errors.New("callsign registry: no database")
	}
	rows, err := r.DB.Query(ctx, `SELECT version FROM callsign_registry_version`)
	if err != nil {
		return 0, err
	}
	v, err := pgx.CollectExactlyOneRow(rows, pgx.RowTo[int64])
	return v, err
}
