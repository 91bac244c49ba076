package flyclient

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Machine states (reference §4). A Machine's State is one of these; Fly may add
// others, so code must treat unknown states with care (IsTransientState says
// false for them).
const (
	StateCreating     = "creating"
	StateCreated      = "created"
	StateStarting     = "starting"
	StateStarted      = "started"
	StateStopping     = "stopping"
	StateStopped      = "stopped"
	StateSuspending   = "suspending"
	StateSuspended    = "suspended"
	StateRestarting   = "restarting"
	StateReplacing    = "replacing"
	StateUpdating     = "updating"
	StateDestroying   = "destroying"
	StateDestroyed    = "destroyed"
	StateFailed       = "failed"
	StateLaunchFailed = "launch_failed"
	StateReplaced     = "replaced"
	StateMigrated     = "migrated"

	// StateSettled is not a machine state but a /wait target: any
	// non-transient state (reference §2.5).
	StateSettled = "settled"
)

// IsTransientState reports whether state is one Fly documents as transient:
// the machine is on its way to another state and should be looked at again
// soon (reference §4).
func IsTransientState(state string) bool {
	switch state {
	case StateCreating, StateStarting, StateStopping, StateRestarting, StateSuspending,
		StateDestroying, StateLaunchFailed, StateUpdating, StateReplacing:
		return true
	}
	return false
}

// Event types and statuses seen in MachineEvent (reference §2.6).
const (
	EventLaunch  = "launch"
	EventStart   = "start"
	EventStop    = "stop"
	EventExit    = "exit"
	EventRestart = "restart"
	EventUpdate  = "update"
	EventDestroy = "destroy"
	EventSuspend = "suspend"
)

// Restart policies (reference §2.1).
const (
	RestartNo        = "no"
	RestartAlways    = "always"
	RestartOnFailure = "on-failure"
)

// Check statuses reported in Machine.Checks (reference §2.7).
const (
	CheckPassing  = "passing"
	CheckWarning  = "warning"
	CheckCritical = "critical"
)

// MetadataDeploymentID is the config.metadata key holding the flightdeck
// deployment a machine belongs to.
const MetadataDeploymentID = "deployment_id"

// Machine is a Fly machine as GET, list, create and update return it
// (reference §3). Config is nil in summary lists and may be nil when
// HostStatus is not "ok" (IncompleteConfig is then set).
type Machine struct {
	ID               string         `json:"id"`
	Name             string         `json:"name"`
	State            string         `json:"state"`
	Region           string         `json:"region"`
	InstanceID       string         `json:"instance_id"`
	Version          string         `json:"version,omitempty"`
	PrivateIP        string         `json:"private_ip"`
	Config           *MachineConfig `json:"config,omitempty"`
	IncompleteConfig *MachineConfig `json:"incomplete_config,omitempty"`
	ImageRef         *ImageRef      `json:"image_ref,omitempty"`
	Events           []MachineEvent `json:"events,omitempty"`
	Checks           []CheckStatus  `json:"checks,omitempty"`
	CreatedAt        time.Time      `json:"created_at"`
	UpdatedAt        time.Time      `json:"updated_at"`
	HostStatus       string         `json:"host_status,omitempty"`
	Nonce            string         `json:"nonce,omitempty"`
	Cordoned         bool           `json:"cordoned,omitempty"`
}

