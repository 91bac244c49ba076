package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// simProcess is `flightdeck sim` running as its own process: the Fly API
// and every machine's /status live there, so that their file descriptors
// (one listener per machine plus one per open connection) and their CPU
// are not the bench's.
type simProcess struct {
	*child
	control     *flysim.Control
	apiURL      string
	token       string
	app         string
	probeURLTpl string
}

// startSim starts the simulator on a free loopback port with a random token
// and a free status port, and waits for the settings it prints.
func startSim(ctx context.Context, bin, dir string) (*simProcess, error) {
	addr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, 16)
	if _, err := rand.Read(buf); err != nil {
		return nil, fmt.Errorf("making a simulator token: %w", err)
	}
	token := hex.EncodeToString(buf)
	pr, pw := io.Pipe()
	c, err := startChild("flightdeck sim", bin,
		[]string{"sim", "--addr", addr, "--token", token, "--status-port", "0", "--stop", "500ms"},
		baseEnv(), filepath.Join(dir, "sim.log"), pw)
	if err != nil {
		return nil, err
	}
	settings := make(chan map[string]string, 1)
	go func() {
		// Read what the simulator prints; the token line is not logged.
		found := map[string]string{}
		sc := bufio.NewScanner(pr)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			if k, v, ok := strings.Cut(line, "="); ok && strings.ToUpper(k) == k && !strings.Contains(k, " ") {
				found[k] = v
				if k == "FLY_API_TOKEN" {
					line = k + "=[redacted]"
				}
			}
			fmt.Fprintln(c.log, line)
			if !sent && found["PROBE_URL_TEMPLATE"] != "" {
				settings <- found
				sent = true
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		<-c.done
		pw.Close()
	}()
	var got map[string]string
	select {
	case got = <-settings:
	case <-c.done:
		return nil, fmt.Errorf("flightdeck sim exited at start (%v); see %s", c.err, filepath.Join(dir, "sim.log"))
	case <-time.After(30 * time.Second):
		_ = c.stop(5 * time.Second)
		return nil, fmt.Errorf("flightdeck sim printed no settings within 30s")
	case <-ctx.Done():
		_ = c.stop(5 * time.Second)
		return nil, ctx.Err()
	}
	s := &simProcess{
		child:       c,
		apiURL:      got["FLY_API_BASE_URL"],
		token:       token,
		app:         got["FLY_APP_NAME"],
		probeURLTpl: got["PROBE_URL_TEMPLATE"],
	}
	s.control = &flysim.Control{
		BaseURL: s.apiURL,
		Token:   token,
		HTTP: &http.Client{
			Timeout:   2 * time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: 64, Proxy: nil},
		},
	}
	return s, nil
}

// baseEnv is the environment of the children: only what a Go program may
// look at, never the bench's own environment (it may name another
// database or token).
func baseEnv() []string {
	env := []string{"PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"HOME", "TMPDIR", "TZ"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// endpointName shortens a simulator route for the report:
// "GET /v1/apps/{app}/machines/{id}" becomes "GET machines/{id}".
func endpointName(method, route string) string {
	r := strings.TrimPrefix(route, "/v1/apps/{app}")
	r = strings.TrimPrefix(r, "/")
	if r == "" {
		r = "app"
	}
	return method + " " + r
}

// flyCalls returns the /v1 request counts per endpoint of a simulator
// stats snapshot.
func flyCalls(st flysim.Stats) map[string]int {
	out := map[string]int{}
	for _, rc := range st.Requests {
		out[endpointName(rc.Method, rc.Route)] += rc.Count
	}
	return out
}
