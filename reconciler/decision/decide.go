package decision

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flightdeck/flightdeck/store/status"
)

// The messages the platform's plan quotes word for word, and the other fixed user-facing texts.
const (
	// ProgressCreating is the progress of an installing row while its machine is created.
	ProgressCreating = "Creating Fly machine..."
	// ProgressCreateRetrying is the progress of an installing row after a transient Fly error.
	ProgressCreateRetrying = "Creating Fly machine... (retrying after a temporary Fly API error)"
	// ProgressUpdating is the progress of an installing row that already names a machine whose config is
	// being updated.
	ProgressUpdating = "Updating Fly machine..."
	// ProgressStarting is the progress of a starting row.
	ProgressStarting = "Installing packages and starting server..."
	// MessageMachineGone is the error of a row whose machine no longer exists.
	MessageMachineGone = "Machine no longer exists"
	// MessageMachineUnreachable is the error of a row whose server cannot be reached while Fly says the
	// machine is started.
	MessageMachineUnreachable = "Machine unreachable"
	// MessageNoMachine is the error of a row past installing that names no machine at all.
	MessageNoMachine = "No Fly machine is recorded for this deployment"
)

// StartupTimeoutMessage is the error of a row that did not answer within the startup timeout: "Server failed
// to start within 60 seconds" (the number is the configured timeout).
func StartupTimeoutMessage(timeout time.Duration) string {
	return "Server failed to start within " + formatSeconds(timeout)
}

// HealthCheckFailedMessage is the error of a row whose /status answered a non-200 code: "Health check
// failed: 500".
func HealthCheckFailedMessage(code int) string {
	return "Health check failed: " + strconv.Itoa(code)
}

// InvalidMachineIDMessage is the error of a row whose machine_id is malformed. The id is quoted (and cut
// short) so that whatever it holds reads as data.
func InvalidMachineIDMessage(id string) string {
	return fmt.Sprintf("Machine id %s is invalid: a Fly machine id is 14 lowercase hexadecimal characters", strconv.Quote(truncate(id, 32)))
}

// Fly machine states (fly-machines-api.md §4), grouped by what they let Decide conclude.
var (
	goneStates      = map[string]bool{"destroyed": true, "destroying": true}
	failedStates    = map[string]bool{"failed": true, "launch_failed": true}
	restingStates   = map[string]bool{"stopped": true, "suspended": true}
	transientStates = map[string]bool{
		"created": true, "creating": true, "starting": true, "stopping": true, "restarting": true,
		"suspending": true, "updating": true, "replacing": true, "replaced": true, "migrated": true,
	}
)

// draft is a Decision under construction, with what finish needs to complete it.
type draft struct {
	Decision
	restart bool // the row re-enters its current status (an update while starting)
	poll    bool // nothing concluded: come back after STARTUP_POLL_INTERVAL
}

// Decide returns the next step for the observed deployment. It is pure: same observation, same decision.
// See the package doc for the protocol and Edges for the transitions it can produce.
func Decide(o Observation) Decision {
	in := o.Deployment
	adopting := !in.Deleted && ValidMachineID(in.MachineID) && in.ObservedGeneration == 0 && in.Generation > 0
	if adopting {
		o.Deployment.ObservedGeneration = in.Generation
	}
	d := decide(o)
	if adopting && d.Status == in.Status && d.ObservedGeneration == in.Generation && !d.restart {
		d.Reason = MachineAdopted
		d.Message = fmt.Sprintf("Adopted the existing Fly machine %s without changing it", in.MachineID)
	}
	return finish(o, in, d)
}

