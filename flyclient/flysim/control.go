package flysim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// This file holds the control endpoints under /_sim/ (never under /v1): what
// the Fly proxy and the outside world do to machines, fault injection,
// request counts and bulk seeding. They need the same token as the API.

// Faults are injected into every /v1 request (never into /_sim/): first the
// latency, then a 429 with probability Rate429, then a 5xx with probability
// Rate5xx.
type Faults struct {
	// Latency is added before each API request is handled.
	Latency time.Duration
	// Rate429 is the fraction (0..1) of requests answered 429
	// {"error":"rate limit exceeded"}.
	Rate429 float64
	// RetryAfter is the Retry-After of those 429s, sent in whole seconds
	// (rounded up; default 1s). NoRetryAfter omits the header.
	RetryAfter   time.Duration
	NoRetryAfter bool
	// Rate5xx is the fraction (0..1) of requests answered Status5xx (default
	// 503) {"error":"unavailable: simulated server error"}.
	Rate5xx   float64
	Status5xx int
	// DropCreateResponses makes the next N creates create the machine and
	// then close the connection without an answer.
	DropCreateResponses int
}

type faultsJSON struct {
	Latency             string  `json:"latency,omitempty"`
	Rate429             float64 `json:"rate_429"`
	RetryAfter          string  `json:"retry_after,omitempty"`
	NoRetryAfter        bool    `json:"no_retry_after,omitempty"`
	Rate5xx             float64 `json:"rate_5xx"`
	Status5xx           int     `json:"status_5xx,omitempty"`
	DropCreateResponses int     `json:"drop_create_responses"`
}

// MarshalJSON writes durations as Go duration strings.
func (f Faults) MarshalJSON() ([]byte, error) {
	j := faultsJSON{Rate429: f.Rate429, NoRetryAfter: f.NoRetryAfter, Rate5xx: f.Rate5xx, Status5xx: f.Status5xx,
		DropCreateResponses: f.DropCreateResponses}
	if f.Latency > 0 {
		j.Latency = f.Latency.String()
	}
	if f.RetryAfter > 0 {
		j.RetryAfter = f.RetryAfter.String()
	}
	return json.Marshal(j)
}

// UnmarshalJSON reads durations as Go duration strings and validates rates.
func (f *Faults) UnmarshalJSON(b []byte) error {
	var j faultsJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	out := Faults{Rate429: j.Rate429, NoRetryAfter: j.NoRetryAfter, Rate5xx: j.Rate5xx, Status5xx: j.Status5xx,
		DropCreateResponses: j.DropCreateResponses}
	var err error
	if j.Latency != "" {
		if out.Latency, err = time.ParseDuration(j.Latency); err != nil {
			return fmt.Errorf("latency: %w", err)
		}
	}
	if j.RetryAfter != "" {
		if out.RetryAfter, err = time.ParseDuration(j.RetryAfter); err != nil {
			return fmt.Errorf("retry_after: %w", err)
		}
	}
	if out.Rate429 < 0 || out.Rate429 > 1 || out.Rate5xx < 0 || out.Rate5xx > 1 {
		return fmt.Errorf("rates must be between 0 and 1")
	}
	if out.Status5xx != 0 && (out.Status5xx < 500 || out.Status5xx > 599) {
		return fmt.Errorf("status_5xx %d is not a 5xx code", out.Status5xx)
	}
	if out.Latency < 0 || out.DropCreateResponses < 0 {
		return fmt.Errorf("latency and drop_create_responses must not be negative")
	}
	*f = out
	return nil
}

// SetFaults replaces the fault settings (also reachable as PUT /_sim/faults).
func (s *Simulator) SetFaults(f Faults) {
	s.faultsMu.Lock()
	s.faults = f
	s.faultsMu.Unlock()
}

// Stats are the request counts of the /v1 API since the last reset, the
// number of machines per state and the number of /status requests served.
type Stats struct {
	Requests       []RequestCount `json:"requests"`
	Machines       map[string]int `json:"machines"`
	StatusRequests int64          `json:"status_requests"`
}

// RequestCount counts the answers of one route with one status code. Route
// is the pattern (e.g. RouteMachine); Status 0 counts dropped connections.
type RequestCount struct {
	Method string `json:"method"`
	Route  string `json:"route"`
	Status int    `json:"status"`
	Count  int    `json:"count"`
}

// Count returns how many requests of method on route were answered with
// status.
func (st Stats) Count(method, route string, status int) int {
	for _, rc := range st.Requests {
		if rc.Method == method && rc.Route == route && rc.Status == status {
			return rc.Count
		}
	}
	return 0
}

// Total returns how many requests of method on route were answered, any
// status.
func (st Stats) Total(method, route string) int {
	n := 0
	for _, rc := range st.Requests {
		if rc.Method == method && rc.Route == route {
			n += rc.Count
		}
	}
	return n
}

// Stats returns the current request counts.
func (s *Simulator) Stats() Stats { return s.statsSnapshot() }