// UnmarshalJSON decodes a machine, accepting created_at/updated_at as RFC 3339
// strings, epoch milliseconds or empty, so one odd timestamp does not fail a
// whole list.
func (m *Machine) UnmarshalJSON(data []byte) error {
	type plain Machine
	var aux struct {
		plain
		CreatedAt flexTime `json:"created_at"`
		UpdatedAt flexTime `json:"updated_at"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*m = Machine(aux.plain)
	m.CreatedAt = time.Time(aux.CreatedAt)
	m.UpdatedAt = time.Time(aux.UpdatedAt)
	return nil
}

// DeploymentID returns config.metadata.deployment_id, or "" when the machine
// carries none (or its config was not returned).
func (m *Machine) DeploymentID() string {
	if m == nil {
		return ""
	}
	cfg := m.Config
	if cfg == nil {
		cfg = m.IncompleteConfig
	}
	if cfg == nil {
		return ""
	}
	return cfg.Metadata[MetadataDeploymentID]
}

// LatestEvent returns the newest event of type typ ("" matches any type), or
// nil. Fly lists events newest first; LatestEvent compares timestamps anyway
// and prefers the earlier position on ties.
func (m *Machine) LatestEvent(typ string) *MachineEvent {
	if m == nil {
		return nil
	}
	return latestEvent(m.Events, func(e *MachineEvent) bool { return typ == "" || e.Type == typ })
}

// LatestExit returns the exit details of the newest "exit" event, the time the
// process exited (exited_at, or the event's time when that is missing), and
// whether there was such an event with exit details.
func (m *Machine) LatestExit() (*ExitEvent, time.Time, bool) {
	if m == nil {
		return nil, time.Time{}, false
	}
	e := latestEvent(m.Events, func(e *MachineEvent) bool {
		return e.Type == EventExit && e.Request != nil && e.Request.ExitEvent != nil
	})
	if e == nil {
		return nil, time.Time{}, false
	}
	exit := e.Request.ExitEvent
	at := exit.ExitedAt
	if at.IsZero() {
		at = e.Time()
	}
	return exit, at, true
}

// LatestStartAt returns when the machine last finished booting: the time of
// the newest start/started event, or the zero time when there is none.
func (m *Machine) LatestStartAt() time.Time {
	if m == nil {
		return time.Time{}
	}
	e := latestEvent(m.Events, func(e *MachineEvent) bool { return e.Type == EventStart && e.Status == StateStarted })
	if e == nil {
		return time.Time{}
	}
	return e.Time()
}

// RestartCount returns restart_count of the newest exit event, 0 when none.
func (m *Machine) RestartCount() int {
	if m == nil {
		return 0
	}
	e := latestEvent(m.Events, func(e *MachineEvent) bool { return e.Type == EventExit && e.Request != nil })
	if e == nil {
		return 0
	}
	return e.Request.RestartCount
}

func latestEvent(events []MachineEvent, match func(*MachineEvent) bool) *MachineEvent {
	var best *MachineEvent
	for i := range events {
		e := &events[i]
		if !match(e) {
			continue
		}
		if best == nil || e.Timestamp > best.Timestamp {
			best = e
		}
	}
	return best
}

// ImageRef is the resolved image of a machine.
type ImageRef struct {
	Registry   string            `json:"registry,omitempty"`
	Repository string            `json:"repository,omitempty"`
	Tag        string            `json:"tag,omitempty"`
	Digest     string            `json:"digest,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
}

// CheckStatus is one health check result in Machine.Checks.
type CheckStatus struct {
	Name      string    `json:"name"`
	Status    string    `json:"status"`
	Output    string    `json:"output,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// UnmarshalJSON accepts updated_at as RFC 3339, epoch milliseconds or empty.
func (c *CheckStatus) UnmarshalJSON(data []byte) error {
	type plain CheckStatus
	var aux struct {
		plain
		UpdatedAt flexTime `json:"updated_at"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*c = CheckStatus(aux.plain)
	c.UpdatedAt = time.Time(aux.UpdatedAt)
	return nil
}

// MachineConfig is a machine's config (reference §2.1). Fields flightdeck does
// not model are kept in Unknown and sent back unchanged, because an update
// must carry the whole config.
type MachineConfig struct {
	Image       string                  `json:"image"`
	Env         Env                     `json:"env,omitempty"`
	Guest       *GuestConfig            `json:"guest,omitempty"`
	Services    []MachineService        `json:"services,omitempty"`
	Checks      map[string]MachineCheck `json:"checks,omitempty"`
	Restart     *RestartPolicy          `json:"restart,omitempty"`
	Metadata    map[string]string       `json:"metadata,omitempty"`
	AutoDestroy bool                    `json:"auto_destroy,omitempty"`
	StopConfig  *StopConfig             `json:"stop_config,omitempty"`

	// Unknown holds the config's other top-level fields (dns, mounts, init,
	// ...) verbatim.
	Unknown map[string]json.RawMessage `json:"-"`
}

var machineConfigKeys = map[string]bool{
	"image": true, "env": true, "guest": true, "services": true, "checks": true,
	"restart": true, "metadata": true, "auto_destroy": true, "stop_config": true,
}

// UnmarshalJSON decodes the modelled fields and keeps the rest in Unknown.
func (c *MachineConfig) UnmarshalJSON(data []byte) error {
	type plain MachineConfig
	var p plain
	if err := json.Unmarshal(data, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(data, &all); err != nil {
		return err
	}
	for k, v := range all {
		if machineConfigKeys[k] {
			continue
		}
		if p.Unknown == nil {
			p.Unknown = map[string]json.RawMessage{}
		}
		p.Unknown[k] = v
	}
	*c = MachineConfig(p)
	return nil
}

// MarshalJSON encodes the modelled fields plus Unknown; a modelled field wins
// over an Unknown entry of the same name.
func (c MachineConfig) MarshalJSON() ([]byte, error) {
	type plain MachineConfig
	known, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	if len(c.Unknown) == 0 {
		return known, nil
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(known, &all); err != nil {
		return nil, err
	}
	for k, v := range c.Unknown {
		if _, ok := all[k]; ok || machineConfigKeys[k] || !json.Valid(v) {
			continue
		}
		all[k] = v
	}
	return json.Marshal(all)
}

// Format prints the config with %v (or %+v, %#v) for every verb, so that
// Env's redaction holds even for verbs that make fmt bypass formatting
// methods (such as %s on a struct holding a *MachineConfig).
func (c MachineConfig) Format(f fmt.State, verb rune) {
	type plain MachineConfig
	format := "%v"
	switch {
	case verb == 'v' && f.Flag('#'):
		format = "%#v"
	case f.Flag('+'):
		format = "%+v"
	}
	fmt.Fprintf(f, format, plain(c))
}

// Env is a machine's environment. Its values may be secrets, so formatting an
// Env with fmt shows the keys only.
type Env map[string]string

// Format prints the keys with redacted values for every verb.
func (e Env) Format(f fmt.State, _ rune) {
	keys := make([]string, 0, len(e))
	for k := range e {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("map[")
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteString(":" + redacted)
	}
	b.WriteByte(']')
	_, _ = f.Write([]byte(b.String()))
}

// GuestConfig sizes the machine's VM.
type GuestConfig struct {
	CPUKind  string `json:"cpu_kind,omitempty"`
	CPUs     int    `json:"cpus,omitempty"`
	MemoryMB int    `json:"memory_mb,omitempty"`
}

// RestartPolicy says what Fly does when the main process exits.
type RestartPolicy struct {
	Policy     string `json:"policy,omitempty"`
	MaxRetries int    `json:"max_retries,omitempty"`
}

// StopConfig is the signal and grace period used to stop the machine.
type StopConfig struct {
	Signal  string    `json:"signal,omitempty"`
	Timeout *Duration `json:"timeout,omitempty"`
}

// MachineService exposes an internal port through Fly Proxy.
type MachineService struct {
	Protocol           string         `json:"protocol"`
	InternalPort       int            `json:"internal_port"`
	Ports              []MachinePort  `json:"ports,omitempty"`
	Autostart          *bool          `json:"autostart,omitempty"`
	Autostop           *Autostop      `json:"autostop,omitempty"`
	MinMachinesRunning *int           `json:"min_machines_running,omitempty"`
	Concurrency        *Concurrency   `json:"concurrency,omitempty"`
	Checks             []MachineCheck `json:"checks,omitempty"`
}

// MachinePort is one public port (or range) of a service.
type MachinePort struct {
	Port       *int     `json:"port,omitempty"`
	StartPort  *int     `json:"start_port,omitempty"`
	EndPort    *int     `json:"end_port,omitempty"`
	Handlers   []string `json:"handlers,omitempty"`
	ForceHTTPS bool     `json:"force_https,omitempty"`
}

// Concurrency limits the load Fly Proxy sends to one machine.
type Concurrency struct {
	Type      string `json:"type,omitempty"`
	SoftLimit int    `json:"soft_limit,omitempty"`
	HardLimit int    `json:"hard_limit,omitempty"`
}

// MachineCheck is a configured health check (top-level or per service).
type MachineCheck struct {
	Type          string        `json:"type,omitempty"`
	Port          *int          `json:"port,omitempty"`
	Interval      *Duration     `json:"interval,omitempty"`
	Timeout       *Duration     `json:"timeout,omitempty"`
	GracePeriod   *Duration     `json:"grace_period,omitempty"`
	Method        string        `json:"method,omitempty"`
	Path          string        `json:"path,omitempty"`
	Protocol      string        `json:"protocol,omitempty"`
	TLSSkipVerify bool          `json:"tls_skip_verify,omitempty"`
	TLSServerName string        `json:"tls_server_name,omitempty"`
	Headers       []CheckHeader `json:"headers,omitempty"`
	Kind          string        `json:"kind,omitempty"`
}

// CheckHeader is one HTTP header an http check sends.
type CheckHeader struct {
	Name   string   `json:"name"`
	Values []string `json:"values"`
}

// Autostop is a service's autostop mode. Fly accepts and answers false/true
// for off/stop and the string "suspend" (reference §2.1, gotcha 8), so it
// decodes from a bool or a string and encodes the way Fly answers.
type Autostop string

// Autostop modes.
const (
	AutostopOff     Autostop = "off"
	AutostopStop    Autostop = "stop"
	AutostopSuspend Autostop = "suspend"
)

// UnmarshalJSON accepts true, false, "off", "stop", "suspend" (and any other
// string, kept verbatim).
func (a *Autostop) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	switch string(data) {
	case "true":
		*a = AutostopStop
		return nil
	case "false", "null":
		*a = AutostopOff
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("autostop: want a bool or a string, got %.40s", data)
	}
	*a = Autostop(s)
	return nil
}

// MarshalJSON encodes off and stop as booleans and other modes as strings.
func (a Autostop) MarshalJSON() ([]byte, error) {
	switch a {
	case AutostopOff, "":
		return []byte("false"), nil
	case AutostopStop:
		return []byte("true"), nil
	}
	return json.Marshal(string(a))
}

// Duration is a time.Duration in Fly's JSON form: a Go duration string
// ("15s"); integer nanoseconds and the spec's {"time.Duration": n} object are
// accepted when decoding.
type Duration struct{ time.Duration }

// MarshalJSON encodes the duration as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON accepts "15s", 15000000000 or {"time.Duration": 15000000000}.
func (d *Duration) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		d.Duration = 0
		return nil
	}
	switch data[0] {
	case '"':
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		if s == "" {
			d.Duration = 0
			return nil
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration: %w", err)
		}
		d.Duration = v
		return nil
	case '{':
		var obj struct {
			D json.Number `json:"time.Duration"`
		}
		if err := json.Unmarshal(data, &obj); err != nil {
			return err
		}
		data = []byte(obj.D)
		if len(data) == 0 {
			d.Duration = 0
			return nil
		}
	}
	n, err := strconv.ParseInt(string(data), 10, 64)
	if err != nil {
		return fmt.Errorf("duration: want a string or integer nanoseconds, got %.40s", data)
	}
	d.Duration = time.Duration(n)
	return nil
}