// finish completes a draft: it derives Entered, records the machine's current private IP, enforces the
// message rules (the one place they are enforced) and sets the requeue.
func finish(o Observation, in Deployment, d draft) Decision {
	if m := o.Machine; m != nil && m.PrivateIP != "" && d.MachineID != "" && d.MachineID == in.MachineID && !in.Deleted {
		d.PrivateIP = m.PrivateIP
	}
	d.Entered = d.Status != in.Status || d.restart
	if keepsStartupFailure(in, d.Decision) {
		d.ErrorMessage = in.ErrorMessage
	}
	if !carriesError(d.Status) {
		d.ErrorMessage = ""
	}
	if !carriesProgress(d.Status) {
		d.ProgressMessage = ""
	}
	d.RequeueAfter, d.Jitter = 0, false
	switch {
	case d.Action != ActionNone || d.Retry:
		// Another step follows in this pass, or the rate limiter decides when.
	case d.poll:
		d.RequeueAfter = o.Timings.StartupPollInterval
	case carriesProgress(d.Status):
		d.RequeueAfter = o.Timings.StartupPollInterval
	case d.Status == status.Running || d.Status == status.Unhealthy || d.Status == status.Stopped:
		d.RequeueAfter, d.Jitter = o.Timings.CheckInterval, true
	}
	if d.Action == ActionDeleteRow {
		d.PendingConfirmation = false
	}
	return d.Decision
}

// keepsStartupFailure reports whether a row that failed to start stays unhealthy: its server has not
// answered since (a 200 would have made it running), so "failed to start" remains the truth the user needs
// to read, and the crash loop's changing details (restart counts) do not rewrite the row on every pass.
func keepsStartupFailure(in Deployment, d Decision) bool {
	return in.Status == status.Unhealthy && d.Status == status.Unhealthy &&
		strings.Contains(in.ErrorMessage, "failed to start")
}

// decide routes the observation to the phase that owns it, in order: deletion, a malformed machine id, the
// way up (pending, no machine yet), a spec change, then health by status.
func decide(o Observation) draft {
	dep := o.Deployment
	switch {
	case dep.Deleted:
		return decideDeletion(o)
	case dep.MachineID != "" && !ValidMachineID(dep.MachineID):
		return fail(o, InvalidMachineID, InvalidMachineIDMessage(dep.MachineID), false)
	case dep.Status == status.Pending:
		return decidePending(o)
	case dep.MachineID == "":
		return decideWithoutMachine(o)
	case dep.Generation > dep.ObservedGeneration:
		return decideSpecChange(o)
	}
	switch dep.Status {
	case status.Installing:
		return enterStarting(o, MachineCreated, fmt.Sprintf("Fly machine %s exists; waiting for the server to start", dep.MachineID))
	case status.Starting:
		return decideStarting(o)
	case status.Running, status.Unhealthy:
		return decideHealth(o)
	case status.Stopped:
		return decideStopped(o)
	case status.Failed:
		return keep(o, NeedsSpecChange, "Deployment failed; waiting for a change to its record")
	default:
		return keep(o, UnknownStatus, fmt.Sprintf("Deployment status %q is unknown; nothing done", string(dep.Status)))
	}
}

// decideDeletion destroys the machine of a row marked deleted, then deletes the row. A row that never left
// pending cannot have a machine (the installing write precedes every create) and is deleted at once; any
// other row may have one even without a recorded id (a crash between create and the starting write), so
// the destroy is asked for and the act step looks the machine up by its derived name.
func decideDeletion(o Observation) draft {
	dep := o.Deployment
	if o.Destroy == nil {
		if dep.MachineID == "" && dep.Status == status.Pending {
			d := keep(o, MachineDestroyed, "Deleting the deployment; it never had a machine")
			d.Action = ActionDeleteRow
			return d
		}
		d := keep(o, Deleting, "Destroying the Fly machine of the deleted deployment")
		d.Action = ActionDestroyMachine
		return d
	}
	if err := o.Destroy.Err; err != nil && err.Kind != FlyNotFound {
		d := keep(o, MachineDestroyRetrying, "Destroying the Fly machine failed ("+flyMessage(err)+"); retrying")
		d.Retry = true
		return d
	}
	d := keep(o, MachineDestroyed, "Destroyed the Fly machine; deleting the deployment")
	d.Action = ActionDeleteRow
	return d
}

