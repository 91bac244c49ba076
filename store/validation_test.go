package store_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// call is one store call with bad input.
type call func(ctx context.Context, s *store.Store, id string) error

var _ = Describe("bad input", func() {
	var (
		offline *store.Store // its pool is closed: any database access fails
		rows    func(ctx context.Context) string
		d       *store.Deployment
	)

	BeforeEach(func(ctx SpecContext) {
		pool, err := pgxpool.New(ctx, sharedURL)
		Expect(err).NotTo(HaveOccurred())
		pool.Close()
		offline = store.New(pool)
		d = createDeployment(ctx, st, "target")
		rows = func(ctx context.Context) string {
			return queryValue[string](ctx, sharedURL, `
				SELECT format('%s/%s', (SELECT count(*) FROM deployment_events),
				              (SELECT md5(string_agg(to_jsonb(d)::text, ',' ORDER BY d.id)) FROM deployments d))`)
		}
	})

	DescribeTable("gets a ValidationError naming the field, before the database is touched, and nothing is written",
		func(ctx SpecContext, field string, bad call) {
			before := rows(ctx)

			for _, s := range []*store.Store{offline, st} {
				err := bad(ctx, s, d.ID)
				var verr *store.ValidationError
				Expect(errors.As(err, &verr)).To(BeTrue(), "got %v", err)
				Expect(verr.Field).To(Equal(field))
			}

			Expect(rows(ctx)).To(Equal(before))
		},
		Entry("a malformed id to get", "id", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentGet(ctx, "42")
			return err
		}),
		Entry("a malformed id to transition", "id", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: "'; DROP TABLE deployments; --", FromStatus: status.Pending, Generation: 1, ToStatus: status.Installing, Reason: "MachineCreating"})
			return err
		}),
		Entry("a malformed id to delete", "id", func(ctx context.Context, s *store.Store, _ string) error {
			return s.DeploymentDelete(ctx, "0a0a0a0a0b0b4c0c8d0d0e0e0e0e0e0e0")
		}),
		Entry("a malformed deployment id to list events", "deploymentID", func(ctx context.Context, s *store.Store, _ string) error {
			_, _, err := s.EventList(ctx, store.EventListParams{DeploymentID: ""})
			return err
		}),
		Entry("an unknown target status", "toStatus", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: id, FromStatus: status.Pending, Generation: 1, ToStatus: "deploying", Reason: "Deploying"})
			return err
		}),
		Entry("an unknown expected status", "fromStatus", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: id, FromStatus: "Pending", Generation: 1, ToStatus: status.Installing, Reason: "MachineCreating"})
			return err
		}),
		Entry("an unknown status filter", "status", func(ctx context.Context, s *store.Store, _ string) error {
			_, _, err := s.DeploymentList(ctx, store.DeploymentListParams{Status: "crashed"})
			return err
		}),
		Entry("a status change without a reason", "reason", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: id, FromStatus: status.Pending, Generation: 1, ToStatus: status.Installing})
			return err
		}),
		Entry("an over-long error message", "errorMessage", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: id, FromStatus: status.Pending, Generation: 1, ToStatus: status.Failed, Reason: "MachineCreateFailed", ErrorMessage: strings.Repeat("é", store.MaxMessageLength+1)})
			return err
		}),
		Entry("an observed generation ahead of the generation", "observedGeneration", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentTransition(ctx, store.DeploymentTransitionParams{ID: id, FromStatus: status.Pending, Generation: 1, ToStatus: status.Installing, Reason: "MachineCreating", ObservedGeneration: 2})
			return err
		}),
		Entry("an over-long name", "name", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: strings.Repeat("n", store.MaxNameLength+1), Package: "p"})
			return err
		}),
		Entry("an over-long package", "package", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: strings.Repeat("p", store.MaxPackageLength+1)})
			return err
		}),
		Entry("an empty package", "package", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n"})
			return err
		}),
		Entry("an env key that is not a variable name", "env", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: map[string]string{"API KEY": "x"}})
			return err
		}),
		Entry("an env value with a NUL byte", "env", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: map[string]string{"TOKEN": "a\x00b"}})
			return err
		}),
		Entry("an over-large env", "env", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: map[string]string{"BIG": strings.Repeat("\n", store.MaxEnvBytes/2)}})
			return err
		}),
		Entry("a machine id that is not a Fly machine id", "machineID", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentRecordMachine(ctx, store.DeploymentRecordMachineParams{ID: id, MachineID: "../../etc/passwd", Generation: 1})
			return err
		}),
		Entry("a private IP that is not an address", "privateIP", func(ctx context.Context, s *store.Store, id string) error {
			_, err := s.DeploymentRecordMachine(ctx, store.DeploymentRecordMachineParams{ID: id, MachineID: "3d8d9014b32d89", PrivateIP: "example.com", Generation: 1})
			return err
		}),
		Entry("a page size over the maximum", "limit", func(ctx context.Context, s *store.Store, _ string) error {
			_, _, err := s.DeploymentList(ctx, store.DeploymentListParams{Limit: store.MaxPageSize + 1})
			return err
		}),
		Entry("an over-long lease name", "name", func(ctx context.Context, s *store.Store, _ string) error {
			_, err := s.LeaseCreate(ctx, strings.Repeat("l", store.MaxLeaseNameLength+1), nil)
			return err
		}),
	)

	It("accepts an env exactly at the size limit", func(ctx SpecContext) {
		// {"BIG": "..."} is 11 bytes around the value.
		env := map[string]string{"BIG": strings.Repeat("x", store.MaxEnvBytes-11)}
		created, err := st.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: env})
		Expect(err).NotTo(HaveOccurred())
		Expect(created.Env).To(Equal(env))
		env["BIG"] += "x"
		_, err = st.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: env})
		var verr *store.ValidationError
		Expect(errors.As(err, &verr)).To(BeTrue(), "got %v", err)
	})

	It("keeps env values out of formatted deployments and validation errors", func(ctx SpecContext) {
		created, err := st.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: map[string]string{"API_TOKEN": "s3cr3t-value"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(created.Env).To(HaveKeyWithValue("API_TOKEN", "s3cr3t-value"))
		for _, format := range []string{"%v", "%+v", "%#v", "%s"} {
			Expect(fmt.Sprintf(format, created)).NotTo(ContainSubstring("s3cr3t"), format)
			Expect(fmt.Sprintf(format, *created)).NotTo(ContainSubstring("s3cr3t"), format)
			Expect(fmt.Sprintf(format, []store.Deployment{*created})).NotTo(ContainSubstring("s3cr3t"), format)
		}
		Expect(fmt.Sprint(created)).To(ContainSubstring("API_TOKEN:<redacted>"))
		_, err = st.DeploymentCreate(ctx, store.DeploymentCreateParams{Name: "n", Package: "p", Env: map[string]string{"API_TOKEN": "s3cr3t\x00"}})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
	})

	It("truncates any text to a storable message", func() {
		long := strings.Repeat("ü", store.MaxMessageLength*2) + "\x00\xff"
		msg := store.TruncateMessage(long)
		Expect([]rune(msg)).To(HaveLen(store.MaxMessageLength))
		Expect(msg).To(HaveSuffix("..."))
		Expect(store.TruncateMessage("bad \xff byte\x00")).To(Equal("bad \uFFFD byte"))
	})
})
