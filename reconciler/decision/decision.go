// Package decision is flightdeck's state machine as a pure function: Decide takes an Observation (the
// deployment row, what Fly and the /status probe said, now, the timings) and returns a Decision (next status,
// reason, messages, the one action to take next, when to come back). It does no I/O, reads no clock and
// imports nothing but the standard library and the status enum, so every rule is a table entry in a test.
//
// # Protocol
//
// A pass calls Decide repeatedly. Each Decision names at most one Action. The data actions (ActionProbe,
// ActionObserveMachine, ActionCreateMachine, ActionUpdateMachine, ActionDestroyMachine) ask the caller to do
// something and call Decide again with the answer recorded in the Observation (Probe, Machine/MachineErr,
// Create, Update, Destroy); Decide asks for each at most once per pass, so a pass ends after at most six
// calls. ActionDeleteRow and ActionNone end the pass. When a Decision both changes the row
// (Transition) and names an action, the caller writes first, then acts (the row says what is being done:
// "Creating Fly machine..." is visible while the machine is created), and continues with the row as
// Apply leaves it. Only the last Decision's RequeueAfter, Jitter and Retry count.
//
// Decide asks Fly only when the rules need it: a running deployment whose probe answers 200 costs no Fly
// call and no write. Stopped deployments read Fly first and are probed only once Fly says the machine runs,
// so probes never wake an autostopped machine.
package decision

import (
	"time"

	"github.com/flightdeck/flightdeck/store/status"
)

// Action is the next thing a pass must do.
type Action int

const (
	// ActionNone: nothing more to do in this pass; write if Transition, then requeue as told.
	ActionNone Action = iota
	// ActionProbe: GET the server's /status (URL from PROBE_URL_TEMPLATE) and record Observation.Probe.
	ActionProbe
	// ActionObserveMachine: GET the Fly machine (with its events) and record Observation.Machine, or
	// Observation.MachineErr when the call fails.
	ActionObserveMachine
	// ActionCreateMachine: create the deployment's machine, idempotently (the machine name and
	// metadata.deployment_id derive from the deployment id, so a create repeated after a crash finds the
	// machine made the first time), and record Observation.Create.
	ActionCreateMachine
	// ActionUpdateMachine: apply the row's current spec to its machine (and make sure it is started: Fly
	// leaves an updated stopped machine stopped) and record Observation.Update.
	ActionUpdateMachine
	// ActionDestroyMachine: destroy the machine with force and record Observation.Destroy; a 404 counts as
	// destroyed. When the row has no valid machine id, look the machine up by its derived name (a create may
	// have happened before a crash) and treat "none" as destroyed.
	ActionDestroyMachine
	// ActionDeleteRow: delete the row; the pass ends.
	ActionDeleteRow
)

var actionNames = map[Action]string{
	ActionNone: "none", ActionProbe: "probe", ActionObserveMachine: "observeMachine",
	ActionCreateMachine: "createMachine", ActionUpdateMachine: "updateMachine",
	ActionDestroyMachine: "destroyMachine", ActionDeleteRow: "deleteRow",
}

// String returns the action's lowerCamelCase name for logs.
func (a Action) String() string {
	if s, ok := actionNames[a]; ok {
		return s
	}
	return "unknown"
}

// Decision is Decide's answer. Status, the two messages, MachineID, PrivateIP and ObservedGeneration are the
// row as it must be after this step; comparing them with the input (Transition) says whether to write.
type Decision struct {
	Status status.Status
	// Reason and Message explain the decision: they go into the event row when the row is written, and
	// into the log otherwise. Message is a sentence a platform user can act on; it never holds a secret.
	Reason  Reason
	Message string
	// ProgressMessage and ErrorMessage are the row's messages ("" = NULL). Decide guarantees that
	// ErrorMessage is "" for running, pending, installing and starting, and ProgressMessage is "" outside
	// pending, installing and starting.
	ProgressMessage string
	ErrorMessage    string
	// MachineID, PrivateIP and ObservedGeneration are the row's machine columns after this step.
	MachineID          string
	PrivateIP          string
	ObservedGeneration int64
	// Entered reports that the row (re)enters Status now: the write must set status_changed_at (so the
	// startup timeout and install deadline count from here). True on every status change, and when an
	// updated machine goes through starting again while the row was already starting.
	Entered bool
	// Action is the next thing to do in this pass (see the package doc).
	Action Action
	// RequeueAfter is when to reconcile again (0 = not until something changes), with ±10% jitter when Jitter
	// is set (see Delay). Meaningful only when Action is ActionNone.
	RequeueAfter time.Duration
	Jitter       bool
	// Retry asks for an error to be returned to controller-runtime, so that its rate limiter retries the
	// pass with exponential backoff (Fly could not be asked). A Transition still gets written first.
	Retry bool
	// PendingConfirmation asks the controller to remember, until the next pass of this deployment, that a
	// probe failed and awaits confirmation (pass it back as Observation.PendingConfirmation).
	PendingConfirmation bool
}

// Transition reports whether the row must be written: the decision's status, messages or machine columns
// differ from the row's, or the status is re-entered. A pass whose decisions all answer false writes
// nothing.
func (d Decision) Transition(from Deployment) bool {
	return d.Entered || d.Status != from.Status ||
		d.ProgressMessage != from.ProgressMessage || d.ErrorMessage != from.ErrorMessage ||
		d.MachineID != from.MachineID || d.PrivateIP != from.PrivateIP ||
		d.ObservedGeneration != from.ObservedGeneration
}

// Apply returns the row as a successful write of this decision at now leaves it: the input for the next
// Decide of the same pass, and what the controller's cache should hold.
func (d Decision) Apply(dep Deployment, now time.Time) Deployment {
	dep.Status = d.Status
	dep.ProgressMessage = d.ProgressMessage
	dep.ErrorMessage = d.ErrorMessage
	dep.MachineID = d.MachineID
	dep.PrivateIP = d.PrivateIP
	dep.ObservedGeneration = d.ObservedGeneration
	if d.Entered {
		dep.StatusChangedAt = now
	}
	return dep
}

// Terminal reports whether the pass ends with nothing left to wait for: no action, no requeue, no retry
// (a failed row, until the record changes).
func (d Decision) Terminal() bool {
	return d.Action == ActionNone && d.RequeueAfter == 0 && !d.Retry
}

// JitterFraction is the spread applied to a jittered requeue: ±10% of the interval, so that thousands of
// deployments checked every CHECK_INTERVAL spread their probes over it.
const JitterFraction = 0.1

// Delay returns RequeueAfter with the jitter applied: random must be uniform in [0, 1) (for example
// rand.Float64()); the result lies in [0.9, 1.1) × RequeueAfter when Jitter is set and is RequeueAfter
// otherwise. The randomness is the caller's, so Decide stays deterministic.
func (d Decision) Delay(random float64) time.Duration {
	if !d.Jitter || d.RequeueAfter <= 0 {
		return d.RequeueAfter
	}
	factor := 1 - JitterFraction + 2*JitterFraction*random
	return time.Duration(float64(d.RequeueAfter) * factor)
}

// carriesError reports whether a row in s may hold an error_message: unhealthy and failed only. The rules
// require NULL for running, pending, installing and starting; stopped is not an error either (Fly stopped
// the machine on purpose), so it carries none.
func carriesError(s status.Status) bool {
	return s == status.Unhealthy || s == status.Failed
}

// carriesProgress reports whether a row in s may hold a progress_message: only on the way up.
func carriesProgress(s status.Status) bool {
	return s == status.Pending || s == status.Installing || s == status.Starting
}