// decidePending moves a new row to installing and asks for its machine: created when the row names none,
// updated when it names one whose spec is not applied yet. A row that names an adopted machine needs
// nothing more and goes on to starting on the next pass.
func decidePending(o Observation) draft {
	dep := o.Deployment
	d := keep(o, MachineCreating, "Creating the Fly machine")
	d.Status = status.Installing
	d.ProgressMessage = ProgressCreating
	switch {
	case dep.MachineID == "":
		d.Action = ActionCreateMachine
	case dep.Generation > dep.ObservedGeneration:
		d.Reason, d.Message = SpecChanged, fmt.Sprintf("Updating the Fly machine %s to generation %d", dep.MachineID, dep.Generation)
		d.ProgressMessage = ProgressUpdating
		d.Action = ActionUpdateMachine
	default:
		d.Message = fmt.Sprintf("Using the existing Fly machine %s", dep.MachineID)
	}
	return d
}

// decideWithoutMachine handles a row past pending that names no machine: installing creates one; a failed
// row creates one when its spec changed and otherwise waits; any other status has lost its machine.
func decideWithoutMachine(o Observation) draft {
	dep := o.Deployment
	switch dep.Status {
	case status.Installing:
		return decideInstalling(o)
	case status.Failed:
		if dep.Generation > dep.ObservedGeneration {
			d := keep(o, SpecChanged, fmt.Sprintf("Deployment spec changed (generation %d); creating the Fly machine", dep.Generation))
			d.Status = status.Installing
			d.ProgressMessage = ProgressCreating
			d.Action = ActionCreateMachine
			return d
		}
		return keep(o, NeedsSpecChange, "Deployment failed; waiting for a change to its record")
	default:
		return fail(o, MachineGone, MessageNoMachine, true)
	}
}

// decideInstalling ensures the machine of an installing row: it asks for an (idempotent) create, then
// reads the answer. Success leads to starting with the new machine recorded; a permanent refusal fails the
// row with Fly's message; a transient error keeps installing, says so in the progress and retries with
// backoff. Past the install deadline the row fails without another attempt.
func decideInstalling(o Observation) draft {
	dep := o.Deployment
	if o.Create == nil {
		if limit := o.Timings.installTimeout(); elapsed(o) >= limit {
			return fail(o, InstallTimeout, "Fly machine could not be created within "+formatHuman(limit)+"; the Fly API kept failing", true)
		}
		d := keep(o, MachineCreating, "Creating the Fly machine")
		if d.ProgressMessage == "" {
			d.ProgressMessage = ProgressCreating
		}
		d.Action = ActionCreateMachine
		return d
	}
	c := o.Create
	switch {
	case c.Err == nil && c.Machine != nil && c.Machine.ID != "":
		d := enterStarting(o, MachineCreated, fmt.Sprintf("Created the Fly machine %s", c.Machine.ID))
		d.MachineID = c.Machine.ID
		d.PrivateIP = c.Machine.PrivateIP
		d.ObservedGeneration = dep.Generation
		return d
	case c.Err != nil && c.Err.Kind != FlyTransient:
		return fail(o, MachineCreateFailed, "Fly refused to create the machine: "+flyMessage(c.Err), true)
	default:
		detail := "Fly answered without a machine"
		if c.Err != nil {
			detail = flyMessage(c.Err)
		}
		d := keep(o, MachineCreateRetrying, "Creating the Fly machine hit a temporary Fly API error ("+detail+"); retrying")
		d.ProgressMessage = ProgressCreateRetrying
		d.Retry = true
		return d
	}
}

