package flyclient_test

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// manualClock drives both the simulator (Now, AfterFunc) and the client
// (Now, Sleep), so long waits pass in no real time.
type manualClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*manualTimer
}

type manualTimer struct {
	clock *manualClock
	at    time.Time
	f     func()
	done  bool
}

func newManualClock() *manualClock { return &manualClock{now: time.Now().Truncate(time.Second)} }

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) AfterFunc(d time.Duration, f func()) flysim.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &manualTimer{clock: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		t.done = true
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	return t
}

func (t *manualTimer) Stop() bool {
	t.clock.mu.Lock()
	defer t.clock.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the clock and fires the timers that came due.
func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.advanceLocked(c.now.Add(d))
}

// FireNext moves the clock to the earliest pending timer and fires it; it
// reports whether there was one.
func (c *manualClock) FireNext() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var next *manualTimer
	for _, t := range c.timers {
		if !t.done && (next == nil || t.at.Before(next.at)) {
			next = t
		}
	}
	if next == nil {
		return false
	}
	c.advanceLocked(next.at)
	return true
}

func (c *manualClock) advanceLocked(to time.Time) {
	if to.After(c.now) {
		c.now = to
	}
	live := c.timers[:0]
	for _, t := range c.timers {
		switch {
		case t.done:
		case !t.at.After(c.now):
			t.done = true
			go t.f()
		default:
			live = append(live, t)
		}
	}
	c.timers = live
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.Advance(d)
	return nil
}

