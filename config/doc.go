// Package config holds flightdeck's configuration: one Config struct, its
// documented defaults, loading from environment variables and same-named flags
// (flags win), validation that reports every problem at once naming the
// variable and the bad value, and printing that never shows a secret.
//
// # Variables
//
// Each variable is also a flag: lowercase with dashes (CHECK_INTERVAL is
// --check-interval). Durations use Go's syntax (30s, 1m30s, 500ms).
//
//	variable                   default                                            meaning
//	DATABASE_URL               -                                                  PostgreSQL URL or key=value connection string (password redacted when printed)
//	FLY_API_BASE_URL           https://api.machines.dev                           Machines API base; the client puts its paths under /v1
//	FLY_API_TOKEN              -                                                  secret; sent as Authorization: Bearer (FlyV1 for macaroon tokens)
//	FLY_APP_NAME               -                                                  the Fly app the machines live in (lowercase letters, digits, dashes)
//	FLY_RUNNER_IMAGE           registry.fly.io/flightdeck-runner:latest           image of created machines (config.image)
//	PROBE_URL_TEMPLATE         http://{machine_id}.vm.{app}.internal:8080/status  placeholders {machine_id}, {app}, {private_ip}
//	CHECK_INTERVAL             30s                                                probe period of running, unhealthy and stopped deployments
//	STARTUP_POLL_INTERVAL      2s                                                 probe period of starting deployments; delay of a confirming re-probe
//	STARTUP_TIMEOUT            1m                                                 how long a deployment may stay starting
//	PROBE_TIMEOUT              5s                                                 time limit of one probe
//	HTTP_ADDR                  127.0.0.1:8080                                     API, dashboard, health and metrics (empty host: all interfaces)
//	API_TOKEN                  -                                                  secret; bearer token of the write endpoints; empty disables writes
//	LOG_FORMAT                 json                                               json or console
//	LOG_LEVEL                  info                                               debug, info, warn or error
//	MAX_CONCURRENT_RECONCILES  64                                                 reconciles at once (see DefaultMaxConcurrentReconciles)
//	LEADER_ELECT               true                                               hold a lease in PostgreSQL: one active controller per database
//	LEASE_DURATION             15s                                                takeover delay after a leader dies (whole seconds)
//	LEASE_RENEW_DEADLINE       10s                                                the leader steps down when it cannot renew for this long
//	LEASE_RETRY_PERIOD         2s                                                 lease try/renew period
//	LEADER_ID                  <hostname>_<8 random hex digits>                   this process's identity in the lease
//	MIGRATE                    true                                               flightdeck run applies migrations first
//	RESYNC_INTERVAL            5m                                                 full re-list of the deployments besides NOTIFY
//	SHUTDOWN_TIMEOUT           30s                                                SIGTERM's grace for in-flight work
//
// Variables and MarkdownTable return the same table for docs, Usage prints it
// for -h.
//
// # Rules
//
// Validate checks, besides each value's form: every duration is greater than
// zero; PROBE_TIMEOUT < CHECK_INTERVAL and < STARTUP_TIMEOUT;
// STARTUP_POLL_INTERVAL <= CHECK_INTERVAL and <= STARTUP_TIMEOUT;
// LEASE_DURATION > LEASE_RENEW_DEADLINE > 1.2 × LEASE_RETRY_PERIOD (client-go
// leaderelection's own rule); 1 <= MAX_CONCURRENT_RECONCILES <= 10000. Which
// variables are required depends on the subcommand: RequiredForRun
// (DATABASE_URL, FLY_API_TOKEN, FLY_APP_NAME) and RequiredForMigrate
// (DATABASE_URL).
//
// # Secrets
//
// FLY_API_TOKEN and API_TOKEN are Secret values and DATABASE_URL a ConnString:
// String, every fmt verb (%v, %+v, %#v, %s, %q, %x), JSON, log/slog and logr
// print "[redacted]" in place of the secret (a ConnString keeps the host and
// database visible and hides only the password). Config itself prints the
// same way, so logging a whole Config at start-up is safe. Value returns the
// real string where it is needed. Errors never quote a secret. RedactURL is the
// same redaction for any URL or connection string.
//
// # Probe URLs
//
// PROBE_URL_TEMPLATE is only ever rendered through ProbeTemplate.Render (or
// Config.ProbeURL), which validates the machine id (14 lowercase hex digits),
// the app name and the private IP (printed back from its parsed form, IPv6 in
// brackets) before they go into the URL.
package config
