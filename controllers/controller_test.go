package controllers_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/controllers"
	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/reconciler"
)

// The timings of the controllers under test: CHECK_INTERVAL 1s instead of
// 30s and the rest scaled to match, so that every story takes seconds.
const (
	checkInterval       = time.Second
	startupPollInterval = 200 * time.Millisecond
	startupTimeout      = 5 * time.Second
	probeTimeout        = 500 * time.Millisecond
	leaseDuration       = 3 * time.Second
	leaseRenewDeadline  = 2 * time.Second
	leaseRetryPeriod    = 500 * time.Millisecond
	shutdownTimeout     = 5 * time.Second
)

// runningController is a controller process (controllers.Setup + Run) on a
// world, with what the stories observe of it: its Fly calls and its logs.
type runningController struct {
	*controllers.Runner
	name  string
	calls *flyCounter
	logs  *logRecorder
	http  *http.Client

	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
	exitSeen atomic.Bool
}

// controllerOption adjusts the configuration or the setup of one controller.
type controllerOption func(*config.Config, *flyCounter)

// withLease sets the leader election timings.
func withLease(duration, renewDeadline, retryPeriod time.Duration) controllerOption {
	return func(c *config.Config, _ *flyCounter) {
		c.LeaseDuration, c.LeaseRenewDeadline, c.LeaseRetryPeriod = duration, renewDeadline, retryPeriod
	}
}

// afterCreate runs hook after each successful EnsureMachine, before the
// reconciler sees the answer; the reconciler gets ctx.Err() when the hook
// returns with ctx done (the process "died" before it could write).
func afterCreate(hook func(ctx context.Context, m *flyclient.Machine)) controllerOption {
	return func(_ *config.Config, f *flyCounter) { f.afterCreate = hook }
}

// startController sets up a controller exactly as `flightdeck run` does
// (leader election on, lease named controllers.LeaseName, identity name)
// and runs it until the spec ends or Stop is called.
func (w *world) startController(ctx context.Context, name string, opts ...controllerOption) *runningController {
	GinkgoHelper()
	cfg := w.fly.Config(w.url)
	cfg.CheckInterval = checkInterval
	cfg.StartupPollInterval = startupPollInterval
	cfg.StartupTimeout = startupTimeout
	cfg.ProbeTimeout = probeTimeout
	cfg.LeaderElect = true
	cfg.LeaderID = name
	cfg.LeaseDuration, cfg.LeaseRenewDeadline, cfg.LeaseRetryPeriod = leaseDuration, leaseRenewDeadline, leaseRetryPeriod
	cfg.ShutdownTimeout = shutdownTimeout
	calls := &flyCounter{calls: map[string]int{}}
	for _, o := range opts {
		o(&cfg, calls)
	}
	Expect(cfg.Validate(config.RequiredForRun()...)).To(Succeed())

	logs := &logRecorder{}
	runner, err := controllers.Setup(ctx, cfg, controllers.SetupOptions{
		Log:                logs.logger(name),
		SkipNameValidation: true, // several controllers per test binary
		WrapFly: func(fly reconciler.Fly) reconciler.Fly {
			calls.inner = fly
			return calls
		},
	})
	Expect(err).NotTo(HaveOccurred())

	runCtx, cancel := context.WithCancel(context.Background())
	c := &runningController{
		Runner: runner, name: name, calls: calls, logs: logs,
		http:   &http.Client{Transport: &http.Transport{}, Timeout: 5 * time.Second},
		cancel: cancel, done: make(chan error, 1),
	}
	go func() {
		defer GinkgoRecover()
		c.done <- runner.Run(runCtx)
	}()
	DeferCleanup(func() {
		// Stop is idempotent: a story that stopped the controller itself
		// checked the error, and so did one that saw it exit.
		if err := c.Stop(); !c.exitSeen.Load() {
			Expect(err).NotTo(HaveOccurred(), "stopping controller %s", name)
		}
		c.Close()
		c.http.CloseIdleConnections()
	})
	return c
}

// Stop cancels the controller's context, as SIGTERM does, and returns what
// Run returned. It fails the spec when Run does not return within twice
// the shutdown timeout.
func (c *runningController) Stop() error {
	c.stopOnce.Do(func() {
		c.cancel()
		select {
		case c.stopErr = <-c.done:
		case <-time.After(2 * shutdownTimeout):
			c.stopErr = fmt.Errorf("controller %s did not stop within %s", c.name, 2*shutdownTimeout)
		}
	})
	return c.stopErr
}

