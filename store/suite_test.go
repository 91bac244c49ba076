package store_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/flightdeck/flightdeck/internal/envtest"
	"github.com/flightdeck/flightdeck/store"
)

func TestStore(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous for a loaded machine; passing specs do not wait for it.
	SetDefaultEventuallyTimeout(10 * time.Second)
	RunSpecs(t, "store suite")
}

var (
	pg *envtest.Postgres
	// sharedURL and st serve the specs that only touch rows they create;
	// specs that look at the whole database get a database of their own.
	sharedURL string
	st        *store.Store
)

var _ = BeforeSuite(func(ctx SpecContext) {
	baseline := goleak.IgnoreCurrent()
	// Registered first, so it runs last: after the pool and cluster are gone.
	DeferCleanup(func() {
		Expect(goleak.Find(baseline)).To(Succeed())
	})

	var err error
	pg, err = envtest.StartPostgres(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pg.Stop)

	sharedURL, st = newStore(ctx)
})

var dbCounter atomic.Int64

// newDatabase returns the URL of a fresh migrated database.
func newDatabase(ctx context.Context) string {
	url, err := pg.NewDatabase(ctx, fmt.Sprintf("store_%d", dbCounter.Add(1)))
	Expect(err).NotTo(HaveOccurred())
	return url
}

// newEmptyDatabase returns the URL of a fresh database without schema.
func newEmptyDatabase(ctx context.Context) string {
	url, err := pg.NewEmptyDatabase(ctx, fmt.Sprintf("empty_%d", dbCounter.Add(1)))
	Expect(err).NotTo(HaveOccurred())
	return url
}

// newStore returns a fresh migrated database and a Store on it, closed
// after the current spec or suite node.
func newStore(ctx context.Context, opts ...store.Option) (string, *store.Store) {
	url := newDatabase(ctx)
	pool, err := pgxpool.New(ctx, url)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pool.Close)
	return url, store.New(pool, opts...)
}

// execSQL runs statements on a fresh connection to url.
func execSQL(ctx context.Context, url, sql string, args ...any) {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, url)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql, args...)
	Expect(err).NotTo(HaveOccurred())
}

// queryValue runs a one-value query on a fresh connection to url.
func queryValue[T any](ctx context.Context, url, sql string, args ...any) T {
	GinkgoHelper()
	conn, err := pgx.Connect(ctx, url)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(context.Background())
	var v T
	Expect(conn.QueryRow(ctx, sql, args...).Scan(&v)).To(Succeed())
	return v
}

// createDeployment inserts a deployment through the store.
func createDeployment(ctx context.Context, s *store.Store, name string) *store.Deployment {
	GinkgoHelper()
	d, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: name, Package: "@acme/mcp-" + name + "@1.0.0"})
	Expect(err).NotTo(HaveOccurred())
	return d
}

// eventCount counts the events of one deployment.
func eventCount(ctx context.Context, url, id string) int {
	GinkgoHelper()
	return queryValue[int](ctx, url, `SELECT count(*) FROM deployment_events WHERE deployment_id = $1`, id)
}

// openStore returns a Store on url, closed after the current spec.
func openStore(ctx context.Context, url string, opts ...store.Option) *store.Store {
	GinkgoHelper()
	s, err := store.Open(ctx, url, opts...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(s.Close)
	return s
}

// openPool returns a pool on url, closed after the current spec.
func openPool(ctx context.Context, url string) *pgxpool.Pool {
	GinkgoHelper()
	pool, err := pgxpool.New(ctx, url)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pool.Close)
	return pool
}
