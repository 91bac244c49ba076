package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// Packages the simulator gives a known behaviour (flyclient/flysim/doc.go).
const (
	healthyPackage = "@modelcontextprotocol/server-everything"
	invalidPackage = "@invalid/does-not-exist"
)

// slack covers what the bounds below do not name: scheduling on a loaded
// 2-core machine running race-built processes, a database round trip, and
// the simulator's stop duration.
const slack = time.Second

// detectionBound is how soon a steady deployment's change must be written:
// the next check (one interval, +10% jitter), one probe that may time out,
// and the confirming re-probe after STARTUP_POLL_INTERVAL.
var detectionBound = checkInterval*11/10 + probeTimeout + startupPollInterval + slack

// restartBound is how soon a stopped deployment whose machine starts again
// must be running: the next check, the machine's boot and install, then
// one startup poll.
var restartBound = checkInterval*11/10 + simBoot + simInstall + startupPollInterval + slack

var _ = Describe("the platform's scenarios", func() {
	It("a valid package goes pending, installing, starting, running", func(ctx SpecContext) {
		start := time.Now()
		id := insertDeployment(ctx, "e2e-healthy", healthyPackage)
		d := waitForStatus(ctx, id, "running")
		measured("insert to running", time.Since(start))

		expectHistory(ctx, id, "pending", "installing", "starting", "running")
		Expect(d.MachineID).To(MatchRegexp(`^[0-9a-f]{14}$`))
		Expect(d.Error).To(BeEmpty())
		Expect(d.Progress).To(BeEmpty())
	})

	It("an invalid package goes pending, installing, starting, unhealthy, failing to start", func(ctx SpecContext) {
		start := time.Now()
		id := insertDeployment(ctx, "e2e-invalid", invalidPackage)
		d := waitForStatus(ctx, id, "unhealthy")
		elapsed := time.Since(start)
		measured("insert to unhealthy", elapsed)

		evs := expectHistory(ctx, id, "pending", "installing", "starting", "unhealthy")
		Expect(d.Error).To(ContainSubstring("failed to start"))
		Expect(d.Error).To(ContainSubstring("exit"), "the message says the process exited: %q", d.Error)
		Expect(evs[len(evs)-1].Message).To(ContainSubstring("failed to start"))
		Expect(d.Progress).To(BeEmpty())
		// The process exits once its install fails: flightdeck says so at
		// once rather than waiting out STARTUP_TIMEOUT.
		Expect(elapsed).To(BeNumerically("<", startupTimeout), "reported before the startup timeout")
	})

	It("a running deployment whose machine is stopped as `fly machine stop` does goes stopped within one check interval plus the probe timeout, never unhealthy", func(ctx SpecContext) {
		id, machineID := runningDeployment(ctx, "e2e-user-stop")
		before := eventCount(ctx, id)

		stoppedAt := time.Now()
		Expect(flyMachineAction(ctx, machineID, "stop")).To(Succeed())
		waitForStatus(ctx, id, "stopped")

		evs := expectHistorySince(ctx, id, before, "running", "stopped")
		latency := evs[len(evs)-1].At.Sub(stoppedAt)
		measured("stop to stopped", latency)
		Expect(latency).To(BeNumerically("<=", detectionBound),
			"CHECK_INTERVAL %s (+10%% jitter) + PROBE_TIMEOUT %s + re-probe %s + slack %s", checkInterval, probeTimeout, startupPollInterval, slack)

		// The next checks see a stopped machine and leave the row alone.
		Consistently(ctx, func(g Gomega) {
			g.Expect(suite.db.deployment(ctx, id)).To(HaveField("Status", "stopped"))
		}).WithTimeout(detectionBound).WithPolling(100 * time.Millisecond).Should(Succeed())
		expectHistorySince(ctx, id, before, "running", "stopped")
		d, err := suite.db.deployment(ctx, id)
		Expect(err).NotTo(HaveOccurred())
		Expect(d.Error).To(BeEmpty(), "a stop on purpose is not an error")
	})

	It("a running deployment whose server answers 500 becomes unhealthy and recovers when it answers 200 again", func(ctx SpecContext) {
		id, machineID := runningDeployment(ctx, "e2e-http-500")
		before := eventCount(ctx, id)

		brokenAt := time.Now()
		Expect(suite.control.SetStatus(ctx, machineID, http.StatusInternalServerError)).To(Succeed())
		d := waitForStatus(ctx, id, "unhealthy")
		Expect(d.Error).To(Equal("Health check failed: 500"))
		evs := expectHistorySince(ctx, id, before, "running", "unhealthy")
		latency := evs[len(evs)-1].At.Sub(brokenAt)
		measured("500 to unhealthy", latency)
		Expect(latency).To(BeNumerically("<=", detectionBound))

		fixedAt := time.Now()
		Expect(suite.control.ResetStatus(ctx, machineID)).To(Succeed())
		d = waitForStatus(ctx, id, "running")
		Expect(d.Error).To(BeEmpty())
		evs = expectHistorySince(ctx, id, before, "running", "unhealthy", "running")
		recovery := evs[len(evs)-1].At.Sub(fixedAt)
		measured("200 again to running", recovery)
		Expect(recovery).To(BeNumerically("<=", checkInterval*11/10+slack))
	})

	It("a stopped deployment whose machine is started again becomes running, never unhealthy", func(ctx SpecContext) {
		id, machineID := runningDeployment(ctx, "e2e-user-restart")
		before := eventCount(ctx, id)
		Expect(flyMachineAction(ctx, machineID, "stop")).To(Succeed())
		waitForStatus(ctx, id, "stopped")

		startedAt := time.Now()
		Expect(flyMachineAction(ctx, machineID, "start")).To(Succeed())
		waitForStatus(ctx, id, "running")
		evs := expectHistorySince(ctx, id, before, "running", "stopped", "running")
		latency := evs[len(evs)-1].At.Sub(startedAt)
		measured("start to running", latency)
		Expect(latency).To(BeNumerically("<=", restartBound))
	})

	It("a deployment whose machine the Fly proxy autostops is stopped, and running again after autostart", func(ctx SpecContext) {
		id, machineID := runningDeployment(ctx, "e2e-autostop")
		before := eventCount(ctx, id)

		stoppedAt := time.Now()
		Expect(suite.control.Autostop(ctx, machineID)).To(Succeed())
		waitForStatus(ctx, id, "stopped")
		evs := expectHistorySince(ctx, id, before, "running", "stopped")
		latency := evs[len(evs)-1].At.Sub(stoppedAt)
		measured("autostop to stopped", latency)
		Expect(latency).To(BeNumerically("<=", detectionBound))

		startedAt := time.Now()
		Expect(suite.control.Autostart(ctx, machineID)).To(Succeed())
		waitForStatus(ctx, id, "running")
		evs = expectHistorySince(ctx, id, before, "running", "stopped", "running")
		latency = evs[len(evs)-1].At.Sub(startedAt)
		measured("autostart to running", latency)
		Expect(latency).To(BeNumerically("<=", restartBound))
	})
})

