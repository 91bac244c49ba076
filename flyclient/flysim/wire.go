package flysim

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// This file holds the simulator's own wire types for the Machines API. They
// are written from the reference, independently of flyclient, so that the
// client and the simulator test each other.

// machineJSON is a Machine as GET, list, create and update return it.
type machineJSON struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	State      string          `json:"state"`
	Region     string          `json:"region"`
	InstanceID string          `json:"instance_id"`
	PrivateIP  string          `json:"private_ip"`
	ImageRef   *imageRefJSON   `json:"image_ref,omitempty"`
	CreatedAt  string          `json:"created_at"`
	UpdatedAt  string          `json:"updated_at"`
	Config     json.RawMessage `json:"config,omitempty"`
	Events     []eventJSON     `json:"events,omitempty"`
	Checks     []checkJSON     `json:"checks,omitempty"`
	Nonce      string          `json:"nonce,omitempty"`
	HostStatus string          `json:"host_status,omitempty"`
	Cordoned   *bool           `json:"cordoned,omitempty"`
}

type imageRefJSON struct {
	Registry   string            `json:"registry"`
	Repository string            `json:"repository"`
	Tag        string            `json:"tag"`
	Digest     string            `json:"digest"`
	Labels     map[string]string `json:"labels"`
}

// eventJSON is a MachineEvent: timestamp in epoch milliseconds, id a ULID.
type eventJSON struct {
	ID        string        `json:"id"`
	Type      string        `json:"type"`
	Status    string        `json:"status"`
	Source    string        `json:"source"`
	Timestamp int64         `json:"timestamp"`
	Request   *eventRequest `json:"request,omitempty"`
}

// eventRequest is the optional request object of an event. Exit events carry
// exit_event and restart_count; stop requests carry reason.
type eventRequest struct {
	ExitEvent    *exitEventJSON `json:"exit_event,omitempty"`
	RestartCount *int           `json:"restart_count,omitempty"`
	Reason       *string        `json:"reason,omitempty"`
	Signal       string         `json:"signal,omitempty"`
}

// exitEventJSON is request.exit_event of an exit event, as observed in 2026.
type exitEventJSON struct {
	RequestedStop bool   `json:"requested_stop"`
	Restarting    bool   `json:"restarting"`
	GuestExitCode int    `json:"guest_exit_code"`
	GuestSignal   int    `json:"guest_signal"`
	GuestError    string `json:"guest_error"`
	ExitCode      int    `json:"exit_code"`
	Signal        int    `json:"signal"`
	Error         string `json:"error"`
	OOMKilled     bool   `json:"oom_killed"`
	ExitedAt      string `json:"exited_at"`
}

type checkJSON struct {
	Name      string `json:"name"`
	Status    string `json:"status"`
	Output    string `json:"output"`
	UpdatedAt string `json:"updated_at"`
}

// createRequest is the body of create and of update (update adds
// current_version).
type createRequest struct {
	Name                    string          `json:"name"`
	Region                  string          `json:"region"`
	Config                  json.RawMessage `json:"config"`
	SkipLaunch              bool            `json:"skip_launch"`
	SkipServiceRegistration bool            `json:"skip_service_registration"`
	LeaseTTL                int             `json:"lease_ttl"`
	CurrentVersion          string          `json:"current_version"`
}

// stopRequest is the optional body of stop.
type stopRequest struct {
	Signal  string          `json:"signal"`
	Timeout json.RawMessage `json:"timeout"`
}

type errorJSON struct {
	Error  string `json:"error"`
	Status string `json:"status,omitempty"`
}

// machineConfig is the part of config the simulator interprets. The config
// itself is echoed back from its normalised raw form.
type machineConfig struct {
	Image       string            `json:"image"`
	Env         map[string]string `json:"env"`
	Metadata    map[string]string `json:"metadata"`
	AutoDestroy bool              `json:"auto_destroy"`
	Restart     *struct {
		Policy     string `json:"policy"`
		MaxRetries *int   `json:"max_retries"`
	} `json:"restart"`
	Services []struct {
		Autostop     json.RawMessage `json:"autostop"`
		Autostart    *bool           `json:"autostart"`
		InternalPort int             `json:"internal_port"`
		Checks       []checkConfig   `json:"checks"`
	} `json:"services"`
	Checks map[string]checkConfig `json:"checks"`
}

// checkConfig is the part of a check the simulator reads.
type checkConfig struct {
	Type string `json:"type"`
	Port int    `json:"port"`
	Path string `json:"path"`
}

// Restart policies.
const (
	policyNo        = "no"
	policyAlways    = "always"
	policyOnFailure = "on-failure"
)

// defaultMaxRetries is Fly's default for on-failure: 10 restarts within
// restartWindow.
const (
	defaultMaxRetries = 10
	restartWindow     = 5 * time.Minute
)

