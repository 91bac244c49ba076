package decision_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/store/status"
)

// A tableCase is one rule of the state machine: an observation and the whole decision it must produce.
type tableCase struct {
	name string
	obs  decision.Observation
	want decision.Decision
}

func rule(name string, o decision.Observation, r decision.Reason, msg string, opts ...wantOption) tableCase {
	return tableCase{name: name, obs: o, want: expect(o, r, msg, opts...)}
}

var (
	starting  = withStatus(status.Starting)
	unhealthy = []rowOption{withStatus(status.Unhealthy), withError(decision.HealthCheckFailedMessage(500))}
	stopped   = []rowOption{withStatus(status.Stopped), enteredAgo(10 * time.Minute)}
)

func with(base []rowOption, more ...rowOption) []rowOption {
	return append(append([]rowOption{}, base...), more...)
}

const (
	createRefusedMsg = "Fly refused to create the machine: invalid config.guest.memory_mb: must be a multiple of 256"
	updateRefusedMsg = "Fly refused to update the machine: invalid config.guest.memory_mb: must be a multiple of 256"
	busyMsg          = "Fly reports the machine as %s; waiting for it to settle"
	graceMsg         = "Machine started recently and its server does not answer yet; waiting"
	stoppedByFlyMsg  = "Fly stopped the machine on request (autostop or a user); it starts again on demand"
	unreachableAsk   = "Server cannot be reached (connection refused); asking Fly about the machine"
	recreatingMsg    = "The Fly machine " + machineID + " no longer exists; creating a new one for generation 4"
)

