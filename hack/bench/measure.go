package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/internal/envtest"
)

// breakKind is how a machine is broken, and what its row must become.
type breakKind int

const (
	kind500  breakKind = iota // /status answers 500: running → unhealthy
	kindStop                  // autostopped by the Fly proxy: running → stopped
	numKinds
)

func (k breakKind) String() string {
	if k == kind500 {
		return "500 → unhealthy"
	}
	return "autostop → stopped"
}

// want is the status the row must take.
func (k breakKind) want() string {
	if k == kind500 {
		return "unhealthy"
	}
	return "stopped"
}

// phase is what one window cost.
type phase struct {
	wall         time.Duration
	cpu          time.Duration // flightdeck, user + system
	cpuSys       time.Duration // flightdeck, system (the kernel's TCP work is most of it)
	simCPU       time.Duration
	probes       float64
	failedProbes float64        // probes whose result was not ok
	rowWrites    int64          // tuples written to deployments and deployment_events
	otherWrites  int64          // tuples written to other tables (the leader lease)
	fly          map[string]int // Fly API requests the simulator answered, by endpoint
	changes      int            // status changes (events) written in the window
	// Upper bounds of the histogram buckets holding the quantiles: probe
	// durations, and how long a due deployment waited in the workqueue for
	// a worker (controller-runtime's decade buckets).
	probeP50, probeP99, queueP50, queueP99 float64
}

func (p phase) flyTotal() int {
	n := 0
	for _, c := range p.fly {
		n += c
	}
	return n
}

// cpuPerProbe is flightdeck's CPU time per probe (the largest duration without probes).
func (p phase) cpuPerProbe() time.Duration {
	if p.probes <= 0 {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(float64(p.cpu) / p.probes)
}

// result is everything measured at one N.
type result struct {
	n                   int
	broken              [numKinds]int
	latency             [numKinds][]time.Duration // detected breaks, sorted
	undetected          [numKinds]int
	wrongUntouched      int // events of deployments nobody broke
	untouchedNotRunning int // deployments nobody broke that are not running at the end
	wrongBroken         int // events of broken deployments other than the one expected transition
	healthy, breaking   phase
	startup             time.Duration // flightdeck start until every row was probed once
	peakRSS, rss        int64
	fds, fdLimit        int
	simPeakFDs          int
	simFDLimit          int
	loadStart, loadEnd  float64
	stopErr             error // flightdeck did not exit cleanly on SIGTERM
}

// snapshot is the state of the counters at one moment.
type snapshot struct {
	at          time.Time
	cpu, simCPU time.Duration
	cpuSys      time.Duration
	m           metrics
	writes      map[string]int64
	fly         map[string]int
}

// env is what one measurement works with.
type env struct {
	s          settings
	pool       *pgxpool.Pool
	sim        *simProcess
	fd         *child
	metricsURL string
	http       *http.Client
}

func (e *env) snapshot(ctx context.Context) (snapshot, error) {
	var sn snapshot
	sn.at = time.Now()
	user, sys, err := processCPUSplit(e.fd.pid())
	if err != nil {
		return sn, err
	}
	sn.cpu, sn.cpuSys = user+sys, sys
	if sn.simCPU, err = processCPU(e.sim.pid()); err != nil {
		return sn, err
	}
	if sn.m, err = scrapeMetrics(ctx, e.http, e.metricsURL); err != nil {
		return sn, err
	}
	st, err := e.sim.control.Stats(ctx)
	if err != nil {
		return sn, fmt.Errorf("reading the simulator's request counts: %w", err)
	}
	sn.fly = flyCalls(st)
	if sn.writes, err = tableWrites(ctx, e.pool); err != nil {
		return sn, err
	}
	return sn, nil
}

// between is the cost of the window from a to b.
func between(a, b snapshot) phase {
	p := phase{
		wall:   b.at.Sub(a.at),
		cpu:    b.cpu - a.cpu,
		cpuSys: b.cpuSys - a.cpuSys,
		simCPU: b.simCPU - a.simCPU,
		probes: b.m.probeCount() - a.m.probeCount(),
		fly:    map[string]int{},
	}
	p.failedProbes = p.probes - (b.m.sum("flightdeck_probe_duration_seconds_count", map[string]string{"result": "ok"}) -
		a.m.sum("flightdeck_probe_duration_seconds_count", map[string]string{"result": "ok"}))
	p.probeP50, _ = histogramQuantile(a.m, b.m, "flightdeck_probe_duration_seconds", nil, 0.50)
	p.probeP99, _ = histogramQuantile(a.m, b.m, "flightdeck_probe_duration_seconds", nil, 0.99)
	queue := map[string]string{"controller": "deployments"}
	p.queueP50, _ = histogramQuantile(a.m, b.m, "workqueue_queue_duration_seconds", queue, 0.50)
	p.queueP99, _ = histogramQuantile(a.m, b.m, "workqueue_queue_duration_seconds", queue, 0.99)
	for t, n := range b.writes {
		if rowTables[t] {
			p.rowWrites += n - a.writes[t]
		} else {
			p.otherWrites += n - a.writes[t]
		}
	}
	for ep, n := range b.fly {
		if d := n - a.fly[ep]; d != 0 {
			p.fly[ep] = d
		}
	}
	return p
}

// alive fails when flightdeck or the simulator has exited.
func (e *env) alive() error {
	if done, err := e.fd.exited(); done {
		return fmt.Errorf("flightdeck exited (%v); see its log", err)
	}
	if done, err := e.sim.exited(); done {
		return fmt.Errorf("the simulator exited (%v); see its log", err)
	}
	return nil
}

// sleep waits d, failing early when a process dies or ctx ends.
func (e *env) sleep(ctx context.Context, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		if err := e.alive(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(left, 500*time.Millisecond)):
		}
	}
}

