package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/ginkgo/v2"
	"github.com/onsi/ginkgo/v2/types"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/internal/envtest"
)

// Timings of the simulated machines and of flightdeck: short, so that the
// whole suite takes well under a minute, and in the same proportions as the
// defaults (a check interval several times the probe timeout).
const (
	simBoot         = 200 * time.Millisecond
	simInstall      = time.Second
	simStop         = 200 * time.Millisecond
	simRestartDelay = 200 * time.Millisecond

	checkInterval       = 2 * time.Second
	startupPollInterval = 500 * time.Millisecond
	startupTimeout      = 10 * time.Second
	probeTimeout        = time.Second
)

// raceEnabled is set when the suite is built with -race (race_test.go); the
// flightdeck binary is then built with -race too.
var raceEnabled bool

// suite is what BeforeSuite starts and the specs use.
var suite struct {
	outDir     string
	sim        *process
	flightdeck *process
	simURL     string
	simToken   string
	app        string
	httpURL    string // flightdeck's dashboard, API and /metrics
	db         database
	watcher    *statusWatcher
	http       *http.Client
	control    *flysim.Control
}

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous for a loaded 2-core machine running a race-built binary;
	// passing specs do not wait for it.
	SetDefaultEventuallyTimeout(20 * time.Second)
	SetDefaultEventuallyPollingInterval(50 * time.Millisecond)
	RunSpecs(t, "end-to-end scenario suite")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	// DeferCleanup runs last-in first-out, after AfterSuite: the leak check,
	// registered first, runs once everything else has stopped.
	leakBaseline := goleak.IgnoreCurrent()
	DeferCleanup(func() {
		Expect(goleak.Find(leakBaseline)).To(Succeed())
	})

	var err error
	suite.outDir, err = outputDir()
	Expect(err).NotTo(HaveOccurred())
	Expect(os.MkdirAll(suite.outDir, 0o755)).To(Succeed())

	By("building flightdeck")
	binDir, err := os.MkdirTemp("", "flightdeck-e2e-")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(os.RemoveAll, binDir)
	bin := filepath.Join(binDir, "flightdeck")
	started := time.Now()
	Expect(buildFlightdeck(ctx, bin)).To(Succeed())
	fmt.Fprintf(GinkgoWriter, "built %s (race %v) in %s\n", bin, raceEnabled, time.Since(started).Round(time.Millisecond))

	By("starting PostgreSQL with an empty database")
	pg, err := envtest.StartPostgres(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pg.Stop)
	databaseURL, err := pg.NewEmptyDatabase(ctx, "e2e")
	Expect(err).NotTo(HaveOccurred())

	By("starting flightdeck sim")
	simAddr, err := freeAddr()
	Expect(err).NotTo(HaveOccurred())
	suite.simToken = fmt.Sprintf("e2e-sim-token-%d", GinkgoRandomSeed())
	suite.sim, err = startProcess("flightdeck sim", filepath.Join(suite.outDir, "sim.log"), baseEnv(), bin, "sim",
		"--addr", simAddr, "--status-port", "0", "--token", suite.simToken,
		"--boot", simBoot.String(), "--install", simInstall.String(),
		"--stop", simStop.String(), "--restart-delay", simRestartDelay.String())
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stopProcess, suite.sim)
	var simSettings map[string]string
	Eventually(func(g Gomega) {
		if suite.sim.exited() {
			StopTrying(suite.sim.exitDescription() + ":\n" + suite.sim.logTail(20)).Now()
		}
		simSettings = settingsFrom(suite.sim.log())
		g.Expect(simSettings).To(HaveKey("PROBE_URL_TEMPLATE"))
	}).Should(Succeed())
	suite.simURL = simSettings["FLY_API_BASE_URL"]
	suite.app = simSettings["FLY_APP_NAME"]
	Expect(simSettings["FLY_API_TOKEN"]).To(Equal(suite.simToken))
	Expect(suite.simURL).To(Equal("http://" + simAddr))

	By("starting flightdeck run")
	httpAddr, err := freeAddr()
	Expect(err).NotTo(HaveOccurred())
	suite.httpURL = "http://" + httpAddr
	env := append(baseEnv(),
		"DATABASE_URL="+databaseURL,
		"FLY_API_BASE_URL="+suite.simURL,
		"FLY_API_TOKEN="+suite.simToken,
		"FLY_APP_NAME="+suite.app,
		"PROBE_URL_TEMPLATE="+simSettings["PROBE_URL_TEMPLATE"],
		"CHECK_INTERVAL="+checkInterval.String(),
		"STARTUP_POLL_INTERVAL="+startupPollInterval.String(),
		"STARTUP_TIMEOUT="+startupTimeout.String(),
		"PROBE_TIMEOUT="+probeTimeout.String(),
		"HTTP_ADDR="+httpAddr,
		"LOG_FORMAT=json",
	)
	suite.flightdeck, err = startProcess("flightdeck run", filepath.Join(suite.outDir, "flightdeck.log"), env, bin, "run")
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(stopProcess, suite.flightdeck)

	suite.http = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	DeferCleanup(suite.http.CloseIdleConnections)
	suite.control = &flysim.Control{BaseURL: suite.simURL, Token: suite.simToken, HTTP: suite.http}

	Eventually(func(g Gomega) {
		if suite.flightdeck.exited() {
			StopTrying(suite.flightdeck.exitDescription() + ":\n" + suite.flightdeck.logTail(30)).Now()
		}
		code, _, err := get(ctx, suite.httpURL+"/readyz")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK))
	}).WithTimeout(60 * time.Second).Should(Succeed())
	fmt.Fprintf(GinkgoWriter, "flightdeck ready at %s %s after start of the build\n", suite.httpURL, time.Since(started).Round(time.Millisecond))

	By("connecting as the platform")
	pool, err := pgxpool.New(ctx, databaseURL)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pool.Close)
	suite.db = database{pool: pool}
	suite.watcher, err = watchStatuses(ctx, databaseURL)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(suite.watcher.stop)
}, NodeTimeout(5*time.Minute))