// decideSpecChange applies a changed spec (generation > observed_generation) to the row's machine: it asks
// for an update, then reads the answer. Success sends the row through starting again (from any status);
// a vanished machine or a permanent refusal fails it; a transient error retries with backoff.
func decideSpecChange(o Observation) draft {
	dep := o.Deployment
	if o.Update == nil {
		d := keep(o, SpecChanged, fmt.Sprintf("Deployment spec changed (generation %d); updating the Fly machine %s", dep.Generation, dep.MachineID))
		d.Action = ActionUpdateMachine
		return d
	}
	u := o.Update
	switch {
	case u.Err == nil:
		d := enterStarting(o, MachineUpdated, fmt.Sprintf("Updated the Fly machine %s to generation %d", dep.MachineID, dep.Generation))
		d.ObservedGeneration = dep.Generation
		if u.Machine != nil && u.Machine.PrivateIP != "" {
			d.PrivateIP = u.Machine.PrivateIP
		}
		d.restart = true
		return d
	case u.Err.Kind == FlyNotFound:
		// The record changed and its machine is gone: the new spec gets a new machine, instead of a
		// failure that no further change of the record could mend.
		d := keep(o, MachineRecreating, fmt.Sprintf("The Fly machine %s no longer exists; creating a new one for generation %d", dep.MachineID, dep.Generation))
		d.Status = status.Installing
		d.ProgressMessage = ProgressCreating
		d.MachineID, d.PrivateIP = "", ""
		d.Action = ActionCreateMachine
		return d
	case u.Err.Kind == FlyPermanent:
		return fail(o, MachineUpdateFailed, "Fly refused to update the machine: "+flyMessage(u.Err), true)
	default:
		d := keep(o, FlyUnavailable, "Updating the Fly machine hit a temporary Fly API error ("+flyMessage(u.Err)+"); retrying")
		d.Retry = true
		return d
	}
}

// decideStarting polls a starting row: a 200 makes it running. Otherwise Fly is asked, so that a process
// that exited since the row entered starting (a crash, a crash loop, OOM, a clean exit) is reported at once
// with its exit code; past STARTUP_TIMEOUT (counted from entering starting) the row is unhealthy. A 404 right
// after create is tolerated within the startup window (Fly's GET can lag a create).
func decideStarting(o Observation) draft {
	dep := o.Deployment
	if o.Probe == nil {
		return gather(o, WaitingForServer, "Probing the server", ActionProbe)
	}
	if o.Probe.OK() {
		return moveTo(o, status.Running, ServerReady, "Server answers /status; the deployment is running")
	}
	if o.Machine == nil && o.MachineErr == nil {
		return gather(o, WaitingForServer, "Server is not ready yet ("+o.Probe.Message+"); asking Fly about the machine", ActionObserveMachine)
	}
	timedOut := elapsed(o) >= o.Timings.StartupTimeout
	timeout := func() draft {
		return moveTo(o, status.Unhealthy, StartupTimeout, StartupTimeoutMessage(o.Timings.StartupTimeout))
	}
	if err := o.MachineErr; err != nil {
		switch {
		case err.Kind == FlyNotFound && timedOut:
			return fail(o, MachineGone, MessageMachineGone, true)
		case timedOut:
			return timeout()
		case err.Kind == FlyNotFound:
			return keep(o, WaitingForServer, "Fly does not list the machine yet; waiting")
		default:
			return flyUnavailable(o, err)
		}
	}
	m := o.Machine
	switch {
	case goneStates[m.State]:
		return fail(o, MachineGone, MessageMachineGone, true)
	case startupExit(m, dep.StatusChangedAt) != nil:
		return moveTo(o, status.Unhealthy, ProcessExited, "Server failed to start: "+describeExit(startupExit(m, dep.StatusChangedAt)))
	case failedStates[m.State]:
		return moveTo(o, status.Unhealthy, MachineFailed, "Server failed to start: Fly reports the machine as "+m.State)
	case timedOut:
		return timeout()
	}
	return keep(o, WaitingForServer, "Server is not ready yet ("+o.Probe.Message+"); Fly reports the machine as "+m.State)
}