// ResetStats zeroes the request counts.
func (s *Simulator) ResetStats() {
	s.statsMu.Lock()
	s.stats = map[statKey]int{}
	s.statsMu.Unlock()
	s.statusRequests.Store(0)
}

// StatusMode names a /status behaviour for SetStatus.
type StatusMode string

// Status modes.
const (
	StatusNormal StatusMode = "normal" // the package's own behaviour
	StatusCode   StatusMode = "code"   // answer with Code
	StatusHang   StatusMode = "hang"   // accept, never answer
	StatusDrop   StatusMode = "drop"   // accept, then close without answering
)

// StatusRequest is the body of POST /_sim/machines/{id}/status.
type StatusRequest struct {
	Mode StatusMode `json:"mode"`
	Code int        `json:"code,omitempty"`
}

// CrashRequest is the body of POST /_sim/machines/{id}/crash: the process
// exits with ExitCode (default 1), or is OOM-killed (exit code 137).
type CrashRequest struct {
	ExitCode *int `json:"exit_code,omitempty"`
	OOM      bool `json:"oom,omitempty"`
}

// AutostopRequest is the body of POST /_sim/machines/{id}/autostop: Mode
// "stop" (default) or "suspend".
type AutostopRequest struct {
	Mode string `json:"mode,omitempty"`
}

// SeedRequest is the body of POST /_sim/seed: Count machines built from the
// common fields, plus one machine per entry of Machines (whose fields are
// merged over the common ones). Every seeded machine is started and its
// /status already listens.
type SeedRequest struct {
	Count int `json:"count,omitempty"`
	// Image defaults to "registry.fly.io/flightdeck-runner:sim".
	Image string `json:"image,omitempty"`
	// Package is put in env MCP_PACKAGE when set.
	Package  string            `json:"package,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
	// Autostop, when "stop" or "suspend", adds a service with that autostop.
	Autostop string        `json:"autostop,omitempty"`
	Machines []SeedMachine `json:"machines,omitempty"`
}

// SeedMachine is one individually described seeded machine.
type SeedMachine struct {
	Name     string            `json:"name,omitempty"`
	Package  string            `json:"package,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// SeededMachine identifies a seeded machine.
type SeededMachine struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	PrivateIP  string `json:"private_ip"`
	InstanceID string `json:"instance_id"`
}

// maxSeed bounds one seed call.
const maxSeed = 50000

// Seed creates started, listening machines in one step (see SeedRequest).
// On error, the machines created before it stay.
func (s *Simulator) Seed(req SeedRequest) ([]SeededMachine, error) {
	if req.Count < 0 || req.Count+len(req.Machines) > maxSeed {
		return nil, badRequest(fmt.Sprintf("invalid_argument: seed between 0 and %d machines at once", maxSeed))
	}
	specs := make([]SeedMachine, 0, req.Count+len(req.Machines))
	for i := 0; i < req.Count; i++ {
		specs = append(specs, SeedMachine{})
	}
	specs = append(specs, req.Machines...)
	type built struct {
		name string
		cfg  machineConfig
		raw  json.RawMessage
	}
	configs := make([]built, len(specs))
	for i, spec := range specs {
		raw, err := seedConfig(req, spec)
		if err != nil {
			return nil, err
		}
		cfg, norm, err := parseConfig(raw)
		if err != nil {
			return nil, err
		}
		configs[i] = built{spec.Name, cfg, norm}
	}
	out := make([]SeededMachine, 0, len(specs))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, &apiError{code: http.StatusServiceUnavailable, msg: "unavailable: simulator closed"}
	}
	for i, b := range configs {
		if i > 0 && i%256 == 0 {
			// Let API requests in between batches of a large seed.
			s.mu.Unlock()
			s.mu.Lock()
			if s.closed {
				return out, &apiError{code: http.StatusServiceUnavailable, msg: "unavailable: simulator closed"}
			}
		}
		m, err := s.newMachine(b.name, s.opts.Region, b.cfg, b.raw, false)
		if err != nil {
			return out, err
		}
		// A missing or OOM package still runs (and fails) its install.
		m.proc = &process{installed: m.kind != kindMissing && m.kind != kindOOM}
		s.booted(m, true)
		if m.server == nil && m.kind != kindMissing && m.kind != kindOOM {
			return out, &apiError{code: http.StatusServiceUnavailable,
				msg: fmt.Sprintf("unavailable: machine %s could not listen (after %d seeded); raise the open file limit", m.id, len(out))}
		}
		out = append(out, SeededMachine{ID: m.id, Name: m.name, PrivateIP: m.ip.String(), InstanceID: m.instanceID})
	}
	return out, nil
}

