package store

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flightdeck/flightdeck/store/status"
)

// ErrNotFound is returned when the row a method was asked about does not
// exist (any more).
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a guarded write finds the row moved on (its
// status, generation or version is not the expected one), or when a row to
// create exists already.
var ErrConflict = errors.New("conflict")

// ValidationError reports bad input, found before the database is touched.
// It never contains a deployment's env values.
type ValidationError struct {
	// Field names the parameter, e.g. "id", "package", "env".
	Field string
	// Problem says what is wrong with it, e.g. "is longer than 256 characters".
	Problem string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("invalid %s: %s", e.Field, e.Problem)
}

// Store runs flightdeck's queries against a pgx pool. It is safe for
// concurrent use.
type Store struct {
	pool    *pgxpool.Pool
	ownPool bool
	now     func() time.Time
}

// Option configures a Store.
type Option func(*Store)

// WithClock makes the Store take the times it writes (status_changed_at and
// event times of transitions, the deletion mark) from now instead of the
// database's clock, so that tests with a fake clock see consistent times.
func WithClock(now func() time.Time) Option {
	return func(s *Store) { s.now = now }
}

// New returns a Store using pool; the caller keeps ownership of the pool.
func New(pool *pgxpool.Pool, opts ...Option) *Store {
	s := &Store{pool: pool}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Open connects a new pool to databaseURL and returns a Store owning it;
// Close closes the pool.
func Open(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connecting to database: %w", err)
	}
	s := New(pool, opts...)
	s.ownPool = true
	return s, nil
}

// Close closes the pool if Open created it; otherwise it does nothing.
func (s *Store) Close() {
	if s.ownPool {
		s.pool.Close()
	}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("pinging database: %w", err)
	}
	return nil
}

// clock returns the time to write, or nil to let the database use now().
func (s *Store) clock() *time.Time {
	if s.now == nil {
		return nil
	}
	t := s.now()
	return &t
}

// Deployment is one row of the deployments table.
type Deployment struct {
	// ID is the row's uuid in canonical lower-case form.
	ID string
	// Name is the display name the platform gave the deployment.
	Name string
	// Package is the npm package spec the machine runs, e.g. "@scope/pkg@1.2.3".
	Package string
	// Env is passed to the package's process. Its values are secrets: the
	// String method of Deployment redacts them.
	Env map[string]string
	// MachineID, PrivateIP and Region describe the Fly machine; "" when there
	// is none (NULL).
	MachineID, PrivateIP, Region string
	// Status is the controller's last verdict.
	Status status.Status
	// ProgressMessage and ErrorMessage explain Status to the user; "" is NULL.
	ProgressMessage, ErrorMessage string
	// Generation counts spec changes and deletion marks; ObservedGeneration is
	// the generation the controller last acted on.
	Generation, ObservedGeneration int64
	// StatusChangedAt is when Status last changed.
	StatusChangedAt time.Time
	// CreatedAt and UpdatedAt are maintained by the database.
	CreatedAt, UpdatedAt time.Time
	// DeletedAt is set when the platform asked for the deployment to go; the
	// controller then destroys the machine and deletes the row.
	DeletedAt *time.Time
}

// String formats d for logs with the env values redacted.
func (d Deployment) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "{ID:%s Name:%q Package:%q Env:%s MachineID:%s PrivateIP:%s Region:%s Status:%s",
		d.ID, d.Name, d.Package, redactedEnv(d.Env), d.MachineID, d.PrivateIP, d.Region, d.Status)
	fmt.Fprintf(&b, " ProgressMessage:%q ErrorMessage:%q Generation:%d ObservedGeneration:%d StatusChangedAt:%s",
		d.ProgressMessage, d.ErrorMessage, d.Generation, d.ObservedGeneration, d.StatusChangedAt.Format(time.RFC3339Nano))
	fmt.Fprintf(&b, " CreatedAt:%s UpdatedAt:%s", d.CreatedAt.Format(time.RFC3339Nano), d.UpdatedAt.Format(time.RFC3339Nano))
	if d.DeletedAt != nil {
		fmt.Fprintf(&b, " DeletedAt:%s", d.DeletedAt.Format(time.RFC3339Nano))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v redacts the env values too.
func (d Deployment) GoString() string { return "store.Deployment" + d.String() }

// redactedEnv lists the keys of env with their values replaced.
func redactedEnv(env map[string]string) string {
	keys := make([]string, 0, len(env))
	for k := range env {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + ":<redacted>"
	}
	return "map[" + strings.Join(keys, " ") + "]"
}

// Event is one status change of a deployment, from deployment_events.
type Event struct {
	// ID orders events written at the same time.
	ID int64
	// DeploymentID is the deployment's uuid.
	DeploymentID string
	// At is when the status changed.
	At time.Time
	// From and To are the statuses before and after.
	From, To status.Status
	// Reason is a CamelCase constant such as "MachineCreated".
	Reason string
	// Message is a sentence for the user; may be "".
	Message string
}
