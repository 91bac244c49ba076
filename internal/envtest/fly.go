package envtest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/flightdeck/flightdeck/config"
	"net/http"
	"time"

	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// Simulator timings that keep a suite fast and still let every transition
// happen asynchronously, as on Fly: a machine is started 100ms after its
// create and its /status answers 300ms later.
const (
	FastBootDuration    = 100 * time.Millisecond
	FastInstallDuration = 300 * time.Millisecond
	FastStopDuration    = 100 * time.Millisecond
	FastRestartDelay    = 50 * time.Millisecond
	FastCrashAfter      = time.Second
)

// Fly is a running Fly Machines API simulator for a test, with a control
// client and an API client that share one HTTP transport (closed with the
// simulator, so that their keep-alive connections do not outlive the test).
type Fly struct {
	*flysim.Simulator
	// Control drives the simulator's /_sim/ endpoints (autostop, /status
	// answers, crashes, faults, stats). It hides the simulator's Control
	// method, whose client would use http.DefaultTransport.
	Control *flysim.Control
	// API is a Machines API client of the simulator, for tests that inspect
	// machines the way the controller sees them.
	API *flyclient.Client

	transport *http.Transport
}

// StartFly starts a simulator on a free loopback port. Zero options take
// test defaults: a random token, the Fast* timings, a free status port.
// Close it when done (DeferCleanup).
func StartFly(opts flysim.Options) (*Fly, error) {
	if opts.Token == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
		opts.Token = "envtest-" + hex.EncodeToString(b[:])
	}
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.BootDuration == 0 {
		opts.BootDuration = FastBootDuration
	}
	if opts.InstallDuration == 0 {
		opts.InstallDuration = FastInstallDuration
	}
	if opts.StopDuration == 0 {
		opts.StopDuration = FastStopDuration
	}
	if opts.RestartDelay == 0 {
		opts.RestartDelay = FastRestartDelay
	}
	if opts.CrashAfter == 0 {
		opts.CrashAfter = FastCrashAfter
	}
	sim, err := flysim.Start(opts)
	if err != nil {
		return nil, fmt.Errorf("starting Fly simulator: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	hc := &http.Client{
		Transport:     transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	api, err := flyclient.New(flyclient.Options{
		BaseURL:    sim.URL(),
		Token:      flyclient.Token(sim.Token()),
		App:        sim.App(),
		HTTPClient: hc,
		MaxRetries: -1,
	})
	if err != nil {
		_ = sim.Close()
		return nil, fmt.Errorf("creating Fly client of the simulator: %w", err)
	}
	return &Fly{
		Simulator: sim,
		Control:   &flysim.Control{BaseURL: sim.URL(), Token: sim.Token(), HTTP: hc},
		API:       api,
		transport: transport,
	}, nil
}

// ProbeURLTemplate is the PROBE_URL_TEMPLATE that reaches the simulated
// machines' /status servers: their private IP and the simulator's status
// port.
func (f *Fly) ProbeURLTemplate() string {
	return fmt.Sprintf("http://{private_ip}:%d/status", f.StatusPort())
}

// Close closes the simulator and the clients' connections.
func (f *Fly) Close() error {
	err := f.Simulator.Close()
	f.transport.CloseIdleConnections()
	return err
}

// Config returns flightdeck's default configuration pointed at databaseURL
// and at this simulator (API, token, app, probe URLs), serving HTTP on a free
// loopback port. Suites set their own timings on it.
func (f *Fly) Config(databaseURL string) config.Config {
	cfg := config.Default()
	cfg.DatabaseURL = config.ConnString(databaseURL)
	cfg.FlyAPIBaseURL = f.URL()
	cfg.FlyAPIToken = config.Secret(f.Token())
	cfg.FlyAppName = f.App()
	cfg.ProbeURLTemplate = f.ProbeURLTemplate()
	cfg.HTTPAddr = "127.0.0.1:0"
	return cfg
}
