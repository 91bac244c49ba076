package browser_test

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
	"k8s.io/klog/v2"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/controllers"
	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/internal/envtest"
	"github.com/flightdeck/flightdeck/web/webtest"
)

// Timings of the simulated machines and of flightdeck. Each stage a person
// watches must last long enough for the browser to show it (a second or
// more); everything else is as short as the suite can make it.
const (
	// createLatency is how long the simulated Fly API takes to answer the
	// machine create: the installing stage. The simulator alone answers in
	// milliseconds, too fast for any browser to see installing.
	createLatency = 1500 * time.Millisecond
	// simBoot and simInstall make the starting stage: the machine boots,
	// then "runs npm install" before its /status answers.
	simBoot    = time.Second
	simInstall = 2 * time.Second
	simStop    = 300 * time.Millisecond

	checkInterval       = 2 * time.Second
	startupPollInterval = 300 * time.Millisecond
	startupTimeout      = 20 * time.Second
	probeTimeout        = time.Second
	shutdownTimeout     = 5 * time.Second
)

// system is what BeforeSuite starts and the specs use.
var system struct {
	// url is the dashboard's base URL (flightdeck's HTTP server).
	url     string
	db      *pgx.Conn
	fly     *envtest.Fly
	browser *webtest.Browser
}

func TestBrowser(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous for a loaded 2-core machine running a browser and a
	// race-built controller; passing specs do not wait for it.
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(100 * time.Millisecond)
	RunSpecs(t, "browser suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	// DeferCleanup runs last-in first-out: the leak check, registered
	// first, runs once the tab, the browser, flightdeck, the simulator and
	// PostgreSQL are gone.
	baseline := goleak.IgnoreCurrent()
	DeferCleanup(func() {
		Expect(goleak.Find(baseline)).To(Succeed())
	})

	// controller-runtime and client-go's leader election log through these
	// globals. Their logs, and flightdeck's, go to GinkgoWriter: shown for
	// failed specs only (or with -v).
	log := zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true))
	logf.SetLogger(log)
	klog.SetLogger(log.WithName("klog"))

	pg, err := envtest.StartPostgres(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pg.Stop)
	databaseURL, err := pg.NewDatabase(ctx, "browser")
	Expect(err).NotTo(HaveOccurred())
	system.db, err = pgx.Connect(ctx, databaseURL)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) { Expect(system.db.Close(ctx)).To(Succeed()) })

	system.fly, err = envtest.StartFly(flysim.Options{
		BootDuration:    simBoot,
		InstallDuration: simInstall,
		StopDuration:    simStop,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(system.fly.Close)

	startFlightdeck(ctx, databaseURL)

	system.browser, err = webtest.Start(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(system.browser.Close)
}, NodeTimeout(2*time.Minute))

// startFlightdeck sets up and runs flightdeck as `flightdeck run` does
// (controllers.Setup, leader election on) with the suite's timings, and
// waits until it is ready. Its shutdown is registered with DeferCleanup:
// cancelling its context, as SIGTERM does, must make Run return nil.
func startFlightdeck(ctx context.Context, databaseURL string) {
	GinkgoHelper()
	cfg := system.fly.Config(databaseURL)
	cfg.CheckInterval = checkInterval
	cfg.StartupPollInterval = startupPollInterval
	cfg.StartupTimeout = startupTimeout
	cfg.ProbeTimeout = probeTimeout
	cfg.LeaderElect = true
	cfg.LeaderID = "browser-suite"
	cfg.ShutdownTimeout = shutdownTimeout
	Expect(cfg.Validate(config.RequiredForRun()...)).To(Succeed())

	runner, err := controllers.Setup(ctx, cfg, controllers.SetupOptions{
		Log:                logf.Log.WithName("flightdeck"),
		SkipNameValidation: true,
	})
	Expect(err).NotTo(HaveOccurred())
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runner.Run(runCtx) }()
	DeferCleanup(func() {
		cancel()
		Eventually(done).WithTimeout(2 * shutdownTimeout).Should(Receive(BeNil()))
		runner.Close()
	})
	system.url = "http://" + runner.Addr()

	// Ready: the database answers and this replica leads and runs the
	// controller.
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	Eventually(ctx, func() (string, error) {
		resp, err := client.Get(system.url + "/readyz")
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.Status + " " + string(b), err
	}).Should(HavePrefix("200 OK ok (leader)"))
}
