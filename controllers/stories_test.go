package controllers_test

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/store/status"
)

// Progress messages the platform's plan quotes word for word.
const (
	progressCreating = "Creating Fly machine..."
	progressStarting = "Installing packages and starting server..."
)

// The user-visible path of a deployment that comes up: every version of the
// row, with its messages.
var comingUp = []version{
	{Status: status.Pending},
	{Status: status.Installing, Progress: progressCreating},
	{Status: status.Starting, Progress: progressStarting},
	{Status: status.Running},
}

// reachRunning waits for a new deployment to run and returns its row.
func (w *world) reachRunning(ctx context.Context, id string) row {
	GinkgoHelper()
	Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Running))
	return w.mustRow(ctx, id)
}

var _ = Describe("The deployments controller", func() {
	var w *world
	var ctrl *runningController

	When("it runs against the database and Fly", func() {
		BeforeEach(func(ctx SpecContext) {
			w = newWorld(ctx)
			ctrl = w.startController(ctx, "replica-a")
			Eventually(ctrl.Leading).Should(BeTrue())
		})

		It("brings a new deployment of a good package to running through installing and starting", func(ctx SpecContext) {
			id := w.insert(ctx, "everything", withEnv(map[string]string{"LOG_LEVEL": "debug"}))

			r := w.reachRunning(ctx, id)
			Expect(w.versions(ctx, id)).To(Equal(comingUp), "every version of the row, with its progress and error messages")
			Expect(path(w.events(ctx, id))).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Running}))
			Expect(r.Progress).To(BeEmpty())
			Expect(r.Error).To(BeEmpty())
			Expect(r.ObservedGeneration).To(Equal(r.Generation))
			Expect(r.MachineID).To(MatchRegexp(`^[0-9a-f]{14}$`))

			m := w.machine(ctx, r.MachineID)
			Expect(m.State).To(Equal(flyclient.StateStarted))
			Expect(r.PrivateIP).To(Equal(m.PrivateIP))
			Expect(m.Name).To(Equal(flyclient.MachineNameFor(id)))
			Expect(m.Config.Env).To(Equal(flyclient.Env{"LOG_LEVEL": "debug", "MCP_PACKAGE": goodPackage}))
			Expect(m.Config.Metadata).To(HaveKeyWithValue(flyclient.MetadataDeploymentID, id))
			Expect(m.Config.Restart).NotTo(BeNil())
			Expect(m.Config.Restart.Policy).To(Equal("on-failure"))
		})

		It("marks a deployment whose package does not install unhealthy with failed to start, and keeps it so", func(ctx SpecContext) {
			id := w.insert(ctx, "missing", withPackage("@invalid/no-such-package"))

			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Unhealthy))
			r := w.mustRow(ctx, id)
			Expect(r.Error).To(ContainSubstring("failed to start"))
			Expect(r.Error).To(ContainSubstring("code 1"), "the exit code is reported")
			Expect(r.Progress).To(BeEmpty())
			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Unhealthy}))

			// The restart policy gives up after its retries and Fly leaves
			// the machine stopped (not on request): still unhealthy, still
			// "failed to start", never stopped or running.
			Eventually(ctx, func() string { return w.machine(ctx, r.MachineID).State }).
				WithTimeout(30 * time.Second).Should(Equal(flyclient.StateStopped))
			Consistently(ctx, func(g Gomega) {
				now := w.mustRow(ctx, id)
				g.Expect(now.Status).To(Equal(status.Unhealthy))
				g.Expect(now.Error).To(ContainSubstring("failed to start"))
			}).WithTimeout(2*checkInterval + startupPollInterval).Should(Succeed())
			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Unhealthy}))
		})

		It("marks an autostopped deployment stopped and an autostarted one running, never unhealthy on the way", func(ctx SpecContext) {
			id := w.insert(ctx, "serverless")
			r := w.reachRunning(ctx, id)

			Expect(w.fly.Control.Autostop(ctx, r.MachineID)).To(Succeed())
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Stopped))
			stopped := w.mustRow(ctx, id)
			Expect(stopped.Error).To(BeEmpty(), "stopping on purpose is not an error")
			Expect(stopped.Progress).To(BeEmpty())

			Expect(w.fly.Control.Autostart(ctx, r.MachineID)).To(Succeed())
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Running))
			Expect(w.mustRow(ctx, id).Error).To(BeEmpty())

			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{
				status.Pending, status.Installing, status.Starting, status.Running, status.Stopped, status.Running,
			}))
			events := w.events(ctx, id)
			Expect(events[len(events)-2:]).To(Equal([]transition{
				{From: status.Running, To: status.Stopped, Reason: "MachineStopped"},
				{From: status.Stopped, To: status.Running, Reason: "MachineStarted"},
			}))
			Expect(w.mustRow(ctx, id).MachineID).To(Equal(r.MachineID), "the same machine, not a new one")
		})

		It("marks a deployment whose /status answers 500 unhealthy, and running again once it answers 200", func(ctx SpecContext) {
			id := w.insert(ctx, "flaky")
			r := w.reachRunning(ctx, id)

			Expect(w.fly.Control.SetStatus(ctx, r.MachineID, http.StatusInternalServerError)).To(Succeed())
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Unhealthy))
			Expect(w.mustRow(ctx, id).Error).To(Equal("Health check failed: 500"))

			Expect(w.fly.Control.ResetStatus(ctx, r.MachineID)).To(Succeed())
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Running))
			Expect(w.mustRow(ctx, id).Error).To(BeEmpty(), "the error is cleared")

			Expect(w.versions(ctx, id)).To(Equal(append(comingUp,
				version{Status: status.Unhealthy, Error: "Health check failed: 500"},
				version{Status: status.Running},
			)))
		})

		It("destroys the machine of a deleted deployment and then deletes its row", func(ctx SpecContext) {
			id := w.insert(ctx, "doomed")
			r := w.reachRunning(ctx, id)

			w.exec(ctx, `UPDATE deployments SET deleted_at = now() WHERE id = $1`, id)
			Eventually(ctx, w.statusOf(ctx, id)).Should(BeEmpty(), "the row is deleted")

			// Fly accepted the forced destroy; the machine stops, then goes.
			Eventually(ctx, func(g Gomega) {
				m, err := w.fly.API.GetMachine(ctx, r.MachineID)
				if err == nil {
					g.Expect(m.State).To(Equal(flyclient.StateDestroyed))
				} else {
					g.Expect(err).To(MatchError(flyclient.ErrNotFound))
				}
			}).Should(Succeed())
			Expect(w.machinesOf(ctx, id)).To(BeEmpty())
			Expect(ctrl.calls.Calls()).To(HaveKeyWithValue("DestroyMachine", 1))
		})

		It("updates the machine of a deployment whose package and env change, and brings it through starting to running", func(ctx SpecContext) {
			id := w.insert(ctx, "evolving")
			before := w.reachRunning(ctx, id)
			oldInstance := w.machine(ctx, before.MachineID).InstanceID
			const newPackage = "@modelcontextprotocol/server-everything@2.0.0"

			w.exec(ctx, `UPDATE deployments SET package = $2, env = '{"GREETING": "hello"}' WHERE id = $1`, id, newPackage)
			Eventually(ctx, func(g Gomega) {
				r := w.mustRow(ctx, id)
				g.Expect(r.Generation).To(Equal(before.Generation + 1))
				g.Expect(r.ObservedGeneration).To(Equal(r.Generation))
				g.Expect(r.Status).To(Equal(status.Running))
			}).Should(Succeed())

			after := w.mustRow(ctx, id)
			Expect(after.MachineID).To(Equal(before.MachineID), "the machine is updated, not replaced")
			m := w.machine(ctx, after.MachineID)
			Expect(m.Config.Env).To(Equal(flyclient.Env{"GREETING": "hello", "MCP_PACKAGE": newPackage}))
			Expect(m.InstanceID).NotTo(Equal(oldInstance))
			Expect(w.versions(ctx, id)).To(Equal(append(comingUp,
				version{Status: status.Starting, Progress: progressStarting},
				version{Status: status.Running},
			)))
			Expect(w.events(ctx, id)[3:]).To(Equal([]transition{
				{From: status.Running, To: status.Starting, Reason: "MachineUpdated"},
				{From: status.Starting, To: status.Running, Reason: "ServerReady"},
			}))
			Expect(w.machinesOf(ctx, id)).To(HaveLen(1))
		})

		It("fails a deployment whose machine was destroyed outside flightdeck, and gives it a new machine when its spec changes", func(ctx SpecContext) {
			id := w.insert(ctx, "orphaned")
			before := w.reachRunning(ctx, id)
			Expect(w.fly.API.DestroyMachine(ctx, before.MachineID, true)).To(Succeed())

			Eventually(ctx, func(g Gomega) {
				r := w.mustRow(ctx, id)
				g.Expect(r.Status).To(Equal(status.Failed))
				g.Expect(r.Error).To(Equal("Machine no longer exists"))
			}).Should(Succeed())

			w.exec(ctx, `UPDATE deployments SET env = '{"GREETING": "again"}' WHERE id = $1`, id)
			Eventually(ctx, func(g Gomega) {
				r := w.mustRow(ctx, id)
				g.Expect(r.Status).To(Equal(status.Running))
				g.Expect(r.ObservedGeneration).To(Equal(r.Generation))
				g.Expect(r.MachineID).NotTo(Equal(before.MachineID))
			}).Should(Succeed())

			after := w.mustRow(ctx, id)
			Expect(after.Error).To(BeEmpty())
			Expect(w.machinesOf(ctx, id)).To(HaveLen(1), "one live machine: the new one")
			Expect(w.machine(ctx, after.MachineID).Config.Env).To(HaveKeyWithValue("GREETING", "again"))
			Expect(path(w.events(ctx, id))).To(Equal([]status.Status{
				status.Pending, status.Installing, status.Starting, status.Running,
				status.Failed, status.Installing, status.Starting, status.Running,
			}))
		})

		It("updates and starts the machine of an autostopped deployment whose env changes", func(ctx SpecContext) {
			id := w.insert(ctx, "dozing")
			r := w.reachRunning(ctx, id)
			Expect(w.fly.Control.Autostop(ctx, r.MachineID)).To(Succeed())
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Stopped))

			w.exec(ctx, `UPDATE deployments SET env = '{"GREETING": "hello"}' WHERE id = $1`, id)
			Eventually(ctx, func(g Gomega) {
				now := w.mustRow(ctx, id)
				g.Expect(now.ObservedGeneration).To(Equal(now.Generation))
				g.Expect(now.Status).To(Equal(status.Running))
			}).Should(Succeed())
			m := w.machine(ctx, r.MachineID)
			Expect(m.State).To(Equal(flyclient.StateStarted))
			Expect(m.Config.Env).To(HaveKeyWithValue("GREETING", "hello"))
			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{
				status.Pending, status.Installing, status.Starting, status.Running, status.Stopped, status.Starting, status.Running,
			}))
		})

		It("costs no database write and no Fly call per check of a healthy deployment", func(ctx SpecContext) {
			id := w.insert(ctx, "steady")
			r := w.reachRunning(ctx, id)
			writes := w.writes(ctx, id)
			calls := ctrl.calls.Total()
			w.fly.ResetStats()

			Consistently(ctx, func(g Gomega) {
				g.Expect(w.writes(ctx, id)).To(Equal(writes), "row versions")
				g.Expect(w.mustRow(ctx, id).UpdatedAt).To(Equal(r.UpdatedAt))
				g.Expect(ctrl.calls.Total()).To(Equal(calls), "Fly calls")
			}).WithTimeout(3*checkInterval + checkInterval/2).Should(Succeed())

			st := w.fly.Stats()
			Expect(st.Requests).To(BeEmpty(), "no Machines API request reached Fly")
			Expect(st.StatusRequests).To(BeNumerically(">=", 2), "the deployment was probed every check interval")
			Expect(w.mustRow(ctx, id).Status).To(Equal(status.Running))
		})
	})

	When("the old version of an updated machine takes a moment to stop, as Fly's kill_timeout allows", func() {
		BeforeEach(func(ctx SpecContext) {
			w = newWorld(ctx, func(o *flysim.Options) { o.StopDuration = 4 * startupPollInterval })
			ctrl = w.startController(ctx, "replica-a")
		})

		It("reports a spec change to a package that does not install as failed to start, not running", func(ctx SpecContext) {
			id := w.insert(ctx, "regressing")
			w.reachRunning(ctx, id)

			w.exec(ctx, `UPDATE deployments SET package = '@invalid/broken-release' WHERE id = $1`, id)
			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Unhealthy))
			Expect(w.mustRow(ctx, id).Error).To(ContainSubstring("failed to start"))
			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{
				status.Pending, status.Installing, status.Starting, status.Running, status.Starting, status.Unhealthy,
			}), "the old version's answer is not the new version running")
		})
	})

	When("the platform writes rows for machines that already exist", func() {
		BeforeEach(func(ctx SpecContext) {
			w = newWorld(ctx)
		})

		It("adopts a running row that names an existing machine without making another", func(ctx SpecContext) {
			id := w.newID(ctx)
			seeded, err := w.fly.Seed(flysim.SeedRequest{Machines: []flysim.SeedMachine{{
				Package:  goodPackage,
				Metadata: map[string]string{flyclient.MetadataDeploymentID: id},
			}}})
			Expect(err).NotTo(HaveOccurred())
			machineID := seeded[0].ID
			Expect(w.insert(ctx, "legacy", withID(id), withMachine(machineID), withStatus(status.Running))).To(Equal(id))

			ctrl = w.startController(ctx, "replica-a")
			Eventually(ctx, func(g Gomega) {
				r := w.mustRow(ctx, id)
				g.Expect(r.ObservedGeneration).To(Equal(r.Generation), "the machine is adopted")
				g.Expect(r.PrivateIP).To(Equal(seeded[0].PrivateIP), "its address is recorded for the probes")
			}).Should(Succeed())
			probes := w.fly.Stats().StatusRequests
			Eventually(func() int64 { return w.fly.Stats().StatusRequests }).Should(BeNumerically(">", probes), "it is probed")

			r := w.mustRow(ctx, id)
			Expect(r.Status).To(Equal(status.Running))
			Expect(r.MachineID).To(Equal(machineID))
			Expect(r.Error).To(BeEmpty())
			Expect(w.statuses(ctx, id)).To(Equal([]status.Status{status.Running}), "it never left running")
			Expect(w.events(ctx, id)).To(BeEmpty(), "no status change, no event")
			Expect(w.fly.Stats().Total(http.MethodPost, flysim.RouteMachines)).To(BeZero(), "no create")
			Expect(ctrl.calls.Calls()).NotTo(HaveKey("EnsureMachine"))
			Expect(w.machinesOf(ctx, id)).To(HaveLen(1))
		})

		It("fails a row with a malformed machine id and never probes it", func(ctx SpecContext) {
			// A /status server where the row's private IP and the probe
			// template would lead: it counts the probes that must not come.
			ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(w.fly.StatusPort())))
			Expect(err).NotTo(HaveOccurred())
			var probes atomic.Int64
			srv := &http.Server{Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
				probes.Add(1)
				_, _ = rw.Write([]byte(`{"status":"ok"}`))
			}), ReadHeaderTimeout: time.Second}
			go func() { _ = srv.Serve(ln) }()
			DeferCleanup(srv.Close)

			id := w.insert(ctx, "garbled", withMachine("../../apps/other"), withPrivateIP("127.0.0.1"), withStatus(status.Running))
			ctrl = w.startController(ctx, "replica-a")

			Eventually(ctx, w.statusOf(ctx, id)).Should(Equal(status.Failed))
			r := w.mustRow(ctx, id)
			Expect(r.Error).To(ContainSubstring("invalid"))
			Expect(r.Progress).To(BeEmpty())
			Expect(w.events(ctx, id)).To(Equal([]transition{{From: status.Running, To: status.Failed, Reason: "InvalidMachineID"}}))

			writes := w.writes(ctx, id)
			Consistently(ctx, func(g Gomega) {
				g.Expect(probes.Load()).To(BeZero(), "probes")
				g.Expect(ctrl.calls.Total()).To(BeZero(), "Fly calls")
				g.Expect(w.writes(ctx, id)).To(Equal(writes), "a failed row is left alone")
			}).WithTimeout(2 * checkInterval).Should(Succeed())
			Expect(w.fly.Stats().Requests).To(BeEmpty())
		})
	})
})
