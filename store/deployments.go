package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/flightdeck/flightdeck/store/status"
)

// deploymentColumns selects a row in the order scanDeployment reads it.
const deploymentColumns = `id::text, name, package, env,
	coalesce(machine_id, ''), coalesce(private_ip, ''), coalesce(region, ''),
	status::text, coalesce(progress_message, ''), coalesce(error_message, ''),
	generation, observed_generation, status_changed_at, created_at, updated_at, deleted_at`

func scanDeployment(row pgx.Row) (Deployment, error) {
	var d Deployment
	var st string
	err := row.Scan(&d.ID, &d.Name, &d.Package, &d.Env,
		&d.MachineID, &d.PrivateIP, &d.Region,
		&st, &d.ProgressMessage, &d.ErrorMessage,
		&d.Generation, &d.ObservedGeneration, &d.StatusChangedAt, &d.CreatedAt, &d.UpdatedAt, &d.DeletedAt)
	if err != nil {
		return Deployment{}, err
	}
	d.Status = status.Status(st)
	if d.Env == nil {
		d.Env = map[string]string{}
	}
	return d, nil
}

func collectDeployments(rows pgx.Rows) ([]Deployment, error) {
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Deployment, error) { return scanDeployment(row) })
}

// DeploymentGet returns the deployment with the given id, or ErrNotFound.
func (s *Store) DeploymentGet(ctx context.Context, id string) (*Deployment, error) {
	id, err := parseID("id", id)
	if err != nil {
		return nil, err
	}
	d, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("getting deployment %s: %w", id, err)
	}
	return d, nil
}

// get reads one row; id must be valid.
func (s *Store) get(ctx context.Context, id string) (*Deployment, error) {
	d, err := scanDeployment(s.pool.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &d, nil
}

// DeploymentListAll returns every row, including those marked deleted, in id
// order. The controller fills its cache with it at start and on resync.
func (s *Store) DeploymentListAll(ctx context.Context) ([]Deployment, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	ds, err := collectDeployments(rows)
	if err != nil {
		return nil, fmt.Errorf("listing deployments: %w", err)
	}
	return ds, nil
}

// DeploymentListIDsToReconcile returns, in id order, the ids of the rows the
// controller has work for. That is every row except a settled failure: a row
// in status failed whose observed_generation equals its generation and that
// is not marked deleted. A failed row needs nothing until its spec changes
// (which bumps generation); every other status is watched (probed or checked
// against Fly) and a marked row has a machine to destroy.
func (s *Store) DeploymentListIDsToReconcile(ctx context.Context) ([]string, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT id::text FROM deployments
		 WHERE deleted_at IS NOT NULL OR status <> 'failed' OR observed_generation <> generation
		 ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("listing deployments to reconcile: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing deployments to reconcile: %w", err)
	}
	return ids, nil
}

// DeploymentTransitionParams is a guarded status write: it applies only while
// the row still has status FromStatus and generation Generation.
type DeploymentTransitionParams struct {
	ID string
	// FromStatus and Generation are what the caller saw; the write is refused
	// with ErrConflict when the row has moved on.
	FromStatus status.Status
	Generation int64
	// ToStatus, ProgressMessage, ErrorMessage ("" = NULL) and
	// ObservedGeneration are written as given.
	ToStatus                      status.Status
	ProgressMessage, ErrorMessage string
	ObservedGeneration            int64
	// Reason (a CamelCase constant, required when the status changes) and
	// Message go into the event row.
	Reason, Message string
	// Reentered restarts the clock of the current status (status_changed_at)
	// even though the status stays the same: a starting row whose machine
	// was just updated starts again.
	Reentered bool
}

