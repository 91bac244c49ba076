package controllers_test

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/controllers"
	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/store/status"
)

var _ = Describe("The deployments controller under failures", func() {
	var w *world

	BeforeEach(func(ctx SpecContext) {
		w = newWorld(ctx)
	})

	It("leaves exactly one machine when it is killed between the create and the status write and restarted", func(ctx SpecContext) {
		created := make(chan string, 1)
		first := w.startController(ctx, "replica-a", afterCreate(func(ctx context.Context, m *flyclient.Machine) {
			select {
			case created <- m.ID:
			default:
			}
			<-ctx.Done() // the process dies before it can write what it created
		}))
		Eventually(first.Leading).Should(BeTrue())
		id := w.insert(ctx, "survivor")

		var machineID string
		Eventually(created).Should(Receive(&machineID))
		Expect(first.Stop()).To(Succeed())
		r := w.mustRow(ctx, id)
		Expect(r.Status).To(Equal(status.Installing), "the create happened, the starting write did not")
		Expect(r.Progress).To(Equal(progressCreating))
		Expect(r.MachineID).To(BeEmpty())
		Expect(w.machinesOf(ctx, id)).To(HaveLen(1))

		second := w.startController(ctx, "replica-b")
		r = w.reachRunning(ctx, id)
		Expect(r.MachineID).To(Equal(machineID), "the machine of the first create is adopted")
		ms := w.machinesOf(ctx, id)
		Expect(ms).To(HaveLen(1))
		Expect(ms[0].ID).To(Equal(machineID))
		Expect(second.calls.Created()).To(Equal([]bool{false}), "the restarted controller found the machine and created none")
		Expect(w.statuses(ctx, id)).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Running}))
	})

	It("leaves no machine behind when a deployment is deleted while its machine is being created", func(ctx SpecContext) {
		id := w.newID(ctx) // known before the controller's goroutines read it
		var once sync.Once
		deleted := make(chan error, 1)
		c := w.startController(ctx, "replica-a", afterCreate(func(hookCtx context.Context, _ *flyclient.Machine) {
			once.Do(func() {
				// The platform deletes the record while Fly creates the machine.
				_, err := w.db.Exec(hookCtx, `UPDATE deployments SET deleted_at = now() WHERE id = $1`, id)
				deleted <- err
			})
		}))
		Eventually(c.Leading).Should(BeTrue())
		Expect(w.insert(ctx, "fleeting", withID(id))).To(Equal(id))
		Eventually(deleted).Should(Receive(BeNil()))

		Eventually(ctx, w.statusOf(ctx, id)).Should(BeEmpty(), "the row is deleted")
		Eventually(ctx, func() []flyclient.Machine { return w.machinesOf(ctx, id) }).Should(BeEmpty(), "its machine is destroyed")
		Expect(c.calls.Calls()).To(HaveKeyWithValue("DestroyMachine", 1))
	})

	It("lets only one of two controllers on one database act, and hands over when the leader stops", func(ctx SpecContext) {
		// Both start at once on a database without a lease: they race to
		// create it.
		replicas := []*runningController{w.startController(ctx, "replica-a"), w.startController(ctx, "replica-b")}
		leaders := func() (out []*runningController) {
			for _, r := range replicas {
				if r.Leading() {
					out = append(out, r)
				}
			}
			return out
		}
		Eventually(leaders).Should(HaveLen(1))
		leader := leaders()[0]
		standby := replicas[0]
		if standby == leader {
			standby = replicas[1]
		}
		Eventually(standby.endpoint("/readyz")).Should(Equal("200 ok (standby)"))
		Expect(leader.endpoint("/readyz")()).To(Equal("200 ok (leader)"))
		Expect(w.leaseHolder(ctx)).To(Equal(leader.name))

		first := w.insert(ctx, "first")
		w.reachRunning(ctx, first)
		Expect(leader.calls.Total()).To(BeNumerically(">", 0), "the leader created the machine")
		Consistently(standby.calls.Total).WithTimeout(checkInterval).Should(BeZero(), "the standby never calls Fly")
		Expect(leaders()).To(ConsistOf(leader))

		stopped := time.Now()
		Expect(leader.Stop()).To(Succeed())
		Eventually(standby.Leading).WithTimeout(leaseDuration + leaseRetryPeriod).Should(BeTrue())
		takeover := time.Since(stopped)
		AddReportEntry("takeover after the leader stopped", takeover.Round(time.Millisecond).String())
		Expect(takeover).To(BeNumerically("<", leaseDuration), "a released lease is taken at once, not after it expires")
		Eventually(standby.endpoint("/readyz")).Should(Equal("200 ok (leader)"))
		Expect(w.leaseHolder(ctx)).To(Equal(standby.name))

		callsOfOld := leader.calls.Total()
		second := w.insert(ctx, "second")
		w.reachRunning(ctx, second)
		Expect(standby.calls.Calls()).To(HaveKeyWithValue("EnsureMachine", 1), "the new leader carries on")
		Expect(leader.calls.Total()).To(Equal(callsOfOld), "the old leader does nothing after it stopped")
		_, lastOfOld := leader.calls.Span()
		firstOfNew, _ := standby.calls.Span()
		Expect(firstOfNew).To(BeTemporally(">", lastOfOld), "the two never acted at the same time")
		Expect(w.statusOf(ctx, first)()).To(Equal(status.Running))
		Expect(w.machinesOf(ctx, first)).To(HaveLen(1))
	})

	It("carries on when the database restarts under it", func(ctx SpecContext) {
		// Production lease timings: a database restart must not cost the
		// lease (a lost lease makes the process exit, by design).
		c := w.startController(ctx, "replica-a", withLease(15*time.Second, 10*time.Second, 2*time.Second))
		Eventually(c.Leading).Should(BeTrue())
		before := w.insert(ctx, "before")
		w.reachRunning(ctx, before)

		restart := time.Now()
		Expect(pg.Restart(ctx)).To(Succeed())
		AddReportEntry("database restart", time.Since(restart).Round(time.Millisecond).String())

		// Only the notification listener can bring this row in quickly:
		// the periodic resync is minutes away.
		after := w.insert(ctx, "after")
		w.reachRunning(ctx, after)
		AddReportEntry("restart to a new deployment running", time.Since(restart).Round(time.Millisecond).String())
		Expect(c.logs.Lines()).To(ContainElement(ContainSubstring("Resyncing after the notification listener reconnected")))
		Eventually(c.endpoint("/healthz")).Should(Equal("200 ok"))
		Eventually(c.endpoint("/readyz")).Should(Equal("200 ok (leader)"))
		Expect(c.alive()).To(Succeed())
		Expect(c.Leading()).To(BeTrue())
		Expect(w.statusOf(ctx, before)()).To(Equal(status.Running))
		Expect(w.statuses(ctx, before)).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Running}))
	})

	It("picks up a deployment inserted while every connection to the database was cut and none could be made", func(ctx SpecContext) {
		c := w.startController(ctx, "replica-a")
		Eventually(c.Leading).Should(BeTrue())
		before := w.insert(ctx, "before")
		w.reachRunning(ctx, before)

		// A connection of the platform's that survives the outage, as one on
		// the other side of a network partition would.
		platform, err := pgx.Connect(ctx, w.url)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(platform.Close, context.WithoutCancel(ctx))
		db := pgx.Identifier{w.name}.Sanitize()
		w.admin(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false")
		DeferCleanup(w.admin, context.WithoutCancel(ctx), "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true")
		var cut int
		Expect(platform.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`).Scan(&cut)).To(Succeed())
		Expect(cut).To(BeNumerically(">=", 2), "the controller's listener and pool connections")
		var missed string
		Expect(platform.QueryRow(ctx, `INSERT INTO deployments (name, package) VALUES ('missed', $1) RETURNING id::text`,
			goodPackage).Scan(&missed)).To(Succeed())
		Eventually(c.logs.Lines).Should(ContainElement(ContainSubstring("Notification listener cannot connect")))

		w.admin(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true")
		// Its NOTIFY went to nobody: only the resync after the listener
		// reconnects can find it (the periodic one is minutes away).
		w.reachRunning(ctx, missed)
		Expect(c.alive()).To(Succeed())
		Expect(w.statusOf(ctx, before)()).To(Equal(status.Running))
	})

	It("exits with an error when it can no longer renew its lease, so that the platform restarts it", func(ctx SpecContext) {
		c := w.startController(ctx, "replica-a")
		Eventually(c.Leading).Should(BeTrue())
		id := w.insert(ctx, "orphaned")
		w.reachRunning(ctx, id)

		db := pgx.Identifier{w.name}.Sanitize()
		w.admin(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false")
		DeferCleanup(w.admin, context.WithoutCancel(ctx), "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true")
		cut := time.Now()
		_, err := pg.TerminateBackends(ctx, w.name)
		Expect(err).NotTo(HaveOccurred())

		Eventually(c.alive).WithTimeout(leaseRenewDeadline + leaseDuration).Should(MatchError(controllers.ErrLeaseLost))
		AddReportEntry("database gone to exit", time.Since(cut).Round(time.Millisecond).String())
		Expect(c.Leading()).To(BeFalse())
		calls := c.calls.Total()
		Consistently(c.calls.Total).WithTimeout(checkInterval).Should(Equal(calls), "it stopped acting")
	})

	It("returns nil and releases its lease when it is told to stop", func(ctx SpecContext) {
		c := w.startController(ctx, "replica-a")
		Eventually(c.Leading).Should(BeTrue())
		id := w.insert(ctx, "busy")
		w.reachRunning(ctx, id)

		stopping := time.Now()
		Expect(c.Stop()).To(Succeed(), "Run returns nil on SIGTERM")
		AddReportEntry("shutdown", time.Since(stopping).Round(time.Millisecond).String())
		Expect(time.Since(stopping)).To(BeNumerically("<", shutdownTimeout))
		Expect(w.leaseHolder(ctx)).To(BeEmpty(), "the lease is released")

		starting := time.Now()
		next := w.startController(ctx, "replica-b")
		Eventually(next.Leading).WithTimeout(leaseDuration).Should(BeTrue())
		AddReportEntry("next controller leading", time.Since(starting).Round(time.Millisecond).String())
		Expect(time.Since(starting)).To(BeNumerically("<", leaseDuration), "no wait for the old lease to expire")
	})
})
