// Package db holds the schema migrations (tern) and applies them.
package db

import (
	"context"
	"embed"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var files embed.FS

// VersionTable records the applied schema version.
const VersionTable = "schema_version"

// Migrate brings the database at dsn to the newest schema. tern takes an advisory
// lock, so concurrent starts (several test binaries, several replicas) are safe.
// The password comes from the postgres-password secret, never from the URL.
func Migrate(ctx context.Context, dsn, password string) (int32, error) {
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	if password != "" {
		cc.Password = password
	}
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return 0, fmt.Errorf("migrate: connect: %w", err)
	}
	defer conn.Close(context.Background())
	m, err := migrate.NewMigrator(ctx, conn, VersionTable)
	if err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		return 0, err
	}
	if err := m.LoadMigrations(sub); err != nil {
		return 0, fmt.Errorf("migrate: load: %w", err)
	}
	if err := m.Migrate(ctx); err != nil {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	return m.GetCurrentVersion(ctx)
}
