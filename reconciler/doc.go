// Package reconciler keeps each deployment row true to the world: it gathers what the row, Fly and the
// server's /status say, lets the pure state machine in package decision decide, and acts on the decision
// (create, update or destroy the Fly machine, write the row, delete it). Package probe does the /status
// GETs. The controller (package controllers) runs one Reconcile per deployment id from its work queue.
//
// # State machine
//
// Seven statuses (store/status); decision.Edges is the table of legal moves, and a test walks every edge.
//
//	pending ──▶ installing ──▶ starting ──▶ running ◀────▶ unhealthy
//	                │             │           │  ▲            ▲  ▲
//	                ▼             │           ▼  │            │  │
//	             failed           │         stopped ──────────┘  │
//	                              └──────────────────────────────┘
//
// What moves a row along each edge:
//
//   - pending → installing: at once, to create the machine.
//   - installing → starting: the machine exists; → failed: Fly refused the create, or the deadline passed.
//   - starting → running: /status answers 200; → unhealthy: STARTUP_TIMEOUT passed or the process exited.
//   - running ⇄ unhealthy: a confirmed non-200 or unreachable server / a 200 again.
//   - running, unhealthy → stopped: unreachable and Fly stopped the machine on request (autostop).
//   - stopped → running: started again and answering 200; → unhealthy: it crashed, or it runs and stays
//     silent past the startup grace.
//   - any status with a machine → failed: machine gone, malformed machine id, update refused;
//     → starting: the spec changed and the machine was updated; → installing: the spec changed and the
//     machine is gone, so a new one is created.
//   - failed → installing (no machine, or it is gone) or starting (machine updated) when the spec changes.
//
// Each pass re-observes: a status written earlier is a hint, never proof. A pass calls decision.Decide,
// performs the one action it asks for (probe, read the machine, create, update, destroy), records the
// answer and decides again, until the decision asks for nothing more. Decide asks Fly only when the rules
// need it, so a healthy deployment costs one probe: no Fly call, no database round trip, no write.
//
// Timing: installing and starting are polled every STARTUP_POLL_INTERVAL; running, unhealthy and stopped
// every CHECK_INTERVAL with ±10% jitter (decision.Decision.Delay); failed rows are not requeued until the
// row changes. STARTUP_TIMEOUT counts from the moment the row entered starting; a machine whose latest
// start (autostart included) is younger than STARTUP_TIMEOUT gets the same grace, so a stopped deployment
// that autostarts becomes running without passing through unhealthy. A failed probe of a running deployment
// is confirmed by one re-probe after STARTUP_POLL_INTERVAL before anything changes, so detection takes at
// most CHECK_INTERVAL (+10%) + PROBE_TIMEOUT + STARTUP_POLL_INTERVAL + PROBE_TIMEOUT.
//
// # Writes
//
// Every change is one guarded compare-and-set (WHERE id = $1 AND status = $old AND generation = $gen) plus
// one deployment_events row (decision reason and message) in one transaction; status_changed_at moves only
// when the decision says Entered. A pass whose decisions report no Transition writes nothing. When a
// decision both changes the row and asks for an action, the row is written first (the user sees
// "Creating Fly machine..." while the machine is created), then the action runs.
//
// # Failure handling
//
//   - Fly cannot be asked (429, 5xx, 408, 409, timeout, network): nothing is concluded, the status stays,
//     and Reconcile returns an error so that controller-runtime's rate limiter retries with backoff. A
//     transient create error also updates the installing progress to say it is retrying; installing that
//     outlasts its deadline (10 × STARTUP_TIMEOUT by default) fails.
//   - Fly refuses (other 4xx): the row fails with Fly's message; it stays failed, without requeue, until its
//     spec changes (generation > observed_generation).
//   - The machine is gone (404, destroyed): failed, "Machine no longer exists". Right after a create, a 404
//     is tolerated for STARTUP_TIMEOUT, because Fly's reads can lag its writes.
//   - The controller dies mid-pass: the next pass re-observes. Create is idempotent (machine name and
//     metadata.deployment_id derive from the deployment id), so dying between create and the starting
//     write never makes a second machine; a deleted row without a recorded machine is looked up by that
//     name before the row goes.
//   - A guarded write conflicts (the row changed, or another controller wrote): the cached row is refreshed
//     from the database and the deployment requeued at once; nothing acted on a stale row is written.
//   - The probe-confirmation marker (decision.Decision.PendingConfirmation) lives in memory only: losing it
//     in a restart costs one extra re-probe, never a wrong status.
//   - A malformed machine_id is never put into a URL or a Fly API path: the row fails with an error that
//     says the machine id is invalid.
package reconciler