// measure runs the whole scenario at fleet size n.
func measure(ctx context.Context, s settings, pg *envtest.Postgres, n int, dir, profile string, progress *progress) (*result, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating run directory: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &result{n: n, loadStart: loadAverage()}
	progress.printf("N=%d: starting the simulator (load average %.2f)", n, r.loadStart)
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err == nil && lim.Max < uint64(2*n+500) {
		progress.printf("N=%d: warning: the open-file hard limit %d is below 2N+500: the simulator holds a listener per machine and a connection per keep-alive probe, and may run out", n, lim.Max)
	}

	sim, err := startSim(ctx, s.flightdeck, dir)
	if err != nil {
		return nil, err
	}
	defer func() { _ = sim.stop(10 * time.Second) }()
	seeded, err := sim.control.Seed(ctx, flysim.SeedRequest{Count: n, Package: benchPackage, Autostop: "stop"})
	if err != nil {
		return nil, fmt.Errorf("seeding %d machines: %w", n, err)
	}
	if len(seeded) != n {
		return nil, fmt.Errorf("seeding %d machines: got %d", n, len(seeded))
	}

	dbURL, err := pg.NewDatabase(ctx, fmt.Sprintf("bench_n%d", n))
	if err != nil {
		return nil, err
	}
	byMachine, err := insertDeployments(ctx, dbURL, seeded)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.New(ctx, dbURL+"&pool_max_conns=4")
	if err != nil {
		return nil, fmt.Errorf("connecting to the bench database: %w", err)
	}
	defer pool.Close()
	progress.printf("N=%d: %d machines seeded and %d adopted rows inserted; starting flightdeck run", n, n, n)

	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		return nil, err
	}
	fdEnv := append(baseEnv(),
		"DATABASE_URL="+dbURL,
		"FLY_API_BASE_URL="+sim.apiURL,
		"FLY_API_TOKEN="+sim.token,
		"FLY_APP_NAME="+sim.app,
		"PROBE_URL_TEMPLATE="+sim.probeURLTpl,
		"CHECK_INTERVAL="+s.checkInterval.String(),
		"STARTUP_POLL_INTERVAL="+s.startupPollInterval.String(),
		"PROBE_TIMEOUT="+s.probeTimeout.String(),
		"HTTP_ADDR="+httpAddr,
		"LOG_FORMAT=json",
		"LOG_LEVEL=info",
	)
	if s.maxConcurrent > 0 {
		fdEnv = append(fdEnv, "MAX_CONCURRENT_RECONCILES="+strconv.Itoa(s.maxConcurrent))
	}
	if profile != "" {
		abs, err := filepath.Abs(profile)
		if err != nil {
			return nil, fmt.Errorf("-cpuprofile: %w", err)
		}
		profile = abs
		fdEnv = append(fdEnv, profileEnv+"="+profile)
	}
	fdEnv = append(fdEnv, s.extraEnv...)
	started := time.Now()
	fd, err := startChild("flightdeck run", s.flightdeck, []string{"run"}, fdEnv, filepath.Join(dir, "flightdeck.log"), nil)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = fd.stop(10 * time.Second)
		}
	}()
	e := &env{
		s: s, pool: pool, sim: sim, fd: fd,
		metricsURL: "http://" + httpAddr + "/metrics",
		http:       &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}},
	}
	fdsCtx, stopFDs := context.WithCancel(ctx)
	simFDs := sampleFDs(fdsCtx, sim.pid(), 5*time.Second)
	defer stopFDs()

	if err := e.waitReady(ctx, "http://"+httpAddr+"/readyz", time.Minute); err != nil {
		return nil, err
	}
	ready := time.Now()
	if err := e.waitFirstProbes(ctx, n, ready); err != nil {
		return nil, err
	}
	r.startup = time.Since(started)
	progress.printf("N=%d: every row probed once %.1fs after flightdeck started; warming up for %s", n, r.startup.Seconds(), s.warmup)
	if err := e.sleep(ctx, s.warmup); err != nil {
		return nil, err
	}

	// The healthy window: nothing is broken.
	progress.printf("N=%d: healthy window (%s)", n, s.healthy)
	s0, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if profile != "" {
		_ = fd.cmd.Process.Signal(syscall.SIGUSR1)
	}
	if err := e.sleep(ctx, s.healthy); err != nil {
		return nil, err
	}
	s1, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	if profile != "" {
		_ = fd.cmd.Process.Signal(syscall.SIGUSR2)
	}
	r.healthy = between(s0, s1)
	if r.fds, err = openFDs(fd.pid()); err != nil {
		return nil, err
	}

	// The break window.
	targets := chooseTargets(s, n, seeded, byMachine)
	for k := range targets {
		r.broken[k] = len(targets[k])
	}
	progress.printf("N=%d: breaking %d machines (500) and autostopping %d over %s", n, r.broken[kind500], r.broken[kindStop], s.window)
	sent, err := e.breakMachines(ctx, targets)
	if err != nil {
		return nil, err
	}
	deadline := s1.at.Add(s.window + s.detectionTarget() + 2*s.checkInterval)
	if err := e.waitDetected(ctx, targets, deadline); err != nil {
		return nil, err
	}
	progress.printf("N=%d: waiting %s for PostgreSQL's statistics", n, s.statsFlush)
	if err := e.sleep(ctx, s.statsFlush); err != nil {
		return nil, err
	}
	s2, err := e.snapshot(ctx)
	if err != nil {
		return nil, err
	}
	r.breaking = between(s1, s2)

	// The process's own figures, then stop it.
	if r.peakRSS, err = processStatusBytes(fd.pid(), "VmHWM"); err != nil {
		return nil, err
	}
	if r.rss, err = processStatusBytes(fd.pid(), "VmRSS"); err != nil {
		return nil, err
	}
	if r.fdLimit, err = openFileLimit(fd.pid()); err != nil {
		return nil, err
	}
	if r.simFDLimit, err = openFileLimit(sim.pid()); err != nil {
		return nil, err
	}
	stopFDs()
	r.simPeakFDs = simFDs.Peak()
	stopped = true
	r.stopErr = fd.stop(40 * time.Second)
	r.loadEnd = loadAverage()

	if err := r.analyse(ctx, pool, targets, sent, s1.at, s2.at); err != nil {
		return nil, err
	}
	progress.printf("N=%d: done (load average %.2f)", n, r.loadEnd)
	return r, nil
}

