package controllers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/flightdeck/flightdeck/store"
)

// LeaseStore is what the lease lock needs from the store: one row per lease
// name holding the JSON leader record and a version that every write bumps.
type LeaseStore interface {
	LeaseGet(ctx context.Context, name string) (record []byte, version int64, err error)
	LeaseCreate(ctx context.Context, name string, record []byte) (version int64, err error)
	LeaseUpdate(ctx context.Context, name string, record []byte, expectedVersion int64) (version int64, err error)
}

// leaseResource names the lease in the Kubernetes-style errors client-go's
// elector inspects (IsNotFound, IsConflict).
var leaseResource = schema.GroupResource{Group: "flightdeck.dev", Resource: "leases"}

// PostgresLeaseLock is a resourcelock.Interface backed by a row of the
// leader_leases table. Update is a compare-and-swap against the version this
// lock saw last (by Get, Create or its own Update), because client-go's fast
// renew path calls Update without a Get: a write from another replica in
// between makes the swap fail with a Conflict, and the elector falls back to
// Get and re-reads the record.
type PostgresLeaseLock struct {
	Name     string
	Holder   string
	Store    LeaseStore
	Log      logr.Logger
	mu       sync.Mutex
	version  int64
	observed []byte
}

var _ resourcelock.Interface = (*PostgresLeaseLock)(nil)

// Get returns the current leader record and its raw JSON, or a NotFound
// error when no replica has created the lease yet.
func (l *PostgresLeaseLock) Get(ctx context.Context) (*resourcelock.LeaderElectionRecord, []byte, error) {
	raw, version, err := l.Store.LeaseGet(ctx, l.Name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, apierrors.NewNotFound(leaseResource, l.Name)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reading lease %s: %w", l.Name, err)
	}
	var rec resourcelock.LeaderElectionRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, nil, fmt.Errorf("decoding lease %s: %w", l.Name, err)
	}
	l.mu.Lock()
	l.version = version
	l.observed = bytes.Clone(raw)
	l.mu.Unlock()
	return &rec, raw, nil
}

// Create inserts the lease row; a replica that raced us to it gets an
// AlreadyExists error and tries again on its next period.
func (l *PostgresLeaseLock) Create(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding lease %s: %w", l.Name, err)
	}
	version, err := l.Store.LeaseCreate(ctx, l.Name, raw)
	if errors.Is(err, store.ErrConflict) {
		return apierrors.NewAlreadyExists(leaseResource, l.Name)
	}
	if err != nil {
		return fmt.Errorf("creating lease %s: %w", l.Name, err)
	}
	l.mu.Lock()
	l.version = version
	l.observed = raw
	l.mu.Unlock()
	return nil
}

// Update swaps the record if the row still has the version this lock saw
// last; otherwise it returns a Conflict error.
func (l *PostgresLeaseLock) Update(ctx context.Context, rec resourcelock.LeaderElectionRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding lease %s: %w", l.Name, err)
	}
	l.mu.Lock()
	expected := l.version
	l.mu.Unlock()
	if expected == 0 {
		return errors.New("lease " + l.Name + " not observed yet: call Get or Create first")
	}
	version, err := l.Store.LeaseUpdate(ctx, l.Name, raw, expected)
	switch {
	case errors.Is(err, store.ErrConflict):
		return apierrors.NewConflict(leaseResource, l.Name, fmt.Errorf("lease %s changed since version %d", l.Name, expected))
	case errors.Is(err, store.ErrNotFound):
		return apierrors.NewNotFound(leaseResource, l.Name)
	case err != nil:
		return fmt.Errorf("updating lease %s: %w", l.Name, err)
	}
	l.mu.Lock()
	l.version = version
	l.observed = raw
	l.mu.Unlock()
	return nil
}

// RecordEvent logs the elector's lease events ("became leader", "stopped leading").
func (l *PostgresLeaseLock) RecordEvent(s string) {
	l.Log.Info("Leader election event", "event", s)
}

// Identity is this replica's holder identity.
func (l *PostgresLeaseLock) Identity() string { return l.Holder }

// Describe names the lock in the elector's logs.
func (l *PostgresLeaseLock) Describe() string { return "postgres lease " + l.Name }
