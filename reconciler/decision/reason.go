package decision

// Reason says in one CamelCase word why a decision was taken. It is the reason column of the
// deployment_events row written with a transition, a log key, and a metric label; the decision's Message
// says the same thing as a sentence.
type Reason string

const (
	// MachineCreating: a pending row (or a failed row without a machine whose spec changed) moves to
	// installing and the machine is being created.
	MachineCreating Reason = "MachineCreating"
	// MachineCreated: Fly created the machine (or the row already names one): installing → starting.
	MachineCreated Reason = "MachineCreated"
	// MachineCreateFailed: Fly refused to create the machine with a permanent 4xx: installing → failed with
	// Fly's message.
	MachineCreateFailed Reason = "MachineCreateFailed"
	// MachineCreateRetrying: creating the machine hit a transient Fly error; the row stays installing, its
	// progress says it is retrying, and the pass returns an error so that the rate limiter backs off.
	MachineCreateRetrying Reason = "MachineCreateRetrying"
	// InstallTimeout: the row stayed installing past the install deadline: installing → failed.
	InstallTimeout Reason = "InstallTimeout"
	// SpecChanged: the record's spec changed (generation > observed_generation); the machine is updated (or,
	// for a failed row without a machine, created).
	SpecChanged Reason = "SpecChanged"
	// MachineRecreating: the record's spec changed and its machine no longer exists: the row goes back to
	// installing and a new machine is created for the new spec.
	MachineRecreating Reason = "MachineRecreating"
	// MachineUpdated: Fly accepted the new config: the row goes through starting again.
	MachineUpdated Reason = "MachineUpdated"
	// MachineUpdateFailed: Fly refused the new config with a permanent 4xx: → failed with Fly's message.
	MachineUpdateFailed Reason = "MachineUpdateFailed"
	// MachineAdopted: the row came with an existing machine (observed_generation 0): flightdeck records the
	// generation as applied instead of updating a machine that works.
	MachineAdopted Reason = "MachineAdopted"
	// WaitingForServer: starting, and the server does not answer yet; poll again.
	WaitingForServer Reason = "WaitingForServer"
	// ServerReady: /status answered 200 while starting: starting → running.
	ServerReady Reason = "ServerReady"
	// StartupTimeout: STARTUP_TIMEOUT passed without a 200: starting → unhealthy ("Server failed to start
	// within 60 seconds").
	StartupTimeout Reason = "StartupTimeout"
	// ProcessExited: the server process exited when it should run (during startup, a crash loop, or a crash
	// that left the machine stopped): → unhealthy with the exit code or OOM.
	ProcessExited Reason = "ProcessExited"
	// MachineFailed: Fly reports the machine in its failed (or launch_failed) state: → unhealthy.
	MachineFailed Reason = "MachineFailed"
	// ProbeSucceeded: /status answered 200 (running stays running, unhealthy → running).
	ProbeSucceeded Reason = "ProbeSucceeded"
	// ConfirmingProbeFailure: a running (or started-again) deployment failed one probe; nothing changes until
	// a re-probe after STARTUP_POLL_INTERVAL fails too.
	ConfirmingProbeFailure Reason = "ConfirmingProbeFailure"
	// ProbeFailed: /status answered a non-200 code (confirmed): → unhealthy "Health check failed: <code>".
	ProbeFailed Reason = "ProbeFailed"
	// MachineUnreachable: /status cannot be reached (confirmed) while Fly says the machine is started, past
	// its startup grace: → unhealthy "Machine unreachable".
	MachineUnreachable Reason = "MachineUnreachable"
	// MachineStopped: Fly stopped or suspended the machine on request (autostop or a user): → stopped, or
	// stays stopped.
	MachineStopped Reason = "MachineStopped"
	// MachineStoppedUnexpectedly: the machine is stopped without a stop request and without a crash exit
	// (exit code 0, or no exit recorded): → unhealthy.
	MachineStoppedUnexpectedly Reason = "MachineStoppedUnexpectedly"
	// MachineStarted: a stopped deployment's machine was started again (autostart) and answers 200:
	// stopped → running.
	MachineStarted Reason = "MachineStarted"
	// StartupGrace: the machine started less than STARTUP_TIMEOUT ago (autostart included) and does not
	// answer yet: nothing is concluded; poll again.
	StartupGrace Reason = "StartupGrace"
	// MachineBusy: Fly reports a transient machine state (starting, stopping, restarting, replacing,
	// updating, ...) and the probe went unanswered: nothing is concluded; poll again.
	MachineBusy Reason = "MachineBusy"
	// MachineAddressChanged: Fly reports a new private IP for the machine: it is recorded and the server is
	// probed again at the new address before anything is concluded.
	MachineAddressChanged Reason = "MachineAddressChanged"
	// MachineGone: the machine no longer exists (404, destroyed) or the row names none: → failed "Machine
	// no longer exists".
	MachineGone Reason = "MachineGone"
	// InvalidMachineID: the row's machine_id is not 14 lowercase hex characters; it is never probed or sent
	// to Fly: → failed.
	InvalidMachineID Reason = "InvalidMachineID"
	// FlyUnavailable: Fly could not be asked (429, 5xx, timeout) or refused to answer a read: nothing is
	// concluded; the pass is retried with backoff.
	FlyUnavailable Reason = "FlyUnavailable"
	// Healthy: /status answered 200 and nothing changes (also used for a quiet pass of another status).
	Healthy Reason = "Healthy"
	// NeedsSpecChange: the row is failed and nothing but a change to the record can help; nothing to do.
	NeedsSpecChange Reason = "NeedsSpecChange"
	// Deleting: the row is marked deleted; its machine is being destroyed (force).
	Deleting Reason = "Deleting"
	// MachineDestroyed: the machine is destroyed (or there was none); the row is deleted.
	MachineDestroyed Reason = "MachineDestroyed"
	// MachineDestroyRetrying: destroying the machine failed; the row is kept and the pass retried with
	// backoff (a machine is never orphaned to get rid of a row).
	MachineDestroyRetrying Reason = "MachineDestroyRetrying"
	// UnknownStatus: the row's status is not one of the seven; nothing is done.
	UnknownStatus Reason = "UnknownStatus"
)
