package controllers

import (
	"context"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/reconciler"
	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/reconciler/probe"
	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/web"
)

// LeaseName names the one controller lease of a database.
const LeaseName = "flightdeck-controller"

// SetupOptions adjust Setup for the process or for a test.
type SetupOptions struct {
	Log logr.Logger
	// RegisterMetrics registers the deployments-by-status gauge; only one
	// Runner per process may do so.
	RegisterMetrics bool
	// SkipNameValidation allows several controllers in one process (tests).
	SkipNameValidation bool
	// WrapFly, when set, wraps the Fly client the reconciler uses (tests
	// count or interrupt calls with it).
	WrapFly func(reconciler.Fly) reconciler.Fly
	// StreamHeartbeat overrides the event stream's heartbeat (tests).
	StreamHeartbeat time.Duration
}

// Setup builds everything `flightdeck run` runs from a validated
// configuration: the store, the Fly client, the prober, the reconciler and
// its cache, the controller, the dashboard and API, leader election and the
// HTTP server (bound at once). Migrations are the caller's. Close the
// Runner after Run returns.
func Setup(ctx context.Context, cfg config.Config, opts SetupOptions) (*Runner, error) {
	log := opts.Log
	st, err := store.Open(ctx, cfg.DatabaseURL.Value())
	if err != nil {
		return nil, fmt.Errorf("opening database: %w", err)
	}
	closers := []func(){st.Close}
	fail := func(err error) (*Runner, error) {
		for _, c := range closers {
			c()
		}
		return nil, err
	}

	fly, err := flyclient.New(flyclient.Options{
		BaseURL:   cfg.FlyAPIBaseURL,
		Token:     flyclient.Token(cfg.FlyAPIToken.Value()),
		App:       cfg.FlyAppName,
		Logger:    log.WithName("fly"),
		OnRequest: reconciler.ObserveFlyRequest,
	})
	if err != nil {
		return fail(fmt.Errorf("creating Fly client: %w", err))
	}
	var flyAPI reconciler.Fly = fly
	if opts.WrapFly != nil {
		flyAPI = opts.WrapFly(fly)
	}
	prober, err := probe.New(probe.Options{
		Timeout:         cfg.ProbeTimeout,
		IdleConnTimeout: 2 * cfg.CheckInterval,
		MaxInFlight:     cfg.MaxConcurrentReconciles,
	})
	if err != nil {
		return fail(fmt.Errorf("creating prober: %w", err))
	}
	closers = append(closers, prober.Close, fly.CloseIdleConnections)
	probeURL, err := cfg.ProbeTemplate()
	if err != nil {
		return fail(err)
	}

	cache := reconciler.NewCache()
	if opts.RegisterMetrics {
		if err := reconciler.RegisterStatusGauge(cache); err != nil {
			return fail(fmt.Errorf("registering metrics: %w", err))
		}
	}
	rec := reconciler.New(reconciler.Options{
		Store:  st,
		Cache:  cache,
		Fly:    flyAPI,
		Prober: prober,
		Timings: decision.Timings{
			CheckInterval:       cfg.CheckInterval,
			StartupPollInterval: cfg.StartupPollInterval,
			StartupTimeout:      cfg.StartupTimeout,
		},
		App:         cfg.FlyAppName,
		ProbeURL:    probeURL,
		RunnerImage: cfg.FlyRunnerImage,
	})
	ctrl, err := New(Options{
		DatabaseURL:             cfg.DatabaseURL.Value(),
		Store:                   st,
		Cache:                   cache,
		Reconciler:              rec,
		MaxConcurrentReconciles: cfg.MaxConcurrentReconciles,
		ResyncInterval:          cfg.ResyncInterval,
		SpreadInterval:          cfg.CheckInterval,
		ReconciliationTimeout:   max(cfg.ShutdownTimeout, 3*cfg.ProbeTimeout),
		SkipNameValidation:      opts.SkipNameValidation,
		Log:                     log,
	})
	if err != nil {
		return fail(err)
	}

	statusListener, err := store.NewListener(store.ListenerConfig{
		DatabaseURL: cfg.DatabaseURL.Value(),
		Channels:    []string{store.ChannelStatus},
	})
	if err != nil {
		return fail(err)
	}
	var runner *Runner
	get := func() *Runner { return runner }
	site := web.NewServer(web.Options{
		Store:             st,
		APIToken:          cfg.APIToken,
		ReadsNeedToken:    !cfg.LoopbackHTTP(),
		Logger:            log,
		Notifications:     statusListener.Notifications(),
		Health:            LazyHandler(get, (*Runner).Healthz),
		Ready:             LazyHandler(get, (*Runner).Readyz),
		Metrics:           promhttp.HandlerFor(ctrlmetrics.Registry, promhttp.HandlerOpts{}),
		HeartbeatInterval: opts.StreamHeartbeat,
	})

	var leader *LeaderOptions
	if cfg.LeaderElect {
		leader = &LeaderOptions{
			Store:         st,
			Name:          LeaseName,
			Identity:      cfg.LeaderID,
			LeaseDuration: cfg.LeaseDuration,
			RenewDeadline: cfg.LeaseRenewDeadline,
			RetryPeriod:   cfg.LeaseRetryPeriod,
			Log:           log.WithName("leader"),
		}
	}
	runner, err = NewRunner(RunnerOptions{
		Controller: ctrl,
		Leader:     leader,
		HTTPAddr:   cfg.HTTPAddr,
		Handler:    site.Handler(),
		Background: []Runnable{
			RunnableFunc(func(ctx context.Context) error {
				return statusListener.Run(logr.NewContext(ctx, log.WithName("status-listener")))
			}),
			site,
		},
		Ping:            st.Ping,
		Counts:          cache.CountByStatus,
		ShutdownTimeout: cfg.ShutdownTimeout,
		Log:             log,
	})
	if err != nil {
		return fail(err)
	}
	runner.closers = closers
	runner.Store = st
	runner.Cache = cache
	return runner, nil
}