var _ = Describe("operating flightdeck", func() {
	It("logs HealthMonitor started, counts transitions in /metrics and keeps the Fly token out of its log", func(ctx SpecContext) {
		runningDeployment(ctx, "e2e-metrics")

		log := suite.flightdeck.log()
		Expect(log).To(ContainSubstring("HealthMonitor started"))
		Expect(log).To(ContainSubstring("Applied migration"), "flightdeck run migrated the empty database")
		Expect(log).NotTo(ContainSubstring(suite.simToken))

		code, body, err := get(ctx, suite.httpURL+"/metrics")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("# TYPE flightdeck_transitions_total counter"))
		Expect(metricValue(body, `flightdeck_transitions_total{from="starting",to="running"}`)).To(BeNumerically(">=", 1))

		code, body, err = get(ctx, suite.httpURL+"/api/deployments")
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring("e2e-metrics"))
	})
})

var _ = Describe("a user's credentials", func() {
	It("reach the machine but never flightdeck's log, API, events or dashboard", func(ctx SpecContext) {
		secret := fmt.Sprintf("sk-e2e-credential-%d", GinkgoRandomSeed())
		var id string
		Expect(suite.db.pool.QueryRow(ctx,
			`INSERT INTO deployments (name, package, env) VALUES ($1, $2, jsonb_build_object('API_KEY', $3::text)) RETURNING id::text`,
			"e2e-credentials", healthyPackage, secret).Scan(&id)).To(Succeed())
		d := waitForStatus(ctx, id, "running")

		// The machine got it: that is where it belongs.
		code, body, err := getWithToken(ctx, suite.simURL+"/v1/apps/"+suite.app+"/machines/"+d.MachineID, suite.simToken)
		Expect(err).NotTo(HaveOccurred())
		Expect(code).To(Equal(http.StatusOK))
		Expect(body).To(ContainSubstring(secret))

		for _, path := range []string{"/api/deployments", "/api/deployments/" + id, "/api/deployments/" + id + "/events", "/"} {
			code, body, err := get(ctx, suite.httpURL+path)
			Expect(err).NotTo(HaveOccurred())
			Expect(code).To(Equal(http.StatusOK), path)
			Expect(body).NotTo(ContainSubstring(secret), path)
		}
		Expect(suite.flightdeck.log()).NotTo(ContainSubstring(secret))
	})
})