var _ = AfterEach(func() {
	if CurrentSpecReport().Failed() && suite.flightdeck != nil {
		fmt.Fprintf(GinkgoWriter, "\n--- flightdeck run (%s), last lines:\n%s\n", suite.flightdeck.logPath, suite.flightdeck.logTail(60))
		fmt.Fprintf(GinkgoWriter, "\n--- flightdeck sim (%s), last lines:\n%s\n", suite.sim.logPath, suite.sim.logTail(20))
	}
	if suite.flightdeck != nil {
		Expect(suite.flightdeck.exited()).To(BeFalse(), suite.flightdeck.exitDescription)
	}
	if suite.watcher != nil {
		_, err := suite.watcher.observed("")
		Expect(err).NotTo(HaveOccurred(), "the status watcher stopped")
	}
})

// ReportAfterSuite writes the measured durations to summary.txt, so they
// survive a `go test` run that hides passing output.
var _ = ReportAfterSuite("summary of measured durations", func(r Report) {
	if suite.outDir == "" {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "flightdeck end-to-end suite, %s, race %v\n", r.StartTime.Format(time.RFC3339), raceEnabled)
	fmt.Fprintf(&b, "timings: CHECK_INTERVAL=%s STARTUP_POLL_INTERVAL=%s STARTUP_TIMEOUT=%s PROBE_TIMEOUT=%s; sim boot %s install %s stop %s\n",
		checkInterval, startupPollInterval, startupTimeout, probeTimeout, simBoot, simInstall, simStop)
	for _, spec := range r.SpecReports {
		if spec.LeafNodeType != types.NodeTypeIt {
			continue
		}
		fmt.Fprintf(&b, "\n%s: %s in %s\n", spec.LeafNodeText, spec.State, spec.RunTime.Round(time.Millisecond))
		for _, e := range spec.ReportEntries {
			fmt.Fprintf(&b, "  %s: %s\n", e.Name, e.StringRepresentation())
		}
	}
	fmt.Fprintf(&b, "\ntotal %s\n", r.RunTime.Round(time.Millisecond))
	_ = os.WriteFile(filepath.Join(suite.outDir, "summary.txt"), []byte(b.String()), 0o644)
})

// buildFlightdeck compiles cmd/flightdeck into bin, with -race when the
// suite runs with it. `go test` puts its own go first on PATH.
func buildFlightdeck(ctx context.Context, bin string) error {
	args := []string{"build"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "-o", bin, "github.com/flightdeck/flightdeck/cmd/flightdeck")
	out, err := exec.CommandContext(ctx, "go", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("building flightdeck: %w\n%s", err, out)
	}
	return nil
}

// stopProcess stops p and expects a clean exit: code 0, nothing left of its
// process group, and no data race reported.
func stopProcess(p *process) {
	code, err := p.stop(30 * time.Second)
	Expect(err).NotTo(HaveOccurred())
	Expect(p.log()).NotTo(ContainSubstring("WARNING: DATA RACE"), "%s reported a data race; see %s", p.name, p.logPath)
	Expect(code).To(Equal(0), "%s exit code; last lines of %s:\n%s", p.name, p.logPath, p.logTail(30))
}

// baseEnv is the environment every child starts from: nothing of the
// developer's shell but PATH and HOME.
func baseEnv() []string {
	return []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TZ=UTC"}
}

// settingsFrom picks the NAME=value lines that `flightdeck sim` prints.
func settingsFrom(out string) map[string]string {
	settings := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		name, value, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok && (name == "FLY_API_BASE_URL" || name == "FLY_API_TOKEN" || name == "FLY_APP_NAME" || name == "PROBE_URL_TEMPLATE") {
			settings[name] = value
		}
	}
	return settings
}

// outputDir is $FLIGHTDECK_OUTPUT_DIR/e2e, else _output/e2e under the
// module root (git ignores _output).
func outputDir() (string, error) {
	if d := os.Getenv("FLIGHTDECK_OUTPUT_DIR"); d != "" {
		return filepath.Join(d, "e2e"), nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "_output", "e2e"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
