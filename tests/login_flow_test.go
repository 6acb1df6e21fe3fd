//go:build integration

package tests

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/redis/go-redis/v9"

	"github.com/sscard/platform/shared/ecard"
	"github.com/sscard/platform/shared/login"
	"github.com/sscard/platform/shared/person"
	"github.com/sscard/platform/tests/testenv"
)

func loginFlow(t *testing.T, trusted *sm2.PrivateKey, signer *sm2.PrivateKey) (*login.Flow, *ecard.Local, *person.Store) {
	t.Helper()
	env := testenv.Load(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(t, "redis-password")})
	t.Cleanup(func() { rdb.Close() })
	people, err := person.Open(env.Pool(t, env.NewDatabase(t)), env.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	local := ecard.NewLocal(rdb, signer, "essc://login")
	return &login.Flow{Sessions: login.NewSessions(rdb, login.Config{Interval: 10 * time.Millisecond}), Platform: local,
		Verify: ecard.Verifier{Key: &trusted.PublicKey}, People: people}, local, people
}

// A notice signed with any key but the platform's changes nothing.
func TestLoginFlow_ForgedPlatformNoticeIsRefused(t *testing.T) {
	platformKey, _ := sm2.GenerateKey(rand.Reader)
	forger, _ := sm2.GenerateKey(rand.Reader)
	flow, local, people := loginFlow(t, platformKey, forger)
	ctx := context.Background()
	if _, err := people.Register(ctx, "11010519491231002X", "张三", ""); err != nil {
		t.Fatal(err)
	}
	s, err := flow.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a, err := local.Act(ctx, s.ID, ecard.StateConfirmed, ecard.Holder{IDNumber: "11010519491231002X", Name: "张三"})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Notify(ctx, a); !errors.Is(err, ecard.ErrSignature) {
		t.Fatalf("forged notice: want ErrSignature, got %v", err)
	}
	r, err := flow.Sessions.Poll(ctx, s.ID, time.Now())
	if err != nil || r.State != login.Waiting || r.Token != "" {
		t.Errorf("after a forged notice: want still waiting and no token, got %+v %v", r, err)
	}
}

// The genuine platform confirms a holder with no record here: the poll says
// registration is required and mints no token.
func TestLoginFlow_UnregisteredHolderIsToldToRegister(t *testing.T) {
	platformKey, _ := sm2.GenerateKey(rand.Reader)
	flow, local, _ := loginFlow(t, platformKey, platformKey)
	ctx := context.Background()
	s, _ := flow.Start(ctx)
	a, err := local.Act(ctx, s.ID, ecard.StateConfirmed, ecard.Holder{IDNumber: "500154199301135886", Name: "李四"})
	if err != nil {
		t.Fatal(err)
	}
	if err := flow.Notify(ctx, a); err != nil {
		t.Fatal(err)
	}
	r, err := flow.Sessions.Poll(ctx, s.ID, time.Now())
	if err != nil || !r.RegistrationRequired || r.Token != "" {
		t.Errorf("want registration required and no token, got %+v %v", r, err)
	}
	// Replaying the same (genuine) notice cannot confirm the spent session again.
	if err := flow.Notify(ctx, a); !errors.Is(err, login.ErrIllegal) {
		t.Errorf("replayed notice on a spent session: want ErrIllegal, got %v", err)
	}
}
