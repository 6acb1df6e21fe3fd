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

// Someone holding a holder's session (a raced QR, a borrowed phone) sends a code to a
// phone of their own and guesses the old phone number or the ID number with it: each
// wrong guess is a failed try, the code is void after MaxAttempts, and the number on
// record stays as it was.
func TestLoginFlow_PhoneChangeIdentityGuessesVoidTheCode(t *testing.T) {
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
	const idNumber, oldPhone, attackerPhone = "440308199901101512", "13800138000", "13912345678"
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
	if err != nil || r.Token == "" {
		t.Fatalf("login: %+v %v", r, err)
	}
	const maxAttempts = 3
	change := &login.PhoneChange{Sessions: flow.Sessions, People: people, Pool: pool, Codes: login.LocalCodes{RDB: rdb},
		Audit: &audit.Log{}, MaxAttempts: maxAttempts}
	if err := change.SendCode(ctx, r.Token, attackerPhone); err != nil {
		t.Fatal(err)
	}
	code, err := rdb.Get(ctx, login.LocalCodeKey(attackerPhone)).Result()
	if err != nil {
		t.Fatal(err)
	}
	codeKey := "phone-code:{" + pid + "}"

	// Wrong old phones and a wrong ID number, each with the right code.
	guesses := [][2]string{{idNumber, "13800138001"}, {"11010519491231002X", oldPhone}, {idNumber, "13800138002"}}
	for i, g := range guesses {
		if err := change.Change(ctx, r.Token, g[0], g[1], attackerPhone, code, "guess"); !errors.Is(err, login.ErrIdentity) {
			t.Fatalf("guess %d: want ErrIdentity, got %v", i+1, err)
		}
		attempts, _ := rdb.HGet(ctx, codeKey, "attempts").Int()
		if i+1 < maxAttempts && attempts != i+1 {
			t.Errorf("guess %d: want %d failed tries recorded, got %d", i+1, i+1, attempts)
		}
	}
	if n := rdb.Exists(ctx, codeKey).Val(); n != 0 {
		t.Fatalf("after %d wrong tries the code must be void; it is still in Redis", maxAttempts)
	}
	// Even the right answers cannot use the voided code now.
	if err := change.Change(ctx, r.Token, idNumber, oldPhone, attackerPhone, code, "late"); !errors.Is(err, login.ErrCodeInvalid) {
		t.Errorf("voided code with the right answers: want ErrCodeInvalid, got %v", err)
	}
	got, err := people.Get(ctx, pid)
	if err != nil || got.Phone != oldPhone {
		t.Errorf("the phone on record must be unchanged, got %q %v", got.Phone, err)
	}
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM audit_log WHERE action = 'person.phone.change'`).Scan(&n); err != nil || n != 0 {
		t.Errorf("no phone change may be audited, got %d %v", n, err)
	}
	// A count against a voided code must not bring the key back (without an expiry).
	if err := change.Change(ctx, r.Token, idNumber, "13800138003", attackerPhone, code, "more"); !errors.Is(err, login.ErrCodeInvalid) {
		t.Errorf("after voiding: want ErrCodeInvalid, got %v", err)
	}
	if n := rdb.Exists(ctx, codeKey).Val(); n != 0 {
		t.Error("a failed try after voiding brought the code key back")
	}
}