// decideHealth checks a running or unhealthy row: probe first (a 200 costs nothing more). A failure of a
// running row is confirmed by a re-probe after STARTUP_POLL_INTERVAL before anything changes. A non-200
// answer is unhealthy; an unreachable server is judged by what Fly says about the machine.
func decideHealth(o Observation) draft {
	dep := o.Deployment
	if o.Probe == nil {
		return gather(o, Healthy, "Probing the server", ActionProbe)
	}
	p := o.Probe
	if p.OK() {
		if dep.Status == status.Unhealthy {
			return moveTo(o, status.Running, ProbeSucceeded, "Server answers /status again; the deployment is running")
		}
		return moveTo(o, status.Running, Healthy, "Server answers /status")
	}
	if dep.Status == status.Running && !o.PendingConfirmation {
		return confirm(o)
	}
	if p.Kind == ProbeHTTPStatus {
		return moveTo(o, status.Unhealthy, ProbeFailed, HealthCheckFailedMessage(p.Code))
	}
	if o.Machine == nil && o.MachineErr == nil {
		d := gather(o, MachineUnreachable, "Server cannot be reached ("+p.Message+"); asking Fly about the machine", ActionObserveMachine)
		d.PendingConfirmation = o.PendingConfirmation
		return d
	}
	if err := o.MachineErr; err != nil {
		if err.Kind == FlyNotFound {
			return fail(o, MachineGone, MessageMachineGone, true)
		}
		return flyUnavailable(o, err)
	}
	if d, ok := judgeMachine(o); ok {
		return d
	}
	m := o.Machine
	switch {
	case m.PrivateIP != "" && m.PrivateIP != dep.PrivateIP:
		d := keep(o, MachineAddressChanged, "Fly reports a new private IP for the machine; probing it there")
		d.PendingConfirmation = o.PendingConfirmation
		d.poll = true
		return d
	case recentlyStarted(o, m):
		return grace(o)
	}
	return moveTo(o, status.Unhealthy, MachineUnreachable, MessageMachineUnreachable)
}

// decideStopped re-reads Fly for a stopped row (no probe while Fly says the machine rests, so probes never
// wake it). Once the machine runs again it is probed: a 200 makes the row running; a server that does not
// answer gets the startup grace, then a confirming re-probe, then unhealthy.
func decideStopped(o Observation) draft {
	if o.Machine == nil && o.MachineErr == nil {
		return gather(o, MachineStopped, "Asking Fly whether the machine was started again", ActionObserveMachine)
	}
	if err := o.MachineErr; err != nil {
		if err.Kind == FlyNotFound {
			return fail(o, MachineGone, MessageMachineGone, true)
		}
		return flyUnavailable(o, err)
	}
	if d, ok := judgeMachine(o); ok {
		return d
	}
	m := o.Machine
	if o.Probe == nil {
		return gather(o, MachineStarted, "Fly reports the machine as "+m.State+"; probing the server", ActionProbe)
	}
	p := o.Probe
	switch {
	case p.OK():
		return moveTo(o, status.Running, MachineStarted, "Machine started again and the server answers /status; the deployment is running")
	case recentlyStarted(o, m):
		return grace(o)
	case !o.PendingConfirmation:
		return confirm(o)
	case p.Kind == ProbeHTTPStatus:
		return moveTo(o, status.Unhealthy, ProbeFailed, HealthCheckFailedMessage(p.Code))
	}
	return moveTo(o, status.Unhealthy, MachineUnreachable, MessageMachineUnreachable)
}

