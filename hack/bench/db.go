package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// benchPackage is the npm package of every seeded machine and row.
const benchPackage = "@modelcontextprotocol/server-everything"

// insertDeployments writes one running row per machine, as the platform's
// API would for machines that already exist: machine_id, private_ip,
// status 'running' and observed_generation = generation, so that
// flightdeck adopts them as they are and writes nothing. It returns the
// deployment id of each machine, by machine id. It uses its own connection
// and closes it, so that PostgreSQL flushes this backend's statistics before
// any window starts.
func insertDeployments(ctx context.Context, databaseURL string, machines []flysim.SeededMachine) (map[string]string, error) {
	conn, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, fmt.Errorf("connecting to the bench database: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	ids := make([]string, len(machines))
	ips := make([]string, len(machines))
	for i, m := range machines {
		ids[i], ips[i] = m.ID, m.PrivateIP
	}
	rows, err := conn.Query(ctx, `
		INSERT INTO deployments (name, package, machine_id, private_ip, region, status, observed_generation)
		SELECT 'bench-' || lpad(t.i::text, 5, '0'), $1, t.m, t.ip, 'ord', 'running', 1
		  FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(m, ip, i)
		RETURNING machine_id, id::text`, benchPackage, ids, ips)
	if err != nil {
		return nil, fmt.Errorf("inserting deployments: %w", err)
	}
	byMachine := make(map[string]string, len(machines))
	var machineID, id string
	_, err = pgx.ForEachRow(rows, []any{&machineID, &id}, func() error {
		byMachine[machineID] = id
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("inserting deployments: %w", err)
	}
	if len(byMachine) != len(machines) {
		return nil, fmt.Errorf("inserting deployments: %d rows for %d machines", len(byMachine), len(machines))
	}
	return byMachine, nil
}

// rowTables are the tables whose writes the targets count.
var rowTables = map[string]bool{"deployments": true, "deployment_events": true}

// tableWrites returns the rows inserted, updated and deleted per table
// since the statistics were last reset (pg_stat_user_tables). Each backend
// flushes its counts at most once a second and within about 10s when idle.
func tableWrites(ctx context.Context, pool *pgxpool.Pool) (map[string]int64, error) {
	rows, err := pool.Query(ctx, `SELECT relname::text, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables`)
	if err != nil {
		return nil, fmt.Errorf("reading table statistics: %w", err)
	}
	out := map[string]int64{}
	var name string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&name, &n}, func() error {
		out[name] = n
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading table statistics: %w", err)
	}
	return out, nil
}

// event is one deployment_events row.
type event struct {
	deployment string
	from, to   string
	at         time.Time
}

// allEvents returns every event in insertion order.
func allEvents(ctx context.Context, pool *pgxpool.Pool) ([]event, error) {
	rows, err := pool.Query(ctx, `
		SELECT deployment_id::text, from_status::text, to_status::text, created_at
		  FROM deployment_events ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	var out []event
	var e event
	_, err = pgx.ForEachRow(rows, []any{&e.deployment, &e.from, &e.to, &e.at}, func() error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading events: %w", err)
	}
	return out, nil
}

// countWithStatus counts the rows among ids whose status is st.
func countWithStatus(ctx context.Context, pool *pgxpool.Pool, ids []string, st string) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE id = ANY($1::uuid[]) AND status = $2::deployment_status`,
		ids, st).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting %s deployments: %w", st, err)
	}
	return n, nil
}

// countNotRunningExcept counts the rows outside ids that are not running.
func countNotRunningExcept(ctx context.Context, pool *pgxpool.Pool, ids []string) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE status <> 'running' AND NOT (id = ANY($1::uuid[]))`,
		ids).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting deployments that left running: %w", err)
	}
	return n, nil
}
