package store

import (
	"context"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// MigrateWithoutPreflight runs the migrations without the Go-side check of
// legacy statuses, so that tests can see the check inside the migration.
func MigrateWithoutPreflight(ctx context.Context, databaseURL string) ([]AppliedMigration, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, err
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrate(ctx, db, false)
}
