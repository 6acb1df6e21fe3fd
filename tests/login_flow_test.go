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

	"github.com/sscard/platform/shared/audit"
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
	r, err := flow.Sessions.Poll(ctx, s.ID, s.PollSecret, time.Now())
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
	r, err := flow.Sessions.Poll(ctx, s.ID, s.PollSecret, time.Now())
	if err != nil || !r.RegistrationRequired || r.Token != "" {
		t.Errorf("want registration required and no token, got %+v %v", r, err)
	}
	// Replaying the same (genuine) notice cannot confirm the spent session again.
	if err := flow.Notify(ctx, a); !errors.Is(err, login.ErrIllegal) {
		t.Errorf("replayed notice on a spent session: want ErrIllegal, got %v", err)
	}
}

// 004 §3(2): a holder logged in by scan changes the phone number with ID number, old
// phone, new phone and an SMS code sent to the new phone.
func TestLoginFlow_PhoneChangeAfterScanLogin(t *testing.T) {
	platformKey, _ := sm2.GenerateKey(rand.Reader)
	env := testenv.Load(t)
	rdb := redis.NewClient(&redis.Options{Addr: env.Vars["redis_addr"], Password: env.Secret(t, "redis-password")})
	defer rdb.Close()
	pool := env.Pool(t, env.NewDatabase(t))
	people, err := person.Open(pool, env.Secrets)
	if err != nil {
		t.Fatal(err)
	}
	local := ecard.NewLocal(rdb, platformKey, "essc://login")
	flow := &login.Flow{Sessions: login.NewSessions(rdb, login.Config{Interval: 10 * time.Millisecond}), Platform: local,
		Verify: ecard.Verifier{Key: &platformKey.PublicKey}, People: people}
	ctx := context.Background()
	const idNumber, oldPhone, newPhone = "440308199901101512", "13800138000", "13912345678"
	pid, err := people.Register(ctx, idNumber, "王五", oldPhone)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := flow.Start(ctx)
	a, _ := local.Act(ctx, s.ID, ecard.StateConfirmed, ecard.Holder{IDNumber: idNumber, Name: "王五"})
	if err := flow.Notify(ctx, a); err != nil {
		t.Fatal(err)
	}
	r, err := flow.Sessions.Poll(ctx, s.ID, s.PollSecret, time.Now())
	if err != nil || r.Token == "" || r.PersonID != pid {
		t.Fatalf("login: want a token for %s, got %+v %v", pid, r, err)
	}
	change := &login.PhoneChange{Sessions: flow.Sessions, People: people, Pool: pool, Codes: login.LocalCodes{RDB: rdb}, Audit: &audit.Log{}}

	if err := change.SendCode(ctx, "not-a-token", newPhone); !errors.Is(err, login.ErrNotLoggedIn) {
		t.Errorf("without login: want ErrNotLoggedIn, got %v", err)
	}
	if err := change.SendCode(ctx, r.Token, "+86 139-1234-5678"); err != nil {
		t.Fatal(err)
	}
	if err := change.SendCode(ctx, r.Token, newPhone); !errors.Is(err, login.ErrTooSoon) {
		t.Errorf("second code at once: want ErrTooSoon, got %v", err)
	}
	code, err := rdb.Get(ctx, login.LocalCodeKey(newPhone)).Result()
	if err != nil || len(code) != 6 {
		t.Fatalf("the local sender must have recorded a 6-digit code, got %q %v", code, err)
	}
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	if err := change.Change(ctx, r.Token, idNumber, oldPhone, newPhone, wrong, "r1"); !errors.Is(err, login.ErrCodeInvalid) {
		t.Errorf("wrong code: want ErrCodeInvalid, got %v", err)
	}
	if err := change.Change(ctx, r.Token, "11010519491231002X", oldPhone, newPhone, code, "r2"); !errors.Is(err, login.ErrIdentity) {
		t.Errorf("someone else's ID number: want ErrIdentity, got %v", err)
	}
	if err := change.Change(ctx, r.Token, idNumber, "13700000000", newPhone, code, "r3"); !errors.Is(err, login.ErrIdentity) {
		t.Errorf("wrong old phone: want ErrIdentity, got %v", err)
	}
	if err := change.Change(ctx, r.Token, idNumber, oldPhone, newPhone, code, "r4"); err != nil {
		t.Fatalf("genuine change: %v", err)
	}
	got, err := people.Get(ctx, pid)
	if err != nil || got.Phone != newPhone {
		t.Errorf("want the new phone on record, got %q %v", got.Phone, err)
	}
	if err := change.Change(ctx, r.Token, idNumber, newPhone, "13612345678", code, "r5"); !errors.Is(err, login.ErrCodeInvalid) {
		t.Errorf("reused code: want ErrCodeInvalid, got %v", err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'person.phone.change' AND object_id = $1`, pid).Scan(&n); err != nil || n != 1 {
		t.Errorf("want one audit entry, got %d %v", n, err)
	}
	var clear int
	_ = pool.QueryRow(ctx, `SELECT count(*) FROM persons WHERE phone_enc LIKE '%'||$1||'%' OR id_number_enc LIKE '%'||$2||'%'`, newPhone, idNumber).Scan(&clear)
	if clear != 0 {
		t.Error("personal data must not be stored in clear")
	}
}
