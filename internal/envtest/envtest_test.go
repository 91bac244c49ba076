package envtest_test

import (
	"context"
	"os"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/internal/envtest"
)

// query runs a one-value query on a fresh connection.
func query[T any](ctx context.Context, url, sql string, args ...any) (T, error) {
	var v T
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return v, err
	}
	defer conn.Close(context.Background())
	err = conn.QueryRow(ctx, sql, args...).Scan(&v)
	return v, err
}

func exec(ctx context.Context, url, sql string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

var _ = Describe("a throwaway PostgreSQL", Ordered, func() {
	var pg *envtest.Postgres

	BeforeAll(func(ctx SpecContext) {
		var err error
		pg, err = envtest.StartPostgres(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(pg.Stop)
	})

	It("hands out migrated databases that do not see each other's rows", func(ctx SpecContext) {
		a, err := pg.NewDatabase(ctx, "isolated_a")
		Expect(err).NotTo(HaveOccurred())
		b, err := pg.NewDatabase(ctx, "isolated_b")
		Expect(err).NotTo(HaveOccurred())

		Expect(exec(ctx, a, `INSERT INTO deployments (name, package) VALUES ('a', 'pkg')`)).To(Succeed())
		Expect(query[int](ctx, a, `SELECT count(*) FROM deployments`)).To(Equal(1))
		Expect(query[int](ctx, b, `SELECT count(*) FROM deployments`)).To(Equal(0))
	})

	It("hands out empty databases without the schema", func(ctx SpecContext) {
		url, err := pg.NewEmptyDatabase(ctx, "empty")
		Expect(err).NotTo(HaveOccurred())
		Expect(query[*string](ctx, url, `SELECT to_regclass('deployments')::text`)).To(BeNil())
	})

	It("refuses a database name that is not an identifier", func(ctx SpecContext) {
		_, err := pg.NewDatabase(ctx, `x"; DROP DATABASE postgres; --`)
		Expect(err).To(MatchError(ContainSubstring("not a lower-case identifier")))
	})

	It("keeps its data and its port across a restart, cutting open sessions", func(ctx SpecContext) {
		url, err := pg.NewDatabase(ctx, "restarted")
		Expect(err).NotTo(HaveOccurred())
		Expect(exec(ctx, url, `INSERT INTO deployments (name, package) VALUES ('kept', 'pkg')`)).To(Succeed())
		conn, err := pgx.Connect(ctx, url)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = conn.Close(context.Background()) })
		port := pg.Port()

		Expect(pg.Restart(ctx)).To(Succeed())

		Expect(pg.Port()).To(Equal(port))
		Expect(conn.Ping(ctx)).NotTo(Succeed())
		Expect(query[string](ctx, url, `SELECT name FROM deployments`)).To(Equal("kept"))
	})

	It("terminates the sessions of one database", func(ctx SpecContext) {
		url, err := pg.NewDatabase(ctx, "terminated")
		Expect(err).NotTo(HaveOccurred())
		conn, err := pgx.Connect(ctx, url)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = conn.Close(context.Background()) })

		Expect(pg.TerminateBackends(ctx, "terminated")).To(Equal(1))
		Eventually(func() error { return conn.Ping(ctx) }).WithContext(ctx).ShouldNot(Succeed())
	})
})

var _ = Describe("stopping", func() {
	It("ends the server and removes its directory, and may be repeated", func(ctx SpecContext) {
		pg, err := envtest.StartPostgres(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(pg.Stop)
		url := pg.AdminURL()
		Expect(query[int](ctx, url, `SELECT 1`)).To(Equal(1))
		dir := envtest.DirOf(pg)
		Expect(dir).To(BeADirectory())

		Expect(pg.Stop()).To(Succeed())

		_, err = query[int](ctx, url, `SELECT 1`)
		Expect(err).To(HaveOccurred())
		_, statErr := os.Stat(dir)
		Expect(os.IsNotExist(statErr)).To(BeTrue(), "directory %s still exists", dir)
		Expect(pg.Stop()).To(Succeed())
	})
})

var _ = Describe("without PostgreSQL installed", func() {
	It("says where it looked and how to install it", func(ctx SpecContext) {
		restore := envtest.SetSearchGlob("/nonexistent/postgresql/*/bin")
		DeferCleanup(restore)
		GinkgoT().Setenv("PATH", "/nonexistent")

		_, err := envtest.StartPostgres(ctx)

		Expect(err).To(MatchError(envtest.ErrNotInstalled))
		Expect(err.Error()).To(Equal("PostgreSQL not found (looked for initdb on PATH and in /usr/lib/postgresql/*/bin); run hack/install-prereqs.sh"))
	})
})
