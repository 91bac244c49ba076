package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/go-logr/logr"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/reconciler/probe"
	"github.com/flightdeck/flightdeck/store"
)

// PackageEnv is the machine env variable that names the npm package the
// runner image installs and starts; a deployment's env cannot override it.
const PackageEnv = "MCP_PACKAGE"

// StatusPort is the port the MCP server's /status listens on inside the
// machine (services[].internal_port of created machines).
const StatusPort = 8080

// Store is what a reconcile writes: guarded transitions, the machine
// columns, and the final deletion; plus a read to refresh a conflicting row.
type Store interface {
	DeploymentGet(ctx context.Context, id string) (*store.Deployment, error)
	DeploymentTransition(ctx context.Context, p store.DeploymentTransitionParams) (*store.Deployment, error)
	DeploymentRecordMachine(ctx context.Context, p store.DeploymentRecordMachineParams) (*store.Deployment, error)
	DeploymentDelete(ctx context.Context, id string) error
}

// Fly is the part of the Fly Machines API client a reconcile uses.
type Fly interface {
	EnsureMachine(ctx context.Context, deploymentID string, in flyclient.CreateMachineInput) (*flyclient.Machine, bool, error)
	GetMachine(ctx context.Context, id string) (*flyclient.Machine, error)
	ListMachines(ctx context.Context, opts flyclient.ListMachinesOptions) ([]flyclient.Machine, error)
	UpdateMachine(ctx context.Context, id string, in flyclient.UpdateMachineInput) (*flyclient.Machine, error)
	StartMachine(ctx context.Context, id string) error
	WaitMachine(ctx context.Context, id string, opts flyclient.WaitOptions) (string, error)
	DestroyMachine(ctx context.Context, id string, force bool) error
}

// Prober probes a server's /status.
type Prober interface {
	Probe(ctx context.Context, url string) probe.Result
}

// Options configure a Reconciler.
type Options struct {
	Store   Store
	Cache   *Cache
	Fly     Fly
	Prober  Prober
	Timings decision.Timings
	// App is the Fly app (the {app} placeholder); ProbeURL builds probe URLs.
	App      string
	ProbeURL config.ProbeTemplate
	// RunnerImage is config.image of created machines.
	RunnerImage string
	// Region of created machines; "" lets Fly choose.
	Region string
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Reconciler gathers what a deployment's decision needs (the cached row, a
// /status probe, the Fly machine), lets decision.Decide choose, and acts:
// writes the guarded transition, creates, updates or destroys the machine.
// It implements reconcile.TypedReconciler[Request].
type Reconciler struct {
	opts Options
	// confirm remembers, per deployment, that the last probe failed and the
	// next pass confirms or clears it.
	confirm sync.Map
}

var _ reconcile.TypedReconciler[Request] = (*Reconciler)(nil)

// New returns a Reconciler.
func New(opts Options) *Reconciler {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Reconciler{opts: opts}
}

// errTransient is returned to controller-runtime when Fly could not be
// asked: its rate limiter retries the deployment with backoff.
type errTransient struct{ msg string }

func (e *errTransient) Error() string { return e.msg }

// maxSteps bounds one pass; Decide asks for each action at most once.
const maxSteps = 12

// Reconcile runs one pass for a deployment. Errors mean "retry with backoff"
// and are logged by controller-runtime, not here.
func (r *Reconciler) Reconcile(ctx context.Context, req Request) (reconcile.Result, error) {
	res, err := r.reconcile(ctx, req)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// Shutting down: the pass was cut short on purpose, which is no
		// error worth a log line; the next leader takes the row from here.
		return reconcile.Result{}, nil
	}
	return res, err
}

