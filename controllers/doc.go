// Package controllers runs flightdeck's reconcile loop with controller-runtime's typed controller and no
// Kubernetes API server, and holds the process together: the sources that feed the workqueue from
// PostgreSQL, leader election on a PostgreSQL lease, the HTTP server, the heartbeat and the health checks.
//
// # Sources
//
// One long-lived connection LISTENs on flightdeck_deployments and flightdeck_status. A notification
// re-reads the row it names and queues it when it differs from the reconciler's cache. The whole table is
// listed once the LISTEN is up (so nothing falls between the list and the first notification), after every
// reconnect, and every RESYNC_INTERVAL; a resync queues only new, changed or gone rows, and a failed one is
// retried with backoff. At start, settled rows are spread over one CHECK_INTERVAL.
//
// # Leader election
//
// Only one controller acts per database. client-go's leaderelection runs over PostgresLeaseLock, a
// resourcelock.Interface on the leader_leases table whose Update is a compare-and-swap on a version column.
//
//	           acquire (row free or expired)           renew fails for RENEW_DEADLINE
//	standby ─────────────────────────────────▶ leader ─────────────────────────────────▶ exit non-zero
//	   ▲                                          │
//	   │  leader released or expired              │ SIGTERM: stop taking work, finish in-flight reconciles
//	   └──────────────────────────────────────────┤ (at most SHUTDOWN_TIMEOUT), release the lease, exit 0
//	                                              ▼
//	                                           released
//
// A standby takes over within LEASE_DURATION + LEASE_RETRY_PERIOD of the leader's last renewal, or within
// LEASE_RETRY_PERIOD of a release.
//
// # Failure handling
//
//   - Lease lost: the controller's context is cancelled at once and RunAsLeader returns ErrLeaseLost; the
//     process exits non-zero (a controller cannot be started twice). There is no fencing: an old leader may
//     still finish a write for up to RENEW_DEADLINE, and the guarded writes (status and generation
//     compare-and-set) refuse it when the new leader moved the row on.
//   - Notification listener down: it reconnects with backoff and the controller resyncs after each
//     reconnect. Down for longer than its allowed downtime, the controller's Check fails, /healthz answers
//     503, and the Runner stops the process so that the platform restarts it.
//   - A reconcile that panics becomes an error (RecoverPanic) and is retried with backoff; errors go to the
//     rate limiter (per deployment 0.5s → 1min, 50/s overall) and are logged once by controller-runtime.
//   - Any part of the Runner stopping on its own (HTTP server, event stream, controller) fails /healthz and
//     makes Run return its error: no silent half-alive state.
package controllers
