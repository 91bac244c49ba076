package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// The leader lease is a compare-and-set register per name: LeaseGet reads the
// record and its version, LeaseUpdate writes a new record only if the version
// is still the one read. The record is opaque to the store (leader election
// stores client-go's LeaderElectionRecord as JSON in it).

func checkLease(name string, record []byte) error {
	if err := checkText("name", name, 1, MaxLeaseNameLength); err != nil {
		return err
	}
	if len(record) > MaxLeaseRecordBytes {
		return &ValidationError{Field: "record", Problem: fmt.Sprintf("is %d bytes, more than %d", len(record), MaxLeaseRecordBytes)}
	}
	return nil
}

// LeaseGet returns the record and version of the lease name, or ErrNotFound.
func (s *Store) LeaseGet(ctx context.Context, name string) ([]byte, int64, error) {
	if err := checkLease(name, nil); err != nil {
		return nil, 0, err
	}
	var record []byte
	var version int64
	err := s.pool.QueryRow(ctx, `SELECT record, version FROM leader_leases WHERE name = $1`, name).Scan(&record, &version)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, 0, fmt.Errorf("getting lease %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("getting lease %q: %w", name, err)
	}
	return record, version, nil
}

// LeaseCreate creates the lease name holding record and returns its version
// (1), or ErrConflict when it exists.
func (s *Store) LeaseCreate(ctx context.Context, name string, record []byte) (int64, error) {
	if err := checkLease(name, record); err != nil {
		return 0, err
	}
	if record == nil {
		record = []byte{}
	}
	var version int64
	err := s.pool.QueryRow(ctx, `
		INSERT INTO leader_leases (name, record) VALUES ($1, $2)
		ON CONFLICT (name) DO NOTHING
		RETURNING version`, name, record).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("creating lease %q: it exists: %w", name, ErrConflict)
	}
	if err != nil {
		return 0, fmt.Errorf("creating lease %q: %w", name, err)
	}
	return version, nil
}

// LeaseUpdate replaces the record of the lease name if its version is still
// expectedVersion, and returns the new version. It returns ErrConflict when
// the version moved and ErrNotFound when the lease does not exist.
func (s *Store) LeaseUpdate(ctx context.Context, name string, record []byte, expectedVersion int64) (int64, error) {
	if err := checkLease(name, record); err != nil {
		return 0, err
	}
	if record == nil {
		record = []byte{}
	}
	var version int64
	err := s.pool.QueryRow(ctx, `
		UPDATE leader_leases SET record = $2, version = version + 1, updated_at = now()
		 WHERE name = $1 AND version = $3
		RETURNING version`, name, record, expectedVersion).Scan(&version)
	if err == nil {
		return version, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("updating lease %q: %w", name, err)
	}
	var current int64
	err = s.pool.QueryRow(ctx, `SELECT version FROM leader_leases WHERE name = $1`, name).Scan(&current)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("updating lease %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("updating lease %q: %w", name, err)
	}
	return 0, fmt.Errorf("updating lease %q at version %d: it is at version %d: %w", name, expectedVersion, current, ErrConflict)
}
