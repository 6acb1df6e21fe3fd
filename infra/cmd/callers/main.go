// Command callers registers the callers of signed function routes (shared/callsign): banks,
// outlets (社区网点/窗口) and kiosks, with their SM2 public keys and allowed routes. Rows are
// written under the registry MAC key, so a row edited any other way locks its caller
// out. It reads postgres_dsn and secret_mount_path like the functions (postgres-password,
// callsign-registry-mac-key). Functions see a change within their registry reload (30 s).
//
//	callers register -app bank-icbc -kind bank -name "ICBC Wuxi" -public-key icbc.pem [-key-id k1] [-route "…"]…
//	callers register -app outlet-xh-01 -kind outlet -name "Xihu outlet" -new-key outlet-xh-01.key
//	callers register -app admin-dg -kind admin -region 441900 -name "Dongguan kiosk admin" -public-key dg.pem
//	callers suspend  -app bank-icbc          (or -activate; -revoke-key k1 ends one key)
//	callers list
//	callers local -dir .state/run/callers    (make run: the local outlet, kiosk and simulated bank)
//
// Without -route a caller of kind bank, outlet, kiosk or admin gets its preset routes
// (shared/channelauth). -new-key writes a fresh SM2 private key (PKCS#8 PEM, mode 600,
// never overwritten) for development; real callers keep theirs in a UKey/HSM and hand in
// only the public key.
package main

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/callsign"
	"github.com/sscard/platform/shared/channelauth"
	"github.com/sscard/platform/shared/envconf"
	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/kiosk"
	"github.com/sscard/platform/shared/secrets"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	code := run(ctx, os.Args[1:], os.Environ(), os.Stdout, os.Stderr)
	cancel()
	os.Exit(code)
}

const usage = `usage: callers register|suspend|activate|list|local [flags]  (callers <command> -h for flags)`

// Local callers of make run: the development outlet, the edge-bridge's kiosk and the
// simulated bank. Their private keys live in the -dir of "callers local".
var localCallers = []callsign.App{
	{ID: "dev-outlet-01", Name: "local development outlet", Kind: channelauth.KindOutlet},
	{ID: "dev-kiosk-01", Name: "local development kiosk (edge-bridge)", Kind: channelauth.KindKiosk},
	{ID: "bank-sim", Name: "simulated bank", Kind: channelauth.KindBank},
}

// LocalKeyID is the key id of the local callers' keys.
const LocalKeyID = "local-1"

type routeList []string

func (r *routeList) String() string     { return strings.Join(*r, ", ") }
func (r *routeList) Set(s string) error { *r = append(*r, s); return callsign.ParseRoute(s) }

type env struct {
	pool   *pgxpool.Pool
	macKey []byte
	out    io.Writer
}

