//go:build integration

package callsign

import (
	"context"
	"testing"
	"time"

	"github.com/sscard/platform/shared/gm"
	"github.com/sscard/platform/tests/testenv"
)

// Suspending a caller or revoking its key is refused on the very next call, with the
// registry's ordinary 30 s snapshot (not after the snapshot expires), and reinstating it
// works as quickly.
func TestIntegration_RevocationTakesEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	rdb := testRedis(t, env, env.Vars["redis_addr"])
	macKey, _ := gm.RandomKey(32)
	appKey := mustKey(t)
	app := App{ID: testApp, Name: "ICBC Wuxi branch", Kind: "bank", Active: true, Routes: testRoutes}
	if err := PutApp(ctx, pool, macKey, app); err != nil {
		t.Fatal(err)
	}
	key := Key{AppID: testApp, ID: testKeyID, Public: &appKey.PublicKey, NotBefore: time.Now().Add(-time.Hour)}
	if err := PutKey(ctx, pool, macKey, key); err != nil {
		t.Fatal(err)
	}
	reg := &PGRegistry{DB: pool, MACKey: macKey, TTL: 30 * time.Second}
	fx := newFixture(t, func(c *Config) { c.Registry = reg; c.Nonces = RedisNonces{Client: rdb} })
	fx.appKey = appKey
	call := func() int {
		resp, err := fx.client(false, nil).Do(ctx, lossRequest(`{}`))
		if err != nil && resp == nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	if got := call(); got != 200 {
		t.Fatalf("registered caller: want 200, got %d", got)
	}
	app.Active = false
	if err := PutApp(ctx, pool, macKey, app); err != nil {
		t.Fatal(err)
	}
	if got := call(); got != 401 {
		t.Fatalf("suspended caller, next call: want 401, got %d", got)
	}
	app.Active = true
	if err := PutApp(ctx, pool, macKey, app); err != nil {
		t.Fatal(err)
	}
	if got := call(); got != 200 {
		t.Fatalf("reinstated caller: want 200, got %d", got)
	}
	key.Revoked = true
	if err := PutKey(ctx, pool, macKey, key); err != nil {
		t.Fatal(err)
	}
	if got := call(); got != 401 {
		t.Fatalf("revoked key, next call: want 401, got %d", got)
	}
}
