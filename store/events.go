package store

import (
	"context"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/flightdeck/flightdeck/store/status"
)

// EventListParams selects a page of one deployment's events.
type EventListParams struct {
	DeploymentID string
	// Limit is the page size: 0 means DefaultPageSize, at most MaxPageSize.
	Limit int
	// Cursor is "" for the first page, else the nextCursor of the previous page.
	Cursor string
}

// EventList returns one page of a deployment's status changes, newest first,
// and the cursor of the next page ("" after the last page). It returns
// ErrNotFound when the deployment does not exist, and a *ValidationError for
// a bad id, limit or cursor.
func (s *Store) EventList(ctx context.Context, p EventListParams) ([]Event, string, error) {
	id, err := parseID("deploymentID", p.DeploymentID)
	if err != nil {
		return nil, "", err
	}
	limit, err := pageLimit(p.Limit)
	if err != nil {
		return nil, "", err
	}
	after, err := decodeCursor(p.Cursor, checkEventID)
	if err != nil {
		return nil, "", err
	}

	q := `SELECT id, deployment_id::text, created_at, from_status::text, to_status::text, reason, message
	        FROM deployment_events WHERE deployment_id = $1`
	args := []any{id}
	if after != nil {
		eventID, _ := strconv.ParseInt(after.id, 10, 64)
		q += ` AND (created_at, id) < ($2, $3)`
		args = append(args, after.at, eventID)
	}
	args = append(args, limit+1)
	q += ` ORDER BY created_at DESC, id DESC LIMIT $` + strconv.Itoa(len(args))

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, "", fmt.Errorf("listing events of deployment %s: %w", id, err)
	}
	events, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Event, error) {
		var e Event
		var from, to string
		err := row.Scan(&e.ID, &e.DeploymentID, &e.At, &from, &to, &e.Reason, &e.Message)
		e.From, e.To = status.Status(from), status.Status(to)
		return e, err
	})
	if err != nil {
		return nil, "", fmt.Errorf("listing events of deployment %s: %w", id, err)
	}
	if len(events) == 0 && after == nil {
		if _, err := s.get(ctx, id); err != nil {
			return nil, "", fmt.Errorf("listing events of deployment %s: %w", id, err)
		}
	}
	next := ""
	if len(events) > limit {
		events = events[:limit]
		last := events[limit-1]
		next = cursor{at: last.At, id: strconv.FormatInt(last.ID, 10)}.encode()
	}
	return events, next, nil
}
