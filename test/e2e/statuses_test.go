package e2e

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// statusWatcher records every status a deployment row shows, read on each
// flightdeck_status notification (the triggers send one for every visible
// change of a row). Transitions that follow each other within a few
// milliseconds may share one read, so the watcher is the cross-check and
// deployment_events, written in the transaction of each transition, the
// complete record.
type statusWatcher struct {
	conn   *pgx.Conn
	cancel context.CancelFunc
	done   chan struct{}

	mu   sync.Mutex
	seen map[string][]string // deployment id -> statuses, consecutive repeats dropped
	err  error
}

// watchStatuses starts listening on flightdeck_status; call stop when done.
func watchStatuses(ctx context.Context, databaseURL string) (*statusWatcher, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("connecting the status watcher: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN flightdeck_status"); err != nil {
		_ = conn.Close(ctx)
		return nil, fmt.Errorf("listening on flightdeck_status: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	w := &statusWatcher{conn: conn, cancel: cancel, done: make(chan struct{}), seen: map[string][]string{}}
	go w.run(runCtx)
	return w, nil
}

func (w *statusWatcher) run(ctx context.Context) {
	defer close(w.done)
	for {
		n, err := w.conn.WaitForNotification(ctx)
		if err != nil {
			w.fail(ctx, fmt.Errorf("waiting for notifications: %w", err))
			return
		}
		var st string
		err = w.conn.QueryRow(ctx, "SELECT status::text FROM deployments WHERE id = $1", n.Payload).Scan(&st)
		if errors.Is(err, pgx.ErrNoRows) {
			continue // deleted
		}
		if err != nil {
			w.fail(ctx, fmt.Errorf("reading deployment %s: %w", n.Payload, err))
			return
		}
		w.mu.Lock()
		if s := w.seen[n.Payload]; len(s) == 0 || s[len(s)-1] != st {
			w.seen[n.Payload] = append(s, st)
		}
		w.mu.Unlock()
	}
}

func (w *statusWatcher) fail(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // stopping
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// observed returns the statuses seen for the deployment id so far, and the
// error that stopped the watcher, if any.
func (w *statusWatcher) observed(id string) ([]string, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen[id]), w.err
}

func (w *statusWatcher) stop() error {
	w.cancel()
	<-w.done
	return w.conn.Close(context.Background())
}

// event is one row of deployment_events.
type event struct {
	From, To        string
	Reason, Message string
	At              time.Time
}

func (e event) String() string {
	return fmt.Sprintf("%s -> %s (%s: %q)", e.From, e.To, e.Reason, e.Message)
}

// deployment is the part of a deployments row the scenarios look at.
type deployment struct {
	ID, Name, Package string
	Status            string
	MachineID         string
	Error, Progress   string
}

// database is the platform's side of the database: it writes rows as the
// platform's API does and reads what flightdeck wrote back.
type database struct{ pool *pgxpool.Pool }

// insertDeployment creates a deployment exactly as the platform's API does.
func (db database) insertDeployment(ctx context.Context, name, pkg string) (string, error) {
	var id string
	err := db.pool.QueryRow(ctx, "INSERT INTO deployments (name, package) VALUES ($1, $2) RETURNING id::text", name, pkg).Scan(&id)
	if err != nil {
		return "", fmt.Errorf("inserting deployment %s: %w", name, err)
	}
	return id, nil
}

func (db database) deployment(ctx context.Context, id string) (deployment, error) {
	d := deployment{ID: id}
	err := db.pool.QueryRow(ctx, `
		SELECT name, package, status::text, coalesce(machine_id, ''),
		       coalesce(error_message, ''), coalesce(progress_message, '')
		  FROM deployments WHERE id = $1`, id).
		Scan(&d.Name, &d.Package, &d.Status, &d.MachineID, &d.Error, &d.Progress)
	if err != nil {
		return d, fmt.Errorf("reading deployment %s: %w", id, err)
	}
	return d, nil
}

// events returns the deployment's transition history, oldest first.
func (db database) events(ctx context.Context, id string) ([]event, error) {
	rows, err := db.pool.Query(ctx, `
		SELECT from_status::text, to_status::text, reason, message, created_at
		  FROM deployment_events WHERE deployment_id = $1 ORDER BY id`, id)
	if err != nil {
		return nil, fmt.Errorf("listing events of deployment %s: %w", id, err)
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (event, error) {
		var e event
		err := r.Scan(&e.From, &e.To, &e.Reason, &e.Message, &e.At)
		return e, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing events of deployment %s: %w", id, err)
	}
	return evs, nil
}

// sequence turns a history into the statuses the row went through: the
// first event's from, then every to. It fails when the events do not chain
// (an event whose from is not the previous to), which would mean a
// transition was written without its event.
func sequence(evs []event) ([]string, error) {
	if len(evs) == 0 {
		return nil, nil
	}
	seq := []string{evs[0].From}
	for i, e := range evs {
		if e.From != seq[len(seq)-1] {
			return seq, fmt.Errorf("event %d (%s) does not start where event %d ended (%s)", i, e, i-1, seq[len(seq)-1])
		}
		seq = append(seq, e.To)
	}
	return seq, nil
}

// isSubsequence reports whether sub appears in seq in order (not
// necessarily adjacent).
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

func formatEvents(evs []event) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "\n  %s %s", e.At.Format("15:04:05.000"), e)
	}
	return b.String()
}
