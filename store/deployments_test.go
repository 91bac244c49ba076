package store_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// transition builds the params of a status change from what d says now.
func transition(d *store.Deployment, to status.Status, reason string) store.DeploymentTransitionParams {
	return store.DeploymentTransitionParams{
		ID: d.ID, FromStatus: d.Status, Generation: d.Generation, ToStatus: to,
		ObservedGeneration: d.Generation, Reason: reason,
	}
}

const goneID = "0a0a0a0a-0b0b-4c0c-8d0d-0e0e0e0e0e0e"

var _ = Describe("a guarded transition", func() {
	var d *store.Deployment

	BeforeEach(func(ctx SpecContext) {
		d = createDeployment(ctx, st, "guarded")
	})

	It("applies once, writing the status, the messages and one event", func(ctx SpecContext) {
		p := transition(d, status.Installing, "MachineCreating")
		p.ProgressMessage = "Creating Fly machine..."
		p.Message = "Creating the Fly machine."

		got, err := st.DeploymentTransition(ctx, p)

		Expect(err).NotTo(HaveOccurred())
		Expect(got.Status).To(Equal(status.Installing))
		Expect(got.ProgressMessage).To(Equal("Creating Fly machine..."))
		Expect(got.ErrorMessage).To(BeEmpty())
		Expect(got.ObservedGeneration).To(Equal(int64(1)))
		Expect(got.StatusChangedAt).To(BeTemporally(">", d.StatusChangedAt))
		events, next, err := st.EventList(ctx, store.EventListParams{DeploymentID: d.ID})
		Expect(err).NotTo(HaveOccurred())
		Expect(next).To(BeEmpty())
		Expect(events).To(HaveLen(1))
		Expect(events[0]).To(MatchFields(d.ID, status.Pending, status.Installing, "MachineCreating", "Creating the Fly machine."))
		Expect(events[0].At).To(Equal(got.StatusChangedAt))
	})

	It("refuses a second writer holding the stale expectation, writing nothing", func(ctx SpecContext) {
		_, err := st.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))
		Expect(err).NotTo(HaveOccurred())
		before, err := st.DeploymentGet(ctx, d.ID)
		Expect(err).NotTo(HaveOccurred())

		_, err = st.DeploymentTransition(ctx, transition(d, status.Failed, "MachineCreateFailed"))

		Expect(err).To(MatchError(store.ErrConflict))
		Expect(st.DeploymentGet(ctx, d.ID)).To(Equal(before))
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(1))
	})

	It("writes an event exactly when the status changes", func(ctx SpecContext) {
		installing, err := st.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))
		Expect(err).NotTo(HaveOccurred())
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(1))

		By("changing only the progress message")
		p := transition(installing, status.Installing, "")
		p.ProgressMessage = "Still creating the Fly machine..."
		progressed, err := st.DeploymentTransition(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		Expect(progressed.ProgressMessage).To(Equal("Still creating the Fly machine..."))
		Expect(progressed.StatusChangedAt).To(Equal(installing.StatusChangedAt))
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(1))

		By("writing what the row already says")
		same, err := st.DeploymentTransition(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		Expect(same).To(Equal(progressed))
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(1))

		By("changing the status")
		_, err = st.DeploymentTransition(ctx, transition(progressed, status.Starting, "MachineCreated"))
		Expect(err).NotTo(HaveOccurred())
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(2))
	})

	It("refuses a write computed before the spec changed", func(ctx SpecContext) {
		execSQL(ctx, sharedURL, `UPDATE deployments SET package = 'other@2' WHERE id = $1`, d.ID)

		_, err := st.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))

		Expect(err).To(MatchError(store.ErrConflict))
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(0))
	})

	It("reports a row that is gone as not found", func(ctx SpecContext) {
		_, err := st.DeploymentTransition(ctx, transition(&store.Deployment{ID: goneID, Status: status.Pending, Generation: 1}, status.Installing, "MachineCreating"))
		Expect(err).To(MatchError(store.ErrNotFound))
	})

	It("takes the change time from the store's clock", func(ctx SpecContext) {
		at := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
		clocked := openStore(ctx, sharedURL, store.WithClock(func() time.Time { return at }))

		got, err := clocked.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))

		Expect(err).NotTo(HaveOccurred())
		Expect(got.StatusChangedAt.Equal(at)).To(BeTrue(), "status_changed_at %s", got.StatusChangedAt)
		events, _, err := clocked.EventList(ctx, store.EventListParams{DeploymentID: d.ID})
		Expect(err).NotTo(HaveOccurred())
		Expect(events[0].At.Equal(at)).To(BeTrue(), "event at %s", events[0].At)
	})
})

