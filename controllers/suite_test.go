package controllers_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flightdeck/flightdeck/internal/envtest"
)

// The controller suites are user stories against the real controller (what
// `flightdeck run` runs, built by controllers.Setup), a real PostgreSQL and
// the Fly simulator over HTTP. Each story gets a fresh migrated database and
// a simulator of its own; timings are shortened so that the suite runs in
// well under two minutes.
func TestControllers(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous for a loaded 2-core machine; passing specs do not wait for it.
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	SetDefaultConsistentlyPollingInterval(50 * time.Millisecond)
	// Eventually(ctx, ...) with a SpecContext would otherwise wait until the
	// spec's context ends, which a failing story never reaches.
	EnforceDefaultTimeoutsWhenUsingContexts()
	RunSpecs(t, "controllers suite")
}

var pg *envtest.Postgres

var _ = BeforeSuite(func(ctx SpecContext) {
	baseline := goleak.IgnoreCurrent()
	// Registered first, so it runs last: after every runner, simulator,
	// pool and the cluster are gone.
	DeferCleanup(func() {
		Expect(goleak.Find(baseline)).To(Succeed())
	})

	// controller-runtime and client-go's leader election log through these
	// globals; without them the controller warns on stderr and drops logs.
	// The logs go to GinkgoWriter: shown for failed specs only (or with -v).
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))

	var err error
	pg, err = envtest.StartPostgres(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pg.Stop)
})