// get GETs a path of the controller's HTTP server and returns the code
// and the body.
func (c *runningController) get(path string) (int, string, error) {
	resp, err := c.http.Get("http://" + c.Addr() + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b)), err
}

// endpoint is for Eventually: the code and body of a GET of path.
func (c *runningController) endpoint(path string) func() (string, error) {
	return func() (string, error) {
		code, body, err := c.get(path)
		return fmt.Sprintf("%d %s", code, body), err
	}
}

// flyCounter wraps the Fly client the reconciler uses: it counts the calls
// by method and remembers when the first and the last happened, so that a
// story can tell which controller acted, and when.
type flyCounter struct {
	inner       reconciler.Fly
	afterCreate func(ctx context.Context, m *flyclient.Machine)

	mu          sync.Mutex
	calls       map[string]int
	first, last time.Time
	created     []bool // EnsureMachine's created flag, per successful call
}

var _ reconciler.Fly = (*flyCounter)(nil)

func (f *flyCounter) record(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	now := time.Now()
	if f.first.IsZero() {
		f.first = now
	}
	f.last = now
}

// Total is the number of Fly calls so far.
func (f *flyCounter) Total() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		n += c
	}
	return n
}

// Calls returns the calls by method.
func (f *flyCounter) Calls() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]int, len(f.calls))
	for k, v := range f.calls {
		out[k] = v
	}
	return out
}

// Span returns when the first and the last call started.
func (f *flyCounter) Span() (first, last time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.first, f.last
}

// Created returns EnsureMachine's created flags, in call order.
func (f *flyCounter) Created() []bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]bool(nil), f.created...)
}

func (f *flyCounter) EnsureMachine(ctx context.Context, deploymentID string, in flyclient.CreateMachineInput) (*flyclient.Machine, bool, error) {
	f.record("EnsureMachine")
	m, created, err := f.inner.EnsureMachine(ctx, deploymentID, in)
	if err != nil {
		return m, created, err
	}
	f.mu.Lock()
	f.created = append(f.created, created)
	f.mu.Unlock()
	if f.afterCreate != nil {
		f.afterCreate(ctx, m)
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
	}
	return m, created, nil
}

func (f *flyCounter) GetMachine(ctx context.Context, id string) (*flyclient.Machine, error) {
	f.record("GetMachine")
	return f.inner.GetMachine(ctx, id)
}

func (f *flyCounter) ListMachines(ctx context.Context, opts flyclient.ListMachinesOptions) ([]flyclient.Machine, error) {
	f.record("ListMachines")
	return f.inner.ListMachines(ctx, opts)
}

func (f *flyCounter) UpdateMachine(ctx context.Context, id string, in flyclient.UpdateMachineInput) (*flyclient.Machine, error) {
	f.record("UpdateMachine")
	return f.inner.UpdateMachine(ctx, id, in)
}

func (f *flyCounter) StartMachine(ctx context.Context, id string) error {
	f.record("StartMachine")
	return f.inner.StartMachine(ctx, id)
}

func (f *flyCounter) WaitMachine(ctx context.Context, id string, opts flyclient.WaitOptions) (string, error) {
	f.record("WaitMachine")
	return f.inner.WaitMachine(ctx, id, opts)
}

func (f *flyCounter) DestroyMachine(ctx context.Context, id string, force bool) error {
	f.record("DestroyMachine")
	return f.inner.DestroyMachine(ctx, id, force)
}

// logRecorder keeps a controller's log lines (and copies them to
// GinkgoWriter), so that a story can check what the controller said.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) logger(name string) logr.Logger {
	return funcr.New(func(prefix, args string) {
		line := prefix + " " + args
		l.mu.Lock()
		l.lines = append(l.lines, line)
		l.mu.Unlock()
		fmt.Fprintf(GinkgoWriter, "%s %s\n", time.Now().Format("15:04:05.000"), line)
	}, funcr.Options{Verbosity: 1}).WithName(name)
}

// Lines returns the log lines so far.
func (l *logRecorder) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// errStopped marks a controller whose Run returned on its own.
var errStopped = errors.New("controller stopped by itself")

// alive reports an error, wrapping Run's, when Run has returned on its own
// (the process would exit). A story that saw it expects it: the cleanup
// then does not fail on Run's error.
func (c *runningController) alive() error {
	select {
	case err := <-c.done:
		c.done <- err // keep it for Stop
		c.exitSeen.Store(true)
		return fmt.Errorf("%w: %w", errStopped, err)
	default:
		return nil
	}
}