func run(ctx context.Context, args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	fl := flag.NewFlagSet("callers "+cmd, flag.ContinueOnError)
	fl.SetOutput(stderr)
	app := fl.String("app", "", "app id [A-Za-z0-9._-]{1,64}; a kiosk's app id is its kiosk id")
	var do func(*env) error
	switch cmd {
	case "register":
		kind := fl.String("kind", "", "bank, outlet, kiosk, admin (preset routes) or another kind with -route")
		name := fl.String("name", "", "organisation or system name (never a person's)")
		keyID := fl.String("key-id", "k1", "key id (a new id adds a key beside the old ones: rotation)")
		pubFile := fl.String("public-key", "", "the caller's SM2 public key, PKIX PEM")
		newKey := fl.String("new-key", "", "generate the key pair and write the private key to this file")
		region := fl.String("region", "", "kind admin: the 6-digit division code the administrator manages (and its sub-regions)")
		var routes routeList
		fl.Var(&routes, "route", `allowed route "METHOD function /pattern" (repeatable; default: the kind's preset)`)
		do = func(e *env) error {
			if (*pubFile == "") == (*newKey == "") {
				return errors.New("give exactly one of -public-key and -new-key")
			}
			if (*kind == channelauth.KindAdmin) != (*region != "") || *region != "" && !kiosk.ValidRegion(*region) {
				return errors.New("an admin needs -region (6 digits), and only an admin takes one")
			}
			if len(routes) == 0 {
				if routes = channelauth.Routes(*kind); routes == nil {
					return fmt.Errorf("kind %q has no preset routes: name them with -route", *kind)
				}
			}
			var pub *ecdsa.PublicKey
			var err error
			if *newKey != "" {
				pub, err = ensurePrivateKey(*newKey)
			} else {
				pub, err = readPublicKey(*pubFile)
			}
			if err != nil {
				return err
			}
			if err := e.register(ctx, callsign.App{ID: *app, Name: *name, Kind: *kind, Active: true, Routes: routes}, *keyID, pub); err != nil {
				return err
			}
			if *region != "" {
				return kiosk.PutAdmin(ctx, e.pool, e.macKey, *app, *region)
			}
			return nil
		}
	case "suspend", "activate":
		revoke := fl.String("revoke-key", "", "revoke only this key of the app (suspend)")
		do = func(e *env) error { return e.setStatus(ctx, *app, cmd == "activate", *revoke) }
	case "list":
		do = func(e *env) error { return e.list(ctx) }
	case "local":
		dir := fl.String("dir", "", "where the local callers' private keys are kept (created, mode 700)")
		do = func(e *env) error {
			if *dir == "" {
				return errors.New("-dir is required")
			}
			return e.local(ctx, *dir)
		}
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err := fl.Parse(args); err != nil {
		return 2
	}
	if fl.NArg() != 0 || *app == "" && (cmd == "register" || cmd == "suspend" || cmd == "activate") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "callers:", err)
		return 1
	}
	e, closeEnv, err := open(ctx, environ, stdout)
	if err != nil {
		return fail(err)
	}
	defer closeEnv()
	if err := do(e); err != nil {
		return fail(err)
	}
	return 0
}

func open(ctx context.Context, environ []string, out io.Writer) (*env, func(), error) {
	ev := envconf.New(environ)
	sec := secrets.Reader{Dir: ev.String("secret_mount_path", secrets.DefaultMountPath)}
	text, err := sec.Read(callsign.SecretRegistryMAC)
	if err != nil {
		return nil, nil, err
	}
	macKey, err := gm.DecodeHexKey(text, 32, false)
	if err != nil {
		return nil, nil, fmt.Errorf("secret %s: %w", callsign.SecretRegistryMAC, err)
	}
	cfg, err := pgxpool.ParseConfig(ev.String("postgres_dsn", "postgres://sscard@127.0.0.1:5432/sscard?sslmode=disable"))
	if err != nil {
		return nil, nil, fmt.Errorf("postgres_dsn: %w", err)
	}
	if cfg.ConnConfig.Password, err = sec.Optional("postgres-password"); err != nil {
		return nil, nil, err
	}
	cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return &env{pool: pool, macKey: macKey, out: out}, pool.Close, nil
}

func (e *env) register(ctx context.Context, a callsign.App, keyID string, pub *ecdsa.PublicKey) error {
	if err := callsign.PutApp(ctx, e.pool, e.macKey, a); err != nil {
		return err
	}
	if err := callsign.PutKey(ctx, e.pool, e.macKey, callsign.Key{AppID: a.ID, ID: keyID, Public: pub,
		NotBefore: time.Now().Add(-time.Minute)}); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "registered %s (%s) key %s, %d routes\n", a.ID, a.Kind, keyID, len(a.Routes))
	return nil
}