// seedConfig builds the config of one seeded machine.
func seedConfig(req SeedRequest, spec SeedMachine) (json.RawMessage, error) {
	image := req.Image
	if image == "" {
		image = "registry.fly.io/flightdeck-runner:sim"
	}
	env := map[string]string{}
	for k, v := range req.Env {
		env[k] = v
	}
	if req.Package != "" {
		env["MCP_PACKAGE"] = req.Package
	}
	for k, v := range spec.Env {
		env[k] = v
	}
	if spec.Package != "" {
		env["MCP_PACKAGE"] = spec.Package
	}
	md := map[string]string{}
	for k, v := range req.Metadata {
		md[k] = v
	}
	for k, v := range spec.Metadata {
		md[k] = v
	}
	cfg := map[string]any{"image": image, "env": env, "metadata": md}
	switch req.Autostop {
	case "":
	case "stop", "suspend":
		cfg["services"] = []map[string]any{{"protocol": "tcp", "internal_port": 8080, "autostop": req.Autostop, "autostart": true,
			"ports": []map[string]any{{"port": 443, "handlers": []string{"tls", "http"}}}}}
	default:
		return nil, badRequest(fmt.Sprintf("invalid_argument: autostop %q must be stop or suspend", req.Autostop))
	}
	return json.Marshal(cfg)
}

func (s *Simulator) handleInfo(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"app": s.opts.App, "region": s.opts.Region, "api_url": s.url, "status_port": s.statusPort,
		"ip_block": fmt.Sprintf("127.%d.0.0/16", s.ips.octet),
	})
}

// handleAutostop stops (or suspends) a started machine as the Fly proxy
// would; a machine already stopped or suspended is left alone.
func (s *Simulator) handleAutostop(w http.ResponseWriter, r *http.Request) {
	var req AutostopRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeAPIError(w, err)
		return
	}
	if req.Mode != "" && req.Mode != "stop" && req.Mode != "suspend" {
		writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: mode %q must be stop or suspend", req.Mode)))
		return
	}
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		switch m.state {
		case stateStopped, stateStopping, stateSuspended, stateSuspending:
		case stateStarted:
			var err error
			if req.Mode == "suspend" {
				err = s.suspend(m, sourceProxy)
			} else {
				err = s.stop(m, sourceProxy, "")
			}
			if err != nil {
				return nil, err
			}
		default:
			return nil, precondition("proxy cannot autostop a machine in state '%s'", m.state)
		}
		return map[string]any{"ok": true, "state": m.state}, nil
	})
}

// handleAutostart starts a stopped or suspended machine as the Fly proxy
// would on an incoming request (event start/starting/proxy).
func (s *Simulator) handleAutostart(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		switch m.state {
		case stateStarted, stateStarting:
		case stateStopped, stateSuspended:
			if _, err := s.start(m, sourceProxy); err != nil {
				return nil, err
			}
		default:
			return nil, precondition("proxy cannot autostart a machine in state '%s'", m.state)
		}
		return map[string]any{"ok": true, "state": m.state}, nil
	})
}

// handleSetStatus forces the /status behaviour of a machine until reset with
// mode "normal".
func (s *Simulator) handleSetStatus(w http.ResponseWriter, r *http.Request) {
	var req StatusRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeAPIError(w, err)
		return
	}
	var b *behavior
	switch req.Mode {
	case StatusNormal:
	case StatusCode:
		if req.Code < 100 || req.Code > 599 {
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: code %d is not an HTTP status code", req.Code)))
			return
		}
		b = &behavior{mode: modeCode, code: req.Code}
	case StatusHang:
		b = &behavior{mode: modeHang}
	case StatusDrop:
		b = &behavior{mode: modeDrop}
	default:
		writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: mode %q must be normal, code, hang or drop", req.Mode)))
		return
	}
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		s.setOverride(m, b)
		return map[string]bool{"ok": true}, nil
	})
}

// handleCrash makes the process of a started machine exit now; the restart
// policy applies as for any crash.
func (s *Simulator) handleCrash(w http.ResponseWriter, r *http.Request) {
	var req CrashRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeAPIError(w, err)
		return
	}
	code := 1
	if req.ExitCode != nil {
		code = *req.ExitCode
	}
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		if err := s.crash(m, code, req.OOM); err != nil {
			return nil, err
		}
		return map[string]any{"ok": true, "state": m.state}, nil
	})
}

func (s *Simulator) handleGetFaults(w http.ResponseWriter, _ *http.Request) {
	s.faultsMu.Lock()
	f := s.faults
	s.faultsMu.Unlock()
	writeJSON(w, http.StatusOK, f)
}

func (s *Simulator) handleSetFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if err := decodeBody(r, &f, false); err != nil {
		writeAPIError(w, err)
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, f)
}

func (s *Simulator) handleGetStats(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.statsSnapshot())
}

func (s *Simulator) handleResetStats(w http.ResponseWriter, _ *http.Request) {
	s.ResetStats()
	w.WriteHeader(http.StatusNoContent)
}

func (s *Simulator) handleSeed(w http.ResponseWriter, r *http.Request) {
	var req SeedRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeAPIError(w, err)
		return
	}
	out, err := s.Seed(req)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"machines": out})
}
