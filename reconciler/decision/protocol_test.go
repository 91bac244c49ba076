package decision_test

import (
	"math/rand/v2"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/store/status"
)

// fakeWorld answers the actions of a pass the way the gather/act reconciler will, and counts them.
type fakeWorld struct {
	probe   decision.ProbeResult
	machine *decision.Machine
	getErr  *decision.FlyError
	create  decision.FlyResult
	update  decision.FlyResult
	calls   map[decision.Action]int
}

func newWorld() *fakeWorld { return &fakeWorld{calls: map[decision.Action]int{}} }

// pass is what one reconcile did: the rows written (in order), the last decision, the row after it.
type pass struct {
	writes []decision.Decision
	last   decision.Decision
	row    decision.Deployment
}

// runPass drives Decide as the package doc says: write before acting, record each answer, stop on
// ActionNone or ActionDeleteRow. A pass that needs more than six decisions fails the spec.
func runPass(w *fakeWorld, dep decision.Deployment, confirm bool, at time.Time) pass {
	o := decision.Observation{Now: at, Timings: timings, Deployment: dep, PendingConfirmation: confirm}
	var p pass
	for range 6 {
		d := decision.Decide(o)
		if d.Transition(o.Deployment) {
			p.writes = append(p.writes, d)
			o.Deployment = d.Apply(o.Deployment, at)
		}
		p.last, p.row = d, o.Deployment
		w.calls[d.Action]++
		switch d.Action {
		case decision.ActionNone, decision.ActionDeleteRow:
			return p
		case decision.ActionProbe:
			r := w.probe
			o.Probe = &r
		case decision.ActionObserveMachine:
			o.Machine, o.MachineErr = w.machine, w.getErr
		case decision.ActionCreateMachine:
			r := w.create
			o.Create = &r
		case decision.ActionUpdateMachine:
			r := w.update
			o.Update = &r
		case decision.ActionDestroyMachine:
			o.Destroy = &decision.FlyResult{}
		}
	}
	Fail("the pass did not end within six decisions")
	return p
}

func statuses(ws []decision.Decision) []status.Status {
	var out []status.Status
	for _, w := range ws {
		out = append(out, w.Status)
	}
	return out
}

var _ = Describe("A pass driven by Decide", func() {
	It("takes a new deployment through installing and starting to running with one create", func() {
		w := newWorld()
		w.create = decision.FlyResult{Machine: &decision.Machine{ID: newMachineID, State: "created", PrivateIP: newIP}}
		t := now
		p := runPass(w, row(withoutMachine(), withStatus(status.Pending), enteredAgo(0)), false, t)
		Expect(statuses(p.writes)).To(Equal([]status.Status{status.Installing, status.Starting}))
		Expect(p.writes[0].ProgressMessage).To(Equal("Creating Fly machine..."))
		Expect(p.writes[1].ProgressMessage).To(Equal("Installing packages and starting server..."))
		Expect(p.row.MachineID).To(Equal(newMachineID))
		Expect(p.last.RequeueAfter).To(Equal(timings.StartupPollInterval))
		Expect(w.calls[decision.ActionCreateMachine]).To(Equal(1))

		// The machine boots: the first poll finds no server and Fly says it just started.
		t = t.Add(timings.StartupPollInterval)
		w.probe = refused
		w.machine = &decision.Machine{ID: newMachineID, State: "started", PrivateIP: newIP, LatestStartAt: t.Add(-time.Second)}
		p = runPass(w, p.row, false, t)
		Expect(p.writes).To(BeEmpty())
		Expect(p.last.RequeueAfter).To(Equal(timings.StartupPollInterval))

		t = t.Add(timings.StartupPollInterval)
		w.probe = answered200
		p = runPass(w, p.row, false, t)
		Expect(statuses(p.writes)).To(Equal([]status.Status{status.Running}))
		Expect(p.row.ProgressMessage).To(BeEmpty())
		Expect(p.row.ErrorMessage).To(BeEmpty())
	})

	It("checks a healthy deployment with one probe: no Fly call, no write", func() {
		w := newWorld()
		w.probe = answered200
		p := runPass(w, row(), false, now)
		Expect(p.writes).To(BeEmpty())
		Expect(w.calls).To(Equal(map[decision.Action]int{decision.ActionProbe: 1, decision.ActionNone: 1}))
		Expect(p.last.RequeueAfter).To(Equal(timings.CheckInterval))
		Expect(p.last.Jitter).To(BeTrue())
	})

	It("follows autostop to stopped and autostart back to running, never through unhealthy", func() {
		w := newWorld()
		dep := row()
		seen := []status.Status{dep.Status}
		t := now

		// Autostop: the server vanishes; one failure is confirmed before Fly is asked.
		w.probe = noSuchHost
		w.machine = machine(stoppedOnRequest())
		p := runPass(w, dep, false, t)
		Expect(p.writes).To(BeEmpty())
		Expect(w.calls[decision.ActionObserveMachine]).To(BeZero())
		Expect(p.last.PendingConfirmation).To(BeTrue())

		t = t.Add(p.last.RequeueAfter)
		p = runPass(w, p.row, p.last.PendingConfirmation, t)
		seen = append(seen, statuses(p.writes)...)
		Expect(p.row.Status).To(Equal(status.Stopped))

		// While stopped, only Fly is read: no probe wakes the machine.
		probesBefore := w.calls[decision.ActionProbe]
		t = t.Add(p.last.Delay(rand.Float64()))
		p = runPass(w, p.row, p.last.PendingConfirmation, t)
		Expect(p.writes).To(BeEmpty())
		Expect(w.calls[decision.ActionProbe]).To(Equal(probesBefore))

		// Autostart: the machine started a moment ago and its server is still booting.
		t = t.Add(p.last.Delay(rand.Float64()))
		w.machine = machine(startedAgo(0), func(m *decision.Machine) { m.LatestStartAt = t.Add(-2 * time.Second) })
		w.probe = refused
		for range 5 {
			p = runPass(w, p.row, p.last.PendingConfirmation, t)
			seen = append(seen, statuses(p.writes)...)
			t = t.Add(p.last.RequeueAfter)
		}
		Expect(p.row.Status).To(Equal(status.Stopped))

		w.probe = answered200
		p = runPass(w, p.row, p.last.PendingConfirmation, t)
		seen = append(seen, statuses(p.writes)...)
		Expect(seen).To(Equal([]status.Status{status.Running, status.Stopped, status.Running}))
	})

	It("reports an outage within one re-probe of the first failure", func() {
		w := newWorld()
		w.probe = refused
		w.machine = machine()
		t := now
		p := runPass(w, row(), false, t)
		Expect(p.row.Status).To(Equal(status.Running))
		t = t.Add(p.last.RequeueAfter)
		p = runPass(w, p.row, p.last.PendingConfirmation, t)
		Expect(p.row.Status).To(Equal(status.Unhealthy))
		Expect(p.row.ErrorMessage).To(Equal("Machine unreachable"))
		Expect(t.Sub(now)).To(Equal(timings.StartupPollInterval))
	})

	It("destroys the machine of a deleted deployment before deleting its row", func() {
		w := newWorld()
		p := runPass(w, row(markedDeleted()), false, now)
		Expect(p.writes).To(BeEmpty())
		Expect(w.calls[decision.ActionDestroyMachine]).To(Equal(1))
		Expect(p.last.Action).To(Equal(decision.ActionDeleteRow))
	})

	It("updates the machine of a changed spec and restarts the startup clock", func() {
		w := newWorld()
		w.update = decision.FlyResult{Machine: machine()}
		p := runPass(w, row(specChanged()), false, now)
		Expect(statuses(p.writes)).To(Equal([]status.Status{status.Starting}))
		Expect(p.row.ObservedGeneration).To(Equal(int64(4)))
		Expect(p.row.StatusChangedAt).To(Equal(now))
		Expect(w.calls[decision.ActionUpdateMachine]).To(Equal(1))
	})
})

