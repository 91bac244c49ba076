package flysim

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Machine states (reference §4).
const (
	stateCreated    = "created"
	stateStarting   = "starting"
	stateStarted    = "started"
	stateStopping   = "stopping"
	stateStopped    = "stopped"
	stateSuspending = "suspending"
	stateSuspended  = "suspended"
	stateRestarting = "restarting"
	stateReplacing  = "replacing"
	stateDestroying = "destroying"
	stateDestroyed  = "destroyed"
)

// Event sources.
const (
	sourceUser  = "user"
	sourceFlyd  = "flyd"
	sourceProxy = "proxy"
)

// maxEvents is how many events a machine keeps; GET shows the newest
// getEvents of them and the events endpoint at most maxEventsLimit.
const (
	maxEvents      = 50
	getEvents      = 20
	maxEventsLimit = 50
)

// packageKind is how the simulated npm package behaves.
type packageKind int

const (
	kindNormal  packageKind = iota // installs, then /status answers 200
	kindMissing                    // install fails: exit 1
	kindCrash                      // serves 200, exits 1 after CrashAfter
	kindHTTP500                    // /status answers 500
	kindHang                       // /status accepts and never answers
	kindOOM                        // killed by the OOM killer at the end of install: exit 137
)

// Built-in package names.
const (
	PackageMissing = "@flightdeck-sim/missing"
	PackageCrash   = "@flightdeck-sim/crash"
	PackageHTTP500 = "@flightdeck-sim/http-500"
	PackageHang    = "@flightdeck-sim/hang"
	PackageOOM     = "@flightdeck-sim/oom"
)

// packageName strips the version from an npm spec: "@scope/name@1.2.3" ->
// "@scope/name", "name@latest" -> "name".
func packageName(spec string) string {
	spec = strings.TrimSpace(spec)
	start := 0
	if strings.HasPrefix(spec, "@") {
		start = 1
	}
	if i := strings.Index(spec[start:], "@"); i >= 0 {
		return spec[:start+i]
	}
	return spec
}

// classify decides how a package behaves.
func (s *Simulator) classify(spec string) packageKind {
	name := packageName(spec)
	switch {
	case strings.HasPrefix(name, "@invalid/"), name == PackageMissing, s.missing[name]:
		return kindMissing
	case name == PackageCrash:
		return kindCrash
	case name == PackageHTTP500:
		return kindHTTP500
	case name == PackageHang:
		return kindHang
	case name == PackageOOM:
		return kindOOM
	}
	return kindNormal
}

// event is a machine event as the simulator stores it.
type event struct {
	id                  string
	typ, status, source string
	at                  time.Time
	request             *eventRequest
}

// process is the machine's main process (the npm runner) between boot and
// exit. A suspended machine keeps its frozen process and resumes it.
type process struct {
	installed bool // npm install finished and the server listened
}

// lease is a machine lease (reference §2.9).
type lease struct {
	nonce       string
	owner       string
	description string
	version     string
	expiresAt   time.Time
}

// machine is one simulated Fly machine. Every field is guarded by the
// simulator's mutex.
type machine struct {
	seq        uint64
	id, name   string
	region     string
	instanceID string
	ip         netip.Addr
	cfg        machineConfig
	rawConfig  json.RawMessage // normalised echo; replaced, never mutated
	kind       packageKind
	state      string
	launching  bool // created and booting (not skip_launch): not settled
	cordoned   bool
	createdAt  time.Time
	updatedAt  time.Time
	events     []event // oldest first

	epoch  uint64  // bumped by every transition; stale timers see a different epoch and do nothing
	timers []Timer // pending timers of this epoch

	proc         *process
	restartCount int         // restarts since the last start by a user or the proxy
	restartTimes []time.Time // restarts within restartWindow, for max_retries
	server       *instance   // the /status server, while it listens
	override     *behavior   // /status behaviour forced through the control API
	lease        *lease
	changed      chan struct{} // closed and replaced on every state change (wakes /wait)
}

// setState moves m to state and wakes waiters.
func (s *Simulator) setState(m *machine, state string) {
	if m.state == state {
		return
	}
	m.state = state
	m.updatedAt = s.clock.Now()
	close(m.changed)
	m.changed = make(chan struct{})
	s.log.V(1).Info("Machine state changed", "machineID", m.id, "state", state)
}

// addEvent records an event, dropping the oldest past maxEvents.
func (s *Simulator) addEvent(m *machine, typ, status, source string, req *eventRequest) {
	now := s.clock.Now()
	m.events = append(m.events, event{id: s.ulids.New(now), typ: typ, status: status, source: source, at: now, request: req})
	if len(m.events) > maxEvents {
		m.events = append(m.events[:0:0], m.events[len(m.events)-maxEvents:]...)
	}
}