// judgeMachine concludes what Fly's view alone settles for a row past starting: a gone machine, a resting
// machine (stopped on request, crashed, or stopped unexpectedly), a crash loop, Fly's failed state, or a
// transient state (nothing concluded). It returns false for a started machine (or a state it does not know):
// then the probe decides.
func judgeMachine(o Observation) (draft, bool) {
	dep, m := o.Deployment, o.Machine
	switch {
	case goneStates[m.State]:
		return fail(o, MachineGone, MessageMachineGone, true), true
	case restingStates[m.State]:
		switch exit := m.LatestExit; {
		case stoppedOnRequest(m):
			if dep.Status == status.Stopped {
				return keep(o, MachineStopped, "Machine is "+m.State+" on request; it starts again on demand"), true
			}
			return moveTo(o, status.Stopped, MachineStopped, "Fly "+m.State+" the machine on request (autostop or a user); it starts again on demand"), true
		case crashExit(exit):
			return moveTo(o, status.Unhealthy, ProcessExited, "Server crashed: "+describeExit(exit)+", and the machine stopped"), true
		case exit != nil:
			return moveTo(o, status.Unhealthy, MachineStoppedUnexpectedly, "Machine stopped unexpectedly: "+describeExit(exit)), true
		default:
			return moveTo(o, status.Unhealthy, MachineStoppedUnexpectedly, "Machine stopped unexpectedly, without a stop request"), true
		}
	case crashLooping(o, m):
		return moveTo(o, status.Unhealthy, ProcessExited, "Server keeps crashing: "+describeExit(m.LatestExit)), true
	case failedStates[m.State]:
		return moveTo(o, status.Unhealthy, MachineFailed, "Fly reports the machine as "+m.State+"; it could not start"), true
	case transientStates[m.State]:
		d := keep(o, MachineBusy, "Fly reports the machine as "+m.State+"; waiting for it to settle")
		d.PendingConfirmation = o.PendingConfirmation
		d.poll = true
		return d, true
	}
	return draft{}, false
}

// confirm holds a first probe failure: nothing changes, and the probe is repeated after
// STARTUP_POLL_INTERVAL with the failure remembered.
func confirm(o Observation) draft {
	d := keep(o, ConfirmingProbeFailure, "Health check failed ("+o.Probe.Message+"); probing again to confirm")
	d.PendingConfirmation = true
	d.poll = true
	return d
}

// grace holds a failure of a machine that started less than STARTUP_TIMEOUT ago: its server may still be
// starting.
func grace(o Observation) draft {
	d := keep(o, StartupGrace, "Machine started recently and its server does not answer yet; waiting")
	d.PendingConfirmation = o.PendingConfirmation
	d.poll = true
	return d
}

// flyUnavailable concludes nothing: Fly could not be asked; the pass is retried with backoff.
func flyUnavailable(o Observation, err *FlyError) draft {
	d := keep(o, FlyUnavailable, "Fly could not be asked about the machine ("+flyMessage(err)+"); retrying")
	d.PendingConfirmation = o.PendingConfirmation
	d.Retry = true
	return d
}

// keep is the no-change draft: the row as it is.
func keep(o Observation, r Reason, msg string) draft {
	dep := o.Deployment
	return draft{Decision: Decision{
		Status: dep.Status, Reason: r, Message: msg,
		ProgressMessage: dep.ProgressMessage, ErrorMessage: dep.ErrorMessage,
		MachineID: dep.MachineID, PrivateIP: dep.PrivateIP, ObservedGeneration: dep.ObservedGeneration,
	}}
}

// gather is a no-change draft that asks for an action.
func gather(o Observation, r Reason, msg string, a Action) draft {
	d := keep(o, r, msg)
	d.Action = a
	return d
}

// moveTo moves the row to s; for unhealthy (an error status) the message is also the error.
func moveTo(o Observation, s status.Status, r Reason, msg string) draft {
	d := keep(o, r, msg)
	d.Status = s
	if carriesError(s) {
		d.ErrorMessage = msg
	}
	return d
}

// enterStarting moves the row to starting with the starting progress.
func enterStarting(o Observation, r Reason, msg string) draft {
	d := moveTo(o, status.Starting, r, msg)
	d.ProgressMessage = ProgressStarting
	return d
}

// fail moves the row to failed with msg as its error. observed records the current generation as
// observed: the failure is this spec's outcome, so the row stays quiet until the spec changes again
// (not for a malformed machine id, which no spec change fixes and which is checked first anyway).
func fail(o Observation, r Reason, msg string, observed bool) draft {
	d := moveTo(o, status.Failed, r, msg)
	d.ErrorMessage = msg
	if observed && o.Deployment.Generation > d.ObservedGeneration {
		d.ObservedGeneration = o.Deployment.Generation
	}
	return d
}

