package flysim

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// Control drives a simulator's /_sim/ endpoints over HTTP, for tests, the
// demo and the benchmark. It never prints its token.
type Control struct {
	// BaseURL is the simulator's URL, e.g. http://127.0.0.1:4280.
	BaseURL string
	// Token is the simulator's API token.
	Token string
	// HTTP is the client to use (default http.DefaultClient).
	HTTP *http.Client
}

// ControlError is a non-2xx answer of a control endpoint.
type ControlError struct {
	Method, Path string
	StatusCode   int
	Message      string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("flysim control %s %s: %s (HTTP %d)", e.Method, e.Path, e.Message, e.StatusCode)
}

// do sends in (when non-nil) as JSON and decodes the answer into out (when
// non-nil).
func (c *Control) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("flysim control %s %s: encoding request: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return fmt.Errorf("flysim control %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("flysim control %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("flysim control %s %s: reading answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e errorJSON
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return &ControlError{Method: method, Path: path, StatusCode: resp.StatusCode, Message: msg}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("flysim control %s %s: decoding answer: %w", method, path, err)
		}
	}
	return nil
}

func machinePath(id, action string) string {
	return "/_sim/machines/" + url.PathEscape(id) + "/" + action
}

// Autostop stops a started machine as the Fly proxy does for idle machines:
// events stop/stopping/proxy and an exit with requested_stop true.
func (c *Control) Autostop(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "autostop"), AutostopRequest{Mode: "stop"}, nil)
}

// AutostopSuspend suspends a started machine as the Fly proxy does for
// services with autostop "suspend".
func (c *Control) AutostopSuspend(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "autostop"), AutostopRequest{Mode: "suspend"}, nil)
}

// Autostart starts a stopped or suspended machine as the Fly proxy does on
// an incoming request (event start/starting/proxy).
func (c *Control) Autostart(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "autostart"), nil, nil)
}

// SetStatus makes the machine's /status answer code.
func (c *Control) SetStatus(ctx context.Context, machineID string, code int) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "status"), StatusRequest{Mode: StatusCode, Code: code}, nil)
}

// Hang makes the machine's /status accept connections and never answer.
func (c *Control) Hang(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "status"), StatusRequest{Mode: StatusHang}, nil)
}

// Drop makes the machine's /status accept connections and close them at once.
func (c *Control) Drop(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "status"), StatusRequest{Mode: StatusDrop}, nil)
}

// ResetStatus gives the machine's /status its package's own behaviour back.
func (c *Control) ResetStatus(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "status"), StatusRequest{Mode: StatusNormal}, nil)
}

// Crash makes the process of a started machine exit with exitCode; the
// restart policy applies.
func (c *Control) Crash(ctx context.Context, machineID string, exitCode int) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "crash"), CrashRequest{ExitCode: &exitCode}, nil)
}

// OOMKill makes the process of a started machine die of OOM (exit code 137,
// oom_killed true).
func (c *Control) OOMKill(ctx context.Context, machineID string) error {
	return c.do(ctx, http.MethodPost, machinePath(machineID, "crash"), CrashRequest{OOM: true}, nil)
}

// SetFaults replaces the API fault settings; Faults{} turns them all off.
func (c *Control) SetFaults(ctx context.Context, f Faults) error {
	return c.do(ctx, http.MethodPut, "/_sim/faults", f, nil)
}

// Faults returns the API fault settings.
func (c *Control) Faults(ctx context.Context) (Faults, error) {
	var f Faults
	err := c.do(ctx, http.MethodGet, "/_sim/faults", nil, &f)
	return f, err
}

// Stats returns the request counts since the last reset.
func (c *Control) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := c.do(ctx, http.MethodGet, "/_sim/stats", nil, &st)
	return st, err
}

// ResetStats zeroes the request counts.
func (c *Control) ResetStats(ctx context.Context) error {
	return c.do(ctx, http.MethodDelete, "/_sim/stats", nil, nil)
}

// Seed creates started, healthy machines in one call (see SeedRequest).
func (c *Control) Seed(ctx context.Context, req SeedRequest) ([]SeededMachine, error) {
	var out struct {
		Machines []SeededMachine `json:"machines"`
	}
	err := c.do(ctx, http.MethodPost, "/_sim/seed", req, &out)
	return out.Machines, err
}
