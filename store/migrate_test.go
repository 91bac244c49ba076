package store_test

import (
	"context"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
)

// schemaSnapshot describes everything in the public schema, and the rows of
// deployments when it exists, as one comparable string. except names a table
// to leave out.
func schemaSnapshot(ctx context.Context, url, except string) string {
	GinkgoHelper()
	snapshot := queryValue[string](ctx, url, `
		SELECT jsonb_build_object(
			'columns', (SELECT jsonb_agg(jsonb_build_array(table_name, column_name, data_type, udt_name, column_default, is_nullable)
			                             ORDER BY table_name, ordinal_position)
			              FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> $1),
			'constraints', (SELECT jsonb_agg(jsonb_build_array(conrelid::regclass::text, conname, pg_get_constraintdef(oid))
			                                 ORDER BY conrelid::regclass::text, conname)
			                  FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> $1),
			'types', (SELECT jsonb_agg(typname::text ORDER BY typname)
			            FROM pg_type WHERE typnamespace = 'public'::regnamespace AND typname::text NOT IN ($1, '_' || $1)),
			'functions', (SELECT jsonb_agg(proname::text ORDER BY proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace),
			'triggers', (SELECT jsonb_agg(tgname::text ORDER BY tgname) FROM pg_trigger WHERE NOT tgisinternal),
			'indexes', (SELECT jsonb_agg(indexdef ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public' AND tablename <> $1),
			'sequences', (SELECT jsonb_agg(sequencename::text ORDER BY sequencename) FROM pg_sequences WHERE schemaname = 'public' AND sequencename::text NOT LIKE $1 || '%')
		)::text`, except)
	if queryValue[bool](ctx, url, `SELECT to_regclass('deployments') IS NOT NULL`) {
		snapshot += queryValue[string](ctx, url, `SELECT coalesce(jsonb_agg(to_jsonb(d) ORDER BY d.id::text), '[]')::text FROM deployments d`)
	}
	return snapshot
}

var sevenStatuses = []string{"pending", "installing", "starting", "running", "unhealthy", "stopped", "failed"}

