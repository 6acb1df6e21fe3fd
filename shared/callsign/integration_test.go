//go:build integration

package callsign

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/shared/platform"
	"github.com/sscard/platform/shared/secrets"
	"github.com/sscard/platform/tests/testenv"
)

func testRedis(t *testing.T, env *testenv.Env, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Password: env.Secret(t, "redis-password"),
		DialTimeout: 500 * time.Millisecond, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// The Postgres registry and the Redis nonce store: a round trip, a replay refused by
// SET NX with a TTL beyond the window, rows whose MAC fails refused on load, key rotation.
func TestIntegration_RegistryAndNonces(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	rdb := testRedis(t, env, env.Vars["redis_addr"])
	macKey, _ := gm.RandomKey(32)
	appKey := mustKey(t)
	if err := PutApp(ctx, pool, macKey, App{ID: testApp, Name: "ICBC Wuxi branch", Kind: "bank", Active: true, Routes: testRoutes}); err != nil {
		t.Fatal(err)
	}
	if err := PutKey(ctx, pool, macKey, Key{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey,
		NotBefore: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	reg := &PGRegistry{DB: pool, MACKey: macKey, TTL: time.Nanosecond} // reload on every lookup
	fx := newFixture(t, func(c *Config) { c.Registry = reg; c.Nonces = RedisNonces{Client: rdb} })
	fx.appKey = appKey

	w := &wire{}
	resp, err := fx.client(true, w).Do(ctx, lossRequest(`{"card":"C0001"}`))
	if err != nil || resp.StatusCode != 200 || !resp.Signed {
		t.Fatalf("round trip: %v %+v", err, resp)
	}
	nonce := w.reqs[0].header.Get(HeaderNonce)
	ttl, err := rdb.TTL(ctx, "callsign:nonce:"+testApp+":"+nonce).Result()
	if err != nil || ttl <= DefaultWindow || ttl > 2*DefaultWindow+time.Minute {
		t.Fatalf("nonce TTL %v (%v): must outlive the window", ttl, err)
	}
	if status, _, _ := send(t, w.reqs[0]); status != http.StatusUnauthorized {
		t.Fatalf("replay: want 401, got %d", status)
	}

	// Caller key rotation: a second key works beside the first; revoking the first ends it.
	k2 := mustKey(t)
	if err := PutKey(ctx, pool, macKey, Key{AppID: testApp, ID: "k2", Public: &k2.PublicKey, NotBefore: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	c2 := fx.client(false, nil)
	c2.KeyID, c2.Key = "k2", k2
	if resp, err := c2.Do(ctx, lossRequest(`{}`)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("new key: %v %+v", err, resp)
	}
	if err := PutKey(ctx, pool, macKey, Key{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey,
		NotBefore: time.Now().Add(-time.Hour), Revoked: true}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := fx.client(false, nil).Do(ctx, lossRequest(`{}`)); resp.StatusCode != 401 {
		t.Fatalf("revoked key: want 401, got %d", resp.StatusCode)
	}
	if resp, _ := c2.Do(ctx, lossRequest(`{}`)); resp.StatusCode != 200 {
		t.Fatalf("new key after revoking the old: %d", resp.StatusCode)
	}

	// Someone with database access swaps in their own key: the row's MAC no longer
	// matches, the row is refused, and their requests fail.
	attacker := mustKey(t)
	pemText, _ := gm.MarshalPublicKeyPEM(&attacker.PublicKey)
	if _, err := pool.Exec(ctx, `UPDATE callsign_keys SET public_key = $1 WHERE app_id = $2 AND key_id = 'k2'`, string(pemText), testApp); err != nil {
		t.Fatal(err)
	}
	c3 := fx.client(false, nil)
	c3.KeyID, c3.Key = "k2", attacker
	if resp, _ := c3.Do(ctx, lossRequest(`{}`)); resp.StatusCode != 401 {
		t.Fatalf("swapped key: want 401, got %d", resp.StatusCode)
	}
	snap, err := reg.Reload(ctx)
	if err != nil || !slices.Contains(snap.Refused, "key "+testApp+"/k2") {
		t.Fatalf("refused rows %v (%v)", snap.Refused, err)
	}
	// …and an app row edited to grant itself a route is refused whole.
	if _, err := pool.Exec(ctx, `UPDATE callsign_apps SET routes = routes || '{"POST loss-report /admin/purge"}' WHERE app_id = $1`, testApp); err != nil {
		t.Fatal(err)
	}
	snap, _ = reg.Reload(ctx)
	if !slices.Contains(snap.Refused, "app "+testApp) {
		t.Fatalf("edited app row not refused: %v", snap.Refused)
	}
	if _, err := snap.Lookup(ctx, testApp, "k2"); !errors.Is(err, ErrUnknownCaller) {
		t.Fatalf("lookup of a refused app: %v", err)
	}
	// Put back through the registry API, the app works again.
	if err := PutApp(ctx, pool, macKey, App{ID: testApp, Name: "ICBC Wuxi branch", Kind: "bank", Active: true, Routes: testRoutes}); err != nil {
		t.Fatal(err)
	}
	if err := PutKey(ctx, pool, macKey, Key{AppID: testApp, ID: "k2", Public: &k2.PublicKey, NotBefore: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if resp, _ := c2.Do(ctx, lossRequest(`{}`)); resp.StatusCode != 200 {
		t.Fatalf("after repair: %d", resp.StatusCode)
	}
}

// Redis unreachable: the request fails closed with a 503 problem, never open.
func TestIntegration_RedisDownFailsClosed(t *testing.T) {
	env := testenv.Load(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().String()
	l.Close()
	rdb := testRedis(t, env, closed)
	fx := newFixture(t, func(c *Config) { c.Nonces = RedisNonces{Client: rdb}; c.RetryAfter = 7 * time.Second })
	resp, err := fx.client(true, nil).Do(context.Background(), lossRequest(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	p := decodeJSON(t, resp.Body)
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "7" || p["dependency"] != "redis" {
		t.Fatalf("want 503 naming redis with Retry-After 7, got %d %v %s", resp.StatusCode, resp.Header, resp.Body)
	}
	if fx.seen.Caller.AppID != "" {
		t.Fatal("handler ran without a nonce check")
	}
}

// The registry's last good snapshot serves through a short outage, then lookups fail closed.
func TestIntegration_RegistryOutage(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	macKey, _ := gm.RandomKey(32)
	k := mustKey(t)
	_ = PutApp(ctx, pool, macKey, App{ID: "kiosk-fleet", Name: "Kiosks", Kind: "kiosk", Active: true})
	_ = PutKey(ctx, pool, macKey, Key{AppID: "kiosk-fleet", ID: "k1", Public: &k.PublicKey})
	now := time.Now()
	reg := &PGRegistry{DB: pool, MACKey: macKey, TTL: time.Second, MaxStale: time.Minute, Now: func() time.Time { return now }}
	if _, err := reg.Lookup(ctx, "kiosk-fleet", "k1"); err != nil {
		t.Fatal(err)
	}
	pool.Close()
	now = now.Add(10 * time.Second)
	if _, err := reg.Lookup(ctx, "kiosk-fleet", "k1"); err != nil {
		t.Fatalf("within MaxStale the last snapshot serves: %v", err)
	}
	now = now.Add(2 * time.Minute)
	if _, err := reg.Lookup(ctx, "kiosk-fleet", "k1"); err == nil || errors.Is(err, ErrUnknownCaller) {
		t.Fatalf("beyond MaxStale: want an outage error, got %v", err)
	}
}

// FromDeps wires a function's Verifier from its secrets, Postgres and Redis; a missing
// key stops the start with the secret's name.
func TestIntegration_FromDeps(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	rdb := testRedis(t, env, env.Vars["redis_addr"])
	dir := t.TempDir()
	d := &platform.Deps{Name: testFunction, Postgres: pool, Redis: rdb, Secrets: secrets.Reader{Dir: dir},
		Config: platform.Config{RetryAfter: 3 * time.Second}}
	if _, err := FromDeps(d); err == nil || !strings.Contains(err.Error(), SecretSignKey) {
		t.Fatalf("missing keys: %v", err)
	}
	sign, enc, appKey := mustKey(t), mustKey(t), mustKey(t)
	signPEM, _ := gm.MarshalPrivateKeyPEM(sign)
	encPEM, _ := gm.MarshalPrivateKeyPEM(enc)
	macKey, _ := gm.RandomKey(32)
	for name, v := range map[string][]byte{SecretSignKey: signPEM, SecretEncKey: encPEM, SecretRegistryMAC: []byte(hex.EncodeToString(macKey))} {
		if err := os.WriteFile(filepath.Join(dir, name), v, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	v, err := FromDeps(d)
	if err != nil {
		t.Fatal(err)
	}
	_ = PutApp(ctx, pool, macKey, App{ID: testApp, Name: "ICBC", Kind: "bank", Active: true, Routes: testRoutes})
	_ = PutKey(ctx, pool, macKey, Key{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey})
	fx := newFixture(t, nil)
	*fx.v = *v
	fx.appKey, fx.sign, fx.enc = appKey, sign, enc
	if resp, err := fx.client(true, nil).Do(ctx, lossRequest(`{}`)); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%v %+v", err, resp)
	}
}
