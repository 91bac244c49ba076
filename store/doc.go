// Package store is flightdeck's PostgreSQL layer: the embedded schema
// migrations, the Deployment and Event types, intent-named queries, the
// leader lease used for leader election, and a LISTEN/NOTIFY listener.
//
// No SQL lives outside this package, and every query is parameterised.
//
// # Schema
//
// deployments holds one row per deployment. The platform's API owns the spec
// (name, package, env) and the deletion mark (deleted_at); the controller owns
// the status columns (status, progress_message, error_message,
// observed_generation, status_changed_at) and the machine columns
// (machine_id, private_ip, region). A trigger bumps generation whenever the
// spec changes or the deletion mark is set or cleared, so a controller write
// guarded on the generation it saw fails once the record has moved on.
//
// Every column beyond name and package has a default: INSERT INTO deployments
// (name, package) VALUES ('a', 'b') is a new pending deployment, and a row
// inserted with a machine_id and status 'running' is an existing machine the
// controller adopts. deployment_events holds the status history, one row per
// status change, deleted with its deployment. leader_leases holds the leader
// election lease.
//
// # Notifications
//
// Triggers NOTIFY, with the deployment id as payload, on two channels:
//
//   - ChannelDeployments (flightdeck_deployments): a row was inserted or
//     deleted, its spec changed, or it was marked deleted (or unmarked).
//     Never for the controller's own writes, so the controller does not wake
//     itself up.
//   - ChannelStatus (flightdeck_status): any visible change of a row (insert,
//     delete, any changed column), for live views such as the dashboard.
//
// A Listener holds one dedicated connection, reconnects with backoff and
// reports each reconnect, since notifications sent while it was away are lost
// and its caller must resync.
//
// # Legacy upgrade
//
// The first migration also upgrades the platform's pre-existing deployments
// table. Supported shapes: a table named deployments in the search path with
// at least name and package columns (any type castable through text), an
// optional id (uuid, or text holding uuids; added with fresh uuids if
// missing) that is the primary key or there is no primary key, and an
// optional status column of type text, varchar or another enum. Known status
// values are converted, NULL becomes pending, and CHECK constraints on the
// status column alone (status IN (...)) are dropped, the enum taking their
// place; other objects depending on the text type of status (a view, a
// partial index comparing it with text) stop the migration with PostgreSQL's
// error. Missing columns are added with
// their defaults; columns of a compatible other type are converted through
// text (varchar to text, timestamp to timestamptz in the session time zone,
// json or text to jsonb); other columns are kept as they are. Any status value
// that is not one of the seven stops Migrate with a *LegacyStatusError listing
// every offending value, before anything is written. Rows breaking the checks
// (for example a name longer than 128 characters) stop the migration with
// PostgreSQL's error, and the transaction leaves the table unchanged.
//
// # Errors
//
// Methods return ErrNotFound and ErrConflict (test with errors.Is) and a
// *ValidationError for bad input, which is checked before the database is
// touched.
package store