// insertDeployment inserts a row as the platform's API does and returns its
// id.
func insertDeployment(ctx context.Context, name, pkg string) string {
	GinkgoHelper()
	id, err := suite.db.insertDeployment(ctx, name, pkg)
	Expect(err).NotTo(HaveOccurred())
	fmt.Fprintf(GinkgoWriter, "deployment %s (%s, %s)\n", id, name, pkg)
	return id
}

// runningDeployment inserts a healthy deployment, waits for it to be
// running and returns its id and machine id.
func runningDeployment(ctx context.Context, name string) (id, machineID string) {
	GinkgoHelper()
	id = insertDeployment(ctx, name, healthyPackage)
	d := waitForStatus(ctx, id, "running")
	expectHistory(ctx, id, "pending", "installing", "starting", "running")
	return id, d.MachineID
}

// waitForStatus waits until the row shows status want (a status the row
// then keeps) and returns the row.
func waitForStatus(ctx context.Context, id, want string) deployment {
	GinkgoHelper()
	var d deployment
	Eventually(ctx, func(g Gomega) {
		if suite.flightdeck.exited() {
			StopTrying(suite.flightdeck.exitDescription()).Now()
		}
		var err error
		d, err = suite.db.deployment(ctx, id)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(d.Status).To(Equal(want), "deployment %s (error %q)", d.Name, d.Error)
	}).Should(Succeed())
	return d
}

// expectHistory asserts the whole status sequence of the deployment and
// returns its events.
func expectHistory(ctx context.Context, id string, want ...string) []event {
	GinkgoHelper()
	return expectHistorySince(ctx, id, 0, want...)
}

// expectHistorySince asserts the status sequence of the deployment from
// its event number from on (want starts with the status it was in), and
// cross-checks it with what the status watcher saw: every status the row
// showed on a notification belongs to the history, in order, and the
// watcher has seen the last one. It returns the events from from on.
func expectHistorySince(ctx context.Context, id string, from int, want ...string) []event {
	GinkgoHelper()
	all, err := suite.db.events(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	full, err := sequence(all)
	Expect(err).NotTo(HaveOccurred(), "history of %s:%s", id, formatEvents(all))
	Expect(len(all)).To(BeNumerically(">", from), "history of %s:%s", id, formatEvents(all))
	evs := all[from:]
	seq, err := sequence(evs)
	Expect(err).NotTo(HaveOccurred())
	Expect(seq).To(Equal(want), "history of %s:%s", id, formatEvents(all))

	Eventually(ctx, func(g Gomega) {
		seen, err := suite.watcher.observed(id)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(seen).NotTo(BeEmpty())
		g.Expect(seen[len(seen)-1]).To(Equal(want[len(want)-1]), "statuses seen on notifications: %v", seen)
		g.Expect(isSubsequence(seen, full)).To(BeTrue(),
			"statuses seen on notifications %v are not part of the history %v", seen, full)
	}).Should(Succeed())
	seen, _ := suite.watcher.observed(id)
	fmt.Fprintf(GinkgoWriter, "deployment %s: history %v, seen on notifications %v\n", id, full, seen)
	return evs
}

// eventCount is the number of transitions the deployment has gone through.
func eventCount(ctx context.Context, id string) int {
	GinkgoHelper()
	evs, err := suite.db.events(ctx, id)
	Expect(err).NotTo(HaveOccurred())
	return len(evs)
}

// measured reports a duration in the spec's report and in summary.txt.
func measured(what string, d time.Duration) {
	d = d.Round(time.Millisecond)
	AddReportEntry(what, d.String())
	fmt.Fprintf(GinkgoWriter, "measured: %s %s\n", what, d)
}

// flyMachineAction calls the Machines API as flyctl does (`fly machine stop`
// is POST .../stop with the app's token): a user's request, not the proxy's.
func flyMachineAction(ctx context.Context, machineID, action string) error {
	url := fmt.Sprintf("%s/v1/apps/%s/machines/%s/%s", suite.simURL, suite.app, machineID, action)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader("{}"))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+suite.simToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := suite.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s machine %s: %w", action, machineID, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s machine %s: HTTP %d: %s", action, machineID, resp.StatusCode, body)
	}
	return nil
}

// get fetches url and returns the status code and body.
func get(ctx context.Context, url string) (int, string, error) {
	return getWithToken(ctx, url, "")
}

// getWithToken is get with "Authorization: Bearer token" when token is set.
func getWithToken(ctx context.Context, url, token string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := suite.http.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, string(body), err
}

// metricValue returns the value of the sample named exactly series in a
// Prometheus text exposition, or -1 when it is absent.
func metricValue(exposition, series string) float64 {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return -1
	}
	return v
}