// elapsed is how long the row has been in its status (0 when the store did not say).
func elapsed(o Observation) time.Duration {
	if o.Deployment.StatusChangedAt.IsZero() {
		return 0
	}
	return o.Now.Sub(o.Deployment.StatusChangedAt)
}

// recentlyStarted reports whether the machine's latest start (autostart included) is younger than
// STARTUP_TIMEOUT: its server gets the startup grace.
func recentlyStarted(o Observation, m *Machine) bool {
	return !m.LatestStartAt.IsZero() && o.Now.Sub(m.LatestStartAt) < o.Timings.StartupTimeout
}

// stoppedOnRequest reports whether a resting machine rests on purpose: suspended (Fly suspends only on
// request), a stop event at least as new as the latest exit, or a latest exit that followed a stop request.
func stoppedOnRequest(m *Machine) bool {
	exit := m.LatestExit
	switch {
	case m.State == "suspended":
		return true
	case !m.LatestStopAt.IsZero() && (exit == nil || !m.LatestStopAt.Before(exit.At)):
		return true
	default:
		return exit != nil && exit.RequestedStop
	}
}

// crashExit reports whether e is a crash: not requested, and a non-zero code or an OOM kill.
func crashExit(e *Exit) bool {
	return e != nil && !e.RequestedStop && (e.Code != 0 || e.OOMKilled)
}

// startupExit returns the latest exit if the process ended on its own since the row entered starting
// (any exit code: a server that exits has failed to start), nil otherwise.
func startupExit(m *Machine, since time.Time) *Exit {
	if e := m.LatestExit; e != nil && !e.RequestedStop && !e.At.Before(since) {
		return e
	}
	return nil
}

// crashLooping reports flyctl's crash-loop pattern (newest exit a crash with restarting and restart_count
// > 1), recent enough (within STARTUP_TIMEOUT) to describe the machine now. It overrides the startup grace,
// which every restart would otherwise renew.
func crashLooping(o Observation, m *Machine) bool {
	e := m.LatestExit
	return crashExit(e) && e.Restarting && e.RestartCount > 1 && o.Now.Sub(e.At) < o.Timings.StartupTimeout
}

// describeExit says how the process ended: "the process exited with code 1", "the process ran out of
// memory (OOM)", with the restart count of a crash loop.
func describeExit(e *Exit) string {
	s := "the process exited with code " + strconv.Itoa(e.Code)
	if e.OOMKilled {
		s = "the process ran out of memory (OOM)"
	}
	switch {
	case e.Restarting && e.RestartCount == 1:
		s += " (restarted once)"
	case e.Restarting && e.RestartCount > 1:
		s += fmt.Sprintf(" (restarted %d times)", e.RestartCount)
	}
	return s
}

// flyMessage is Fly's message, trimmed and cut short, or the status code when Fly said nothing.
func flyMessage(e *FlyError) string {
	msg := strings.TrimSpace(e.Message)
	switch {
	case msg != "":
		return truncate(msg, 300)
	case e.StatusCode != 0:
		return "HTTP " + strconv.Itoa(e.StatusCode)
	default:
		return "no response"
	}
}

// truncate cuts s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// formatSeconds writes a duration in seconds: "60 seconds", "1 second", "1.5 seconds".
func formatSeconds(d time.Duration) string {
	if d%time.Second == 0 {
		n := int64(d / time.Second)
		if n == 1 {
			return "1 second"
		}
		return strconv.FormatInt(n, 10) + " seconds"
	}
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + " seconds"
}

// formatHuman writes a duration in whole minutes from two minutes up, in seconds otherwise.
func formatHuman(d time.Duration) string {
	if d >= 2*time.Minute && d%time.Minute == 0 {
		return strconv.FormatInt(int64(d/time.Minute), 10) + " minutes"
	}
	return formatSeconds(d)
}