var _ = Describe("migrating", func() {
	It("gives a fresh database the enum with exactly the seven values in order, the tables and the triggers", func(ctx SpecContext) {
		url := newEmptyDatabase(ctx)

		applied, err := store.Migrate(ctx, url)

		Expect(err).NotTo(HaveOccurred())
		Expect(applied).To(HaveLen(2))
		Expect(applied[0].Name).To(Equal("00001_deployments.sql"))
		Expect(applied[1].Name).To(Equal("00002_leader_leases.sql"))
		Expect(queryValue[[]string](ctx, url,
			`SELECT array_agg(enumlabel::text ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = 'deployment_status'::regtype`)).
			To(Equal(sevenStatuses))
		Expect(queryValue[[]string](ctx, url,
			`SELECT array_agg(tablename::text ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'`)).
			To(Equal([]string{"deployment_events", "deployments", "flightdeck_schema_migrations", "leader_leases"}))
		Expect(queryValue[[]string](ctx, url,
			`SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'deployments'::regclass AND NOT tgisinternal`)).
			To(Equal([]string{"deployments_before_update", "deployments_notify"}))
	})

	It("makes (name, package) a complete new deployment", func(ctx SpecContext) {
		url := newDatabase(ctx)

		execSQL(ctx, url, `INSERT INTO deployments (name, package) VALUES ('a', 'b')`)

		Expect(queryValue[string](ctx, url, `
			SELECT format('%s %s %s %s %s %s', status, env, generation, observed_generation,
			              id IS NOT NULL AND created_at IS NOT NULL AND updated_at IS NOT NULL AND status_changed_at IS NOT NULL,
			              coalesce(machine_id, progress_message, error_message, deleted_at::text, '-'))
			  FROM deployments`)).To(Equal("pending {} 1 0 t -"))
	})

	It("applies nothing and changes nothing on a second run", func(ctx SpecContext) {
		url := newEmptyDatabase(ctx)
		_, err := store.Migrate(ctx, url)
		Expect(err).NotTo(HaveOccurred())
		before := schemaSnapshot(ctx, url, "")

		applied, err := store.Migrate(ctx, url)

		Expect(err).NotTo(HaveOccurred())
		Expect(applied).To(BeEmpty())
		Expect(schemaSnapshot(ctx, url, "")).To(Equal(before))
	})

	It("lets two concurrent runs both succeed, applying each migration once", func(ctx SpecContext) {
		url := newEmptyDatabase(ctx)

		var wg sync.WaitGroup
		results := make([][]store.AppliedMigration, 2)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer GinkgoRecover()
				results[i], errs[i] = store.Migrate(ctx, url)
			}()
		}
		wg.Wait()

		Expect(errs).To(HaveEach(Not(HaveOccurred())))
		Expect(len(results[0]) + len(results[1])).To(Equal(2))
		Expect(queryValue[[]int64](ctx, url,
			`SELECT array_agg(version_id ORDER BY version_id) FROM flightdeck_schema_migrations`)).To(Equal([]int64{0, 1, 2}))
	})

	Context("on the platform's legacy deployments table", func() {
		It("converts varchar statuses, adds the missing columns and keeps every row", func(ctx SpecContext) {
			url := newEmptyDatabase(ctx)
			execSQL(ctx, url, `
				CREATE TABLE deployments (
					id         uuid PRIMARY KEY DEFAULT gen_random_uuid(),
					name       varchar(100) NOT NULL,
					package    varchar(300) NOT NULL,
					status     varchar(32) NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'failed', 'deploying')),
					machine_id varchar(64),
					created_at timestamp NOT NULL DEFAULT now()
				);
				INSERT INTO deployments (id, name, package, status, machine_id, created_at) VALUES
					('11111111-1111-1111-1111-111111111111', 'weather', '@acme/weather@1', 'running', '3d8d9014b32d89', '2024-05-01 10:00:00'),
					('22222222-2222-2222-2222-222222222222', 'search', 'search-mcp', 'pending', NULL, '2024-05-02 10:00:00'),
					('33333333-3333-3333-3333-333333333333', 'broken', 'no-such-pkg', 'failed', NULL, '2024-05-03 10:00:00');`)

			_, err := store.Migrate(ctx, url)

			Expect(err).NotTo(HaveOccurred())
			Expect(queryValue[string](ctx, url,
				`SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'deployments'::regclass AND attname = 'status'`)).
				To(Equal("deployment_status"))
			Expect(queryValue[[]string](ctx, url, `
				SELECT array_agg(format('%s|%s|%s|%s|%s|%s|%s|%s|%s', id, name, package, status, coalesce(machine_id, '-'),
				                        env, generation, observed_generation, created_at) ORDER BY id)
				  FROM deployments`)).To(Equal([]string{
				"11111111-1111-1111-1111-111111111111|weather|@acme/weather@1|running|3d8d9014b32d89|{}|1|0|2024-05-01 10:00:00+00",
				"22222222-2222-2222-2222-222222222222|search|search-mcp|pending|-|{}|1|0|2024-05-02 10:00:00+00",
				"33333333-3333-3333-3333-333333333333|broken|no-such-pkg|failed|-|{}|1|0|2024-05-03 10:00:00+00",
			}))

			// The upgraded table behaves like a fresh one.
			s := openStore(ctx, url)
			d, err := s.DeploymentGet(ctx, "11111111-1111-1111-1111-111111111111")
			Expect(err).NotTo(HaveOccurred())
			_, err = s.DeploymentTransition(ctx, store.DeploymentTransitionParams{
				ID: d.ID, FromStatus: d.Status, Generation: d.Generation, ToStatus: "unhealthy",
				ErrorMessage: "Health check failed: 500", ObservedGeneration: 1, Reason: "ProbeFailed",
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(eventCount(ctx, url, d.ID)).To(Equal(1))
			execSQL(ctx, url, `INSERT INTO deployments (name, package) VALUES ('a', 'b')`)
		})

		It("converts text ids and takes a NULL status for pending", func(ctx SpecContext) {
			url := newEmptyDatabase(ctx)
			execSQL(ctx, url, `
				CREATE TABLE deployments (id text PRIMARY KEY, name text NOT NULL, package text NOT NULL, status text);
				INSERT INTO deployments VALUES ('44444444-4444-4444-4444-444444444444', 'n', 'p', NULL),
				                               ('55555555-5555-5555-5555-555555555555', 'm', 'q', 'stopped');`)

			_, err := store.Migrate(ctx, url)

			Expect(err).NotTo(HaveOccurred())
			Expect(queryValue[[]string](ctx, url, `SELECT array_agg(format('%s %s %s', pg_typeof(id), id, status) ORDER BY id) FROM deployments`)).
				To(Equal([]string{
					"uuid 44444444-4444-4444-4444-444444444444 pending",
					"uuid 55555555-5555-5555-5555-555555555555 stopped",
				}))
		})

		It("refuses unknown statuses, naming them, and leaves the database exactly as it was", func(ctx SpecContext) {
			url := newEmptyDatabase(ctx)
			execSQL(ctx, url, `
				CREATE TABLE deployments (
					id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL, package text NOT NULL, status varchar(20) NOT NULL);
				INSERT INTO deployments (name, package, status) VALUES
					('a', 'p', 'running'), ('b', 'p', 'deploying'), ('c', 'p', 'crashed'), ('d', 'p', 'deploying');`)
			before := schemaSnapshot(ctx, url, "")

			applied, err := store.Migrate(ctx, url)

			Expect(applied).To(BeEmpty())
			var legacy *store.LegacyStatusError
			Expect(err).To(BeAssignableToTypeOf(legacy))
			Expect(err.(*store.LegacyStatusError).Values).To(Equal([]string{"crashed", "deploying"}))
			Expect(err).To(MatchError(ContainSubstring(`"deploying"`)))
			Expect(schemaSnapshot(ctx, url, "")).To(Equal(before))
		})

		It("refuses unknown statuses inside the migration too, rolling all of it back", func(ctx SpecContext) {
			url := newEmptyDatabase(ctx)
			execSQL(ctx, url, `
				CREATE TABLE deployments (id uuid PRIMARY KEY, name text NOT NULL, package text NOT NULL, status text NOT NULL);
				INSERT INTO deployments VALUES ('66666666-6666-6666-6666-666666666666', 'a', 'p', 'deploying'),
				                               ('77777777-7777-7777-7777-777777777777', 'b', 'p', 'pending');`)
			before := schemaSnapshot(ctx, url, "flightdeck_schema_migrations")

			_, err := store.MigrateWithoutPreflight(ctx, url)

			Expect(err).To(MatchError(ContainSubstring("00001_deployments.sql")))
			Expect(err).To(MatchError(ContainSubstring("'deploying'")))
			// Only goose's bookkeeping table, created before the migration ran, remains.
			Expect(schemaSnapshot(ctx, url, "flightdeck_schema_migrations")).To(Equal(before))
			Expect(queryValue[[]int64](ctx, url, `SELECT array_agg(version_id) FROM flightdeck_schema_migrations`)).To(Equal([]int64{0}))
		})
	})
})
