package flysim

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/go-logr/logr"
)

// Options configure a Simulator. Durations left at zero are instantaneous
// (the transition still happens asynchronously, after the API answered).
type Options struct {
	// Addr is the API listen address; "127.0.0.1:0" (the default) picks a
	// free port. Only loopback addresses are accepted.
	Addr string
	// Token is the API token, accepted as "Authorization: Bearer <Token>" or
	// "Authorization: FlyV1 <Token>". Required.
	Token string
	// App is the one app the simulator hosts (default "flightdeck-sim");
	// every other app name answers 404 {"error":"app not found"}.
	App string
	// Region is given to machines created without one (default "ord").
	Region string
	// StatusPort is the port each machine's /status server listens on, on the
	// machine's own private IP. 0 picks one free port for all machines of
	// this simulator.
	StatusPort int
	// IPBase is the first private IP handed out; addresses continue in its
	// 127.N.0.0/16 block. Zero picks a random block not used by another
	// simulator of this process, starting at a random point (see the package
	// documentation on addresses).
	IPBase netip.Addr

	// BootDuration is how long created/starting lasts before started.
	BootDuration time.Duration
	// InstallDuration is how long a started machine "runs npm install"
	// before its /status listener opens.
	InstallDuration time.Duration
	// StopDuration is how long stopping, suspending, restarting and the
	// stop of a forced destroy or of an update last.
	StopDuration time.Duration
	// CrashAfter is how long @flightdeck-sim/crash serves before exiting 1.
	CrashAfter time.Duration
	// RestartDelay is how long a machine restarted after an exit stays in
	// starting before it is started again.
	RestartDelay time.Duration
	// DestroyedVisibleFor is how long a destroyed machine stays readable
	// (state "destroyed") before GET answers 404.
	DestroyedVisibleFor time.Duration
	// AutostopIdle, when positive, makes the simulated Fly proxy stop (or
	// suspend) machines whose services set autostop, this long after they
	// started. /status probes do not count as traffic (they do not go through
	// the proxy). Zero turns idle autostop off.
	AutostopIdle time.Duration

	// MissingPackages are npm package names (without version) whose install
	// fails, in addition to anything under "@invalid/" and the built-in
	// "@flightdeck-sim/missing".
	MissingPackages []string

	// Clock drives every timer of the simulator: transitions, /wait
	// timeouts and injected latency (default: the real clock). Timestamps
	// (events, created_at, ULIDs) come from it too.
	Clock Clock
	// Logger receives state changes at V(1) and unexpected errors (default:
	// discard). It never sees the token or env values.
	Logger logr.Logger
}

// Clock is the time source of a Simulator. Tests of code that drives the
// simulator may plug a fake one in.
type Clock interface {
	Now() time.Time
	// AfterFunc runs f in its own goroutine after d.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the function from running; false if it already ran or
	// was stopped.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// withDefaults fills the zero fields that have defaults and validates the
// rest.
func (o Options) withDefaults() (Options, error) {
	if o.Token == "" {
		return o, errors.New("options: Token is required")
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(o.Addr)
	if err != nil {
		return o, fmt.Errorf("options: Addr %q: %w", o.Addr, err)
	}
	if host != "localhost" {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.IsLoopback() {
			return o, fmt.Errorf("options: Addr %q is not a loopback address", o.Addr)
		}
	}
	if o.App == "" {
		o.App = "flightdeck-sim"
	}
	if o.Region == "" {
		o.Region = "ord"
	}
	if o.StatusPort < 0 || o.StatusPort > 65535 {
		return o, fmt.Errorf("options: StatusPort %d out of range", o.StatusPort)
	}
	for name, d := range map[string]time.Duration{"BootDuration": o.BootDuration, "InstallDuration": o.InstallDuration,
		"StopDuration": o.StopDuration, "CrashAfter": o.CrashAfter, "RestartDelay": o.RestartDelay,
		"DestroyedVisibleFor": o.DestroyedVisibleFor, "AutostopIdle": o.AutostopIdle} {
		if d < 0 {
			return o, fmt.Errorf("options: %s is negative", name)
		}
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.Logger.GetSink() == nil {
		o.Logger = logr.Discard()
	}
	return o, nil
}
