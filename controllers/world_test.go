package controllers_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/tools/leaderelection/resourcelock"

	"github.com/flightdeck/flightdeck/controllers"
	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/internal/envtest"
	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// world is one story's world: a fresh migrated database that records every
// version of every deployment row, and a Fly simulator. Controllers are
// started on it with startController.
type world struct {
	name, url string
	db        *pgxpool.Pool
	st        *store.Store
	fly       *envtest.Fly
}

var dbCounter atomic.Int64

// recordRowVersions installs, in a test database only, a trigger that keeps
// every version of every deployments row (insert and each update, in commit
// order for one row: the row lock orders its writers). Polling the row
// could miss a status that lasts milliseconds (installing lasts as long as
// the create call); this history cannot.
const recordRowVersions = `
CREATE TABLE test_row_versions (
    seq              bigserial PRIMARY KEY,
    deployment_id    uuid NOT NULL,
    status           text NOT NULL,
    progress_message text,
    error_message    text
);
CREATE FUNCTION test_record_row_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO test_row_versions (deployment_id, status, progress_message, error_message)
    VALUES (NEW.id, NEW.status::text, NEW.progress_message, NEW.error_message);
    RETURN NULL;
END
$$;
CREATE TRIGGER test_record_row_version AFTER INSERT OR UPDATE ON deployments
    FOR EACH ROW EXECUTE FUNCTION test_record_row_version();
`

// newWorld creates a fresh database (cloned from the migrated template) and
// starts a simulator with the suite's fast timings; both go away after the
// spec.
func newWorld(ctx context.Context, simOpts ...func(*flysim.Options)) *world {
	GinkgoHelper()
	name := fmt.Sprintf("controllers_%d", dbCounter.Add(1))
	url, err := pg.NewDatabase(ctx, name)
	Expect(err).NotTo(HaveOccurred())
	db, err := pgxpool.New(ctx, url)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(db.Close)
	_, err = db.Exec(ctx, recordRowVersions)
	Expect(err).NotTo(HaveOccurred())

	var opts flysim.Options
	for _, o := range simOpts {
		o(&opts)
	}
	fly, err := envtest.StartFly(opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(fly.Close)
	return &world{name: name, url: url, db: db, st: store.New(db), fly: fly}
}

// goodPackage is an npm package the simulator installs and serves with 200.
const goodPackage = "@modelcontextprotocol/server-everything@1.0.0"

// deploymentSpec is a row to insert; options change it.
type deploymentSpec struct {
	id, name, pkg        string
	env                  map[string]string
	machineID, privateIP string
	status               status.Status
}

type deploymentOption func(*deploymentSpec)

func withPackage(pkg string) deploymentOption { return func(d *deploymentSpec) { d.pkg = pkg } }
func withEnv(env map[string]string) deploymentOption {
	return func(d *deploymentSpec) { d.env = env }
}
func withID(id string) deploymentOption { return func(d *deploymentSpec) { d.id = id } }

// withMachine makes the row name an existing machine, as the platform
// writes rows for machines it created before flightdeck.
func withMachine(machineID string) deploymentOption {
	return func(d *deploymentSpec) { d.machineID = machineID }
}
func withPrivateIP(ip string) deploymentOption { return func(d *deploymentSpec) { d.privateIP = ip } }
func withStatus(s status.Status) deploymentOption {
	return func(d *deploymentSpec) { d.status = s }
}

// newID returns a fresh deployment id, for rows a story must know before it
// inserts them.
func (w *world) newID(ctx context.Context) string {
	GinkgoHelper()
	var id string
	Expect(w.db.QueryRow(ctx, `SELECT gen_random_uuid()::text`).Scan(&id)).To(Succeed())
	return id
}

// insert writes a deployment row as the platform's API does (plain SQL,
// every other column left to its default) and returns its id.
func (w *world) insert(ctx context.Context, name string, opts ...deploymentOption) string {
	GinkgoHelper()
	d := deploymentSpec{name: name, pkg: goodPackage, env: map[string]string{}}
	for _, o := range opts {
		o(&d)
	}
	env, err := json.Marshal(d.env)
	Expect(err).NotTo(HaveOccurred())
	var id string
	Eventually(ctx, func() error { // the pool may hold connections cut by a database restart
		return w.db.QueryRow(ctx, `
			INSERT INTO deployments (id, name, package, env, machine_id, private_ip, status)
			VALUES (coalesce(NULLIF($1, '')::uuid, gen_random_uuid()), $2, $3, $4::jsonb,
			        NULLIF($5, ''), NULLIF($6, ''), coalesce(NULLIF($7, '')::deployment_status, 'pending'))
			RETURNING id::text`,
			d.id, d.name, d.pkg, string(env), d.machineID, d.privateIP, string(d.status)).Scan(&id)
	}).Should(Succeed())
	return id
}

// admin runs a statement as the cluster's superuser, outside the world's
// database (ALTER DATABASE).
func (w *world) admin(ctx context.Context, sql string) {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, pg.AdminURL())
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	Expect(err).NotTo(HaveOccurred())
}

// exec runs a statement as the platform would (an UPDATE of the record).
func (w *world) exec(ctx context.Context, sql string, args ...any) {
	GinkgoHelper()
	_, err := w.db.Exec(ctx, sql, args...)
	Expect(err).NotTo(HaveOccurred())
}