// cases lists every rule; the DescribeTable below runs each as an Entry, and the properties after it
// range over all of them.
var cases = func() []tableCase {
	cs := []tableCase{
		// The way up: pending → installing → starting → running.
		rule("a pending deployment moves to installing and asks for its machine to be created",
			observe(row(withoutMachine(), withStatus(status.Pending))),
			decision.MachineCreating, "Creating the Fly machine",
			becomes(status.Installing), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("an installing deployment asks for its machine to be created (idempotently)",
			observe(row(withoutMachine(), withStatus(status.Installing), enteredAgo(5*time.Second))),
			decision.MachineCreating, "Creating the Fly machine", asks(decision.ActionCreateMachine)),
		rule("an installing deployment whose machine Fly created moves to starting with the machine recorded",
			observe(row(withoutMachine(), withStatus(status.Installing), enteredAgo(3*time.Second)),
				created(machine(withMachineIDOf(newMachineID), atIP(newIP)))),
			decision.MachineCreated, "Created the Fly machine "+newMachineID,
			becomes(status.Starting), progress(decision.ProgressStarting), records(newMachineID, newIP), observed(1), pollAgain()),
		rule("a permanent create refusal fails the deployment with Fly's message",
			observe(row(withoutMachine(), withStatus(status.Installing), enteredAgo(3*time.Second)), createFailed(refusal)),
			decision.MachineCreateFailed, createRefusedMsg,
			becomes(status.Failed), progress(""), errorMessage(createRefusedMsg), observed(1)),
		rule("a transient create error keeps installing, says it is retrying and backs off",
			observe(row(withoutMachine(), withStatus(status.Installing), enteredAgo(3*time.Second)), createFailed(unavailable)),
			decision.MachineCreateRetrying, "Creating the Fly machine hit a temporary Fly API error (insufficient capacity); retrying",
			progress(decision.ProgressCreateRetrying), retries()),
		rule("a rate-limited create (429) is retried like any transient error",
			observe(row(withoutMachine(), withStatus(status.Installing), withProgress(decision.ProgressCreateRetrying), enteredAgo(time.Minute)),
				createFailed(rateLimited)),
			decision.MachineCreateRetrying, "Creating the Fly machine hit a temporary Fly API error (rate limit exceeded); retrying",
			retries()),
		rule("installing past its deadline (10 × STARTUP_TIMEOUT) fails without another create",
			observe(row(withoutMachine(), withStatus(status.Installing), withProgress(decision.ProgressCreateRetrying), enteredAgo(10*time.Minute))),
			decision.InstallTimeout, "Fly machine could not be created within 10 minutes; the Fly API kept failing",
			becomes(status.Failed), progress(""), errorMessage("Fly machine could not be created within 10 minutes; the Fly API kept failing"), observed(1)),
		rule("an installing deployment that already names its machine moves to starting",
			observe(row(withStatus(status.Installing), enteredAgo(5*time.Second))),
			decision.MachineCreated, "Fly machine "+machineID+" exists; waiting for the server to start",
			becomes(status.Starting), progress(decision.ProgressStarting), pollAgain()),
		rule("a pending deployment naming a machine with an unapplied spec updates that machine",
			observe(row(withStatus(status.Pending), specChanged())),
			decision.SpecChanged, "Updating the Fly machine "+machineID+" to generation 4",
			becomes(status.Installing), progress(decision.ProgressUpdating), asks(decision.ActionUpdateMachine)),
		rule("a pending deployment inserted with an existing machine adopts it without an update",
			observe(row(withStatus(status.Pending), adopted())),
			decision.MachineCreating, "Using the existing Fly machine "+machineID,
			becomes(status.Installing), progress(decision.ProgressCreating), observed(1), pollAgain()),

		// starting
		rule("a starting deployment is probed",
			observe(row(starting, enteredAgo(10*time.Second))),
			decision.WaitingForServer, "Probing the server", asks(decision.ActionProbe)),
		rule("a starting deployment whose /status answers 200 is running, progress cleared",
			observe(row(starting, enteredAgo(10*time.Second)), probed(answered200)),
			decision.ServerReady, "Server answers /status; the deployment is running",
			becomes(status.Running), progress(""), checkAgain()),
		rule("a starting deployment that does not answer asks Fly about its machine",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused)),
			decision.WaitingForServer, "Server is not ready yet (connection refused); asking Fly about the machine",
			asks(decision.ActionObserveMachine)),
		rule("a starting deployment answering 500 is not ready yet either",
			observe(row(starting, enteredAgo(10*time.Second)), probed(answered(500))),
			decision.WaitingForServer, "Server is not ready yet (HTTP status 500); asking Fly about the machine",
			asks(decision.ActionObserveMachine)),
		rule("a starting deployment whose machine boots keeps polling every STARTUP_POLL_INTERVAL",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused), sawMachine(machine(startedAgo(5*time.Second)))),
			decision.WaitingForServer, "Server is not ready yet (connection refused); Fly reports the machine as started",
			pollAgain()),
		rule("a starting deployment past STARTUP_TIMEOUT is unhealthy: failed to start within 60 seconds",
			observe(row(starting, enteredAgo(61*time.Second)), probed(refused), sawMachine(machine(startedAgo(55*time.Second)))),
			decision.StartupTimeout, "Server failed to start within 60 seconds",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start within 60 seconds"), checkAgain()),
		rule("the startup timeout message names the configured timeout",
			observe(row(starting, enteredAgo(91*time.Second)), probed(refused), sawMachine(machine(startedAgo(90*time.Second))),
				withTimings(decision.Timings{CheckInterval: 30 * time.Second, StartupPollInterval: 2 * time.Second, StartupTimeout: 90 * time.Second})),
			decision.StartupTimeout, "Server failed to start within 90 seconds",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start within 90 seconds"), checkAgain()),
		rule("a startup timeout of a fraction of a second is written as such",
			observe(row(starting, enteredAgo(2*time.Second)), probed(refused), sawMachine(machine(startedAgo(2*time.Second))),
				withTimings(decision.Timings{CheckInterval: 30 * time.Second, StartupPollInterval: 2 * time.Second, StartupTimeout: 1500 * time.Millisecond})),
			decision.StartupTimeout, "Server failed to start within 1.5 seconds",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start within 1.5 seconds"), checkAgain()),
		rule("past STARTUP_TIMEOUT the verdict does not wait for an unavailable Fly",
			observe(row(starting, enteredAgo(61*time.Second)), probed(refused), machineErr(unavailable)),
			decision.StartupTimeout, "Server failed to start within 60 seconds",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start within 60 seconds"), checkAgain()),
		rule("a process that exits during startup is reported at once with its exit code",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused),
				sawMachine(machine(inState("stopped"), startedAgo(8*time.Second), exited(3*time.Second, decision.Exit{Code: 1})))),
			decision.ProcessExited, "Server failed to start: the process exited with code 1",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start: the process exited with code 1"), checkAgain()),
		rule("a process killed for memory during startup is reported at once as OOM",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused),
				sawMachine(machine(inState("starting"), startedAgo(8*time.Second),
					exited(2*time.Second, decision.Exit{Code: 137, OOMKilled: true, Restarting: true, RestartCount: 1})))),
			decision.ProcessExited, "Server failed to start: the process ran out of memory (OOM) (restarted once)",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start: the process ran out of memory (OOM) (restarted once)"), checkAgain()),
		rule("a crash loop during startup is reported at once",
			observe(row(starting, enteredAgo(20*time.Second)), probed(refused),
				sawMachine(machine(startedAgo(time.Second), exited(2*time.Second, decision.Exit{Code: 1, Restarting: true, RestartCount: 3})))),
			decision.ProcessExited, "Server failed to start: the process exited with code 1 (restarted 3 times)",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start: the process exited with code 1 (restarted 3 times)"), checkAgain()),
		rule("an exit from before the row entered starting is not blamed on this start",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused),
				sawMachine(machine(startedAgo(9*time.Second), exited(20*time.Second, decision.Exit{Code: 1})))),
			decision.WaitingForServer, "Server is not ready yet (connection refused); Fly reports the machine as started",
			pollAgain()),
		rule("a machine Fly does not list yet right after create is waited for",
			observe(row(starting, enteredAgo(3*time.Second)), probed(noSuchHost), machineErr(notFound)),
			decision.WaitingForServer, "Fly does not list the machine yet; waiting", pollAgain()),
		rule("a starting machine still missing after STARTUP_TIMEOUT is gone",
			observe(row(starting, enteredAgo(61*time.Second)), probed(noSuchHost), machineErr(notFound)),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), progress(""), errorMessage(decision.MessageMachineGone)),
		rule("a starting machine that was destroyed fails the deployment: Machine no longer exists",
			observe(row(starting, enteredAgo(10*time.Second)), probed(noSuchHost), sawMachine(machine(inState("destroyed")))),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), progress(""), errorMessage(decision.MessageMachineGone)),
		rule("a starting machine in Fly's failed state failed to start",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused), sawMachine(machine(inState("failed")))),
			decision.MachineFailed, "Server failed to start: Fly reports the machine as failed",
			becomes(status.Unhealthy), progress(""), errorMessage("Server failed to start: Fly reports the machine as failed"), checkAgain()),
		rule("a starting deployment concludes nothing when Fly cannot be asked",
			observe(row(starting, enteredAgo(10*time.Second)), probed(refused), machineErr(unavailable)),
			decision.FlyUnavailable, "Fly could not be asked about the machine (insufficient capacity); retrying", retries()),

		// running: the four health cases of the plan, and the rules around them.
		rule("a running deployment is probed",
			observe(row()),
			decision.Healthy, "Probing the server", asks(decision.ActionProbe)),
		rule("a healthy running deployment stays running: no write, no Fly call, next check in CHECK_INTERVAL ± 10%",
			observe(row(), probed(answered200)),
			decision.Healthy, "Server answers /status", checkAgain()),
		rule("a first failed probe changes nothing and is confirmed after STARTUP_POLL_INTERVAL",
			observe(row(), probed(answered(500))),
			decision.ConfirmingProbeFailure, "Health check failed (HTTP status 500); probing again to confirm",
			keepsConfirmation(), pollAgain()),
		rule("a confirmed 500 makes a running deployment unhealthy: Health check failed: 500",
			observe(row(), probed(answered(500)), confirming()),
			decision.ProbeFailed, "Health check failed: 500",
			becomes(status.Unhealthy), errorMessage("Health check failed: 500"), checkAgain()),
		rule("a redirect is a failed health check, not followed",
			observe(row(), probed(answered(302)), confirming()),
			decision.ProbeFailed, "Health check failed: 302",
			becomes(status.Unhealthy), errorMessage("Health check failed: 302"), checkAgain()),
		rule("a first unanswered probe costs no Fly call: it is confirmed first",
			observe(row(), probed(refused)),
			decision.ConfirmingProbeFailure, "Health check failed (connection refused); probing again to confirm",
			keepsConfirmation(), pollAgain()),
		rule("a confirmed unanswered probe asks Fly about the machine",
			observe(row(), probed(refused), confirming()),
			decision.MachineUnreachable, unreachableAsk,
			asks(decision.ActionObserveMachine), keepsConfirmation()),
		rule("a running deployment whose machine Fly stopped on request (autostop) is stopped",
			observe(row(), probed(noSuchHost), confirming(), sawMachine(machine(stoppedOnRequest()))),
			decision.MachineStopped, stoppedByFlyMsg,
			becomes(status.Stopped), checkAgain()),
		rule("a running deployment whose machine Fly suspended is stopped",
			observe(row(), probed(refused), confirming(), sawMachine(machine(inState("suspended")))),
			decision.MachineStopped, "Fly suspended the machine on request (autostop or a user); it starts again on demand",
			becomes(status.Stopped), checkAgain()),
		rule("a stop event newer than the last exit makes the stop a requested one",
			observe(row(), probed(refused), confirming(),
				sawMachine(machine(inState("stopped"), exited(10*time.Minute, decision.Exit{Code: 1}), stopRequestedAgo(5*time.Minute)))),
			decision.MachineStopped, stoppedByFlyMsg,
			becomes(status.Stopped), checkAgain()),
		rule("an unreachable machine that Fly says is started is unhealthy: Machine unreachable",
			observe(row(), probed(refused), confirming(), sawMachine(machine())),
			decision.MachineUnreachable, decision.MessageMachineUnreachable,
			becomes(status.Unhealthy), errorMessage(decision.MessageMachineUnreachable), checkAgain()),
		rule("a probe that times out on a started machine is Machine unreachable too",
			observe(row(), probed(timedOut), confirming(), sawMachine(machine())),
			decision.MachineUnreachable, decision.MessageMachineUnreachable,
			becomes(status.Unhealthy), errorMessage(decision.MessageMachineUnreachable), checkAgain()),
		rule("a machine that crashed and stopped is unhealthy, not stopped",
			observe(row(), probed(refused), confirming(),
				sawMachine(machine(inState("stopped"), exited(time.Minute, decision.Exit{Code: 1})))),
			decision.ProcessExited, "Server crashed: the process exited with code 1, and the machine stopped",
			becomes(status.Unhealthy), errorMessage("Server crashed: the process exited with code 1, and the machine stopped"), checkAgain()),
		rule("a machine stopped after an OOM kill is unhealthy and says out of memory",
			observe(row(), probed(refused), confirming(),
				sawMachine(machine(inState("stopped"), exited(time.Minute, decision.Exit{Code: 137, OOMKilled: true})))),
			decision.ProcessExited, "Server crashed: the process ran out of memory (OOM), and the machine stopped",
			becomes(status.Unhealthy), errorMessage("Server crashed: the process ran out of memory (OOM), and the machine stopped"), checkAgain()),
		rule("a machine whose server exited 0 without a stop request is unhealthy",
			observe(row(), probed(refused), confirming(),
				sawMachine(machine(inState("stopped"), exited(time.Minute, decision.Exit{Code: 0})))),
			decision.MachineStoppedUnexpectedly, "Machine stopped unexpectedly: the process exited with code 0",
			becomes(status.Unhealthy), errorMessage("Machine stopped unexpectedly: the process exited with code 0"), checkAgain()),
		rule("a stopped machine with neither a stop request nor an exit is unhealthy",
			observe(row(), probed(refused), confirming(), sawMachine(machine(inState("stopped")))),
			decision.MachineStoppedUnexpectedly, "Machine stopped unexpectedly, without a stop request",
			becomes(status.Unhealthy), errorMessage("Machine stopped unexpectedly, without a stop request"), checkAgain()),
		rule("a crash-looping machine is unhealthy although it just restarted",
			observe(row(), probed(refused), confirming(),
				sawMachine(machine(startedAgo(time.Second), exited(3*time.Second, decision.Exit{Code: 1, Restarting: true, RestartCount: 3})))),
			decision.ProcessExited, "Server keeps crashing: the process exited with code 1 (restarted 3 times)",
			becomes(status.Unhealthy), errorMessage("Server keeps crashing: the process exited with code 1 (restarted 3 times)"), checkAgain()),
		rule("a deployment that failed to start and keeps crashing keeps its failed-to-start error",
			observe(row(withStatus(status.Unhealthy), withError("Server failed to start: the process exited with code 1")), probed(refused),
				sawMachine(machine(startedAgo(time.Second), exited(3*time.Second, decision.Exit{Code: 1, Restarting: true, RestartCount: 3})))),
			decision.ProcessExited, "Server keeps crashing: the process exited with code 1 (restarted 3 times)",
			errorMessage("Server failed to start: the process exited with code 1"), checkAgain()),
		rule("a machine restarted recently gets the startup grace: nothing concluded",
			observe(row(), probed(refused), confirming(), sawMachine(machine(startedAgo(10*time.Second)))),
			decision.StartupGrace, graceMsg, keepsConfirmation(), pollAgain()),
		rule("a machine Fly no longer has (404) fails the deployment: Machine no longer exists",
			observe(row(), probed(noSuchHost), confirming(), machineErr(notFound)),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), errorMessage(decision.MessageMachineGone)),
		rule("a destroyed machine fails the deployment: Machine no longer exists",
			observe(row(), probed(noSuchHost), confirming(), sawMachine(machine(inState("destroyed")))),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), errorMessage(decision.MessageMachineGone)),
		rule("when Fly cannot be asked (429) nothing is concluded and the pass is retried",
			observe(row(), probed(refused), confirming(), machineErr(rateLimited)),
			decision.FlyUnavailable, "Fly could not be asked about the machine (rate limit exceeded); retrying",
			retries(), keepsConfirmation()),
		rule("a machine at a new private IP is recorded and probed again there before any verdict",
			observe(row(), probed(refused), confirming(), sawMachine(machine(atIP(newIP)))),
			decision.MachineAddressChanged, "Fly reports a new private IP for the machine; probing it there",
			records(machineID, newIP), keepsConfirmation(), pollAgain()),
		rule("a machine in Fly's failed state is unhealthy",
			observe(row(), probed(refused), confirming(), sawMachine(machine(inState("failed")))),
			decision.MachineFailed, "Fly reports the machine as failed; it could not start",
			becomes(status.Unhealthy), errorMessage("Fly reports the machine as failed; it could not start"), checkAgain()),

		// unhealthy
		rule("an unhealthy deployment answering 200 is running again, error cleared",
			observe(row(unhealthy...), probed(answered200)),
			decision.ProbeSucceeded, "Server answers /status again; the deployment is running",
			becomes(status.Running), errorMessage(""), checkAgain()),
		rule("an unhealthy deployment still answering 500 changes nothing",
			observe(row(unhealthy...), probed(answered(500))),
			decision.ProbeFailed, "Health check failed: 500", checkAgain()),
		rule("an unhealthy deployment answering another code gets the new code in its error",
			observe(row(unhealthy...), probed(answered(502))),
			decision.ProbeFailed, "Health check failed: 502", errorMessage("Health check failed: 502"), checkAgain()),
		rule("an unanswered probe of an unhealthy deployment needs no confirmation to ask Fly",
			observe(row(unhealthy...), probed(refused)),
			decision.MachineUnreachable, unreachableAsk, asks(decision.ActionObserveMachine)),
		rule("an unhealthy deployment whose machine Fly stopped on request is stopped, error cleared",
			observe(row(unhealthy...), probed(refused), sawMachine(machine(stoppedOnRequest()))),
			decision.MachineStopped, stoppedByFlyMsg,
			becomes(status.Stopped), errorMessage(""), checkAgain()),
		rule("an unhealthy deployment whose machine is unreachable says Machine unreachable",
			observe(row(unhealthy...), probed(refused), sawMachine(machine())),
			decision.MachineUnreachable, decision.MessageMachineUnreachable,
			errorMessage(decision.MessageMachineUnreachable), checkAgain()),
		rule("an unhealthy deployment whose machine is gone fails",
			observe(row(unhealthy...), probed(noSuchHost), machineErr(notFound)),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), errorMessage(decision.MessageMachineGone)),

		// stopped
		rule("a stopped deployment reads Fly's state first, without probing",
			observe(row(stopped...)),
			decision.MachineStopped, "Asking Fly whether the machine was started again", asks(decision.ActionObserveMachine)),
		rule("a stopped deployment whose machine still rests stays stopped without a write",
			observe(row(stopped...), sawMachine(machine(stoppedOnRequest()))),
			decision.MachineStopped, "Machine is stopped on request; it starts again on demand", checkAgain()),
		rule("a stopped deployment whose machine was started again is probed",
			observe(row(stopped...), sawMachine(machine(startedAgo(3*time.Second)))),
			decision.MachineStarted, "Fly reports the machine as started; probing the server", asks(decision.ActionProbe)),
		rule("an autostarted machine that answers 200 makes the deployment running",
			observe(row(stopped...), sawMachine(machine(startedAgo(3*time.Second))), probed(answered200)),
			decision.MachineStarted, "Machine started again and the server answers /status; the deployment is running",
			becomes(status.Running), checkAgain()),
		rule("an autostarted machine whose server is still starting gets the startup grace, never unhealthy",
			observe(row(stopped...), sawMachine(machine(startedAgo(3*time.Second))), probed(refused)),
			decision.StartupGrace, graceMsg, pollAgain()),
		rule("an autostarted machine answering 503 within the grace concludes nothing either",
			observe(row(stopped...), sawMachine(machine(startedAgo(3*time.Second))), probed(answered(503))),
			decision.StartupGrace, graceMsg, pollAgain()),
		rule("a machine Fly is starting again is waited for",
			observe(row(stopped...), sawMachine(machine(inState("starting")))),
			decision.MachineBusy, "Fly reports the machine as starting; waiting for it to settle", pollAgain()),
		rule("a stopped deployment whose machine crashed is unhealthy",
			observe(row(stopped...), sawMachine(machine(inState("stopped"), exited(time.Minute, decision.Exit{Code: 2})))),
			decision.ProcessExited, "Server crashed: the process exited with code 2, and the machine stopped",
			becomes(status.Unhealthy), errorMessage("Server crashed: the process exited with code 2, and the machine stopped"), checkAgain()),
		rule("a started machine that stays unanswered past the grace is confirmed first",
			observe(row(stopped...), sawMachine(machine(startedAgo(5*time.Minute))), probed(refused)),
			decision.ConfirmingProbeFailure, "Health check failed (connection refused); probing again to confirm",
			keepsConfirmation(), pollAgain()),
		rule("a started machine confirmed unanswered past the grace is unhealthy",
			observe(row(stopped...), sawMachine(machine(startedAgo(5*time.Minute))), probed(refused), confirming()),
			decision.MachineUnreachable, decision.MessageMachineUnreachable,
			becomes(status.Unhealthy), errorMessage(decision.MessageMachineUnreachable), checkAgain()),
		rule("a started machine confirmed answering 500 past the grace is unhealthy with the code",
			observe(row(stopped...), sawMachine(machine(startedAgo(5*time.Minute))), probed(answered(500)), confirming()),
			decision.ProbeFailed, "Health check failed: 500",
			becomes(status.Unhealthy), errorMessage("Health check failed: 500"), checkAgain()),
		rule("a stopped deployment whose machine is gone fails",
			observe(row(stopped...), machineErr(notFound)),
			decision.MachineGone, decision.MessageMachineGone,
			becomes(status.Failed), errorMessage(decision.MessageMachineGone)),
		rule("a stopped deployment concludes nothing when Fly cannot be asked",
			observe(row(stopped...), machineErr(unavailable)),
			decision.FlyUnavailable, "Fly could not be asked about the machine (insufficient capacity); retrying", retries()),

		// failed
		rule("a failed deployment waits for a change to its record, with no requeue",
			observe(row(withStatus(status.Failed), withError(decision.MessageMachineGone))),
			decision.NeedsSpecChange, "Deployment failed; waiting for a change to its record"),
		rule("a failed deployment without a machine whose spec changed goes back to installing",
			observe(row(withoutMachine(), withStatus(status.Failed), withError(createRefusedMsg), func(d *decision.Deployment) { d.Generation, d.ObservedGeneration = 2, 1 })),
			decision.SpecChanged, "Deployment spec changed (generation 2); creating the Fly machine",
			becomes(status.Installing), errorMessage(""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("a failed deployment without a machine and no spec change stays failed",
			observe(row(withoutMachine(), withStatus(status.Failed), withError(createRefusedMsg), func(d *decision.Deployment) { d.ObservedGeneration = 1 })),
			decision.NeedsSpecChange, "Deployment failed; waiting for a change to its record"),
		rule("a failed deployment with a machine whose spec changed asks for an update",
			observe(row(withStatus(status.Failed), withError(updateRefusedMsg), specChanged())),
			decision.SpecChanged, "Deployment spec changed (generation 4); updating the Fly machine "+machineID,
			asks(decision.ActionUpdateMachine)),

		// spec changes
		rule("a running deployment whose spec changed asks for its machine to be updated",
			observe(row(specChanged())),
			decision.SpecChanged, "Deployment spec changed (generation 4); updating the Fly machine "+machineID,
			asks(decision.ActionUpdateMachine)),
		rule("a starting deployment updated again goes through starting again from the start",
			observe(row(starting, enteredAgo(50*time.Second), specChanged()), updated(machine())),
			decision.MachineUpdated, "Updated the Fly machine "+machineID+" to generation 4",
			reenters(), observed(4), pollAgain()),
		rule("a machine update Fly refuses fails the deployment with Fly's message",
			observe(row(specChanged()), updateFailed(refusal)),
			decision.MachineUpdateFailed, updateRefusedMsg,
			becomes(status.Failed), errorMessage(updateRefusedMsg), observed(4)),
		rule("a running deployment whose spec changed and whose machine is gone gets a new machine",
			observe(row(specChanged()), updateFailed(notFound)),
			decision.MachineRecreating, recreatingMsg,
			becomes(status.Installing), records("", ""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("a starting deployment whose spec changed and whose machine is gone gets a new machine",
			observe(row(starting, enteredAgo(10*time.Second), specChanged()), updateFailed(notFound)),
			decision.MachineRecreating, recreatingMsg,
			becomes(status.Installing), records("", ""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("an unhealthy deployment whose spec changed and whose machine is gone gets a new machine",
			observe(row(with(unhealthy, specChanged())...), updateFailed(notFound)),
			decision.MachineRecreating, recreatingMsg,
			becomes(status.Installing), records("", ""), errorMessage(""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("a stopped deployment whose spec changed and whose machine is gone gets a new machine",
			observe(row(with(stopped, specChanged())...), updateFailed(notFound)),
			decision.MachineRecreating, recreatingMsg,
			becomes(status.Installing), records("", ""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("a failed deployment whose machine is gone gets a new machine when its spec changes",
			observe(row(withStatus(status.Failed), withError(decision.MessageMachineGone), specChanged()), updateFailed(notFound)),
			decision.MachineRecreating, recreatingMsg,
			becomes(status.Installing), records("", ""), errorMessage(""), progress(decision.ProgressCreating), asks(decision.ActionCreateMachine)),
		rule("a machine update that hits a transient error is retried, nothing changed",
			observe(row(specChanged()), updateFailed(unavailable)),
			decision.FlyUnavailable, "Updating the Fly machine hit a temporary Fly API error (insufficient capacity); retrying",
			retries()),

		// deletion
		rule("a deleted deployment has its machine destroyed",
			observe(row(markedDeleted())),
			decision.Deleting, "Destroying the Fly machine of the deleted deployment", asks(decision.ActionDestroyMachine)),
		rule("a deleted deployment whose machine is destroyed has its row deleted",
			observe(row(markedDeleted()), destroyed()),
			decision.MachineDestroyed, "Destroyed the Fly machine; deleting the deployment", asks(decision.ActionDeleteRow)),
		rule("a machine already gone counts as destroyed",
			observe(row(markedDeleted()), destroyFailed(notFound)),
			decision.MachineDestroyed, "Destroyed the Fly machine; deleting the deployment", asks(decision.ActionDeleteRow)),
		rule("a destroy that fails keeps the row and is retried",
			observe(row(markedDeleted()), destroyFailed(unavailable)),
			decision.MachineDestroyRetrying, "Destroying the Fly machine failed (insufficient capacity); retrying", retries()),
		rule("a destroy Fly refuses keeps the row too: a machine is never orphaned",
			observe(row(markedDeleted()), destroyFailed(refusal)),
			decision.MachineDestroyRetrying, "Destroying the Fly machine failed (invalid config.guest.memory_mb: must be a multiple of 256); retrying", retries()),
		rule("a deleted pending deployment that never had a machine is deleted at once",
			observe(row(withoutMachine(), withStatus(status.Pending), markedDeleted())),
			decision.MachineDestroyed, "Deleting the deployment; it never had a machine", asks(decision.ActionDeleteRow)),
		rule("a deleted installing deployment without a recorded machine still destroys (a create may have happened)",
			observe(row(withoutMachine(), withStatus(status.Installing), markedDeleted())),
			decision.Deleting, "Destroying the Fly machine of the deleted deployment", asks(decision.ActionDestroyMachine)),

		// malformed machine ids
		rule("a malformed machine id is never probed: failed with an error saying the machine id is invalid",
			observe(row(withMachineID("../../v1/apps"))),
			decision.InvalidMachineID, `Machine id "../../v1/apps" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`,
			becomes(status.Failed), errorMessage(`Machine id "../../v1/apps" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`)),
		rule("an upper-case machine id of a pending deployment is malformed too",
			observe(row(withStatus(status.Pending), withMachineID("1857156B526DD8"))),
			decision.InvalidMachineID, `Machine id "1857156B526DD8" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`,
			becomes(status.Failed), errorMessage(`Machine id "1857156B526DD8" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`)),
		rule("a machine id of 15 characters is malformed",
			observe(row(starting, withMachineID("a5c5de9ce64ca12"))),
			decision.InvalidMachineID, `Machine id "a5c5de9ce64ca12" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`,
			becomes(status.Failed), progress(""), errorMessage(`Machine id "a5c5de9ce64ca12" is invalid: a Fly machine id is 14 lowercase hexadecimal characters`)),

		// adoption, rows without a machine, message hygiene
		rule("a row inserted running with an existing machine is adopted without an update",
			observe(row(adopted())),
			decision.MachineAdopted, "Adopted the existing Fly machine "+machineID+" without changing it",
			asks(decision.ActionProbe), observed(1)),
		rule("a running row that names no machine fails",
			observe(row(withoutMachine())),
			decision.MachineGone, decision.MessageNoMachine,
			becomes(status.Failed), errorMessage(decision.MessageNoMachine), observed(1)),
		rule("a running row carrying a stale error gets it cleared",
			observe(row(withError("Health check failed: 500")), probed(answered200)),
			decision.Healthy, "Server answers /status", errorMessage(""), checkAgain()),
		rule("a stopped row carrying a stale progress gets it cleared",
			observe(row(with(stopped, withProgress(decision.ProgressStarting))...), sawMachine(machine(stoppedOnRequest()))),
			decision.MachineStopped, "Machine is stopped on request; it starts again on demand", progress(""), checkAgain()),
	}

	// Fly's transient machine states conclude nothing.
	for _, state := range []string{"starting", "stopping", "restarting", "replacing", "updating", "created"} {
		cs = append(cs, rule("while Fly reports "+state+", an unanswered probe concludes nothing",
			observe(row(), probed(refused), confirming(), sawMachine(machine(inState(state)))),
			decision.MachineBusy, "Fly reports the machine as "+state+"; waiting for it to settle",
			keepsConfirmation(), pollAgain()))
	}
	// An accepted update sends every status with a machine through starting again.
	for _, from := range []status.Status{status.Installing, status.Running, status.Unhealthy, status.Stopped, status.Failed} {
		dep := row(withStatus(from), specChanged())
		if from == status.Unhealthy || from == status.Failed {
			dep.ErrorMessage = "Health check failed: 500"
		}
		cs = append(cs, rule("an updated machine sends a "+string(from)+" deployment through starting again",
			observe(dep, updated(machine())),
			decision.MachineUpdated, "Updated the Fly machine "+machineID+" to generation 4",
			becomes(status.Starting), progress(decision.ProgressStarting), errorMessage(""), observed(4), pollAgain()))
	}
	return cs
}()

var _ = Describe("Decide", func() {
	entries := make([]TableEntry, 0, len(cases))
	for _, c := range cases {
		entries = append(entries, Entry(c.name, c))
	}
	DescribeTable("returns the whole decision for each rule",
		func(c tableCase) {
			Expect(decision.Decide(c.obs)).To(Equal(c.want))
		},
		entries,
	)

	It("never writes an error_message for running, pending, installing or starting, nor a progress_message outside the way up", func() {
		for _, c := range cases {
			d := decision.Decide(c.obs)
			switch d.Status {
			case status.Running, status.Pending, status.Installing, status.Starting:
				Expect(d.ErrorMessage).To(BeEmpty(), c.name)
			}
			if d.Status != status.Pending && d.Status != status.Installing && d.Status != status.Starting {
				Expect(d.ProgressMessage).To(BeEmpty(), c.name)
			}
		}
	})

	It("produces only legal edges", func() {
		for _, c := range cases {
			d := decision.Decide(c.obs)
			Expect(decision.Legal(c.obs.Deployment.Status, d.Status)).To(BeTrue(),
				"%s: %s → %s", c.name, c.obs.Deployment.Status, d.Status)
		}
	})

	It("walks every legal edge in at least one rule", func() {
		walked := map[[2]status.Status]bool{}
		for _, c := range cases {
			walked[[2]status.Status{c.obs.Deployment.Status, decision.Decide(c.obs).Status}] = true
		}
		for from, tos := range decision.Edges {
			for _, to := range tos {
				Expect(walked).To(HaveKey([2]status.Status{from, to}), "no rule walks %s → %s", from, to)
			}
		}
	})

	It("lists every status in the edge table", func() {
		for _, s := range status.All() {
			Expect(decision.Edges).To(HaveKey(s))
		}
	})

	It("asks for each answer at most once, and requeues only when the pass ends", func() {
		for _, c := range cases {
			d := decision.Decide(c.obs)
			switch d.Action {
			case decision.ActionProbe:
				Expect(c.obs.Probe).To(BeNil(), c.name)
			case decision.ActionObserveMachine:
				Expect(c.obs.Machine == nil && c.obs.MachineErr == nil).To(BeTrue(), c.name)
			case decision.ActionCreateMachine:
				Expect(c.obs.Create).To(BeNil(), c.name)
			case decision.ActionUpdateMachine:
				Expect(c.obs.Update).To(BeNil(), c.name)
			case decision.ActionDestroyMachine:
				Expect(c.obs.Destroy).To(BeNil(), c.name)
			}
			if d.Action != decision.ActionNone || d.Retry {
				Expect(d.RequeueAfter).To(BeZero(), c.name)
			}
			if d.Retry {
				Expect(d.Action).To(Equal(decision.ActionNone), c.name)
			}
			Expect(d.Reason).NotTo(BeEmpty(), c.name)
			Expect(d.Message).NotTo(BeEmpty(), c.name)
		}
	})

	It("enters a status exactly when it changes it (or restarts starting)", func() {
		for _, c := range cases {
			d := decision.Decide(c.obs)
			if d.Status != c.obs.Deployment.Status {
				Expect(d.Entered).To(BeTrue(), c.name)
			}
			if d.Entered {
				Expect(d.Transition(c.obs.Deployment)).To(BeTrue(), c.name)
			}
		}
	})
})
