package pii

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// DB is what PGStore needs of a pool or transaction.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// PGStore keeps DEKs in pii_data_keys (migration 002).
type PGStore struct{ DB DB }

// Newest implements DEKStore.
func (s PGStore) Newest(ctx context.Context, v int, since time.Time) (*DEK, error) {
	return s.one(ctx, `SELECT dek_id, kek_version, wrapped, created_at FROM pii_data_keys
		WHERE kek_version = $1 AND created_at > $2 AND retired_at IS NULL ORDER BY created_at DESC LIMIT 1`, v, since)
}

// Get implements DEKStore.
func (s PGStore) Get(ctx context.Context, id string) (*DEK, error) {
	return s.one(ctx, `SELECT dek_id, kek_version, wrapped, created_at FROM pii_data_keys WHERE dek_id = $1`, id)
}

func (s PGStore) one(ctx context.Context, sql string, args ...any) (*DEK, error) {
	var d DEK
	err := s.DB.QueryRow(ctx, sql, args...).Scan(&d.ID, &d.KEKVersion, &d.Wrapped, &d.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// Insert implements DEKStore.
func (s PGStore) Insert(ctx context.Context, d *DEK) error {
	_, err := s.DB.Exec(ctx, `INSERT INTO pii_data_keys (dek_id, kek_version, wrapped, created_at) VALUES ($1, $2, $3, $4)`,
		d.ID, d.KEKVersion, d.Wrapped, d.CreatedAt)
	return err
}

// MemStore keeps DEKs in memory (unit tests, benchmarks).
type MemStore struct {
	mu   sync.Mutex
	deks map[string]*DEK
}

// Newest implements DEKStore.
func (m *MemStore) Newest(_ context.Context, v int, since time.Time) (*DEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var best *DEK
	for _, d := range m.deks {
		if d.KEKVersion == v && d.CreatedAt.After(since) && (best == nil || d.CreatedAt.After(best.CreatedAt)) {
			best = d
		}
	}
	return best, nil
}

// Get implements DEKStore.
func (m *MemStore) Get(_ context.Context, id string) (*DEK, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if d, ok := m.deks[id]; ok {
		c := *d
		return &c, nil
	}
	return nil, nil
}

// Insert implements DEKStore.
func (m *MemStore) Insert(_ context.Context, d *DEK) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.deks == nil {
		m.deks = map[string]*DEK{}
	}
	c := *d
	m.deks[d.ID] = &c
	return nil
}