// reconcile is one pass: see Reconcile.
func (r *Reconciler) reconcile(ctx context.Context, req Request) (reconcile.Result, error) {
	row, ok := r.opts.Cache.Get(req.ID)
	if !ok {
		r.confirm.Delete(req.ID)
		return reconcile.Result{}, nil
	}
	log := logf.FromContext(ctx)
	pending, _ := r.confirm.Load(req.ID)
	obs := decision.Observation{
		Timings:             r.opts.Timings,
		Deployment:          toDecision(row),
		PendingConfirmation: pending == true,
	}
	for step := 0; step < maxSteps; step++ {
		obs.Now = r.opts.Now()
		d := decision.Decide(obs)
		if d.Transition(obs.Deployment) {
			written, err := r.write(ctx, log, row, d)
			switch {
			case errors.Is(err, store.ErrConflict):
				return r.refresh(ctx, req.ID)
			case errors.Is(err, store.ErrNotFound):
				r.forget(req.ID)
				return reconcile.Result{}, nil
			case err != nil:
				return reconcile.Result{}, err
			}
			row = written
			obs.Deployment = toDecision(row)
		}
		if d.Action == decision.ActionNone {
			r.remember(req.ID, d.PendingConfirmation)
			if d.Retry {
				return reconcile.Result{}, &errTransient{msg: d.Message}
			}
			if d.RequeueAfter <= 0 {
				return reconcile.Result{}, nil
			}
			return reconcile.Result{RequeueAfter: d.Delay(rand.Float64())}, nil
		}
		if err := r.act(ctx, log, row, d, &obs); err != nil {
			return reconcile.Result{}, err
		}
		if d.Action == decision.ActionDeleteRow {
			return reconcile.Result{}, nil
		}
	}
	return reconcile.Result{}, fmt.Errorf("deployment %s: no decision after %d steps", req.ID, maxSteps)
}

// write applies a decision to the row: the machine columns first (a fact
// about Fly, guarded on the generation), then the guarded status transition
// with its event. The cache holds what was written.
func (r *Reconciler) write(ctx context.Context, log logr.Logger, row store.Deployment, d decision.Decision) (store.Deployment, error) {
	if d.MachineID != row.MachineID || d.PrivateIP != row.PrivateIP {
		region := row.Region
		if d.MachineID != row.MachineID {
			region = ""
		}
		written, err := r.opts.Store.DeploymentRecordMachine(ctx, store.DeploymentRecordMachineParams{
			ID: row.ID, MachineID: d.MachineID, PrivateIP: d.PrivateIP, Region: region, Generation: row.Generation,
		})
		if err != nil {
			return row, fmt.Errorf("recording machine of deployment %s: %w", row.ID, err)
		}
		row = *written
		r.opts.Cache.Put(row)
	}
	if d.Status == row.Status && d.ProgressMessage == row.ProgressMessage && d.ErrorMessage == row.ErrorMessage &&
		d.ObservedGeneration == row.ObservedGeneration && !d.Entered {
		return row, nil
	}
	from := row.Status
	if d.Status != from {
		log.Info("Changing deployment status", "from", from, "to", d.Status, "reason", d.Reason, "message", d.Message)
	}
	written, err := r.opts.Store.DeploymentTransition(ctx, store.DeploymentTransitionParams{
		ID:                 row.ID,
		FromStatus:         from,
		Generation:         row.Generation,
		ToStatus:           d.Status,
		ProgressMessage:    d.ProgressMessage,
		ErrorMessage:       d.ErrorMessage,
		ObservedGeneration: d.ObservedGeneration,
		Reason:             string(d.Reason),
		Message:            store.TruncateMessage(d.Message),
		Reentered:          d.Entered && d.Status == from,
	})
	if err != nil {
		return row, fmt.Errorf("writing status of deployment %s: %w", row.ID, err)
	}
	if d.Status != from {
		observeTransition(from, d.Status)
	}
	r.opts.Cache.Put(*written)
	return *written, nil
}

// refresh re-reads a row whose guarded write conflicted (someone else moved
// it on) and requeues it at once.
func (r *Reconciler) refresh(ctx context.Context, id string) (reconcile.Result, error) {
	d, err := r.opts.Store.DeploymentGet(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		r.forget(id)
		return reconcile.Result{}, nil
	case err != nil:
		return reconcile.Result{}, fmt.Errorf("refreshing deployment %s after a conflict: %w", id, err)
	}
	r.opts.Cache.Put(*d)
	return reconcile.Result{RequeueAfter: time.Millisecond}, nil
}

