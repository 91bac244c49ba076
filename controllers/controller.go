package controllers

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/flightdeck/flightdeck/reconciler"
	"github.com/flightdeck/flightdeck/store"
)

// Name is the controller's name: its metric label and log key.
const Name = "deployments"

// RowStore is what the controller's sources need from the store.
type RowStore interface {
	DeploymentGet(ctx context.Context, id string) (*store.Deployment, error)
	DeploymentListAll(ctx context.Context) ([]store.Deployment, error)
}

// Options configure a Controller.
type Options struct {
	// DatabaseURL is where the notification listener connects.
	DatabaseURL string
	Store       RowStore
	Cache       *reconciler.Cache
	Reconciler  reconcile.TypedReconciler[reconciler.Request]
	// MaxConcurrentReconciles bounds the reconciles (and so the probes) in
	// flight.
	MaxConcurrentReconciles int
	// ResyncInterval is how often the whole table is listed again.
	ResyncInterval time.Duration
	// SpreadInterval spreads the first reconcile of settled rows (running,
	// unhealthy, stopped) over this long at start, so that their probes do
	// not all fire together; CHECK_INTERVAL.
	SpreadInterval time.Duration
	// ReconciliationTimeout bounds one reconcile, and with it shutdown.
	ReconciliationTimeout time.Duration
	// ListenerMaxDowntime is how long the notification listener may stay
	// disconnected before Check fails.
	ListenerMaxDowntime time.Duration
	// SkipNameValidation allows several controllers in one process (tests).
	SkipNameValidation bool
	Log                logr.Logger
}

// Controller feeds the workqueue of deployment ids from PostgreSQL (NOTIFY
// and periodic resyncs) and runs controller-runtime's typed controller, with
// no manager and no Kubernetes API server, over the Reconciler.
type Controller struct {
	opts     Options
	ctrl     controller.TypedController[reconciler.Request]
	listener *store.Listener
	running  atomic.Bool
	stopped  atomic.Bool

	mu      sync.Mutex
	lastErr error
}

// New builds the controller; nothing runs until Start.
func New(opts Options) (*Controller, error) {
	if opts.Store == nil || opts.Cache == nil || opts.Reconciler == nil {
		return nil, errors.New("controller needs a store, a cache and a reconciler")
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = 1
	}
	if opts.ResyncInterval <= 0 {
		opts.ResyncInterval = 5 * time.Minute
	}
	listener, err := store.NewListener(store.ListenerConfig{
		DatabaseURL: opts.DatabaseURL,
		Channels:    []string{store.ChannelDeployments, store.ChannelStatus},
		MaxDowntime: opts.ListenerMaxDowntime,
	})
	if err != nil {
		return nil, fmt.Errorf("creating notification listener: %w", err)
	}
	log := opts.Log.WithValues("controller", Name)
	ctrl, err := controller.NewTypedUnmanaged[reconciler.Request](Name, controller.TypedOptions[reconciler.Request]{
		SkipNameValidation:      ptr.To(opts.SkipNameValidation),
		MaxConcurrentReconciles: opts.MaxConcurrentReconciles,
		Reconciler:              opts.Reconciler,
		RateLimiter:             rateLimiter(),
		ReconciliationTimeout:   opts.ReconciliationTimeout,
		RecoverPanic:            ptr.To(true),
		LogConstructor: func(req *reconciler.Request) logr.Logger {
			if req == nil {
				return log
			}
			return log.WithValues("deployment", req.ID)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating controller: %w", err)
	}
	c := &Controller{opts: opts, ctrl: ctrl, listener: listener}
	if err := ctrl.Watch(source.TypedFunc[reconciler.Request](c.startSources)); err != nil {
		return nil, fmt.Errorf("watching deployments: %w", err)
	}
	return c, nil
}

// rateLimiter paces the retries of failed reconciles (Fly or the database
// could not be asked): per deployment exponential from 500ms to 1 minute,
// and 50 retries per second overall so that an outage of Fly's API does not
// turn into a storm against it.
func rateLimiter() workqueue.TypedRateLimiter[reconciler.Request] {
	return workqueue.NewTypedMaxOfRateLimiter(
		workqueue.NewTypedItemExponentialFailureRateLimiter[reconciler.Request](500*time.Millisecond, time.Minute),
		&workqueue.TypedBucketRateLimiter[reconciler.Request]{Limiter: rate.NewLimiter(rate.Limit(50), 500)},
	)
}

// Start runs the listener, the sources and the workers until ctx is done or
// the controller fails, and returns once the in-flight reconciles finished.
func (c *Controller) Start(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(1)
	listenErr := make(chan error, 1)
	go func() {
		defer wg.Done()
		listenErr <- c.listener.Run(logr.NewContext(ctx, c.opts.Log.WithName("listener")))
	}()
	c.running.Store(true)
	c.opts.Log.Info("HealthMonitor started", "maxConcurrentReconciles", c.opts.MaxConcurrentReconciles,
		"resyncInterval", c.opts.ResyncInterval.String())
	err := c.ctrl.Start(ctx)
	c.running.Store(false)
	c.stopped.Store(true)
	cancel()
	wg.Wait()
	if err == nil {
		err = <-listenErr
	}
	c.setErr(err)
	return err
}

// Check is the controller's health: an error when it stopped, or when the
// notification listener has been disconnected for too long.
func (c *Controller) Check() error {
	if c.stopped.Load() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.lastErr != nil {
			return fmt.Errorf("controller stopped: %w", c.lastErr)
		}
		return errors.New("controller stopped")
	}
	return c.listener.Check()
}

// Running reports whether the workers are running.
func (c *Controller) Running() bool { return c.running.Load() }

func (c *Controller) setErr(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
}

// startSources is the controller's one source: it must not block, so the
// listing and the notification loop run in a goroutine bound to ctx.
func (c *Controller) startSources(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconciler.Request]) error {
	go c.feed(ctx, q)
	return nil
}