// cancel invalidates every pending timer of m.
func (s *Simulator) cancel(m *machine) {
	m.epoch++
	for _, t := range m.timers {
		t.Stop()
	}
	m.timers = nil
}

// after runs fn with s.mu held after d, unless m changed epoch (another
// transition happened) or the simulator closed in between.
func (s *Simulator) after(m *machine, d time.Duration, fn func()) {
	epoch := m.epoch
	t := s.clock.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || m.epoch != epoch {
			return
		}
		fn()
	})
	m.timers = append(m.timers, t)
}

// settled reports whether m is in a non-transient state (wait state=settled).
func settled(m *machine) bool {
	switch m.state {
	case stateCreated:
		return !m.launching
	case stateStarted, stateStopped, stateSuspended, stateDestroyed, "failed":
		return true
	}
	return false
}

// exitInfo describes how the main process ended.
type exitInfo struct {
	code      int
	oom       bool
	requested bool // stopped on request (user, proxy, restart, update)
	errText   string
}

// launch boots a just-created machine: created -> starting -> started, each
// step half of BootDuration.
func (s *Simulator) launch(m *machine) {
	m.launching = true
	half := s.opts.BootDuration / 2
	s.after(m, half, func() {
		s.setState(m, stateStarting)
		s.after(m, s.opts.BootDuration-half, func() { s.booted(m, false) })
	})
}

// booted marks m started and runs its process: a resumed process with an
// installed server listens at once; otherwise the install begins.
func (s *Simulator) booted(m *machine, resume bool) {
	m.launching = false
	s.setState(m, stateStarted)
	s.addEvent(m, "start", "started", sourceFlyd, nil)
	if !resume || m.proc == nil {
		m.proc = &process{}
	}
	if m.proc.installed {
		s.serve(m)
	} else {
		s.after(m, s.opts.InstallDuration, func() { s.installed(m) })
	}
	if s.opts.AutostopIdle > 0 {
		if mode := m.cfg.autostopMode(); mode != "off" {
			s.after(m, s.opts.AutostopIdle, func() {
				if mode == "suspend" {
					_ = s.suspend(m, sourceProxy)
				} else {
					_ = s.stop(m, sourceProxy, "")
				}
			})
		}
	}
}

// installed ends the simulated npm install: a missing package exits 1, the
// OOM package is killed, anything else starts listening.
func (s *Simulator) installed(m *machine) {
	switch m.kind {
	case kindMissing:
		s.exited(m, exitInfo{code: 1})
	case kindOOM:
		s.exited(m, exitInfo{code: 137, oom: true})
	default:
		m.proc.installed = true
		s.serve(m)
	}
}

// serve opens the /status listener of a running process and arms the crash
// of the crashing package.
func (s *Simulator) serve(m *machine) {
	if err := s.serverUp(m); err != nil {
		s.log.Error(err, "Machine server failed to listen", "machineID", m.id)
		s.exited(m, exitInfo{code: 1, errText: err.Error()})
		return
	}
	if m.kind == kindCrash {
		s.after(m, s.opts.CrashAfter, func() { s.exited(m, exitInfo{code: 1}) })
	}
}

// exited handles the end of the main process that nobody asked for (crash,
// failed install, OOM, exit code 0) and applies the restart policy:
// on-failure restarts non-zero exits up to max_retries within restartWindow,
// always restarts every exit, no never restarts. A machine that is not
// restarted ends stopped (destroyed with auto_destroy).
func (s *Simulator) exited(m *machine, info exitInfo) {
	s.cancel(m)
	s.serverDown(m)
	m.proc = nil
	now := s.clock.Now()
	policy, maxRetries := m.cfg.restartPolicy()
	restarting := false
	switch policy {
	case policyAlways:
		restarting = true
	case policyOnFailure:
		if info.code != 0 {
			recent := m.restartTimes[:0]
			for _, t := range m.restartTimes {
				if now.Sub(t) < restartWindow {
					recent = append(recent, t)
				}
			}
			m.restartTimes = recent
			restarting = len(recent) < maxRetries
		}
	}
	s.addEvent(m, "exit", stateStopped, sourceFlyd, exitRequest(info, restarting, m.restartCount, now))
	if restarting {
		m.restartCount++
		m.restartTimes = append(m.restartTimes, now)
		s.setState(m, stateStarting)
		s.after(m, s.opts.RestartDelay, func() { s.booted(m, false) })
		return
	}
	s.setState(m, stateStopped)
	if m.cfg.AutoDestroy {
		s.beginDestroy(m, sourceFlyd)
	}
}