// act performs the decision's action and records its answer in obs.
func (r *Reconciler) act(ctx context.Context, log logr.Logger, row store.Deployment, d decision.Decision, obs *decision.Observation) error {
	switch d.Action {
	case decision.ActionProbe:
		res := r.probe(ctx, row)
		if ctx.Err() != nil {
			return ctx.Err() // a cancelled probe says nothing about the server
		}
		obs.Probe = &res
	case decision.ActionObserveMachine:
		m, err := r.opts.Fly.GetMachine(ctx, row.MachineID)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			obs.MachineErr = flyError(err)
		} else {
			obs.Machine = toMachine(m)
		}
	case decision.ActionCreateMachine:
		log.Info("Creating Fly machine")
		m, created, err := r.opts.Fly.EnsureMachine(ctx, row.ID, flyclient.CreateMachineInput{
			Region: r.opts.Region,
			Config: r.machineConfig(row),
		})
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			obs.Create = &decision.FlyResult{Err: flyError(err)}
			return nil
		}
		if !created {
			log.Info("Found the deployment's existing Fly machine", "machineID", m.ID)
		}
		obs.Create = &decision.FlyResult{Machine: toMachine(m)}
	case decision.ActionUpdateMachine:
		log.Info("Updating Fly machine", "machineID", row.MachineID)
		m, err := r.updateMachine(ctx, row)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			obs.Update = &decision.FlyResult{Err: flyError(err)}
			return nil
		}
		obs.Update = &decision.FlyResult{Machine: toMachine(m)}
	case decision.ActionDestroyMachine:
		log.Info("Destroying Fly machine", "machineID", row.MachineID)
		if err := r.destroyMachine(ctx, row); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			obs.Destroy = &decision.FlyResult{Err: flyError(err)}
			return nil
		}
		obs.Destroy = &decision.FlyResult{}
	case decision.ActionDeleteRow:
		log.Info("Deleting deployment row")
		if err := r.opts.Store.DeploymentDelete(ctx, row.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("deleting deployment %s: %w", row.ID, err)
		}
		r.forget(row.ID)
	default:
		return fmt.Errorf("deployment %s: unknown action %s", row.ID, d.Action)
	}
	return nil
}

// probe GETs the deployment's /status. The URL comes only from the
// template with a validated machine id; a row whose URL cannot be built is
// reported as a failed probe (the decision never asks to probe a row with an
// invalid machine id).
func (r *Reconciler) probe(ctx context.Context, row store.Deployment) decision.ProbeResult {
	url, err := r.opts.ProbeURL.Render(r.opts.App, row.MachineID, row.PrivateIP)
	if err != nil {
		probeDuration.WithLabelValues(decision.ProbeOther.String()).Observe(0)
		return decision.ProbeResult{Kind: decision.ProbeOther, Message: "cannot build the probe URL: " + err.Error()}
	}
	res := r.opts.Prober.Probe(ctx, url)
	probeDuration.WithLabelValues(res.Kind.String()).Observe(res.Duration.Seconds())
	return res.ProbeResult
}

// machineConfig is the config of the deployment's machine: the runner
// image, the deployment's env plus MCP_PACKAGE (which the env cannot
// override), the deployment id in metadata, restart on failure, and a
// service the Fly proxy may autostop and autostart.
func (r *Reconciler) machineConfig(row store.Deployment) flyclient.MachineConfig {
	autostop := flyclient.AutostopStop
	env := make(flyclient.Env, len(row.Env)+1)
	maps.Copy(env, row.Env)
	env[PackageEnv] = row.Package
	return flyclient.MachineConfig{
		Image:    r.opts.RunnerImage,
		Env:      env,
		Guest:    &flyclient.GuestConfig{CPUKind: "shared", CPUs: 1, MemoryMB: 256},
		Restart:  &flyclient.RestartPolicy{Policy: "on-failure", MaxRetries: 10},
		Metadata: map[string]string{flyclient.MetadataDeploymentID: row.ID},
		Services: []flyclient.MachineService{{
			Protocol:     "tcp",
			InternalPort: StatusPort,
			Ports: []flyclient.MachinePort{
				{Port: ptrInt(443), Handlers: []string{"tls", "http"}},
				{Port: ptrInt(80), Handlers: []string{"http"}},
			},
			Autostart: ptrBool(true),
			Autostop:  &autostop,
		}},
	}
}