// DeploymentTransition writes a status change, or a change of the messages
// or observed generation, as one compare-and-set on id, status and
// generation. When ToStatus differs from FromStatus it also inserts one
// deployment_events row (from, to, reason, message) in the same statement,
// and sets status_changed_at; a write that keeps the status changes the row
// without an event, so the event row exists exactly when the status changed.
// A write that would change nothing writes nothing and returns the row.
//
// Rows marked deleted accept transitions like any other: the deletion mark
// bumped their generation, so a decision taken before the mark is refused.
//
// It returns the row as written, ErrConflict when the row no longer has
// FromStatus and Generation, ErrNotFound when it is gone, and a
// *ValidationError for bad parameters.
func (s *Store) DeploymentTransition(ctx context.Context, p DeploymentTransitionParams) (*Deployment, error) {
	id, err := parseID("id", p.ID)
	if err != nil {
		return nil, err
	}
	if err := errors.Join(
		checkStatus("fromStatus", p.FromStatus),
		checkStatus("toStatus", p.ToStatus),
		checkGeneration("generation", p.Generation, 1),
		checkGeneration("observedGeneration", p.ObservedGeneration, 0),
		checkMessage("progressMessage", p.ProgressMessage),
		checkMessage("errorMessage", p.ErrorMessage),
		checkMessage("message", p.Message),
	); err != nil {
		return nil, firstValidationError(err)
	}
	if p.ObservedGeneration > p.Generation {
		return nil, &ValidationError{Field: "observedGeneration", Problem: fmt.Sprintf("%d is greater than generation %d", p.ObservedGeneration, p.Generation)}
	}
	if p.FromStatus != p.ToStatus || p.Reason != "" {
		if err := checkReason(p.Reason); err != nil {
			return nil, err
		}
	}

	rows, err := s.pool.Query(ctx, `
		WITH moved AS (
			UPDATE deployments
			   SET status = $4,
			       progress_message = NULLIF($5, ''),
			       error_message = NULLIF($6, ''),
			       observed_generation = $7,
			       status_changed_at = CASE WHEN status <> $4 OR $11 THEN coalesce($8, now()) ELSE status_changed_at END
			 WHERE id = $1 AND status = $2 AND generation = $3
			   AND ($11 OR (status, progress_message, error_message, observed_generation)
			       IS DISTINCT FROM ($4, NULLIF($5, ''), NULLIF($6, ''), $7))
			RETURNING `+deploymentColumns+`
		), event AS (
			INSERT INTO deployment_events (deployment_id, created_at, from_status, to_status, reason, message)
			SELECT $1, coalesce($8, now()), $2, $4, $9, $10
			 WHERE $2 <> $4 AND EXISTS (SELECT 1 FROM moved)
		)
		SELECT * FROM moved`,
		id, string(p.FromStatus), p.Generation, string(p.ToStatus), p.ProgressMessage, p.ErrorMessage,
		p.ObservedGeneration, s.clock(), p.Reason, p.Message, p.Reentered)
	if err != nil {
		return nil, fmt.Errorf("transitioning deployment %s: %w", id, translate(err))
	}
	moved, err := collectDeployments(rows)
	if err != nil {
		return nil, fmt.Errorf("transitioning deployment %s: %w", id, translate(err))
	}
	if len(moved) == 1 {
		return &moved[0], nil
	}

	// Nothing was written: the row is gone, has moved on, or already says
	// what the caller wanted to write.
	cur, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("transitioning deployment %s: %w", id, err)
	}
	if cur.Status == p.FromStatus && cur.Generation == p.Generation &&
		cur.Status == p.ToStatus && cur.ProgressMessage == p.ProgressMessage &&
		cur.ErrorMessage == p.ErrorMessage && cur.ObservedGeneration == p.ObservedGeneration {
		return cur, nil
	}
	return nil, fmt.Errorf("transitioning deployment %s from %s at generation %d: row is %s at generation %d: %w",
		id, p.FromStatus, p.Generation, cur.Status, cur.Generation, ErrConflict)
}

// firstValidationError returns the first error of a join (errors.Join skips
// nils), so that callers get one *ValidationError to test with errors.As.
func firstValidationError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[0]
		}
	}
	return err
}

// DeploymentRecordMachineParams records the Fly machine of a deployment.
type DeploymentRecordMachineParams struct {
	ID string
	// MachineID is the Fly machine id (14 lower-case hex digits); "" clears
	// the machine columns (the machine is gone).
	MachineID string
	// PrivateIP and Region may be "" (unknown).
	PrivateIP, Region string
	// Generation is the generation the caller saw; the write is refused with
	// ErrConflict when the row has moved on.
	Generation int64
}

// DeploymentRecordMachine writes machine_id, private_ip and region, guarded
// on the generation. It writes nothing when they already hold these values.
// It returns the row, ErrConflict, ErrNotFound or a *ValidationError.
func (s *Store) DeploymentRecordMachine(ctx context.Context, p DeploymentRecordMachineParams) (*Deployment, error) {
	id, err := parseID("id", p.ID)
	if err != nil {
		return nil, err
	}
	if err := checkMachine(p.MachineID, p.PrivateIP, p.Region); err != nil {
		return nil, err
	}
	if err := checkGeneration("generation", p.Generation, 1); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `
		UPDATE deployments
		   SET machine_id = NULLIF($2, ''), private_ip = NULLIF($3, ''), region = NULLIF($4, '')
		 WHERE id = $1 AND generation = $5
		   AND (machine_id, private_ip, region) IS DISTINCT FROM (NULLIF($2, ''), NULLIF($3, ''), NULLIF($4, ''))
		RETURNING `+deploymentColumns,
		id, p.MachineID, p.PrivateIP, p.Region, p.Generation)
	if err != nil {
		return nil, fmt.Errorf("recording machine of deployment %s: %w", id, translate(err))
	}
	written, err := collectDeployments(rows)
	if err != nil {
		return nil, fmt.Errorf("recording machine of deployment %s: %w", id, translate(err))
	}
	if len(written) == 1 {
		return &written[0], nil
	}
	cur, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("recording machine of deployment %s: %w", id, err)
	}
	if cur.Generation == p.Generation && cur.MachineID == p.MachineID && cur.PrivateIP == p.PrivateIP && cur.Region == p.Region {
		return cur, nil
	}
	return nil, fmt.Errorf("recording machine of deployment %s at generation %d: row is at generation %d: %w",
		id, p.Generation, cur.Generation, ErrConflict)
}

