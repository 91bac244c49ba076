package flysim_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// The tests speak HTTP with their own small views of the JSON, never with
// flyclient and never with the simulator's internal types.

const (
	testToken = "test-token-123"
	testApp   = "sim-app"
	testImage = "registry.fly.io/flightdeck-runner:test"
)

// fastOptions are transition times short enough for a suite of seconds.
func fastOptions() flysim.Options {
	return flysim.Options{
		Addr:                "127.0.0.1:0",
		Token:               testToken,
		App:                 testApp,
		BootDuration:        20 * time.Millisecond,
		InstallDuration:     30 * time.Millisecond,
		StopDuration:        20 * time.Millisecond,
		CrashAfter:          80 * time.Millisecond,
		RestartDelay:        10 * time.Millisecond,
		DestroyedVisibleFor: 150 * time.Millisecond,
	}
}

// env is one simulator and the HTTP clients that talk to it.
type env struct {
	sim   *flysim.Simulator
	ctl   *flysim.Control
	hc    *http.Client
	probe *http.Client
}

// startSim starts a simulator with fastOptions changed by mods, closed when
// the spec ends.
func startSim(mods ...func(*flysim.Options)) *env {
	GinkgoHelper()
	opts := fastOptions()
	for _, mod := range mods {
		mod(&opts)
	}
	sim, err := flysim.Start(opts)
	Expect(err).NotTo(HaveOccurred())
	apiTransport := &http.Transport{}
	probeTransport := &http.Transport{DisableKeepAlives: true}
	e := &env{
		sim:   sim,
		hc:    &http.Client{Transport: apiTransport, Timeout: 90 * time.Second},
		probe: &http.Client{Transport: probeTransport, Timeout: 300 * time.Millisecond},
	}
	e.ctl = &flysim.Control{BaseURL: sim.URL(), Token: testToken, HTTP: e.hc}
	DeferCleanup(func() {
		Expect(sim.Close()).To(Succeed())
		apiTransport.CloseIdleConnections()
		probeTransport.CloseIdleConnections()
	})
	return e
}

type response struct {
	code   int
	body   []byte
	header http.Header
}

// object decodes the body as a JSON object.
func (r response) object() map[string]any {
	GinkgoHelper()
	var m map[string]any
	Expect(json.Unmarshal(r.body, &m)).To(Succeed(), string(r.body))
	return m
}

// call sends a request with the test token unless auth is given ("" for
// none).
func (e *env) call(method, path string, body any, auth ...string) response {
	GinkgoHelper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = bytes.NewBufferString(b)
	default:
		buf, err := json.Marshal(b)
		Expect(err).NotTo(HaveOccurred())
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.sim.URL()+path, rd)
	Expect(err).NotTo(HaveOccurred())
	if len(auth) > 0 {
		if auth[0] != "" {
			req.Header.Set("Authorization", auth[0])
		}
	} else {
		req.Header.Set("Authorization", "Bearer "+testToken)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.hc.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{code: resp.StatusCode, body: b, header: resp.Header}
}

// api calls a path under /v1/apps/{testApp}/machines.
func (e *env) api(method, suffix string, body any) response {
	GinkgoHelper()
	return e.call(method, "/v1/apps/"+testApp+"/machines"+suffix, body)
}

type machineView struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	State      string         `json:"state"`
	Region     string         `json:"region"`
	InstanceID string         `json:"instance_id"`
	PrivateIP  string         `json:"private_ip"`
	CreatedAt  string         `json:"created_at"`
	UpdatedAt  string         `json:"updated_at"`
	Config     map[string]any `json:"config"`
	Events     []eventView    `json:"events"`
	Checks     []checkView    `json:"checks"`
	Nonce      string         `json:"nonce"`
}

type eventView struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Status    string `json:"status"`
	Source    string `json:"source"`
	Timestamp int64  `json:"timestamp"`
	Request   *struct {
		ExitEvent    *exitView `json:"exit_event"`
		RestartCount *int      `json:"restart_count"`
	} `json:"request"`
}

func (ev eventView) String() string { return ev.Type + "/" + ev.Status + "/" + ev.Source }