// updateMachine sends the row's whole config with the machine's current
// version, waits until Fly has replaced the machine, and starts it when Fly
// left it resting (an update of a stopped machine keeps it stopped). Fly
// answers the update before the swap, while the machine is replacing: the
// old version may still answer probes then (it would pass for the new one),
// and a start sent then gets 412, so the answer's state says nothing yet.
func (r *Reconciler) updateMachine(ctx context.Context, row store.Deployment) (*flyclient.Machine, error) {
	cur, err := r.opts.Fly.GetMachine(ctx, row.MachineID)
	if err != nil {
		return nil, err
	}
	m, err := r.opts.Fly.UpdateMachine(ctx, row.MachineID, flyclient.UpdateMachineInput{
		Config:         r.machineConfig(row),
		CurrentVersion: cur.InstanceID,
	})
	if err != nil {
		return nil, err
	}
	state, err := r.opts.Fly.WaitMachine(ctx, row.MachineID, flyclient.WaitOptions{
		States:     []string{flyclient.StateSettled},
		InstanceID: m.InstanceID,
	})
	if err != nil {
		return nil, err
	}
	switch state {
	case flyclient.StateStopped, flyclient.StateSuspended, flyclient.StateCreated:
		if err := r.opts.Fly.StartMachine(ctx, row.MachineID); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// destroyMachine destroys the deployment's machine with force; a machine
// that is already gone counts as destroyed. A row without a valid machine id
// may still have one (a crash between create and the write that records it):
// it is looked up by the deployment id in the machines' metadata.
func (r *Reconciler) destroyMachine(ctx context.Context, row store.Deployment) error {
	ids := []string{}
	if decision.ValidMachineID(row.MachineID) {
		ids = append(ids, row.MachineID)
	} else {
		found, err := r.opts.Fly.ListMachines(ctx, flyclient.ListMachinesOptions{
			Metadata: map[string]string{flyclient.MetadataDeploymentID: row.ID},
			Summary:  true,
		})
		if err != nil {
			return err
		}
		for _, m := range found {
			ids = append(ids, m.ID)
		}
	}
	for _, id := range ids {
		if err := r.opts.Fly.DestroyMachine(ctx, id, true); err != nil && !errors.Is(err, flyclient.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (r *Reconciler) remember(id string, pending bool) {
	if pending {
		r.confirm.Store(id, true)
	} else {
		r.confirm.Delete(id)
	}
}

func (r *Reconciler) forget(id string) {
	r.confirm.Delete(id)
	r.opts.Cache.Delete(id)
}

// toDecision is the part of a row the decision reads.
func toDecision(d store.Deployment) decision.Deployment {
	return decision.Deployment{
		ID:                 d.ID,
		Status:             d.Status,
		ProgressMessage:    d.ProgressMessage,
		ErrorMessage:       d.ErrorMessage,
		MachineID:          d.MachineID,
		PrivateIP:          d.PrivateIP,
		Generation:         d.Generation,
		ObservedGeneration: d.ObservedGeneration,
		StatusChangedAt:    d.StatusChangedAt,
		Deleted:            d.DeletedAt != nil,
	}
}

// toMachine is what the decision needs of a Fly machine.
func toMachine(m *flyclient.Machine) *decision.Machine {
	out := &decision.Machine{
		ID:            m.ID,
		State:         m.State,
		PrivateIP:     m.PrivateIP,
		LatestStartAt: m.LatestStartAt(),
	}
	for _, typ := range []string{"stop", "suspend"} {
		if e := m.LatestEvent(typ); e != nil && e.Time().After(out.LatestStopAt) {
			out.LatestStopAt = e.Time()
		}
	}
	if x, at, ok := m.LatestExit(); ok {
		code := x.ExitCode
		if code == 0 && x.GuestExitCode != 0 {
			code = x.GuestExitCode
		}
		out.LatestExit = &decision.Exit{
			Code:          code,
			OOMKilled:     x.OOMKilled,
			RequestedStop: x.RequestedStop,
			Restarting:    x.Restarting,
			RestartCount:  m.RestartCount(),
			At:            at,
		}
	}
	return out
}

// flyError classifies a failed Fly call for the decision. Fly's own message
// is kept (it may become a failed row's error); other errors are summarised.
func flyError(err error) *decision.FlyError {
	var apiErr *flyclient.APIError
	if errors.As(err, &apiErr) {
		return &decision.FlyError{
			Kind:       decision.ClassifyFlyStatus(apiErr.StatusCode),
			StatusCode: apiErr.StatusCode,
			Message:    apiErr.Message,
		}
	}
	if errors.Is(err, flyclient.ErrNotFound) {
		return &decision.FlyError{Kind: decision.FlyNotFound, StatusCode: 404, Message: "not found"}
	}
	if flyclient.IsPermanent(err) {
		return &decision.FlyError{Kind: decision.FlyPermanent, Message: err.Error()}
	}
	return &decision.FlyError{Kind: decision.FlyTransient, Message: "the Fly API could not be reached: " + err.Error()}
}

func ptrInt(v int) *int    { return &v }
func ptrBool(v bool) *bool { return &v }