// setStatus suspends or re-activates an app, or revokes one of its keys. The row is read
// through the verified snapshot, so a tampered row is not laundered by re-signing it.
func (e *env) setStatus(ctx context.Context, appID string, active bool, revokeKey string) error {
	snap, err := callsign.LoadSnapshot(ctx, e.pool, e.macKey, nil)
	if err != nil {
		return err
	}
	if revokeKey != "" {
		ent, err := snap.Lookup(ctx, appID, revokeKey)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", appID, revokeKey, err)
		}
		ent.Key.Revoked = true
		if err := callsign.PutKey(ctx, e.pool, e.macKey, ent.Key); err != nil {
			return err
		}
		fmt.Fprintf(e.out, "revoked key %s/%s\n", appID, revokeKey)
		return nil
	}
	a, ok := snap.App(appID)
	if !ok {
		return fmt.Errorf("%s: no such app, or its row fails the MAC check", appID)
	}
	a.Active = active
	if err := callsign.PutApp(ctx, e.pool, e.macKey, a); err != nil {
		return err
	}
	fmt.Fprintf(e.out, "%s is %s\n", appID, map[bool]string{true: "active", false: "suspended"}[active])
	return nil
}

func (e *env) list(ctx context.Context) error {
	snap, err := callsign.LoadSnapshot(ctx, e.pool, e.macKey, nil)
	if err != nil {
		return err
	}
	rows, err := e.pool.Query(ctx, `SELECT a.app_id, a.kind, a.status, a.routes, coalesce(string_agg(k.key_id || ':' || k.status, ' '
		ORDER BY k.key_id), '') FROM callsign_apps a LEFT JOIN callsign_keys k USING (app_id)
		GROUP BY a.app_id ORDER BY a.app_id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, kind, status, keys string
		var routes []string
		if err := rows.Scan(&id, &kind, &status, &routes, &keys); err != nil {
			return err
		}
		if slices.Contains(snap.Refused, "app "+id) {
			status += " (REFUSED: MAC check fails)"
		}
		fmt.Fprintf(e.out, "%s\t%s\t%s\tkeys: %s\n", id, kind, status, keys)
		for _, r := range routes {
			fmt.Fprintf(e.out, "\t%s\n", r)
		}
	}
	for _, r := range snap.Refused {
		if strings.HasPrefix(r, "key ") {
			fmt.Fprintf(e.out, "REFUSED %s: MAC check fails\n", r)
		}
	}
	return rows.Err()
}

// local registers the make-run callers, generating their keys into dir when missing
// (never committed: dir is under .state). The kiosk is also put in the kiosk registry
// (004 §3(24)) as registered, since there is no kiosk enrolment route yet.
func (e *env) local(ctx context.Context, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, a := range localCallers {
		pub, err := ensurePrivateKey(filepath.Join(dir, a.ID+".key"))
		if err != nil {
			return err
		}
		a.Active, a.Routes = true, channelauth.Routes(a.Kind)
		if err := e.register(ctx, a, LocalKeyID, pub); err != nil {
			return err
		}
		if a.Kind == channelauth.KindKiosk {
			if _, err := e.pool.Exec(ctx, `INSERT INTO kiosks (kiosk_id, registered, last_seen_at, last_status, reader_present)
				VALUES ($1, true, now(), 'ok', false) ON CONFLICT (kiosk_id) DO UPDATE SET registered = true`, a.ID); err != nil {
				return err
			}
		}
	}
	fmt.Fprintf(e.out, "local caller keys in %s (key id %s)\n", dir, LocalKeyID)
	return nil
}

// ensurePrivateKey returns the public half of the SM2 key in path, writing a new key
// there first when the file does not exist.
func ensurePrivateKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := gm.GenerateKey()
		if err != nil {
			return nil, err
		}
		pemText, err := gm.MarshalPrivateKeyPEM(k)
		if err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(pemText); err != nil {
			f.Close()
			return nil, err
		}
		return &k.PublicKey, f.Close()
	}
	if err != nil {
		return nil, err
	}
	k, err := gm.ParsePrivateKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &k.PublicKey, nil
}

func readPublicKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pub, err := gm.ParsePublicKeyPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return pub, nil
}
