// Package person is the register of residents: who they are, stored so that no ID number,
// name or phone number is ever in clear in the database. Equality lookups go through
// blind indexes; values are sealed per row.
package person

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/sscard/platform/shared/db"
	"github.com/sscard/platform/shared/pii"
	"github.com/sscard/platform/shared/secrets"
)

// Protector seals personal data at rest and computes blind indexes (pii.Keyring). A
// sealed value is bound to its table, column and row, so a copy elsewhere does not open.
type Protector interface {
	Encrypt(ctx context.Context, f pii.Field, plaintext string) (string, error)
	Decrypt(ctx context.Context, f pii.Field, stored string) (string, error)
	BlindIndex(kind pii.Kind, value string) ([]byte, error)
}

// ErrNotFound reports an unknown person.
var ErrNotFound = errors.New("no such person")

// Person is a resident in clear, in memory only.
type Person struct {
	ID       string
	IDNumber string
	Name     string
	Phone    string
}

// Store reads and writes persons.
type Store struct {
	pool *pgxpool.Pool
	p    Protector
}

// NewStore returns the store.
func NewStore(pool *pgxpool.Pool, p Protector) *Store { return &Store{pool: pool, p: p} }

// Register adds a person and returns its id.
func (s *Store) Register(ctx context.Context, idNumber, name, phone string) (string, error) {
	p, err := s.Prepare(ctx, idNumber, name, phone)
	if err != nil {
		return "", err
	}
	if _, err := s.pool.Exec(ctx, insertSQL, p.args()...); err != nil {
		return "", fmt.Errorf("register person: %w", err)
	}
	return p.ID, nil
}

// NewPerson is a person ready to be registered: a fresh id, the blind indexes and the
// sealed fields. It holds no personal data in clear.
type NewPerson struct {
	ID                string
	idIndex, phoneIdx []byte
	idEnc, nameEnc    string
	phoneEnc          *string
}

// Prepare seals a new person's details under a fresh id, for Register or Queue.
func (s *Store) Prepare(ctx context.Context, idNumber, name, phone string) (NewPerson, error) {
	p := NewPerson{ID: newID()}
	var err error
	if p.idIndex, err = s.p.BlindIndex(pii.KindIDNumber, idNumber); err != nil {
		return NewPerson{}, err
	}
	if p.idEnc, err = s.p.Encrypt(ctx, field("id_number", p.ID), idNumber); err != nil {
		return NewPerson{}, err
	}
	if p.nameEnc, err = s.p.Encrypt(ctx, field("name", p.ID), name); err != nil {
		return NewPerson{}, err
	}
	if phone != "" {
		if p.phoneIdx, err = s.p.BlindIndex(pii.KindPhone, phone); err != nil {
			return NewPerson{}, err
		}
		enc, err := s.p.Encrypt(ctx, field("phone", p.ID), phone)
		if err != nil {
			return NewPerson{}, err
		}
		p.phoneEnc = &enc
	}
	return p, nil
}

// Queue adds p's registration to b, for a caller that writes it with what it records
// about the person in one round trip. If the ID number is registered already (or is
// meanwhile), that registration stands and the batch fails on it (AlreadyRegistered): the
// caller looks the person up and sends its batch again. (A plain insert: most applicants
// are new, and a conflict arbiter would cost every insert a speculative insertion.)
func (p NewPerson) Queue(b *pgx.Batch) {
	b.Queue(insertSQL, p.args()...)
}

// AlreadyRegistered reports whether err is a registration refused because the ID number
// is registered already (Register, or a batch holding Queue).
func AlreadyRegistered(err error) bool {
	return db.UniqueViolation(err, "persons_id_number_index_key")
}

const insertSQL = `INSERT INTO persons (person_id, id_number_index, id_number_enc, name_enc, phone_index, phone_enc)
	VALUES ($1, $2, $3, $4, $5, $6)`

func (p NewPerson) args() []any {
	return []any{p.ID, p.idIndex, p.idEnc, p.nameEnc, p.phoneIdx, p.phoneEnc}
}

// FindByIDNumber returns the id of the person with this ID number, or "" when none.
func (s *Store) FindByIDNumber(ctx context.Context, idNumber string) (string, error) {
	idx, err := s.p.BlindIndex(pii.KindIDNumber, idNumber)
	if errors.Is(err, pii.ErrNotNormalisable) {
		return "", nil // cannot be anyone's ID number
	}
	if err != nil {
		return "", err
	}
	var id string
	err = s.pool.QueryRow(ctx, `SELECT person_id FROM persons WHERE id_number_index = $1`, idx).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil
	}
	return id, err
}

// Get returns a person in clear (memory only; mask before showing, never log).
func (s *Store) Get(ctx context.Context, id string) (Person, error) {
	var idEnc, nameEnc string
	var phoneEnc *string
	err := s.pool.QueryRow(ctx, `SELECT id_number_enc, name_enc, phone_enc FROM persons WHERE person_id = $1`, id).
		Scan(&idEnc, &nameEnc, &phoneEnc)
	if errors.Is(err, pgx.ErrNoRows) {
		return Person{}, ErrNotFound
	}
	if err != nil {
		return Person{}, err
	}
	p := Person{ID: id}
	if p.IDNumber, err = s.p.Decrypt(ctx, field("id_number", id), idEnc); err != nil {
		return Person{}, fmt.Errorf("person %s id_number: %w", id, err)
	}
	if p.Name, err = s.p.Decrypt(ctx, field("name", id), nameEnc); err != nil {
		return Person{}, fmt.Errorf("person %s name: %w", id, err)
	}
	if phoneEnc != nil {
		if p.Phone, err = s.p.Decrypt(ctx, field("phone", id), *phoneEnc); err != nil {
			return Person{}, fmt.Errorf("person %s phone: %w", id, err)
		}
	}
	return p, nil
}

// SetPhone replaces a person's phone number.
func (s *Store) SetPhone(ctx context.Context, tx pgx.Tx, id, phone string) error {
	idx, err := s.p.BlindIndex(pii.KindPhone, phone)
	if err != nil {
		return err
	}
	enc, err := s.p.Encrypt(ctx, field("phone", id), phone)
	if err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, `UPDATE persons SET phone_index = $2, phone_enc = $3, updated_at = now() WHERE person_id = $1`, id, idx, enc)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

func field(column, row string) pii.Field {
	return pii.Field{Table: "persons", Column: column, Row: row}
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "p_" + hex.EncodeToString(b[:])
}

// Open returns the store of a function instance: field keys from its secrets (pii-kek,
// pii-index-key), data keys in its Postgres.
func Open(pool *pgxpool.Pool, sec secrets.Reader) (*Store, error) {
	if pool == nil {
		return nil, errors.New("the person register needs Postgres")
	}
	kr, err := pii.FromSecrets(sec, pii.PGStore{DB: pool})
	if err != nil {
		return nil, err
	}
	return NewStore(pool, kr), nil
}
