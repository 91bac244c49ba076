package controllers

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/client-go/tools/leaderelection"
)

// ErrLeaseLost is returned by RunAsLeader when another replica took the lease
// while this one was leading: the process must exit, since a controller
// cannot be started twice and a stale leader must not act.
var ErrLeaseLost = errors.New("leader election lost")

// LeaderOptions configure RunAsLeader.
type LeaderOptions struct {
	// Store holds the lease row; Name names it (one lease per database).
	Store LeaseStore
	Name  string
	// Identity is this replica's holder identity (unique per process).
	Identity string
	// LeaseDuration, RenewDeadline and RetryPeriod as in client-go:
	// a standby takes over at most LeaseDuration (+ RetryPeriod) after the
	// leader stopped renewing.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// ShutdownTimeout bounds how long a stopping leader waits for its work to
	// finish before it releases the lease anyway.
	ShutdownTimeout time.Duration
	Log             logr.Logger
}

// Leadership reports whether this replica leads; safe for concurrent use.
type Leadership struct{ leading atomic.Bool }

// Leading reports whether this replica holds the lease and runs the work.
func (l *Leadership) Leading() bool { return l != nil && l.leading.Load() }

// RunAsLeader campaigns for the lease and runs work while it is held.
//
// It returns nil after ctx is cancelled (SIGTERM): work's context is
// cancelled first, work is waited for (at most ShutdownTimeout), and only
// then is the lease released, so that a standby never acts while this
// replica still reconciles. It returns ErrLeaseLost when the lease was lost
// (work is cancelled at once), and work's error (or an error saying it
// stopped) when work returns by itself while leading.
func RunAsLeader(ctx context.Context, opts LeaderOptions, leadership *Leadership, work func(ctx context.Context) error) error {
	if leadership == nil {
		leadership = &Leadership{}
	}
	log := opts.Log.WithValues("lease", opts.Name, "identity", opts.Identity)
	lock := &PostgresLeaseLock{Name: opts.Name, Holder: opts.Identity, Store: opts.Store, Log: log}

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	electorCtx, cancelElector := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelElector()

	workDone := make(chan error, 1)
	started := make(chan struct{})
	elector, err := leaderelection.NewLeaderElector(leaderelection.LeaderElectionConfig{
		Lock:            lock,
		Name:            opts.Name,
		LeaseDuration:   opts.LeaseDuration,
		RenewDeadline:   opts.RenewDeadline,
		RetryPeriod:     opts.RetryPeriod,
		ReleaseOnCancel: true,
		Callbacks: leaderelection.LeaderCallbacks{
			OnStartedLeading: func(context.Context) {
				leadership.leading.Store(true)
				close(started)
				log.Info("Started leading")
				workDone <- work(workCtx)
			},
			OnStoppedLeading: func() {
				leadership.leading.Store(false)
				log.Info("Stopped leading")
			},
			OnNewLeader: func(identity string) {
				if identity != opts.Identity {
					log.Info("Another replica leads", "leader", identity)
				}
			},
		},
	})
	if err != nil {
		return fmt.Errorf("configuring leader election: %w", err)
	}
	electorDone := make(chan struct{})
	go func() {
		defer close(electorDone)
		elector.Run(electorCtx)
	}()

	waitWork := func() error {
		select {
		case <-started:
		default:
			return nil
		}
		timer := time.NewTimer(opts.ShutdownTimeout)
		defer timer.Stop()
		select {
		case err := <-workDone:
			return err
		case <-timer.C:
			return fmt.Errorf("work did not stop within %s", opts.ShutdownTimeout)
		}
	}

	select {
	case <-ctx.Done():
		log.Info("Stopping: finishing in-flight work before releasing the lease")
		cancelWork()
		werr := waitWork()
		cancelElector()
		<-electorDone
		if werr != nil && !errors.Is(werr, context.Canceled) {
			return werr
		}
		return nil
	case werr := <-workDone:
		cancelElector()
		<-electorDone
		if werr == nil {
			werr = errors.New("stopped while leading")
		}
		return fmt.Errorf("controller: %w", werr)
	case <-electorDone:
		// Run returned without our cancel: the renewal failed.
		cancelWork()
		_ = waitWork()
		return ErrLeaseLost
	}
}