// exitRequest builds the request of an exit event.
func exitRequest(info exitInfo, restarting bool, restartCount int, at time.Time) *eventRequest {
	count := restartCount
	return &eventRequest{
		ExitEvent: &exitEventJSON{
			RequestedStop: info.requested,
			Restarting:    restarting,
			GuestExitCode: info.code,
			GuestSignal:   -1,
			ExitCode:      info.code,
			Signal:        -1,
			Error:         info.errText,
			OOMKilled:     info.oom,
			ExitedAt:      rfc3339ms(at),
		},
		RestartCount: &count,
	}
}

// stopRequested ends the process on request (stop, autostop, restart,
// update, forced destroy) with the exit event Fly shows for that.
func (s *Simulator) stopRequested(m *machine, restarting bool) {
	s.serverDown(m)
	if m.proc != nil {
		s.addEvent(m, "exit", stateStopped, sourceFlyd, exitRequest(exitInfo{requested: true}, restarting, m.restartCount, s.clock.Now()))
	}
	m.proc = nil
}

// apiError is an error the API returns with a status code.
type apiError struct {
	code   int
	msg    string
	status string
}

func (e *apiError) Error() string { return e.msg }

func precondition(format string, args ...any) *apiError {
	return &apiError{code: 412, msg: "failed_precondition: " + fmt.Sprintf(format, args...)}
}

// start starts a stopped, suspended or never-launched machine (source user
// or proxy). A suspended machine resumes its process. It returns the
// previous state.
func (s *Simulator) start(m *machine, source string) (string, error) {
	prev := m.state
	switch {
	case prev == stateStopped, prev == stateSuspended, prev == stateCreated && !m.launching:
	case prev == stateStarted:
		return prev, precondition("machine still active, refusing to start")
	case prev == stateReplacing:
		return prev, precondition("machine getting replaced, refusing to start")
	default:
		return prev, precondition("unable to start machine from current state: '%s'", prev)
	}
	resume := prev == stateSuspended && m.proc != nil
	s.cancel(m)
	m.restartCount = 0
	m.restartTimes = nil
	s.addEvent(m, "start", stateStarting, source, nil)
	s.setState(m, stateStarting)
	s.after(m, s.opts.BootDuration, func() { s.booted(m, resume) })
	return prev, nil
}

// stop stops m (source user or proxy): stopping for StopDuration, then the
// process exits with requested_stop true and m is stopped. Stopping a
// suspended machine discards its snapshot; stopping a stopped machine does
// nothing.
func (s *Simulator) stop(m *machine, source, signal string) error {
	switch {
	case m.state == stateStopped, m.state == stateStopping, m.state == stateCreated && !m.launching:
		return nil
	case m.state == stateStarted, m.state == stateStarting, m.state == stateRestarting,
		m.state == stateCreated, m.state == stateSuspended:
	case m.state == stateReplacing:
		return precondition("machine getting replaced, refusing to stop")
	default:
		return precondition("unable to stop machine from current state: '%s'", m.state)
	}
	if m.state == stateSuspended {
		m.proc = nil // the snapshot is discarded: no process exits
	}
	s.cancel(m)
	m.launching = false
	reason := ""
	s.addEvent(m, "stop", stateStopping, source, &eventRequest{Reason: &reason, Signal: signal})
	s.setState(m, stateStopping)
	s.after(m, s.opts.StopDuration, func() {
		s.stopRequested(m, false)
		s.setState(m, stateStopped)
	})
	return nil
}

// suspend suspends a started machine (source user or proxy): its server
// stops answering and its process is kept for the next start.
func (s *Simulator) suspend(m *machine, source string) error {
	switch m.state {
	case stateSuspended, stateSuspending:
		return nil
	case stateStarted:
	default:
		return precondition("unable to suspend machine from current state: '%s'", m.state)
	}
	s.cancel(m)
	s.addEvent(m, "suspend", stateSuspending, source, nil)
	s.setState(m, stateSuspending)
	s.after(m, s.opts.StopDuration, func() {
		s.serverDown(m)
		s.addEvent(m, "suspend", stateSuspended, sourceFlyd, nil)
		s.setState(m, stateSuspended)
	})
	return nil
}

// restart restarts a started machine: restarting, the process exits
// (requested, restarting), and a fresh process boots.
func (s *Simulator) restart(m *machine) error {
	if m.state != stateStarted {
		return precondition("unable to restart machine from current state: '%s'", m.state)
	}
	s.cancel(m)
	s.addEvent(m, "restart", stateRestarting, sourceUser, nil)
	s.setState(m, stateRestarting)
	s.after(m, s.opts.StopDuration, func() {
		s.stopRequested(m, true)
		s.addEvent(m, "restart", stateStarting, sourceFlyd, nil)
		s.after(m, s.opts.BootDuration, func() { s.booted(m, false) })
	})
	return nil
}

