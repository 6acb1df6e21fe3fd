//go:build integration

package pii

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/tests/testenv"
)

type person struct{ id, idNo, phone string }

func insertPeople(t *testing.T, pool *pgxpool.Pool, k *Keyring, from, n int) []person {
	t.Helper()
	ctx := context.Background()
	var out []person
	for i := from; i < from+n; i++ {
		p := person{id: uuid.NewString(), idNo: fmt.Sprintf("1101011990%08d", i), phone: fmt.Sprintf("138%08d", i)}
		idCT, err := k.Encrypt(ctx, Field{Table: "people", Column: "id_no_ct", Row: p.id}, p.idNo)
		if err != nil {
			t.Fatal(err)
		}
		phCT, err := k.Encrypt(ctx, Field{Table: "people", Column: "phone_ct", Row: p.id}, p.phone)
		if err != nil {
			t.Fatal(err)
		}
		idIdx, _ := k.BlindIndex(KindIDNumber, p.idNo)
		phIdx, _ := k.BlindIndex(KindPhone, p.phone)
		if _, err := pool.Exec(ctx, `INSERT INTO people (id, id_no_ct, id_no_bidx, phone_ct, phone_bidx) VALUES ($1, $2, $3, $4, $5)`,
			p.id, idCT, idIdx, phCT, phIdx); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

// A real table: blind-index lookup, a ciphertext copied to another row, KEK rotation,
// rewrap of both columns, and every value readable under the new version alone.
func TestIntegration_PeopleTable(t *testing.T) {
	ctx := context.Background()
	env := testenv.Load(t)
	pool := env.Pool(t, env.NewDatabase(t))
	if _, err := pool.Exec(ctx, `CREATE TABLE people (
		id uuid PRIMARY KEY, id_no_ct text NOT NULL, id_no_bidx bytea NOT NULL, phone_ct text, phone_bidx bytea);
		CREATE INDEX people_id_no_bidx ON people (id_no_bidx); CREATE INDEX people_phone_bidx ON people (phone_bidx)`); err != nil {
		t.Fatal(err)
	}
	_, keys := testKEKs(t, 1, 2)
	v1, _ := ParseKEKs(kekText(keys, 1))
	v12, _ := ParseKEKs(kekText(keys, 1, 2))
	v2, _ := ParseKEKs(kekText(keys, 2))
	store := PGStore{DB: pool}
	k1 := testKeyring(t, v1, store)
	people := insertPeople(t, pool, k1, 0, 30)

	// Nothing in clear.
	var clear int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM people WHERE id_no_ct LIKE '%' || $1 || '%' OR phone_ct LIKE '%' || $2 || '%'`,
		people[7].idNo, people[7].phone).Scan(&clear); err != nil || clear != 0 {
		t.Fatalf("plaintext in the table: %d %v", clear, err)
	}

	// Blind-index lookup with the number written differently.
	idx, _ := k1.BlindIndex(KindPhone, "+86 138-0000-0007")
	rows, _ := pool.Query(ctx, `SELECT id::text, phone_ct FROM people WHERE phone_bidx = $1`, idx)
	var found []string
	for rows.Next() {
		var id, ct string
		_ = rows.Scan(&id, &ct)
		if pt, err := k1.Decrypt(ctx, Field{Table: "people", Column: "phone_ct", Row: id}, ct); err == nil && pt == people[7].phone {
			found = append(found, id)
		}
	}
	rows.Close()
	if len(found) != 1 || found[0] != people[7].id {
		t.Fatalf("lookup by phone found %v, want %s", found, people[7].id)
	}
	idx, _ = k1.BlindIndex(KindIDNumber, " "+strings.ToLower(people[12].idNo)+" ")
	var id string
	if err := pool.QueryRow(ctx, `SELECT id::text FROM people WHERE id_no_bidx = $1`, idx).Scan(&id); err != nil || id != people[12].id {
		t.Fatalf("lookup by ID number: %q %v", id, err)
	}

	// Copy row A's ciphertext into row B: it does not decrypt as B's.
	a, b := people[1], people[2]
	var saved string
	_ = pool.QueryRow(ctx, `SELECT id_no_ct FROM people WHERE id = $1`, b.id).Scan(&saved)
	if _, err := pool.Exec(ctx, `UPDATE people SET id_no_ct = (SELECT id_no_ct FROM people WHERE id = $1) WHERE id = $2`, a.id, b.id); err != nil {
		t.Fatal(err)
	}
	var copied string
	_ = pool.QueryRow(ctx, `SELECT id_no_ct FROM people WHERE id = $1`, b.id).Scan(&copied)
	if _, err := k1.Decrypt(ctx, Field{Table: "people", Column: "id_no_ct", Row: b.id}, copied); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("copied ciphertext: want ErrDecrypt, got %v", err)
	}
	// The rewrap job reports it and leaves it alone; put the right value back afterwards.
	k12 := testKeyring(t, v12, store)
	people = append(people, insertPeople(t, pool, k12, 30, 10)...)
	idCol := Column{Table: "people", Column: "id_no_ct", Key: "id"}
	phCol := Column{Table: "people", Column: "phone_ct", Key: "id"}
	counts, err := CountVersions(ctx, pool, idCol)
	if err != nil || counts[1] != 30 || counts[2] != 10 {
		t.Fatalf("before rewrap: %v %v", counts, err)
	}
	st, err := RewrapColumn(ctx, pool, k12, idCol, 7)
	if err != nil || st.Rewrapped != 29 || len(st.Failed) != 1 || st.Failed[0] != b.id {
		t.Fatalf("rewrap id_no: %+v %v", st, err)
	}
	if _, err := pool.Exec(ctx, `UPDATE people SET id_no_ct = $1 WHERE id = $2`, saved, b.id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []Column{idCol, phCol} {
		if st, err := RewrapColumn(ctx, pool, k12, c, 7); err != nil || len(st.Failed) != 0 {
			t.Fatalf("rewrap %s: %+v %v", c.Column, st, err)
		}
		if counts, _ := CountVersions(ctx, pool, c); len(counts) != 1 || counts[2] != 40 {
			t.Fatalf("after rewrap %s: %v", c.Column, counts)
		}
	}

	// Version 1 gone: a fresh keyring with v2 only reads every value.
	if n, err := RetireVersion(ctx, pool, 1); err != nil || n < 1 {
		t.Fatalf("retire: %d %v", n, err)
	}
	k2 := testKeyring(t, v2, store)
	for _, p := range people {
		var idCT, phCT string
		if err := pool.QueryRow(ctx, `SELECT id_no_ct, phone_ct FROM people WHERE id = $1`, p.id).Scan(&idCT, &phCT); err != nil {
			t.Fatal(err)
		}
		gotID, err1 := k2.Decrypt(ctx, Field{Table: "people", Column: "id_no_ct", Row: p.id}, idCT)
		gotPh, err2 := k2.Decrypt(ctx, Field{Table: "people", Column: "phone_ct", Row: p.id}, phCT)
		if err1 != nil || err2 != nil || gotID != p.idNo || gotPh != p.phone {
			t.Fatalf("row %s unreadable after rotation: %v %v", p.id, err1, err2)
		}
	}
	// New values never use a retired DEK.
	ct, _ := k2.Encrypt(ctx, Field{Table: "people", Column: "phone_ct", Row: "x"}, "13800000000")
	_, dek, _, _ := ParseCiphertext(ct)
	var ver int
	if err := pool.QueryRow(ctx, `SELECT kek_version FROM pii_data_keys WHERE dek_id = $1 AND retired_at IS NULL`, dek).Scan(&ver); err != nil || ver != 2 {
		t.Fatalf("new value's DEK: version %d %v", ver, err)
	}
}