// row is the part of a deployment row the stories look at.
type row struct {
	Status                         status.Status
	Progress, Error                string
	MachineID, PrivateIP           string
	Generation, ObservedGeneration int64
	UpdatedAt                      time.Time
}

// errGone is row's error for a deleted row.
var errGone = errors.New("the row is gone")

func (w *world) row(ctx context.Context, id string) (row, error) {
	var r row
	var st string
	err := w.db.QueryRow(ctx, `
		SELECT status::text, coalesce(progress_message, ''), coalesce(error_message, ''),
		       coalesce(machine_id, ''), coalesce(private_ip, ''), generation, observed_generation, updated_at
		  FROM deployments WHERE id = $1`, id).
		Scan(&st, &r.Progress, &r.Error, &r.MachineID, &r.PrivateIP, &r.Generation, &r.ObservedGeneration, &r.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return row{}, errGone
	}
	r.Status = status.Status(st)
	return r, err
}

// mustRow reads a row that exists.
func (w *world) mustRow(ctx context.Context, id string) row {
	GinkgoHelper()
	r, err := w.row(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	return r
}

// statusOf is for Eventually: the row's status ("" once it is gone).
func (w *world) statusOf(ctx context.Context, id string) func() (status.Status, error) {
	return func() (status.Status, error) {
		r, err := w.row(ctx, id)
		if errors.Is(err, errGone) {
			return "", nil
		}
		return r.Status, err
	}
}

// version is what a user sees of one version of the row.
type version struct {
	Status          status.Status
	Progress, Error string
}

// versions returns every version the row went through, in order, with
// consecutive repeats (writes that changed only other columns) removed.
func (w *world) versions(ctx context.Context, id string) []version {
	GinkgoHelper()
	rows, err := w.db.Query(ctx, `
		SELECT status, coalesce(progress_message, ''), coalesce(error_message, '')
		  FROM test_row_versions WHERE deployment_id = $1 ORDER BY seq`, id)
	Expect(err).NotTo(HaveOccurred())
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (version, error) {
		var v version
		var st string
		err := r.Scan(&st, &v.Progress, &v.Error)
		v.Status = status.Status(st)
		return v, err
	})
	Expect(err).NotTo(HaveOccurred())
	var out []version
	for _, v := range all {
		if len(out) == 0 || out[len(out)-1] != v {
			out = append(out, v)
		}
	}
	return out
}

// statuses returns the distinct statuses the row went through, in order.
func (w *world) statuses(ctx context.Context, id string) []status.Status {
	GinkgoHelper()
	var out []status.Status
	for _, v := range w.versions(ctx, id) {
		if len(out) == 0 || out[len(out)-1] != v.Status {
			out = append(out, v.Status)
		}
	}
	return out
}

// writes counts the row's versions: one per write that changed it.
func (w *world) writes(ctx context.Context, id string) int {
	GinkgoHelper()
	var n int
	Expect(w.db.QueryRow(ctx, `SELECT count(*) FROM test_row_versions WHERE deployment_id = $1`, id).Scan(&n)).To(Succeed())
	return n
}

// transition is one deployment_events row: the controller's own history.
type transition struct {
	From, To status.Status
	Reason   string
}

func (t transition) String() string { return fmt.Sprintf("%s→%s (%s)", t.From, t.To, t.Reason) }

// events returns the deployment's events, oldest first.
func (w *world) events(ctx context.Context, id string) []transition {
	GinkgoHelper()
	rows, err := w.db.Query(ctx, `
		SELECT from_status::text, to_status::text, reason FROM deployment_events
		 WHERE deployment_id = $1 ORDER BY created_at, id`, id)
	Expect(err).NotTo(HaveOccurred())
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (transition, error) {
		var t transition
		var from, to string
		err := r.Scan(&from, &to, &t.Reason)
		t.From, t.To = status.Status(from), status.Status(to)
		return t, err
	})
	Expect(err).NotTo(HaveOccurred())
	return out
}

// path renders events as "pending→installing→..." for readable failures.
func path(ts []transition) []status.Status {
	if len(ts) == 0 {
		return nil
	}
	out := []status.Status{ts[0].From}
	for _, t := range ts {
		out = append(out, t.To)
	}
	return out
}

// machinesOf lists the live machines that carry the deployment's id in
// their metadata, as the controller's idempotent create looks them up.
func (w *world) machinesOf(ctx context.Context, deploymentID string) []flyclient.Machine {
	GinkgoHelper()
	ms, err := w.fly.API.ListMachines(ctx, flyclient.ListMachinesOptions{
		Metadata: map[string]string{flyclient.MetadataDeploymentID: deploymentID},
	})
	Expect(err).NotTo(HaveOccurred())
	return ms
}

// machine reads a machine from the simulator's API.
func (w *world) machine(ctx context.Context, id string) *flyclient.Machine {
	GinkgoHelper()
	m, err := w.fly.API.GetMachine(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	return m
}

// leaseHolder is who holds the controller lease of the world's database
// ("" when it was released).
func (w *world) leaseHolder(ctx context.Context) string {
	GinkgoHelper()
	raw, _, err := w.st.LeaseGet(ctx, controllers.LeaseName)
	Expect(err).NotTo(HaveOccurred())
	var rec resourcelock.LeaderElectionRecord
	Expect(json.Unmarshal(raw, &rec)).To(Succeed())
	return rec.HolderIdentity
}