// MachineEvent is one entry of a machine's event history (reference §2.6).
// Timestamp is epoch milliseconds; Time converts it.
type MachineEvent struct {
	ID        string        `json:"id,omitempty"`
	Type      string        `json:"type"`
	Status    string        `json:"status"`
	Source    string        `json:"source,omitempty"`
	Timestamp int64         `json:"timestamp"`
	Request   *EventRequest `json:"request,omitempty"`
}

// Time returns the event's timestamp as a time.Time (UTC), zero when absent.
func (e *MachineEvent) Time() time.Time {
	if e == nil || e.Timestamp == 0 {
		return time.Time{}
	}
	return time.UnixMilli(e.Timestamp).UTC()
}

// UnmarshalJSON accepts the timestamp as an integer, a float, a numeric
// string or an RFC 3339 string.
func (e *MachineEvent) UnmarshalJSON(data []byte) error {
	type plain MachineEvent
	var aux struct {
		plain
		Timestamp flexTime `json:"timestamp"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*e = MachineEvent(aux.plain)
	if t := time.Time(aux.Timestamp); !t.IsZero() {
		e.Timestamp = t.UnixMilli()
	}
	return nil
}

// EventRequest is the request object of an event. For exit events it carries
// the exit details; the older nesting request.MonitorEvent.exit_event is
// folded into ExitEvent when decoding.
type EventRequest struct {
	ExitEvent    *ExitEvent `json:"exit_event,omitempty"`
	RestartCount int        `json:"restart_count,omitempty"`
	Reason       string     `json:"reason,omitempty"`
}

// Exit returns the exit details, nil for a nil request or a non-exit event.
func (r *EventRequest) Exit() *ExitEvent {
	if r == nil {
		return nil
	}
	return r.ExitEvent
}

// UnmarshalJSON decodes both nestings of the exit event.
func (r *EventRequest) UnmarshalJSON(data []byte) error {
	type plain EventRequest
	var aux struct {
		plain
		MonitorEvent *struct {
			ExitEvent *ExitEvent `json:"exit_event"`
		} `json:"MonitorEvent"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*r = EventRequest(aux.plain)
	if r.ExitEvent == nil && aux.MonitorEvent != nil {
		r.ExitEvent = aux.MonitorEvent.ExitEvent
	}
	return nil
}

// ExitEvent describes how a machine's main process ended.
type ExitEvent struct {
	ExitCode      int       `json:"exit_code"`
	GuestExitCode int       `json:"guest_exit_code"`
	GuestSignal   int       `json:"guest_signal"`
	Signal        int       `json:"signal"`
	OOMKilled     bool      `json:"oom_killed"`
	RequestedStop bool      `json:"requested_stop"`
	Restarting    bool      `json:"restarting"`
	Error         string    `json:"error,omitempty"`
	GuestError    string    `json:"guest_error,omitempty"`
	ExitedAt      time.Time `json:"exited_at"`
}

// UnmarshalJSON accepts exited_at as an RFC 3339 string or epoch milliseconds.
func (x *ExitEvent) UnmarshalJSON(data []byte) error {
	type plain ExitEvent
	var aux struct {
		plain
		ExitedAt flexTime `json:"exited_at"`
	}
	if err := json.Unmarshal(data, &aux); err != nil {
		return err
	}
	*x = ExitEvent(aux.plain)
	x.ExitedAt = time.Time(aux.ExitedAt)
	return nil
}

// Crashed reports whether the exit was a failure nobody asked for: not a
// requested stop, and a non-zero exit code or an OOM kill.
func (x *ExitEvent) Crashed() bool {
	if x == nil {
		return false
	}
	return !x.RequestedStop && (x.ExitCode != 0 || x.OOMKilled)
}

// flexTime decodes a timestamp given as an RFC 3339 string, epoch
// milliseconds (integer, float or numeric string), null or "".
type flexTime time.Time

func (t *flexTime) UnmarshalJSON(data []byte) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || string(data) == "null" {
		*t = flexTime{}
		return nil
	}
	if data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		s = strings.TrimSpace(s)
		if s == "" {
			*t = flexTime{}
			return nil
		}
		if v, err := time.Parse(time.RFC3339Nano, s); err == nil {
			return t.set(v, data)
		}
		data = []byte(s)
	}
	ms, err := strconv.ParseFloat(string(data), 64)
	if err != nil {
		return fmt.Errorf("timestamp: want RFC 3339 or epoch milliseconds, got %.40s", data)
	}
	const maxMillis = 1 << 53 // beyond this floats lose milliseconds
	if ms > maxMillis || ms < -maxMillis {
		return fmt.Errorf("timestamp: epoch milliseconds %.40s out of range", data)
	}
	return t.set(time.UnixMilli(int64(ms)).UTC(), data)
}

// set stores v in UTC when its year is in 1–9999 (what JSON can encode
// again).
func (t *flexTime) set(v time.Time, data []byte) error {
	v = v.UTC()
	if y := v.Year(); y < 1 || y > 9999 {
		return fmt.Errorf("timestamp %.40s out of range", data)
	}
	*t = flexTime(v)
	return nil
}

// DecodeMachine decodes one machine from JSON.
func DecodeMachine(data []byte) (*Machine, error) {
	var m Machine
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("decoding machine: %w", err)
	}
	return &m, nil
}

// DecodeEvents decodes a JSON array of machine events.
func DecodeEvents(data []byte) ([]MachineEvent, error) {
	var events []MachineEvent
	if err := json.Unmarshal(data, &events); err != nil {
		return nil, fmt.Errorf("decoding machine events: %w", err)
	}
	return events, nil
}
