package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/flightdeck/flightdeck/store/status"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

const (
	// migrationsTable is goose's version table. It is not goose's default
	// name, so that a platform database whose own migrations use goose keeps
	// its history apart.
	migrationsTable = "flightdeck_schema_migrations"
	// migrationLockID is the advisory lock key held while migrating (not
	// goose's default, for the same reason): the first 8 bytes of
	// sha256("flightdeck migrations").
	migrationLockID int64 = 0x60f7_d3f6_f5eb_8d31
)

// AppliedMigration is one migration Migrate applied.
type AppliedMigration struct {
	// Version is the number the file name starts with.
	Version int64
	// Name is the file name, e.g. "00001_deployments.sql".
	Name string
	// Duration is how long it ran.
	Duration time.Duration
}

// LegacyStatusError stops Migrate when a pre-existing deployments table holds
// status values that are not one of the seven statuses. Nothing was changed.
type LegacyStatusError struct {
	// Values are the offending distinct values, sorted.
	Values []string
}

func (e *LegacyStatusError) Error() string {
	quoted := make([]string, 0, len(e.Values))
	for i, v := range e.Values {
		if i == 20 {
			quoted = append(quoted, fmt.Sprintf("and %d more", len(e.Values)-20))
			break
		}
		quoted = append(quoted, fmt.Sprintf("%q", v))
	}
	return fmt.Sprintf("deployments.status holds values that are not deployment statuses: %s (allowed: %s); update or delete those rows, then migrate again",
		strings.Join(quoted, ", "), joinStatuses(status.All()))
}

func joinStatuses(ss []status.Status) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}

// Migrate applies the pending embedded migrations to the database at
// databaseURL and returns those it applied (none when the schema is up to
// date). It is safe to run from several processes at once: they take turns
// on a PostgreSQL advisory lock, and the later ones find nothing to do. Each
// migration runs in one transaction, so a failure leaves no half-applied
// migration behind.
func Migrate(ctx context.Context, databaseURL string) ([]AppliedMigration, error) {
	cfg, err := pgx.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	return migrate(ctx, db, true)
}

// MigratePool is Migrate on an existing pool; it borrows at most two of its
// connections.
func MigratePool(ctx context.Context, pool *pgxpool.Pool) ([]AppliedMigration, error) {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	return migrate(ctx, db, true)
}

// migrate runs goose; preflight first refuses bad legacy statuses without
// writing anything (the migration checks again under the lock, for the rare
// case of a row changing in between; tests switch the preflight off to see
// that check).
func migrate(ctx context.Context, db *sql.DB, preflight bool) ([]AppliedMigration, error) {
	if err := db.PingContext(ctx); err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	if preflight {
		if err := checkLegacyStatuses(ctx, db); err != nil {
			return nil, err
		}
	}
	provider, err := newProvider(db)
	if err != nil {
		return nil, err
	}
	results, err := provider.Up(ctx)
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		return applied(partial.Applied), fmt.Errorf("applying migration %s: %w", path.Base(partial.Failed.Source.Path), partial.Err)
	}
	if err != nil {
		return nil, fmt.Errorf("applying migrations: %w", err)
	}
	return applied(results), nil
}

func newProvider(db *sql.DB) (*goose.Provider, error) {
	migrations, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return nil, fmt.Errorf("reading embedded migrations: %w", err)
	}
	// Concurrent runs poll the lock every second, for up to five minutes.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockID(migrationLockID), lock.WithLockTimeout(1, 300))
	if err != nil {
		return nil, fmt.Errorf("creating migration lock: %w", err)
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, migrations,
		goose.WithTableName(migrationsTable),
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
		goose.WithLogger(goose.NopLogger()),
	)
	if err != nil {
		return nil, fmt.Errorf("loading migrations: %w", err)
	}
	return provider, nil
}

func applied(results []*goose.MigrationResult) []AppliedMigration {
	out := make([]AppliedMigration, 0, len(results))
	for _, r := range results {
		out = append(out, AppliedMigration{Version: r.Source.Version, Name: path.Base(r.Source.Path), Duration: r.Duration})
	}
	return out
}

// checkLegacyStatuses returns a *LegacyStatusError when a deployments table
// whose status column is not yet the enum holds unknown values.
func checkLegacyStatuses(ctx context.Context, db *sql.DB) error {
	var legacy bool
	err := db.QueryRowContext(ctx, `
		SELECT EXISTS (
			SELECT 1 FROM pg_attribute a
			 WHERE a.attrelid = to_regclass('deployments') AND a.attname = 'status'
			   AND a.attnum > 0 AND NOT a.attisdropped
			   AND a.atttypid::regtype IS DISTINCT FROM to_regtype('deployment_status'))`).Scan(&legacy)
	if err != nil {
		return fmt.Errorf("inspecting deployments table: %w", err)
	}
	if !legacy {
		return nil
	}
	known := make([]string, 0, len(status.All()))
	for _, s := range status.All() {
		known = append(known, string(s))
	}
	rows, err := db.QueryContext(ctx, `
		SELECT DISTINCT status::text FROM deployments
		 WHERE status IS NOT NULL AND status::text <> ALL ($1::text[])
		 ORDER BY 1`, known)
	if err != nil {
		return fmt.Errorf("checking legacy deployment statuses: %w", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return fmt.Errorf("checking legacy deployment statuses: %w", err)
		}
		bad = append(bad, v)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("checking legacy deployment statuses: %w", err)
	}
	if len(bad) > 0 {
		return &LegacyStatusError{Values: bad}
	}
	return nil
}
