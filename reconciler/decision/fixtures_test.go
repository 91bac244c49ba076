package decision_test

import (
	"strconv"
	"time"

	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/store/status"
)

// The fake clock: every observation happens at now; the fixtures place events relative to it.
var now = time.Date(2026, 8, 1, 12, 0, 0, 0, time.UTC)

const (
	machineID    = "1857156b526dd8"
	newMachineID = "3d8d413b29d089"
	privateIP    = "fdaa:0:1:a7b:195:e229:8038:2"
	newIP        = "fdaa:0:1:a7b:195:e229:8038:9"
)

var timings = decision.DefaultTimings()

// ago returns the fake time d before now.
func ago(d time.Duration) time.Time { return now.Add(-d) }

type rowOption func(*decision.Deployment)

// row builds a deployment row: by default running for an hour on machineID, generation 3 applied.
func row(opts ...rowOption) decision.Deployment {
	d := decision.Deployment{
		ID: "5f0c6d9e-2d1b-4c1e-9a53-0c1d2e3f4a5b", Status: status.Running,
		MachineID: machineID, PrivateIP: privateIP, Generation: 3, ObservedGeneration: 3,
		StatusChangedAt: ago(time.Hour),
	}
	for _, o := range opts {
		o(&d)
	}
	return d
}

// withStatus sets the status with the progress message the controller writes with it.
func withStatus(s status.Status) rowOption {
	return func(d *decision.Deployment) {
		d.Status = s
		switch s {
		case status.Installing:
			d.ProgressMessage = decision.ProgressCreating
		case status.Starting:
			d.ProgressMessage = decision.ProgressStarting
		}
	}
}

func withError(msg string) rowOption { return func(d *decision.Deployment) { d.ErrorMessage = msg } }
func withProgress(msg string) rowOption {
	return func(d *decision.Deployment) { d.ProgressMessage = msg }
}
func withMachineID(id string) rowOption { return func(d *decision.Deployment) { d.MachineID = id } }
func enteredAgo(d time.Duration) rowOption {
	return func(dep *decision.Deployment) { dep.StatusChangedAt = ago(d) }
}
func markedDeleted() rowOption { return func(d *decision.Deployment) { d.Deleted = true } }

// withoutMachine is a row that names no machine yet: a new record (generation 1, nothing applied).
func withoutMachine() rowOption {
	return func(d *decision.Deployment) {
		d.MachineID, d.PrivateIP, d.Generation, d.ObservedGeneration = "", "", 1, 0
	}
}

// specChanged bumps the generation past the observed one.
func specChanged() rowOption {
	return func(d *decision.Deployment) { d.Generation = d.ObservedGeneration + 1 }
}

// adopted is a row inserted with an existing machine: observed_generation 0.
func adopted() rowOption {
	return func(d *decision.Deployment) { d.Generation, d.ObservedGeneration = 1, 0 }
}

type machineOption func(*decision.Machine)

// machine builds Fly's view: by default started an hour ago at privateIP, no exit.
func machine(opts ...machineOption) *decision.Machine {
	m := &decision.Machine{ID: machineID, State: "started", PrivateIP: privateIP, LatestStartAt: ago(time.Hour)}
	for _, o := range opts {
		o(m)
	}
	return m
}

func inState(s string) machineOption { return func(m *decision.Machine) { m.State = s } }
func startedAgo(d time.Duration) machineOption {
	return func(m *decision.Machine) { m.LatestStartAt = ago(d) }
}
func atIP(ip string) machineOption            { return func(m *decision.Machine) { m.PrivateIP = ip } }
func withMachineIDOf(id string) machineOption { return func(m *decision.Machine) { m.ID = id } }
func stopRequestedAgo(d time.Duration) machineOption {
	return func(m *decision.Machine) { m.LatestStopAt = ago(d) }
}

// exited records the newest exit event, d ago.
func exited(d time.Duration, e decision.Exit) machineOption {
	return func(m *decision.Machine) {
		e.At = ago(d)
		m.LatestExit = &e
	}
}

// stoppedOnRequest is a machine Fly stopped on request (autostop): stop event, then a requested exit.
func stoppedOnRequest() machineOption {
	return func(m *decision.Machine) {
		m.State = "stopped"
		m.LatestStopAt = ago(5 * time.Minute)
		m.LatestExit = &decision.Exit{Code: 0, RequestedStop: true, At: ago(5 * time.Minute)}
	}
}

type obsOption func(*decision.Observation)