// destroy destroys m. Without force only a machine that is not running
// (created, stopped, suspended) may be destroyed.
func (s *Simulator) destroy(m *machine, force bool) error {
	switch {
	case m.state == stateDestroying, m.state == stateDestroyed:
		return nil
	case m.state == stateStopped, m.state == stateSuspended, m.state == stateCreated && !m.launching, force:
	default:
		return precondition("unable to destroy machine, not currently stopped, suspended or created (currently %s); use force=true", m.state)
	}
	s.beginDestroy(m, sourceUser)
	return nil
}

// beginDestroy: destroying (StopDuration when the process runs), destroyed,
// then gone after DestroyedVisibleFor.
func (s *Simulator) beginDestroy(m *machine, source string) {
	running := m.proc != nil && m.state != stateSuspended
	s.cancel(m)
	m.launching = false
	m.lease = nil
	s.addEvent(m, "destroy", stateDestroying, source, nil)
	s.setState(m, stateDestroying)
	var d time.Duration
	if running {
		d = s.opts.StopDuration
	}
	s.after(m, d, func() {
		if running {
			s.stopRequested(m, false)
		}
		s.serverDown(m)
		m.proc = nil
		s.addEvent(m, "destroy", stateDestroyed, sourceFlyd, nil)
		s.setState(m, stateDestroyed)
		if s.names[m.name] == m {
			delete(s.names, m.name)
		}
		s.after(m, s.opts.DestroyedVisibleFor, func() { s.remove(m) })
	})
}

// remove forgets a destroyed machine: GET answers 404 from now on.
func (s *Simulator) remove(m *machine) {
	s.cancel(m)
	delete(s.machines, m.id)
	s.ips.release(m.ip)
	close(m.changed)
	m.changed = make(chan struct{})
}

// update replaces m's config: a new instance_id, replacing, and then the new
// version starts when the machine was running (unless skipLaunch), or stays
// stopped when it was not (observed 2026 behaviour).
func (s *Simulator) update(m *machine, cfg machineConfig, raw json.RawMessage, skipLaunch bool) error {
	switch m.state {
	case stateReplacing:
		return &apiError{code: 409, msg: "aborted: machine is replacing: concurrent update in progress"}
	case stateDestroying, stateDestroyed:
		return precondition("unable to update machine from current state: '%s'", m.state)
	}
	// A machine that was running (or on its way there) runs the new version;
	// one that was stopped, stopping, suspended or never launched does not.
	wasRunning := m.state == stateStarted || m.state == stateStarting ||
		m.state == stateRestarting || m.state == stateCreated && m.launching
	hadProcess := m.proc != nil && m.state != stateSuspended
	prev := m.state
	s.cancel(m)
	m.launching = false
	m.cfg = cfg
	m.rawConfig = raw
	m.kind = s.classify(cfg.mcpPackage())
	now := s.clock.Now()
	m.instanceID = s.ulids.New(now)
	m.restartCount = 0
	m.restartTimes = nil
	s.addEvent(m, "update", stateReplacing, sourceUser, nil)
	s.setState(m, stateReplacing)
	var d time.Duration
	if hadProcess {
		d = s.opts.StopDuration // the old version's process stops first
	}
	s.after(m, d, func() {
		s.serverDown(m)
		m.proc = nil
		s.addEvent(m, "update", "updated", sourceFlyd, nil)
		if wasRunning && !skipLaunch {
			s.after(m, s.opts.BootDuration, func() { s.booted(m, false) })
			return
		}
		if prev == stateCreated {
			s.setState(m, stateCreated)
			return
		}
		s.setState(m, stateStopped)
	})
	return nil
}

// crash kills the running process of a started machine.
func (s *Simulator) crash(m *machine, code int, oom bool) error {
	if m.state != stateStarted || m.proc == nil {
		return precondition("machine has no running process (currently %s)", m.state)
	}
	if oom {
		code = 137
	}
	s.exited(m, exitInfo{code: code, oom: oom})
	return nil
}

// setOverride forces the /status behaviour of m (nil: back to the package's
// own behaviour). It lasts across restarts until reset.
func (s *Simulator) setOverride(m *machine, b *behavior) {
	m.override = b
	if m.server != nil {
		m.server.behavior.Store(resolveBehavior(m.kind, b))
	}
}
