package decision

import (
	"regexp"
	"time"

	"github.com/flightdeck/flightdeck/store/status"
)

// Timings are the configured probe timings (CHECK_INTERVAL, STARTUP_POLL_INTERVAL, STARTUP_TIMEOUT) plus the
// installing deadline. Decide assumes every field it uses is positive; config validates them.
type Timings struct {
	// CheckInterval is the steady-state period: running, unhealthy and stopped deployments are re-checked this
	// often (±10% jitter, see Decision.Delay).
	CheckInterval time.Duration
	// StartupPollInterval is the quick period: starting deployments are probed this often, and a failed probe
	// is confirmed by a re-probe after it.
	StartupPollInterval time.Duration
	// StartupTimeout bounds starting (counted from the moment the row entered starting) and is the grace a
	// freshly started machine gets before an unanswered probe counts against it.
	StartupTimeout time.Duration
	// InstallTimeout bounds installing (counted from the moment the row entered installing): past it, a
	// machine that Fly would not create (transient errors only) is given up on and the row is failed.
	// Zero means DefaultInstallTimeoutFactor × StartupTimeout (10 minutes with the defaults).
	InstallTimeout time.Duration
}

// DefaultInstallTimeoutFactor gives the installing deadline when Timings.InstallTimeout is zero: long enough
// to ride out a Fly API incident with backoff, short enough that a user hears about a deployment that never
// got a machine.
const DefaultInstallTimeoutFactor = 10

// DefaultTimings returns the documented defaults: 30s check interval, 2s startup poll, 60s startup timeout and
// the derived 10 minute install deadline.
func DefaultTimings() Timings {
	return Timings{CheckInterval: 30 * time.Second, StartupPollInterval: 2 * time.Second, StartupTimeout: 60 * time.Second}
}

// installTimeout returns the installing deadline, derived from StartupTimeout when not set.
func (t Timings) installTimeout() time.Duration {
	if t.InstallTimeout > 0 {
		return t.InstallTimeout
	}
	return DefaultInstallTimeoutFactor * t.StartupTimeout
}

// Deployment is the part of a deployments row that the decision reads (and, through Decision, writes).
// The package spec and env are not here on purpose: Decide never needs them, so they cannot leak into a
// message.
type Deployment struct {
	ID     string
	Status status.Status
	// ProgressMessage and ErrorMessage are the row's messages; "" stands for NULL.
	ProgressMessage string
	ErrorMessage    string
	// MachineID is the Fly machine id recorded for the row; "" when none is (yet).
	MachineID string
	// PrivateIP is the machine's 6PN address as last seen from Fly ("" when unknown).
	PrivateIP string
	// Generation counts spec changes made by the platform; ObservedGeneration is the generation whose spec
	// the machine carries. ObservedGeneration 0 with a machine id means the row came with an existing machine
	// that flightdeck has not applied a spec to: it is adopted as is, not updated (see MachineAdopted).
	Generation         int64
	ObservedGeneration int64
	// StatusChangedAt is when the row entered its current status (set by the store on every write whose
	// Decision.Entered is true, and only then). STARTUP_TIMEOUT and the install deadline count from it.
	StatusChangedAt time.Time
	// Deleted reports that the row is marked for deletion.
	Deleted bool
}

// Machine is what Fly says about the deployment's machine (GET /apps/{app}/machines/{id}, plus its events).
type Machine struct {
	ID string
	// State is Fly's machine state ("started", "stopped", "suspended", "starting", "destroyed", ...).
	State string
	// PrivateIP is the machine's 6PN address.
	PrivateIP string
	// LatestStartAt is the time of the newest start or launch event, autostart by the Fly proxy included;
	// zero when unknown.
	LatestStartAt time.Time
	// LatestStopAt is the time of the newest stop or suspend event (a stop asked for by a user or by the Fly
	// proxy's autostop); zero when none.
	LatestStopAt time.Time
	// LatestExit is the newest exit event, nil when none.
	LatestExit *Exit
}

// Exit is a Fly "exit" machine event: the main process ended.
type Exit struct {
	// Code is the process exit code.
	Code int
	// OOMKilled reports that the kernel killed the process for running out of memory.
	OOMKilled bool
	// RequestedStop reports that the exit followed a stop request (user, autostop, update).
	RequestedStop bool
	// Restarting reports that Fly is restarting the process (restart policy); RestartCount counts the
	// restarts in the current window.
	Restarting   bool
	RestartCount int
	// At is the event's timestamp.
	At time.Time
}

// ProbeKind classifies the outcome of one GET of the server's /status.
type ProbeKind int