// observe builds the observation of dep at now with the default timings.
func observe(dep decision.Deployment, opts ...obsOption) decision.Observation {
	o := decision.Observation{Now: now, Timings: timings, Deployment: dep}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

var (
	answered200 = decision.ProbeResult{Kind: decision.ProbeOK, Code: 200, Message: "HTTP status 200"}
	refused     = decision.ProbeResult{Kind: decision.ProbeRefused, Message: "connection refused"}
	timedOut    = decision.ProbeResult{Kind: decision.ProbeTimeout, Message: "timed out after 5s"}
	noSuchHost  = decision.ProbeResult{Kind: decision.ProbeDNS, Message: "DNS lookup failed: no such host"}
)

func answered(code int) decision.ProbeResult {
	return decision.ProbeResult{Kind: decision.ProbeHTTPStatus, Code: code, Message: "HTTP status " + strconv.Itoa(code)}
}

func probed(r decision.ProbeResult) obsOption {
	return func(o *decision.Observation) { o.Probe = &r }
}
func sawMachine(m *decision.Machine) obsOption {
	return func(o *decision.Observation) { o.Machine = m }
}
func machineErr(e decision.FlyError) obsOption {
	return func(o *decision.Observation) { o.MachineErr = &e }
}
func confirming() obsOption { return func(o *decision.Observation) { o.PendingConfirmation = true } }
func created(m *decision.Machine) obsOption {
	return func(o *decision.Observation) { o.Create = &decision.FlyResult{Machine: m} }
}
func createFailed(e decision.FlyError) obsOption {
	return func(o *decision.Observation) { o.Create = &decision.FlyResult{Err: &e} }
}
func updated(m *decision.Machine) obsOption {
	return func(o *decision.Observation) { o.Update = &decision.FlyResult{Machine: m} }
}
func updateFailed(e decision.FlyError) obsOption {
	return func(o *decision.Observation) { o.Update = &decision.FlyResult{Err: &e} }
}
func destroyed() obsOption {
	return func(o *decision.Observation) { o.Destroy = &decision.FlyResult{} }
}
func destroyFailed(e decision.FlyError) obsOption {
	return func(o *decision.Observation) { o.Destroy = &decision.FlyResult{Err: &e} }
}
func withTimings(t decision.Timings) obsOption {
	return func(o *decision.Observation) { o.Timings = t }
}

var (
	notFound    = decision.FlyError{Kind: decision.FlyNotFound, StatusCode: 404, Message: "machine not found"}
	rateLimited = decision.FlyError{Kind: decision.FlyTransient, StatusCode: 429, Message: "rate limit exceeded"}
	unavailable = decision.FlyError{Kind: decision.FlyTransient, StatusCode: 503, Message: "insufficient capacity"}
	refusal     = decision.FlyError{Kind: decision.FlyPermanent, StatusCode: 422, Message: "invalid config.guest.memory_mb: must be a multiple of 256"}
)

type wantOption func(*decision.Decision)

// expect builds the whole expected decision: by default the row unchanged, no action, no requeue; the
// options state every difference.
func expect(o decision.Observation, r decision.Reason, msg string, opts ...wantOption) decision.Decision {
	dep := o.Deployment
	d := decision.Decision{
		Status: dep.Status, Reason: r, Message: msg,
		ProgressMessage: dep.ProgressMessage, ErrorMessage: dep.ErrorMessage,
		MachineID: dep.MachineID, PrivateIP: dep.PrivateIP, ObservedGeneration: dep.ObservedGeneration,
	}
	for _, opt := range opts {
		opt(&d)
	}
	return d
}

// becomes is a status change (status_changed_at restarts).
func becomes(s status.Status) wantOption {
	return func(d *decision.Decision) { d.Status, d.Entered = s, true }
}
func reenters() wantOption               { return func(d *decision.Decision) { d.Entered = true } }
func progress(msg string) wantOption     { return func(d *decision.Decision) { d.ProgressMessage = msg } }
func errorMessage(msg string) wantOption { return func(d *decision.Decision) { d.ErrorMessage = msg } }
func asks(a decision.Action) wantOption  { return func(d *decision.Decision) { d.Action = a } }
func requeue(t time.Duration) wantOption { return func(d *decision.Decision) { d.RequeueAfter = t } }
func observed(gen int64) wantOption      { return func(d *decision.Decision) { d.ObservedGeneration = gen } }
func records(id, ip string) wantOption {
	return func(d *decision.Decision) { d.MachineID, d.PrivateIP = id, ip }
}
func retries() wantOption { return func(d *decision.Decision) { d.Retry = true } }
func keepsConfirmation() wantOption {
	return func(d *decision.Decision) { d.PendingConfirmation = true }
}
func checkAgain() wantOption {
	return func(d *decision.Decision) { d.RequeueAfter, d.Jitter = timings.CheckInterval, true }
}
func pollAgain() wantOption { return requeue(timings.StartupPollInterval) }