// startSim starts a simulator on a loopback port for one spec.
func startSim(mutate ...func(*flysim.Options)) *flysim.Simulator {
	opts := flysim.Options{Addr: "127.0.0.1:0", Token: testToken, App: testApp, StatusPort: 0}
	for _, m := range mutate {
		m(&opts)
	}
	sim, err := flysim.Start(opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(sim.Close)
	return sim
}

// control returns the simulator's control client on a transport the spec
// closes (no idle connections left for the leak check).
func control(sim *flysim.Simulator) *flysim.Control {
	ctl := sim.Control()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	ctl.HTTP = &http.Client{Transport: tr}
	DeferCleanup(tr.CloseIdleConnections)
	return ctl
}

// simClient is a client of sim whose retries and rate-limit waits take no
// real time.
func simClient(sim *flysim.Simulator, mutate ...func(*flyclient.Options)) *flyclient.Client {
	return newClient(sim.URL(), newFakeClock(), mutate...)
}

func runnerConfig(pkg string) flyclient.MachineConfig {
	return flyclient.MachineConfig{
		Image:    "registry.fly.io/flightdeck-runner:sim",
		Env:      flyclient.Env{"MCP_PACKAGE": pkg, "SECRET": "hunter2"},
		Guest:    &flyclient.GuestConfig{CPUKind: "shared", CPUs: 1, MemoryMB: 256},
		Restart:  &flyclient.RestartPolicy{Policy: flyclient.RestartOnFailure, MaxRetries: 10},
		Metadata: map[string]string{"team": "sim"},
	}
}

var _ = Describe("Client against the simulator", func() {
	var ctx context.Context
	BeforeEach(func() { ctx = context.Background() })

	Describe("the machine lifecycle", func() {
		var (
			sim *flysim.Simulator
			c   *flyclient.Client
		)
		BeforeEach(func() {
			sim = startSim()
			c = simClient(sim)
		})

		It("creates a machine that boots to started and reads it back through get, list and events", func() {
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Name: "fd-lifecycle", Region: "iad", Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			Expect(flyclient.ValidMachineID(m.ID)).To(BeTrue())
			Expect(m.Name).To(Equal("fd-lifecycle"))
			Expect(m.Region).To(Equal("iad"))
			Expect(m.InstanceID).To(HaveLen(26))
			Expect(m.Config.Env).To(HaveKeyWithValue("MCP_PACKAGE", "left-pad"))

			state, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStarted))

			got, err := c.GetMachine(ctx, m.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.State).To(Equal(flyclient.StateStarted))
			Expect(got.PrivateIP).To(HavePrefix("127."))
			Expect(got.CreatedAt).To(BeTemporally("~", time.Now(), time.Minute))
			Expect(got.Config.Metadata).To(HaveKeyWithValue("team", "sim"))
			Expect(got.Config.Guest.MemoryMB).To(Equal(256))
			Expect(got.Config.Restart.Policy).To(Equal(flyclient.RestartOnFailure))
			Expect(got.LatestEvent(flyclient.EventLaunch)).NotTo(BeNil())
			Expect(got.LatestStartAt()).To(BeTemporally("~", time.Now(), time.Minute))

			list, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{Metadata: map[string]string{"team": "sim"}, States: []string{"started"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(HaveLen(1))
			Expect(list[0].ID).To(Equal(m.ID))
			none, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{Metadata: map[string]string{"team": "other"}})
			Expect(err).NotTo(HaveOccurred())
			Expect(none).To(BeEmpty())
			summary, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{Summary: true})
			Expect(err).NotTo(HaveOccurred())
			Expect(summary).To(HaveLen(1))
			Expect(summary[0].Config).To(BeNil())
			Expect(summary[0].Events).To(BeEmpty())

			events, err := c.ListEvents(ctx, m.ID, 50)
			Expect(err).NotTo(HaveOccurred())
			Expect(len(events)).To(BeNumerically(">=", 2))
			types := map[string]bool{}
			for _, e := range events {
				types[e.Type+"/"+e.Status] = true
				Expect(e.Time()).To(BeTemporally("~", time.Now(), time.Minute))
			}
			Expect(types).To(HaveKey("launch/created"))
			Expect(types).To(HaveKey("start/started"))
			Expect(sort.SliceIsSorted(events, func(i, j int) bool { return events[i].Timestamp > events[j].Timestamp })).To(BeTrue(), "newest first")
		})

		It("stops a machine on request, shows the requested exit, and starts it again", func() {
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			Expect(c.StopMachine(ctx, m.ID, flyclient.StopOptions{Signal: "SIGTERM", Timeout: 5 * time.Second})).To(Succeed())
			state, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{States: []string{flyclient.StateStopped}, InstanceID: m.InstanceID, Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStopped))
			got, err := c.GetMachine(ctx, m.ID)
			Expect(err).NotTo(HaveOccurred())
			exit, _, ok := got.LatestExit()
			Expect(ok).To(BeTrue())
			Expect(exit.RequestedStop).To(BeTrue())
			Expect(exit.Crashed()).To(BeFalse())
			Expect(got.LatestEvent(flyclient.EventStop).Source).To(Equal("user"))

			Expect(c.StartMachine(ctx, m.ID)).To(Succeed())
			state, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{States: []string{flyclient.StateStarted, flyclient.StateStopped}, Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStarted))
		})

		It("updates the whole config against the current version and refuses a stale one", func() {
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			cfg := *m.Config
			cfg.Env = flyclient.Env{"MCP_PACKAGE": "right-pad"}
			updated, err := c.UpdateMachine(ctx, m.ID, flyclient.UpdateMachineInput{Config: cfg, CurrentVersion: m.InstanceID})
			Expect(err).NotTo(HaveOccurred())
			Expect(updated.InstanceID).NotTo(Equal(m.InstanceID))
			Expect(updated.Config.Env).To(HaveKeyWithValue("MCP_PACKAGE", "right-pad"))
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			_, err = c.UpdateMachine(ctx, m.ID, flyclient.UpdateMachineInput{Config: cfg, CurrentVersion: m.InstanceID})
			Expect(errors.Is(err, flyclient.ErrConflict)).To(BeTrue())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
		})

		It("destroys a running machine with force; it reads as destroyed, then 404", func() {
			sim = startSim(func(o *flysim.Options) { o.DestroyedVisibleFor = 200 * time.Millisecond })
			c = simClient(sim)
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			err = c.DestroyMachine(ctx, m.ID, false)
			Expect(errors.Is(err, flyclient.ErrPrecondition)).To(BeTrue(), "a started machine needs force")
			Expect(c.DestroyMachine(ctx, m.ID, true)).To(Succeed())
			state, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{States: []string{flyclient.StateDestroyed}, Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateDestroyed))
			Eventually(func() error {
				_, err := c.GetMachine(ctx, m.ID)
				return err
			}).WithTimeout(10 * time.Second).Should(MatchError(flyclient.ErrNotFound))
			list, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(list).To(BeEmpty())
		})

		It("sees an autostop as a requested stop and an autostart as a start", func() {
			ctl := control(sim)
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			Expect(ctl.Autostop(ctx, m.ID)).To(Succeed())
			state, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{States: []string{flyclient.StateStopped, flyclient.StateSuspended}, Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStopped))
			got, err := c.GetMachine(ctx, m.ID)
			Expect(err).NotTo(HaveOccurred())
			exit, _, ok := got.LatestExit()
			Expect(ok).To(BeTrue())
			Expect(exit.RequestedStop).To(BeTrue())
			Expect(got.LatestEvent(flyclient.EventStop).Source).To(Equal("proxy"))

			Expect(ctl.Autostart(ctx, m.ID)).To(Succeed())
			state, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStarted))
		})

		It("sees a crash as an unrequested exit with its code and restart count", func() {
			ctl := control(sim)
			cfg := runnerConfig("left-pad")
			cfg.Restart = &flyclient.RestartPolicy{Policy: flyclient.RestartNo}
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: cfg})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())

			Expect(ctl.Crash(ctx, m.ID, 3)).To(Succeed())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{States: []string{flyclient.StateStopped}, Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			got, err := c.GetMachine(ctx, m.ID)
			Expect(err).NotTo(HaveOccurred())
			exit, at, ok := got.LatestExit()
			Expect(ok).To(BeTrue())
			Expect(exit.ExitCode).To(Equal(3))
			Expect(exit.RequestedStop).To(BeFalse())
			Expect(exit.Restarting).To(BeFalse())
			Expect(exit.Crashed()).To(BeTrue())
			Expect(at).To(BeTemporally("~", time.Now(), time.Minute))
		})
	})

	Describe("error classes", func() {
		var (
			sim *flysim.Simulator
			c   *flyclient.Client
		)
		BeforeEach(func() {
			sim = startSim()
			c = simClient(sim)
		})

		It("answers ErrNotFound for an unknown machine on every call", func() {
			const unknown = "00000000000000"
			_, err := c.GetMachine(ctx, unknown)
			Expect(errors.Is(err, flyclient.ErrNotFound)).To(BeTrue())
			Expect(flyclient.IsPermanent(err)).To(BeTrue())
			Expect(c.StartMachine(ctx, unknown)).To(MatchError(flyclient.ErrNotFound))
			Expect(c.StopMachine(ctx, unknown, flyclient.StopOptions{})).To(MatchError(flyclient.ErrNotFound))
			Expect(c.DestroyMachine(ctx, unknown, true)).To(MatchError(flyclient.ErrNotFound))
			_, err = c.UpdateMachine(ctx, unknown, flyclient.UpdateMachineInput{Config: runnerConfig("x")})
			Expect(err).To(MatchError(flyclient.ErrNotFound))
			_, err = c.ListEvents(ctx, unknown, 10)
			Expect(err).To(MatchError(flyclient.ErrNotFound))
			_, err = c.WaitMachine(ctx, unknown, flyclient.WaitOptions{Timeout: 3 * time.Second})
			Expect(err).To(MatchError(flyclient.ErrNotFound))
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.Message).To(Equal("machine not found"))
		})

		It("answers ErrUnauthorized for a wrong token, without the token in the error", func() {
			bad := simClient(sim, func(o *flyclient.Options) { o.Token = "wrong-token-value" })
			_, err := bad.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(errors.Is(err, flyclient.ErrUnauthorized)).To(BeTrue())
			Expect(flyclient.IsPermanent(err)).To(BeTrue())
			Expect(err.Error()).NotTo(ContainSubstring("wrong-token-value"))
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.StatusCode).To(Equal(http.StatusUnauthorized))
		})

		It("is accepted with a FlyV1 macaroon-style token too", func() {
			macaroon := "fm2_lJPECAAAAAAAAAA,fm2_lJPEToken"
			sim2 := startSim(func(o *flysim.Options) { o.Token = macaroon })
			c2 := simClient(sim2, func(o *flyclient.Options) { o.Token = flyclient.Token(macaroon) })
			_, err := c2.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
		})

		It("answers ErrNotFound for another app", func() {
			other := simClient(sim, func(o *flyclient.Options) { o.App = "not-this-app" })
			_, err := other.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(errors.Is(err, flyclient.ErrNotFound)).To(BeTrue())
		})

		It("answers ErrNameTaken for a second machine of the same name", func() {
			_, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Name: "fd-twice", Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.CreateMachine(ctx, flyclient.CreateMachineInput{Name: "fd-twice", Config: runnerConfig("left-pad")})
			Expect(errors.Is(err, flyclient.ErrNameTaken)).To(BeTrue())
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.Code).To(Equal("name_taken"))
		})

		It("answers ErrCapacity when the region has no room", func() {
			_, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Region: "xxx", Config: runnerConfig("left-pad")})
			Expect(errors.Is(err, flyclient.ErrCapacity)).To(BeTrue())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(sim.Stats().Total("POST", flysim.RouteMachines)).To(Equal(1), "a create is not repeated")
		})

		It("answers ErrPrecondition when starting a machine that runs", func() {
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 30 * time.Second})
			Expect(err).NotTo(HaveOccurred())
			err = c.StartMachine(ctx, m.ID)
			Expect(errors.Is(err, flyclient.ErrPrecondition)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("failed_precondition"))
		})
	})

	Describe("waiting", func() {
		It("loops over the simulator's 408s without ever asking for more than 60s", func() {
			clock := newManualClock()
			sim := startSim(func(o *flysim.Options) { o.Clock = clock })
			c := newClient(sim.URL(), newFakeClock(), func(o *flyclient.Options) { o.Now, o.Sleep = clock.Now, clock.Sleep })
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad"), SkipLaunch: true})
			Expect(err).NotTo(HaveOccurred())

			done := make(chan error, 1)
			go func() {
				_, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 150 * time.Second})
				done <- err
			}()
			var waitErr error
			Eventually(func() bool {
				select {
				case waitErr = <-done:
					return true
				default:
					clock.FireNext()
					return false
				}
			}).WithTimeout(20 * time.Second).WithPolling(5 * time.Millisecond).Should(BeTrue())
			Expect(errors.Is(waitErr, flyclient.ErrTimeout)).To(BeTrue())
			Expect(waitErr.Error()).To(ContainSubstring("deadline_exceeded"))
			st := sim.Stats()
			Expect(st.Count("GET", flysim.RouteWait, http.StatusRequestTimeout)).To(Equal(3), "60s + 60s + 30s")
			Expect(st.Count("GET", flysim.RouteWait, http.StatusBadRequest)).To(BeZero())
		})

		It("faces a simulator that rejects timeouts over 60s, which the client never sends", func() {
			sim := startSim()
			c := simClient(sim)
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())

			req, err := http.NewRequestWithContext(ctx, "GET", sim.URL()+"/v1/apps/"+testApp+"/machines/"+m.ID+"/wait?state=started&timeout=61", nil)
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Authorization", "Bearer "+testToken)
			tr := http.DefaultTransport.(*http.Transport).Clone()
			DeferCleanup(tr.CloseIdleConnections)
			resp, err := (&http.Client{Transport: tr}).Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusBadRequest))

			state, err := c.WaitMachine(ctx, m.ID, flyclient.WaitOptions{Timeout: 10 * time.Minute})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStarted))
		})
	})

	Describe("faults", func() {
		It("retries GETs through injected 503s and 429s with Retry-After, but not a start", func() {
			sim := startSim()
			clock := newFakeClock()
			c := newClient(sim.URL(), clock)
			m, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())

			sim.SetFaults(flysim.Faults{Rate5xx: 1, Status5xx: http.StatusServiceUnavailable})
			sim.ResetStats()
			_, err = c.GetMachine(ctx, m.ID)
			Expect(err).To(HaveOccurred())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(sim.Stats().Count("GET", flysim.RouteMachine, 503)).To(Equal(flyclient.DefaultMaxRetries + 1))
			err = c.StartMachine(ctx, m.ID)
			Expect(err).To(HaveOccurred())
			Expect(sim.Stats().Total("POST", flysim.RouteStart)).To(Equal(1))

			sim.SetFaults(flysim.Faults{Rate429: 1, RetryAfter: 2 * time.Second})
			sim.ResetStats()
			_, err = c.GetMachine(ctx, m.ID)
			Expect(errors.Is(err, flyclient.ErrRateLimited)).To(BeTrue())
			Expect(clock.Sleeps()).To(ContainElement(2 * time.Second))
			Expect(sim.Stats().Count("GET", flysim.RouteMachine, 429)).To(Equal(flyclient.DefaultMaxRetries + 1))

			sim.SetFaults(flysim.Faults{})
			got, err := c.GetMachine(ctx, m.ID)
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ID).To(Equal(m.ID))
		})
	})

	Describe("idempotent create", func() {
		const deploymentID = "2b7e2a8c-5d1f-4c55-a0f4-8f6a3e1b9c01"

		It("yields exactly one machine when the create's answer is lost and the create is retried", func() {
			sim := startSim()
			c := simClient(sim)
			sim.SetFaults(flysim.Faults{DropCreateResponses: 1})

			m, created, err := c.EnsureMachine(ctx, deploymentID, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse(), "the answer was lost; the machine was found")
			Expect(m.Name).To(Equal(flyclient.MachineNameFor(deploymentID)))
			Expect(m.DeploymentID()).To(Equal(deploymentID))

			again, created, err := c.EnsureMachine(ctx, deploymentID, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse())
			Expect(again.ID).To(Equal(m.ID))

			all, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(HaveLen(1))
			Expect(sim.Stats().Count("POST", flysim.RouteMachines, 0)).To(Equal(1), "one dropped create")
		})

		It("recovers the machine of a plain create whose answer was lost", func() {
			sim := startSim()
			c := simClient(sim)
			sim.SetFaults(flysim.Faults{DropCreateResponses: 1})
			in := flyclient.CreateMachineInput{Name: flyclient.MachineNameFor(deploymentID), Config: runnerConfig("left-pad")}
			in.Config.Metadata = map[string]string{flyclient.MetadataDeploymentID: deploymentID}
			_, err := c.CreateMachine(ctx, in)
			Expect(err).To(HaveOccurred())
			Expect(flyclient.IsTransient(err)).To(BeTrue())

			m, created, err := c.EnsureMachine(ctx, deploymentID, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse())
			all, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(all).To(HaveLen(1))
			Expect(all[0].ID).To(Equal(m.ID))
		})

		It("creates once and reports it when nothing goes wrong", func() {
			sim := startSim()
			c := simClient(sim)
			m, created, err := c.EnsureMachine(ctx, deploymentID, flyclient.CreateMachineInput{Config: runnerConfig("left-pad")})
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeTrue())
			Expect(m.Config.Metadata).To(Equal(map[string]string{"team": "sim", flyclient.MetadataDeploymentID: deploymentID}))
			Expect(sim.Stats().Total("POST", flysim.RouteMachines)).To(Equal(1))
		})
	})
})