const (
	// ProbeOther is any failure not classified below (also the zero value, so an unset result never
	// passes for a healthy one).
	ProbeOther ProbeKind = iota
	// ProbeOK: the server answered 200.
	ProbeOK
	// ProbeHTTPStatus: the server answered with another status code (a 3xx included: redirects are not
	// followed).
	ProbeHTTPStatus
	// ProbeRefused: the connection was refused.
	ProbeRefused
	// ProbeReset: the connection was reset or closed before a response.
	ProbeReset
	// ProbeTimeout: no answer within PROBE_TIMEOUT (or the dial timeout).
	ProbeTimeout
	// ProbeDNS: the host name did not resolve (Fly's .internal DNS drops stopped machines).
	ProbeDNS
)

var probeKindNames = map[ProbeKind]string{
	ProbeOther: "other", ProbeOK: "ok", ProbeHTTPStatus: "http_status", ProbeRefused: "refused",
	ProbeReset: "reset", ProbeTimeout: "timeout", ProbeDNS: "dns",
}

// String returns the kind as a lower-case metric label value ("ok", "http_status", "refused", ...).
func (k ProbeKind) String() string {
	if s, ok := probeKindNames[k]; ok {
		return s
	}
	return "unknown"
}

// ProbeResult is the classified outcome of one probe.
type ProbeResult struct {
	Kind ProbeKind
	// Code is the HTTP status code for ProbeOK (200) and ProbeHTTPStatus, 0 otherwise.
	Code int
	// Message is a short description for logs and events ("connection refused", "timed out after 5s",
	// "HTTP status 500"); it never carries the URL.
	Message string
}

// OK reports whether the server answered 200.
func (r ProbeResult) OK() bool { return r.Kind == ProbeOK }

// FlyErrorKind classifies a failed Fly Machines API call by what it lets the decision conclude.
type FlyErrorKind int

const (
	// FlyTransient: Fly could not be asked (429, 5xx, 408, 409, timeout, network). Nothing is concluded;
	// the pass is retried with backoff. The zero value, so an unclassified error concludes nothing.
	FlyTransient FlyErrorKind = iota
	// FlyNotFound: 404, the machine (or app) does not exist.
	FlyNotFound
	// FlyPermanent: any other 4xx: Fly refused the request and asking again will not change that.
	FlyPermanent
)

// String returns "transient", "not_found" or "permanent".
func (k FlyErrorKind) String() string {
	switch k {
	case FlyNotFound:
		return "not_found"
	case FlyPermanent:
		return "permanent"
	default:
		return "transient"
	}
}

// ClassifyFlyStatus maps the HTTP status code of a failed Fly API call to its kind. Code 0 stands for "no
// response" (timeout, network error) and is transient. 408 (ambiguous timeout), 409 (lease held, concurrent
// change) and 429 (rate limit) are transient like 5xx; 404 is NotFound; other 4xx are permanent.
func ClassifyFlyStatus(code int) FlyErrorKind {
	switch {
	case code == 404:
		return FlyNotFound
	case code == 408 || code == 409 || code == 429:
		return FlyTransient
	case code >= 400 && code < 500:
		return FlyPermanent
	default:
		return FlyTransient
	}
}

// FlyError is a failed Fly API call as the decision sees it.
type FlyError struct {
	Kind FlyErrorKind
	// StatusCode is the HTTP status, 0 when no response arrived.
	StatusCode int
	// Message is Fly's error message. It may reach a user (error_message of a failed row), so the Fly
	// client must pass it on only when it carries no secret; Decide truncates it.
	Message string
}

// FlyResult is the outcome of a Fly call Decide asked for (create, update or destroy): Machine on success
// (nil for destroy), Err on failure.
type FlyResult struct {
	Machine *Machine
	Err     *FlyError
}

// Observation is everything one pass knows: the row, now, the timings, and the answers to the actions Decide
// asked for earlier in the same pass. A nil pointer means "not asked (yet)".
type Observation struct {
	Now        time.Time
	Timings    Timings
	Deployment Deployment
	// PendingConfirmation carries Decision.PendingConfirmation from the previous pass of the same
	// deployment: the previous probe failed and this pass's probe confirms or clears it. The controller
	// keeps it in memory; losing it (restart) only costs one extra re-probe.
	PendingConfirmation bool
	// Probe is the result of ActionProbe.
	Probe *ProbeResult
	// Machine and MachineErr are the result of ActionObserveMachine (GET the machine).
	Machine    *Machine
	MachineErr *FlyError
	// Create, Update and Destroy are the results of ActionCreateMachine, ActionUpdateMachine and
	// ActionDestroyMachine.
	Create  *FlyResult
	Update  *FlyResult
	Destroy *FlyResult
}

var machineIDPattern = regexp.MustCompile(`^[0-9a-f]{14}$`)

// ValidMachineID reports whether id is a Fly machine id: exactly 14 lowercase hexadecimal characters. Only
// such ids may go into a URL (probe) or a Fly API path.
func ValidMachineID(id string) bool { return machineIDPattern.MatchString(id) }