// Bounds of the backoff between retries of a failed resync.
const (
	resyncRetryMin = 250 * time.Millisecond
	resyncRetryMax = 10 * time.Second
)

// feed lists the table once the listener listens (so no change between the
// list and the LISTEN is missed), then refreshes rows named by NOTIFY,
// resyncs after every reconnect and every ResyncInterval.
//
// A resync or refresh that fails (the database is not back yet, or the pool
// handed out a connection that an outage cut) would leave changes unseen
// that no notification repeats, until the next ResyncInterval: it is
// followed by resyncs with backoff until one succeeds.
func (c *Controller) feed(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconciler.Request]) {
	log := c.opts.Log.WithName("source")
	select {
	case <-ctx.Done():
		return
	case <-c.listener.Ready():
	}
	listed := false // the first successful resync is the initial one
	var retry <-chan time.Time
	backoff := resyncRetryMin
	retryLater := func() {
		if retry == nil && ctx.Err() == nil {
			retry = time.After(backoff)
			backoff = min(2*backoff, resyncRetryMax)
		}
	}
	resync := func() {
		if c.resync(ctx, q, !listed) {
			listed, retry, backoff = true, nil, resyncRetryMin
			return
		}
		retryLater()
	}
	resync()
	ticker := time.NewTicker(c.opts.ResyncInterval)
	defer ticker.Stop()
	notes := c.listener.Notifications()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			resync()
		case <-retry:
			retry = nil
			log.Info("Retrying a failed resync")
			resync()
		case n, ok := <-notes:
			if !ok {
				return
			}
			if n.Reconnected {
				log.Info("Resyncing after the notification listener reconnected")
				resync()
				continue
			}
			if !c.refresh(ctx, q, n.Payload) {
				retryLater()
			}
		}
	}
}

// refresh re-reads one row named by a notification and enqueues it when it
// differs from the cached copy (the controller's own status writes are in
// the cache already, so they do not cause another pass). It reports false
// when the row could not be read.
func (c *Controller) refresh(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconciler.Request], id string) bool {
	d, err := c.opts.Store.DeploymentGet(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if _, ok := c.opts.Cache.Get(id); ok {
			c.opts.Cache.Delete(id)
			q.Add(reconciler.Request{ID: id})
		}
		return true
	case err != nil:
		// The row is reconciled from the cache meanwhile; a resync brings
		// it up to date.
		c.opts.Log.Error(err, "Refreshing deployment from a notification failed", "deployment", id)
		return false
	}
	if old, ok := c.opts.Cache.Get(id); ok && reconciler.SameRow(old, *d) {
		return true
	}
	c.opts.Cache.Put(*d)
	q.Add(reconciler.Request{ID: id})
	return true
}

// resync lists every row, replaces the cache and enqueues the rows that are
// new, changed or gone. At start every row is enqueued: rows on their way up
// at once, settled rows at a random moment within SpreadInterval. It
// reports false when the table could not be listed.
func (c *Controller) resync(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconciler.Request], initial bool) bool {
	rows, err := c.opts.Store.DeploymentListAll(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.opts.Log.Error(err, "Listing deployments for a resync failed")
		}
		return false
	}
	changed := c.opts.Cache.Replace(rows)
	if !initial {
		for _, id := range changed {
			q.Add(reconciler.Request{ID: id})
		}
		if len(changed) > 0 {
			c.opts.Log.V(1).Info("Resynced deployments", "rows", len(rows), "changed", len(changed))
		}
		return true
	}
	for _, d := range rows {
		req := reconciler.Request{ID: d.ID}
		if d.DeletedAt != nil || d.Status.Active() || c.opts.SpreadInterval <= 0 {
			q.Add(req)
			continue
		}
		q.AddAfter(req, rand.N(c.opts.SpreadInterval))
	}
	c.opts.Log.Info("Listed deployments", "rows", len(rows))
	return true
}