// MatchFields matches an Event's deployment, statuses, reason and message.
func MatchFields(id string, from, to status.Status, reason, message string) OmegaMatcher {
	return WithTransform(func(e store.Event) string {
		return fmt.Sprintf("%s %s->%s %s %q", e.DeploymentID, e.From, e.To, e.Reason, e.Message)
	}, Equal(fmt.Sprintf("%s %s->%s %s %q", id, from, to, reason, message)))
}

var _ = Describe("the spec and the generation", func() {
	It("bumps the generation for package, env and the deletion mark, not for a name or a status", func(ctx SpecContext) {
		d := createDeployment(ctx, st, "generations")
		generation := func() int64 {
			return queryValue[int64](ctx, sharedURL, `SELECT generation FROM deployments WHERE id = $1`, d.ID)
		}
		execSQL(ctx, sharedURL, `UPDATE deployments SET package = 'x@2' WHERE id = $1`, d.ID)
		Expect(generation()).To(Equal(int64(2)))
		execSQL(ctx, sharedURL, `UPDATE deployments SET env = '{"A": "1"}' WHERE id = $1`, d.ID)
		Expect(generation()).To(Equal(int64(3)))
		execSQL(ctx, sharedURL, `UPDATE deployments SET name = 'renamed', status = 'failed' WHERE id = $1`, d.ID)
		Expect(generation()).To(Equal(int64(3)))
		execSQL(ctx, sharedURL, `UPDATE deployments SET generation = 42 WHERE id = $1`, d.ID)
		Expect(generation()).To(Equal(int64(3)))
		_, err := st.DeploymentMarkDeleted(ctx, d.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(generation()).To(Equal(int64(4)))
	})

	It("refuses env that is not an object of strings", func(ctx SpecContext) {
		d := createDeployment(ctx, st, "badenv")
		for _, env := range []string{`[]`, `{"A": 1}`, `{"not a name": "x"}`} {
			_, err := pgExec(ctx, sharedURL, `UPDATE deployments SET env = $2::jsonb WHERE id = $1`, d.ID, env)
			Expect(err).To(MatchError(ContainSubstring("deployments_env_valid")), env)
		}
	})
})

var _ = Describe("recording the machine", func() {
	It("writes the machine guarded on the generation", func(ctx SpecContext) {
		d := createDeployment(ctx, st, "machine")
		p := store.DeploymentRecordMachineParams{ID: d.ID, MachineID: "3d8d9014b32d89", PrivateIP: "fdaa:0:1::3", Region: "ams", Generation: 1}

		got, err := st.DeploymentRecordMachine(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		Expect([]string{got.MachineID, got.PrivateIP, got.Region}).To(Equal([]string{"3d8d9014b32d89", "fdaa:0:1::3", "ams"}))

		again, err := st.DeploymentRecordMachine(ctx, p)
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(Equal(got))

		execSQL(ctx, sharedURL, `UPDATE deployments SET package = 'x@2' WHERE id = $1`, d.ID)
		p.MachineID = "aaaaaaaaaaaaaa"
		_, err = st.DeploymentRecordMachine(ctx, p)
		Expect(err).To(MatchError(store.ErrConflict))

		p.ID = goneID
		_, err = st.DeploymentRecordMachine(ctx, p)
		Expect(err).To(MatchError(store.ErrNotFound))
	})
})

var _ = Describe("deleting", func() {
	It("marks, then removes the row with its events, and only a marked row", func(ctx SpecContext) {
		d := createDeployment(ctx, st, "deleted")
		_, err := st.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))
		Expect(err).NotTo(HaveOccurred())

		Expect(st.DeploymentDelete(ctx, d.ID)).To(MatchError(store.ErrConflict))

		marked, err := st.DeploymentMarkDeleted(ctx, d.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(marked.DeletedAt).NotTo(BeNil())
		again, err := st.DeploymentMarkDeleted(ctx, d.ID)
		Expect(err).NotTo(HaveOccurred())
		Expect(again).To(Equal(marked))

		Expect(st.DeploymentDelete(ctx, d.ID)).To(Succeed())
		_, err = st.DeploymentGet(ctx, d.ID)
		Expect(err).To(MatchError(store.ErrNotFound))
		Expect(eventCount(ctx, sharedURL, d.ID)).To(Equal(0))
		Expect(st.DeploymentDelete(ctx, d.ID)).To(MatchError(store.ErrNotFound))
		_, err = st.DeploymentMarkDeleted(ctx, d.ID)
		Expect(err).To(MatchError(store.ErrNotFound))
	})
})

var _ = Describe("the controller's view of all rows", func() {
	var url string
	var s *store.Store

	BeforeEach(func(ctx SpecContext) {
		url, s = newStore(ctx)
	})

	It("adopts a row inserted with a machine and status running", func(ctx SpecContext) {
		execSQL(ctx, url, `INSERT INTO deployments (name, package, machine_id, status) VALUES ('adopted', 'p', '3d8d9014b32d89', 'running')`)

		all, err := s.DeploymentListAll(ctx)

		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(1))
		Expect(all[0].MachineID).To(Equal("3d8d9014b32d89"))
		Expect(all[0].Status).To(Equal(status.Running))
		Expect(s.DeploymentListIDsToReconcile(ctx)).To(ConsistOf(all[0].ID))
	})

	It("leaves only settled failures out of the ids to reconcile", func(ctx SpecContext) {
		ids := map[string]string{}
		for _, name := range []string{"running", "settled", "respecced", "deleting"} {
			ids[name] = createDeployment(ctx, s, name).ID
		}
		execSQL(ctx, url, `UPDATE deployments SET status = 'running', observed_generation = 1 WHERE id = $1`, ids["running"])
		execSQL(ctx, url, `UPDATE deployments SET status = 'failed', observed_generation = 1 WHERE id = $1`, ids["settled"])
		execSQL(ctx, url, `UPDATE deployments SET status = 'failed', observed_generation = 1 WHERE id = $1`, ids["respecced"])
		execSQL(ctx, url, `UPDATE deployments SET package = 'fixed@2' WHERE id = $1`, ids["respecced"])
		execSQL(ctx, url, `UPDATE deployments SET status = 'failed', observed_generation = 1 WHERE id = $1`, ids["deleting"])
		_, err := s.DeploymentMarkDeleted(ctx, ids["deleting"])
		Expect(err).NotTo(HaveOccurred())

		Expect(s.DeploymentListIDsToReconcile(ctx)).To(ConsistOf(ids["running"], ids["respecced"], ids["deleting"]))
		all, err := s.DeploymentListAll(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(all).To(HaveLen(4))
	})

	It("counts every status, with zeros", func(ctx SpecContext) {
		for i := range 3 {
			createDeployment(ctx, s, fmt.Sprintf("c%d", i))
		}
		execSQL(ctx, url, `UPDATE deployments SET status = 'running' WHERE name = 'c0'`)

		counts, err := s.DeploymentCountByStatus(ctx)

		Expect(err).NotTo(HaveOccurred())
		Expect(counts).To(Equal(map[status.Status]int{
			status.Pending: 2, status.Installing: 0, status.Starting: 0, status.Running: 1,
			status.Unhealthy: 0, status.Stopped: 0, status.Failed: 0,
		}))
	})
})

var _ = Describe("paging", func() {
	var url string
	var s *store.Store

	BeforeEach(func(ctx SpecContext) {
		url, s = newStore(ctx)
		// Seven rows created in one statement share created_at: the id breaks the tie.
		execSQL(ctx, url, `INSERT INTO deployments (name, package, status)
		                   SELECT 'same' || i, 'p', CASE WHEN i % 2 = 0 THEN 'running' ELSE 'pending' END::deployment_status
		                     FROM generate_series(1, 7) i`)
		execSQL(ctx, url, `INSERT INTO deployments (name, package) VALUES ('newest', 'p')`)
	})

	It("walks deployments newest first without gaps or repeats", func(ctx SpecContext) {
		want := queryValue[[]string](ctx, url, `SELECT array_agg(id::text ORDER BY created_at DESC, id DESC) FROM deployments`)
		Expect(want).To(HaveLen(8))

		var got []string
		cursor := ""
		pages := 0
		for {
			page, next, err := s.DeploymentList(ctx, store.DeploymentListParams{Limit: 3, Cursor: cursor})
			Expect(err).NotTo(HaveOccurred())
			pages++
			for _, d := range page {
				got = append(got, d.ID)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		Expect(got).To(Equal(want))
		Expect(pages).To(Equal(3))
	})

	It("filters by status", func(ctx SpecContext) {
		page, next, err := s.DeploymentList(ctx, store.DeploymentListParams{Limit: 2, Status: status.Running})
		Expect(err).NotTo(HaveOccurred())
		Expect(page).To(HaveLen(2))
		rest, last, err := s.DeploymentList(ctx, store.DeploymentListParams{Limit: 2, Status: status.Running, Cursor: next})
		Expect(err).NotTo(HaveOccurred())
		Expect(rest).To(HaveLen(1))
		Expect(last).To(BeEmpty())
		for _, d := range append(page, rest...) {
			Expect(d.Status).To(Equal(status.Running))
		}
	})

	It("walks a deployment's events newest first", func(ctx SpecContext) {
		d := createDeployment(ctx, s, "eventful")
		path := []status.Status{status.Installing, status.Starting, status.Running, status.Unhealthy, status.Running}
		for _, to := range path {
			var err error
			d, err = s.DeploymentTransition(ctx, transition(d, to, "Step"))
			Expect(err).NotTo(HaveOccurred())
		}

		var got []status.Status
		cursor := ""
		for {
			page, next, err := s.EventList(ctx, store.EventListParams{DeploymentID: d.ID, Limit: 2, Cursor: cursor})
			Expect(err).NotTo(HaveOccurred())
			Expect(len(page)).To(BeNumerically("<=", 2))
			for _, e := range page {
				got = append(got, e.To)
			}
			if next == "" {
				break
			}
			cursor = next
		}
		Expect(got).To(Equal([]status.Status{status.Running, status.Unhealthy, status.Running, status.Starting, status.Installing}))
	})

	It("reports the events of an unknown deployment as not found", func(ctx SpecContext) {
		_, _, err := s.EventList(ctx, store.EventListParams{DeploymentID: goneID})
		Expect(err).To(MatchError(store.ErrNotFound))
	})

	It("refuses a cursor it did not make", func(ctx SpecContext) {
		var verr *store.ValidationError
		_, _, err := s.DeploymentList(ctx, store.DeploymentListParams{Cursor: "bm90IGEgY3Vyc29y"})
		Expect(errors.As(err, &verr)).To(BeTrue())
		Expect(verr.Field).To(Equal("cursor"))
		_, _, err = s.EventList(ctx, store.EventListParams{DeploymentID: goneID, Cursor: "%%%"})
		Expect(errors.As(err, &verr)).To(BeTrue())
		Expect(verr.Field).To(Equal("cursor"))
	})
})

// pgExec runs one statement and returns its error, for statements expected to fail.
func pgExec(ctx context.Context, url, sql string, args ...any) (int64, error) {
	s := openPool(ctx, url)
	tag, err := s.Exec(ctx, sql, args...)
	return tag.RowsAffected(), err
}