type exitView struct {
	RequestedStop bool   `json:"requested_stop"`
	Restarting    bool   `json:"restarting"`
	ExitCode      int    `json:"exit_code"`
	OOMKilled     bool   `json:"oom_killed"`
	ExitedAt      string `json:"exited_at"`
}

type checkView struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Output string `json:"output"`
}

func decodeMachine(r response) machineView {
	GinkgoHelper()
	Expect(r.code).To(Equal(http.StatusOK), string(r.body))
	var m machineView
	Expect(json.Unmarshal(r.body, &m)).To(Succeed())
	return m
}

// machineBody is a create body running pkg.
func machineBody(pkg string, extra ...func(cfg map[string]any)) map[string]any {
	cfg := map[string]any{"image": testImage, "env": map[string]any{"MCP_PACKAGE": pkg}}
	for _, f := range extra {
		f(cfg)
	}
	return map[string]any{"config": cfg}
}

func withRestart(policy string, retries int) func(map[string]any) {
	return func(cfg map[string]any) {
		r := map[string]any{"policy": policy}
		if retries >= 0 {
			r["max_retries"] = retries
		}
		cfg["restart"] = r
	}
}

func withMetadata(kv ...string) func(map[string]any) {
	return func(cfg map[string]any) {
		md := map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			md[kv[i]] = kv[i+1]
		}
		cfg["metadata"] = md
	}
}

func (e *env) create(body map[string]any) machineView {
	GinkgoHelper()
	return decodeMachine(e.api("POST", "", body))
}

func (e *env) get(id string) machineView {
	GinkgoHelper()
	return decodeMachine(e.api("GET", "/"+id, nil))
}

// state returns a poller of the machine's state ("404" once it is gone).
func (e *env) state(id string) func() string {
	return func() string {
		GinkgoHelper()
		r := e.api("GET", "/"+id, nil)
		if r.code == http.StatusNotFound {
			return "404"
		}
		return decodeMachine(r).State
	}
}

// started creates a machine running pkg and waits until /status answers
// (or, for packages that never answer, until it is started).
func (e *env) started(pkg string, extra ...func(map[string]any)) machineView {
	GinkgoHelper()
	m := e.create(machineBody(pkg, extra...))
	Eventually(e.state(m.ID)).Should(Equal("started"))
	return e.get(m.ID)
}

func (e *env) events(id string, limit int) []eventView {
	GinkgoHelper()
	r := e.api("GET", "/"+id+"/events?limit="+strconv.Itoa(limit), nil)
	Expect(r.code).To(Equal(http.StatusOK), string(r.body))
	var evs []eventView
	Expect(json.Unmarshal(r.body, &evs)).To(Succeed())
	return evs
}

// exits returns the exit events of the machine, newest first.
func (e *env) exits(id string) []exitView {
	GinkgoHelper()
	var out []exitView
	for _, ev := range e.events(id, 50) {
		if ev.Type == "exit" {
			Expect(ev.Request).NotTo(BeNil())
			Expect(ev.Request.ExitEvent).NotTo(BeNil())
			out = append(out, *ev.Request.ExitEvent)
		}
	}
	return out
}

// statusURL is the probe URL of a machine.
func (e *env) statusURL(ip string) string {
	return fmt.Sprintf("http://%s:%d/status", ip, e.sim.StatusPort())
}

// probeCode probes /status and returns the code, or -1 with the error.
func (e *env) probeCode(ip string) (int, error) {
	resp, err := e.probe.Get(e.statusURL(ip))
	if err != nil {
		return -1, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// probeResult is a poller for Eventually: "200", "500", "refused",
// "timeout" or "error: ...".
func (e *env) probeResult(ip string) func() string {
	return func() string {
		code, err := e.probeCode(ip)
		switch {
		case err == nil:
			return strconv.Itoa(code)
		case errors.Is(err, syscall.ECONNREFUSED):
			return "refused"
		case isTimeout(err):
			return "timeout"
		}
		return "error: " + err.Error()
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func decodeJSONBytes(b []byte, v any) error { return json.Unmarshal(b, v) }

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