// waitReady polls /readyz until it answers 200.
func (e *env) waitReady(ctx context.Context, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if err := e.alive(); err != nil {
			return err
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := e.http.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flightdeck was not ready within %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// waitFirstProbes waits until flightdeck has probed n times and the
// start-up spread (one CHECK_INTERVAL plus its jitter) is over, so that
// every row was reconciled once.
func (e *env) waitFirstProbes(ctx context.Context, n int, ready time.Time) error {
	spread := e.s.checkInterval + e.s.checkInterval/10
	timeout := 10*e.s.checkInterval + 2*time.Minute
	for {
		m, err := scrapeMetrics(ctx, e.http, e.metricsURL)
		if err != nil {
			return err
		}
		probes := m.probeCount()
		if probes >= float64(n) && time.Since(ready) >= spread {
			return nil
		}
		if time.Since(ready) > timeout {
			return fmt.Errorf("flightdeck made %.0f probes for %d deployments within %s", probes, n, timeout)
		}
		if err := e.sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// chooseTargets picks the machines to break, disjoint sets per kind, and
// returns their deployment ids.
func chooseTargets(s settings, n int, seeded []flysim.SeededMachine, byMachine map[string]string) [numKinds][]target {
	rng := rand.New(rand.NewPCG(s.seed, uint64(n)))
	perm := rng.Perm(n)
	counts := [numKinds]int{
		max(1, int(math.Round(float64(n)*s.breakFraction))),
		max(1, int(math.Round(float64(n)*s.stopFraction))),
	}
	var out [numKinds][]target
	i := 0
	for k := range numKinds {
		for range counts[k] {
			m := seeded[perm[i]]
			i++
			out[k] = append(out[k], target{
				machineID:    m.ID,
				deploymentID: byMachine[m.ID],
				at:           time.Duration(rng.Int64N(int64(s.window))),
			})
		}
	}
	return out
}

// target is one machine to break, at a moment of the break window.
type target struct {
	machineID, deploymentID string
	at                      time.Duration // offset into the window
}

// breakMachines breaks every target at its moment and returns, per
// deployment id, the moment the bench asked the simulator (before the
// request: the latency measured from it is an upper bound).
func (e *env) breakMachines(ctx context.Context, targets [numKinds][]target) (map[string]time.Time, error) {
	start := time.Now()
	var (
		mu   sync.Mutex
		sent = map[string]time.Time{}
		errs []error
		wg   sync.WaitGroup
	)
	for k := range numKinds {
		for _, t := range targets[k] {
			wg.Add(1)
			time.AfterFunc(time.Until(start.Add(t.at)), func() {
				defer wg.Done()
				at := time.Now()
				var err error
				if k == kind500 {
					err = e.sim.control.SetStatus(ctx, t.machineID, http.StatusInternalServerError)
				} else {
					err = e.sim.control.Autostop(ctx, t.machineID)
				}
				mu.Lock()
				defer mu.Unlock()
				sent[t.deploymentID] = at
				if err != nil {
					errs = append(errs, fmt.Errorf("breaking machine %s: %w", t.machineID, err))
				}
			})
		}
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sent, nil
}

// waitDetected polls, once a second, until every broken row shows its
// expected status or the deadline passes.
func (e *env) waitDetected(ctx context.Context, targets [numKinds][]target, deadline time.Time) error {
	var ids [numKinds][]string
	for k := range numKinds {
		for _, t := range targets[k] {
			ids[k] = append(ids[k], t.deploymentID)
		}
	}
	for {
		done := true
		for k := range numKinds {
			got, err := countWithStatus(ctx, e.pool, ids[k], k.want())
			if err != nil {
				return err
			}
			if got < len(ids[k]) {
				done = false
			}
		}
		if done || time.Now().After(deadline) {
			return nil
		}
		if err := e.sleep(ctx, time.Second); err != nil {
			return err
		}
	}
}

// analyse reads the events: the detection latency of each break, the
// events nobody should have written, and the status changes of the break
// window.
func (r *result) analyse(ctx context.Context, pool *pgxpool.Pool, targets [numKinds][]target, sent map[string]time.Time, from, to time.Time) error {
	events, err := allEvents(ctx, pool)
	if err != nil {
		return err
	}
	kindOf := map[string]breakKind{}
	var brokenIDs []string
	for k := range numKinds {
		for _, t := range targets[k] {
			kindOf[t.deploymentID] = k
			brokenIDs = append(brokenIDs, t.deploymentID)
		}
	}
	detected := map[string]bool{}
	for _, ev := range events {
		if !ev.at.Before(from) && !ev.at.After(to) {
			r.breaking.changes++
		}
		k, broken := kindOf[ev.deployment]
		switch {
		case !broken:
			r.wrongUntouched++
		case !detected[ev.deployment] && ev.from == "running" && ev.to == k.want() && !ev.at.Before(sent[ev.deployment]):
			detected[ev.deployment] = true
			r.latency[k] = append(r.latency[k], ev.at.Sub(sent[ev.deployment]))
		default:
			r.wrongBroken++
		}
	}
	for k := range numKinds {
		r.undetected[k] = len(targets[k]) - len(r.latency[k])
		sortDurations(r.latency[k])
	}
	r.untouchedNotRunning, err = countNotRunningExcept(ctx, pool, brokenIDs)
	return err
}
