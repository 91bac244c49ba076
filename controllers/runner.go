package controllers

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"

	"github.com/flightdeck/flightdeck/reconciler"
	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// Runnable is a long-running part of the process (controller-runtime's
// manager.Runnable): Start blocks until ctx is done or it fails.
type Runnable interface {
	Start(ctx context.Context) error
}

// RunnerOptions assemble the process behind `flightdeck run`.
type RunnerOptions struct {
	Controller *Controller
	// Leader configures leader election; nil runs the controller without it
	// (one replica only).
	Leader *LeaderOptions
	// HTTPAddr is where Handler is served; Handler gets /healthz and /readyz
	// from Health and Ready.
	HTTPAddr string
	Handler  http.Handler
	// Background runs beside the controller on every replica (the
	// dashboard's event stream, its listener); one failing stops the process.
	Background []Runnable
	// Ping checks the database for /readyz.
	Ping func(ctx context.Context) error
	// Counts gives the deployments by status for the heartbeat.
	Counts            func() map[status.Status]int
	HeartbeatInterval time.Duration
	ShutdownTimeout   time.Duration
	Log               logr.Logger
}

// Runner runs the controller (as leader when configured), the HTTP server
// and the background parts, and turns any of them failing into a failed
// /healthz and a returned error, so that the process exits non-zero and
// the platform restarts it: no silent half-alive state.
type Runner struct {
	// Store and Cache are the runner's database and row cache (set by
	// Setup), for callers and tests that inspect them.
	Store *store.Store
	Cache *reconciler.Cache

	closers    []func()
	opts       RunnerOptions
	leadership Leadership
	failed     atomic.Pointer[error]
	listener   net.Listener
}

// NewRunner binds the HTTP address (so that a port in use is an error at
// once) and returns the runner.
func NewRunner(opts RunnerOptions) (*Runner, error) {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = time.Minute
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	ln, err := net.Listen("tcp", opts.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listening on HTTP_ADDR %s: %w", opts.HTTPAddr, err)
	}
	return &Runner{opts: opts, listener: ln}, nil
}

// Close releases what Setup opened (database pool, idle connections).
// Call it after Run returned.
func (r *Runner) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	_ = r.listener.Close()
}

// Addr is the bound HTTP address (useful with port 0).
func (r *Runner) Addr() string { return r.listener.Addr().String() }

// Healthz fails when the process no longer does its job: a part stopped, the
// lease was lost, or the controller's notification listener has been down
// too long.
func (r *Runner) Healthz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.healthy(); err != nil {
			http.Error(w, "unhealthy: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = fmt.Fprintln(w, "ok")
	})
}

// Readyz is ready when the database answers and, on the leader, the
// controller runs. A standby is ready: it serves the API and dashboard.
func (r *Runner) Readyz() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if err := r.healthy(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
		defer cancel()
		if r.opts.Ping != nil {
			if err := r.opts.Ping(ctx); err != nil {
				http.Error(w, "not ready: database: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		leading := r.opts.Leader == nil || r.leadership.Leading()
		if leading && !r.opts.Controller.Running() {
			http.Error(w, "not ready: controller not running", http.StatusServiceUnavailable)
			return
		}
		role := "leader"
		if !leading {
			role = "standby"
		}
		_, _ = fmt.Fprintln(w, "ok ("+role+")")
	})
}

func (r *Runner) healthy() error {
	if p := r.failed.Load(); p != nil {
		return *p
	}
	if r.opts.Leader == nil || r.leadership.Leading() {
		if err := r.opts.Controller.Check(); err != nil && r.opts.Controller.Running() {
			return err
		}
	}
	return nil
}

func (r *Runner) fail(err error) {
	r.failed.CompareAndSwap(nil, &err)
}

// watchInterval is how often the runner checks the controller's health.
const watchInterval = 5 * time.Second

// watch turns a controller that can no longer work (its notification
// listener has been disconnected past its allowed downtime) into a failure
// of the process, so that the platform restarts it instead of leaving it
// half alive.
func (r *Runner) watch(ctx context.Context, errs chan<- error) {
	ticker := time.NewTicker(watchInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			if !r.Leading() || !r.opts.Controller.Running() {
				continue
			}
			if err := r.opts.Controller.Check(); err != nil {
				errs <- err
				return
			}
		}
	}
}

// Leading reports whether this replica leads.
func (r *Runner) Leading() bool { return r.opts.Leader == nil || r.leadership.Leading() }

// Run serves until ctx is done (then shuts down in order and returns nil)
// or until a part fails (then returns its error).
func (r *Runner) Run(ctx context.Context) error {
	log := r.opts.Log
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	srv := &http.Server{Handler: r.opts.Handler, ReadHeaderTimeout: 10 * time.Second}
	errs := make(chan error, 4+len(r.opts.Background))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := srv.Serve(r.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs <- fmt.Errorf("HTTP server: %w", err)
		}
	}()
	log.Info("Serving HTTP", "addr", r.Addr())
	for _, b := range r.opts.Background {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := b.Start(runCtx); err != nil && runCtx.Err() == nil {
				errs <- err
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		Heartbeat(runCtx, log, r.opts.HeartbeatInterval, func() map[status.Status]int {
			if !r.Leading() {
				return map[status.Status]int{}
			}
			return r.opts.Counts()
		})
	}()

	wg.Add(1)
	go func() {
		defer wg.Done()
		r.watch(runCtx, errs)
	}()

	// The controller has a context of its own, so that it can be stopped
	// before the rest when another part fails.
	ctrlCtx, stopCtrl := context.WithCancel(ctx)
	defer stopCtrl()
	ctrlDone := make(chan error, 1)
	go func() {
		if r.opts.Leader == nil {
			ctrlDone <- r.opts.Controller.Start(ctrlCtx)
			return
		}
		lo := *r.opts.Leader
		lo.ShutdownTimeout = r.opts.ShutdownTimeout
		ctrlDone <- RunAsLeader(ctrlCtx, lo, &r.leadership, r.opts.Controller.Start)
	}()

	var runErr error
	ctrlRunning := true
	select {
	case err := <-ctrlDone:
		ctrlRunning = false
		if ctx.Err() == nil {
			if err == nil {
				err = errors.New("controller stopped")
			}
			runErr = err
		} else if err != nil && !errors.Is(err, context.Canceled) {
			runErr = err
		}
	case err := <-errs:
		runErr = err
	}
	if runErr != nil {
		r.fail(runErr)
		log.Error(runErr, "HealthMonitor stopped: exiting so that the process is restarted")
	} else {
		log.Info("Shutting down")
	}
	// Stop the controller first (when it is still running), then the rest.
	stopCtrl()
	shutdownCtx, stop := context.WithTimeout(context.WithoutCancel(ctx), r.opts.ShutdownTimeout)
	defer stop()
	if ctrlRunning {
		select {
		case <-ctrlDone:
		case <-shutdownCtx.Done():
		}
	}
	cancel()
	_ = srv.Shutdown(shutdownCtx)
	wg.Wait()
	return runErr
}

// RunnableFunc turns a function into a Runnable.
type RunnableFunc func(ctx context.Context) error

// Start calls f.
func (f RunnableFunc) Start(ctx context.Context) error { return f(ctx) }

// LazyHandler serves handler(get()) once get returns non-nil, and 503 before:
// the health handlers must be mounted before the Runner exists.
func LazyHandler[T any](get func() *T, handler func(*T) http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := get()
		if v == nil {
			http.Error(w, "starting", http.StatusServiceUnavailable)
			return
		}
		handler(v).ServeHTTP(w, r)
	})
}