// restartPolicy returns the policy (on-failure by default) and max_retries
// (10 by default).
func (c *machineConfig) restartPolicy() (string, int) {
	policy, retries := policyOnFailure, defaultMaxRetries
	if c.Restart != nil {
		if c.Restart.Policy != "" {
			policy = c.Restart.Policy
		}
		if c.Restart.MaxRetries != nil {
			retries = *c.Restart.MaxRetries
		}
	}
	return policy, retries
}

// autostopMode returns "off", "stop" or "suspend": the first service with
// autostop on decides.
func (c *machineConfig) autostopMode() string {
	for _, svc := range c.Services {
		if mode, _ := parseAutostop(svc.Autostop); mode != "off" {
			return mode
		}
	}
	return "off"
}

// parseAutostop reads autostop as a bool (false=off, true=stop) or one of
// "off", "stop", "suspend". Absent is off.
func parseAutostop(raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "off", nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return "stop", nil
		}
		return "off", nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		switch s {
		case "off", "stop", "suspend":
			return s, nil
		}
	}
	return "", fmt.Errorf("invalid_argument: invalid autostop value %s: must be a boolean or one of off, stop, suspend", raw)
}

// mcpPackage returns config.env.MCP_PACKAGE.
func (c *machineConfig) mcpPackage() string { return c.Env["MCP_PACKAGE"] }

// parseConfig validates a config object and returns its typed view and its
// normalised echo: services[].autostop "off"/"stop" become false/true (Fly's
// responses use booleans for those) and a missing guest gets Fly's default
// shared-cpu-1x.
func parseConfig(raw json.RawMessage) (machineConfig, json.RawMessage, error) {
	var cfg machineConfig
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || string(trimmed) == "null" {
		return cfg, nil, badRequest("invalid_argument: config is required")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return cfg, nil, badRequest(err.Error())
	}
	if err := json.Unmarshal(trimmed, &cfg); err != nil {
		return cfg, nil, badRequest(err.Error())
	}
	if strings.TrimSpace(cfg.Image) == "" {
		return cfg, nil, badRequest("invalid_argument: config.image is required")
	}
	policy, retries := cfg.restartPolicy()
	switch policy {
	case policyNo, policyAlways, policyOnFailure, "spot-price":
	default:
		return cfg, nil, badRequest(fmt.Sprintf("invalid_argument: invalid restart policy %q", policy))
	}
	if retries < 0 {
		return cfg, nil, badRequest("invalid_argument: restart.max_retries must not be negative")
	}
	if _, ok := fields["services"]; ok && len(cfg.Services) > 0 {
		var services []map[string]json.RawMessage
		if err := json.Unmarshal(fields["services"], &services); err != nil {
			return cfg, nil, badRequest(err.Error())
		}
		for i, svc := range services {
			mode, err := parseAutostop(svc["autostop"])
			if err != nil {
				return cfg, nil, badRequest(err.Error())
			}
			switch {
			case svc["autostop"] == nil:
			case mode == "off":
				services[i]["autostop"] = json.RawMessage("false")
			case mode == "stop":
				services[i]["autostop"] = json.RawMessage("true")
			}
		}
		b, _ := json.Marshal(services)
		fields["services"] = b
	}
	if _, ok := fields["guest"]; !ok {
		fields["guest"] = json.RawMessage(`{"cpu_kind":"shared","cpus":1,"memory_mb":256}`)
	}
	norm, err := json.Marshal(fields)
	if err != nil {
		return cfg, nil, badRequest(err.Error())
	}
	return cfg, norm, nil
}

// withMetadata returns raw with config.metadata replaced by md.
func withMetadata(raw json.RawMessage, md map[string]string) json.RawMessage {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return raw
	}
	if len(md) == 0 {
		delete(fields, "metadata")
	} else {
		b, _ := json.Marshal(md)
		fields["metadata"] = b
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return raw
	}
	return out
}

// imageRef splits an image reference like
// "registry-1.docker.io/library/ubuntu:latest" the way Fly reports it.
func imageRef(image string) *imageRefJSON {
	ref := &imageRefJSON{Registry: "registry-1.docker.io", Tag: "latest", Labels: map[string]string{}}
	rest := image
	if i := strings.Index(rest, "@"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.Index(rest, "/"); i >= 0 && strings.ContainsAny(rest[:i], ".:") {
		ref.Registry, rest = rest[:i], rest[i+1:]
	}
	if i := strings.LastIndex(rest, ":"); i >= 0 && !strings.Contains(rest[i:], "/") {
		ref.Tag, rest = rest[i+1:], rest[:i]
	}
	if ref.Registry == "registry-1.docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	ref.Repository = rest
	sum := sha256.Sum256([]byte(image))
	ref.Digest = "sha256:" + hex.EncodeToString(sum[:])
	return ref
}

// rfc3339 formats t as Fly does for created_at/updated_at.
func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// rfc3339ms formats t with milliseconds, as Fly does for exited_at and check
// updated_at.
func rfc3339ms(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