// DeploymentDelete removes a row that is marked deleted, with its events; the
// controller calls it once the machine is destroyed. It returns ErrConflict
// when the row is not marked deleted and ErrNotFound when it is gone.
func (s *Store) DeploymentDelete(ctx context.Context, id string) error {
	id, err := parseID("id", id)
	if err != nil {
		return err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM deployments WHERE id = $1 AND deleted_at IS NOT NULL`, id)
	if err != nil {
		return fmt.Errorf("deleting deployment %s: %w", id, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	if _, err := s.get(ctx, id); err != nil {
		return fmt.Errorf("deleting deployment %s: %w", id, err)
	}
	return fmt.Errorf("deleting deployment %s: it is not marked deleted: %w", id, ErrConflict)
}

// DeploymentCreateParams is the spec of a new deployment.
type DeploymentCreateParams struct {
	Name, Package string
	// Env may be nil (no variables).
	Env map[string]string
}

// DeploymentCreate inserts a pending deployment and returns it.
func (s *Store) DeploymentCreate(ctx context.Context, p DeploymentCreateParams) (*Deployment, error) {
	if err := errors.Join(checkName(p.Name), checkPackage(p.Package), checkEnv(p.Env)); err != nil {
		return nil, firstValidationError(err)
	}
	env := p.Env
	if env == nil {
		env = map[string]string{}
	}
	d, err := scanDeployment(s.pool.QueryRow(ctx,
		`INSERT INTO deployments (name, package, env) VALUES ($1, $2, $3) RETURNING `+deploymentColumns,
		p.Name, p.Package, env))
	if err != nil {
		return nil, fmt.Errorf("creating deployment: %w", translate(err))
	}
	return &d, nil
}

// DeploymentMarkDeleted sets deleted_at, which bumps the generation and
// notifies the controller. Marking a marked row again changes nothing and
// returns it. It returns ErrNotFound when the row is gone.
func (s *Store) DeploymentMarkDeleted(ctx context.Context, id string) (*Deployment, error) {
	id, err := parseID("id", id)
	if err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx,
		`UPDATE deployments SET deleted_at = coalesce($2, now()) WHERE id = $1 AND deleted_at IS NULL RETURNING `+deploymentColumns,
		id, s.clock())
	if err != nil {
		return nil, fmt.Errorf("marking deployment %s deleted: %w", id, err)
	}
	marked, err := collectDeployments(rows)
	if err != nil {
		return nil, fmt.Errorf("marking deployment %s deleted: %w", id, err)
	}
	if len(marked) == 1 {
		return &marked[0], nil
	}
	cur, err := s.get(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("marking deployment %s deleted: %w", id, err)
	}
	return cur, nil
}

// DeploymentListParams selects a page of deployments.
type DeploymentListParams struct {
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor is "" for the first page, else the nextCursor of the previous page.
	Cursor string
	// Status keeps only rows with this status; "" keeps all.
	Status status.Status
}

// DeploymentList returns one page of deployments, newest first (created_at,
// then id, descending), including rows marked deleted, and the cursor of the
// next page ("" after the last page). A cursor not made by DeploymentList is
// a *ValidationError.
func (s *Store) DeploymentList(ctx context.Context, p DeploymentListParams) ([]Deployment, string, error) {
	limit, err := pageLimit(p.Limit)
	if err != nil {
		return nil, "", err
	}
	if p.Status != "" {
		if err := checkStatus("status", p.Status); err != nil {
			return nil, "", err
		}
	}
	after, err := decodeCursor(p.Cursor, checkUUID)
	if err != nil {
		return nil, "", err
	}

	var where []string
	var args []any
	if p.Status != "" {
		args = append(args, string(p.Status))
		where = append(where, "status = $"+strconv.Itoa(len(args)))
	}
	if after != nil {
		args = append(args, after.at, after.id)
		where = append(where, fmt.Sprintf("(created_at, id) < ($%d, $%d)", len(args)-1, len(args)))
	}
	args = append(args, limit+1)
	q := `SELECT ` + deploymentColumns + ` FROM deployments`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing deployments: %w", err)
	}
	page, err := collectDeployments(rows)
	if err != nil {
		return nil, "", fmt.Errorf("listing deployments: %w", err)
	}
	next := ""
	if len(page) > limit {
		page = page[:limit]
		last := page[limit-1]
		next = cursor{at: last.CreatedAt, id: last.ID}.encode()
	}
	return page, next, nil
}

// DeploymentCountByStatus counts the rows (including those marked deleted)
// in each status; every status is a key, with 0 when no row has it.
func (s *Store) DeploymentCountByStatus(ctx context.Context) (map[status.Status]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT status::text, count(*) FROM deployments GROUP BY status`)
	if err != nil {
		return nil, fmt.Errorf("counting deployments by status: %w", err)
	}
	counts := make(map[status.Status]int, len(status.All()))
	for _, st := range status.All() {
		counts[st] = 0
	}
	var st string
	var n int
	_, err = pgx.ForEachRow(rows, []any{&st, &n}, func() error {
		counts[status.Status(st)] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("counting deployments by status: %w", err)
	}
	return counts, nil
}