var _ = Describe("Decision", func() {
	It("spreads a jittered requeue over ±10% of the interval", func() {
		d := decision.Decision{RequeueAfter: 30 * time.Second, Jitter: true}
		Expect(d.Delay(0)).To(Equal(27 * time.Second))
		Expect(d.Delay(0.5)).To(Equal(30 * time.Second))
		Expect(d.Delay(0.999999)).To(BeNumerically("~", 33*time.Second, time.Millisecond))
		d.Jitter = false
		Expect(d.Delay(0)).To(Equal(30 * time.Second))
	})

	It("reports a transition only when something the row holds changes", func() {
		dep := row()
		d := decision.Decide(observe(dep, probed(answered200)))
		Expect(d.Transition(dep)).To(BeFalse())
		Expect(d.Apply(dep, now)).To(Equal(dep))
		d.PrivateIP = newIP
		Expect(d.Transition(dep)).To(BeTrue())
	})

	It("is terminal only for a pass with nothing to wait for", func() {
		Expect(decision.Decide(observe(row(withStatus(status.Failed), withError("x")))).Terminal()).To(BeTrue())
		Expect(decision.Decide(observe(row(), probed(answered200))).Terminal()).To(BeFalse())
		Expect(decision.Decide(observe(row(markedDeleted()), destroyFailed(unavailable))).Terminal()).To(BeFalse())
	})

	DescribeTable("classifies Fly status codes by what they let the decision conclude",
		func(code int, want decision.FlyErrorKind) {
			Expect(decision.ClassifyFlyStatus(code)).To(Equal(want))
		},
		Entry("404 is not found", 404, decision.FlyNotFound),
		Entry("400 is permanent", 400, decision.FlyPermanent),
		Entry("403 is permanent", 403, decision.FlyPermanent),
		Entry("422 is permanent", 422, decision.FlyPermanent),
		Entry("408 is transient", 408, decision.FlyTransient),
		Entry("409 is transient", 409, decision.FlyTransient),
		Entry("429 is transient", 429, decision.FlyTransient),
		Entry("500 is transient", 500, decision.FlyTransient),
		Entry("503 is transient", 503, decision.FlyTransient),
		Entry("no response is transient", 0, decision.FlyTransient),
	)

	DescribeTable("accepts only 14 lowercase hex characters as a machine id",
		func(id string, valid bool) { Expect(decision.ValidMachineID(id)).To(Equal(valid)) },
		Entry("a Fly machine id", "1857156b526dd8", true),
		Entry("upper case", "1857156B526DD8", false),
		Entry("15 characters", "a5c5de9ce64ca12", false),
		Entry("13 characters", "1857156b526dd", false),
		Entry("a trailing newline", "1857156b526dd8\n", false),
		Entry("a path", "../1857156b526d", false),
		Entry("empty", "", false),
	)

	It("names kinds and actions for logs and metrics", func() {
		Expect(decision.ProbeRefused.String()).To(Equal("refused"))
		Expect(decision.ProbeKind(99).String()).To(Equal("unknown"))
		Expect(decision.FlyNotFound.String()).To(Equal("not_found"))
		Expect(decision.ActionObserveMachine.String()).To(Equal("observeMachine"))
		Expect(decision.ProbeResult{}.OK()).To(BeFalse(), "an unset probe result must not pass for a healthy one")
	})
})
