package flysim_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

var _ = Describe("Control endpoints", func() {
	var (
		e   *env
		ctx context.Context
	)
	BeforeEach(func() {
		e = startSim()
		ctx = context.Background()
	})

	Describe("autostop and autostart", func() {
		It("autostop stops a machine as the proxy does, and its /status refuses connections", func() {
			m := e.started("pkg")
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			Expect(e.ctl.Autostop(ctx, m.ID)).To(Succeed())
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
			evs := e.get(m.ID).Events
			Expect(evs[0].String()).To(Equal("exit/stopped/flyd"))
			Expect(evs[0].Request.ExitEvent.RequestedStop).To(BeTrue())
			Expect(evs[0].Request.ExitEvent.ExitCode).To(Equal(0))
			Expect(evs[1].String()).To(Equal("stop/stopping/proxy"))

			Expect(e.ctl.Autostart(ctx, m.ID)).To(Succeed())
			Eventually(e.state(m.ID)).Should(Equal("started"))
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			Expect(e.events(m.ID, 50)).To(ContainElement(WithTransform(eventView.String, Equal("start/starting/proxy"))))
		})

		It("autostop in suspend mode suspends, and autostart resumes", func() {
			m := e.started("pkg")
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			Expect(e.ctl.AutostopSuspend(ctx, m.ID)).To(Succeed())
			Eventually(e.state(m.ID)).Should(Equal("suspended"))
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
			Expect(e.get(m.ID).Events[1].String()).To(Equal("suspend/suspending/proxy"))
			Expect(e.ctl.Autostart(ctx, m.ID)).To(Succeed())
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		})

		It("leaves a stopped machine alone and refuses a machine in transition", func() {
			m := e.started("pkg")
			Expect(e.api("POST", "/"+m.ID+"/stop", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			Expect(e.ctl.Autostop(ctx, m.ID)).To(Succeed())
			Expect(e.get(m.ID).State).To(Equal("stopped"))

			err := e.ctl.Autostop(ctx, "0123456789abcd")
			var ce *flysim.ControlError
			Expect(errors.As(err, &ce)).To(BeTrue())
			Expect(ce.StatusCode).To(Equal(http.StatusNotFound))
			Expect(err.Error()).NotTo(ContainSubstring(testToken))
		})

		It("with AutostopIdle stops idle machines whose services autostop, despite probes, and only those", func() {
			e = startSim(func(o *flysim.Options) { o.AutostopIdle = 200 * time.Millisecond })
			auto := e.started("pkg", func(cfg map[string]any) {
				cfg["services"] = []any{map[string]any{"internal_port": 8080, "autostop": "stop", "autostart": true}}
			})
			plain := e.started("pkg")
			Eventually(func() string { _ = e.probeResult(auto.PrivateIP)(); return e.state(auto.ID)() }).Should(Equal("stopped"))
			Expect(e.get(auto.ID).Events[1].String()).To(Equal("stop/stopping/proxy"))
			Consistently(e.state(plain.ID), 300*time.Millisecond).Should(Equal("started"))
		})
	})

	Describe("/status behaviour", func() {
		It("answers a given code, hangs, drops, and goes back to normal", func() {
			m := e.started("pkg")
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			Expect(e.ctl.SetStatus(ctx, m.ID, 503)).To(Succeed())
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("503"))
			Expect(e.ctl.Hang(ctx, m.ID)).To(Succeed())
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("timeout"))
			Expect(e.ctl.Drop(ctx, m.ID)).To(Succeed())
			// Accepted, then closed without an answer: neither refused nor a timeout.
			Expect(e.probeResult(m.PrivateIP)()).To(HavePrefix("error: "))
			Expect(e.ctl.ResetStatus(ctx, m.ID)).To(Succeed())
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("200"))
		})

		It("keeps an override across a restart", func() {
			m := e.started("pkg")
			Expect(e.ctl.SetStatus(ctx, m.ID, 500)).To(Succeed())
			Expect(e.api("POST", "/"+m.ID+"/restart", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(m.ID)).Should(Equal("started"))
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("500"))
		})
	})

	Describe("crash", func() {
		It("exits the process with the given code and restarts it per policy", func() {
			m := e.started("pkg")
			Expect(e.ctl.Crash(ctx, m.ID, 3)).To(Succeed())
			x := e.exits(m.ID)[0]
			Expect(x.ExitCode).To(Equal(3))
			Expect(x.RequestedStop).To(BeFalse())
			Expect(x.Restarting).To(BeTrue())
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		})

		It("kills the process as the OOM killer does", func() {
			m := e.started("pkg", withRestart("no", -1))
			Expect(e.ctl.OOMKill(ctx, m.ID)).To(Succeed())
			Expect(e.get(m.ID).State).To(Equal("stopped"))
			x := e.exits(m.ID)[0]
			Expect(x.ExitCode).To(Equal(137))
			Expect(x.OOMKilled).To(BeTrue())
			Expect(x.Restarting).To(BeFalse())
		})

		It("an exit code 0 under on-failure ends stopped without a restart", func() {
			m := e.started("pkg")
			Expect(e.ctl.Crash(ctx, m.ID, 0)).To(Succeed())
			Expect(e.get(m.ID).State).To(Equal("stopped"))
			Expect(e.exits(m.ID)[0].Restarting).To(BeFalse())
		})
	})

	Describe("faults", func() {
		It("answers 429 with Retry-After, or 5xx, for the configured fraction of API requests only", func() {
			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate429: 1})).To(Succeed())
			r := e.api("GET", "", nil)
			Expect(r.code).To(Equal(http.StatusTooManyRequests))
			Expect(r.header.Get("Retry-After")).To(Equal("1"))
			Expect(r.object()).To(Equal(map[string]any{"error": "rate limit exceeded"}))
			_, err := e.ctl.Stats(ctx)
			Expect(err).NotTo(HaveOccurred(), "control endpoints get no faults")

			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate429: 1, RetryAfter: 2500 * time.Millisecond})).To(Succeed())
			Expect(e.api("GET", "", nil).header.Get("Retry-After")).To(Equal("3"))
			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate429: 1, NoRetryAfter: true})).To(Succeed())
			Expect(e.api("GET", "", nil).header.Values("Retry-After")).To(BeEmpty())

			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate5xx: 1})).To(Succeed())
			r = e.api("GET", "", nil)
			Expect(r.code).To(Equal(http.StatusServiceUnavailable))
			Expect(r.object()["error"]).To(HavePrefix("unavailable: "))
			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate5xx: 1, Status5xx: 502})).To(Succeed())
			Expect(e.api("GET", "", nil).code).To(Equal(http.StatusBadGateway))

			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Rate429: 0.5})).To(Succeed())
			codes := map[int]int{}
			for range 200 {
				codes[e.api("GET", "", nil).code]++
			}
			Expect(codes[http.StatusTooManyRequests]).To(BeNumerically("~", 100, 40))
			Expect(codes[http.StatusOK]).To(BeNumerically("~", 100, 40))

			Expect(e.ctl.SetFaults(ctx, flysim.Faults{})).To(Succeed())
			Expect(e.api("GET", "", nil).code).To(Equal(http.StatusOK))
		})

		It("adds latency to API requests", func() {
			Expect(e.ctl.SetFaults(ctx, flysim.Faults{Latency: 250 * time.Millisecond})).To(Succeed())
			f, err := e.ctl.Faults(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(f.Latency).To(Equal(250 * time.Millisecond))
			start := time.Now()
			Expect(e.api("GET", "", nil).code).To(Equal(http.StatusOK))
			Expect(time.Since(start)).To(BeNumerically(">=", 250*time.Millisecond))
		})

		It("drops the next create response after creating the machine", func() {
			Expect(e.ctl.SetFaults(ctx, flysim.Faults{DropCreateResponses: 1})).To(Succeed())
			body := machineBody("pkg")
			body["name"] = "dropped-once"
			req, _ := http.NewRequest("POST", e.sim.URL()+"/v1/apps/"+testApp+"/machines", strings.NewReader(mustJSON(body)))
			req.Header.Set("Authorization", "Bearer "+testToken)
			_, err := e.hc.Do(req)
			Expect(err).To(HaveOccurred(), "no answer")

			var ms []machineView
			Expect(decodeJSONBytes(e.api("GET", "", nil).body, &ms)).To(Succeed())
			Expect(ms).To(HaveLen(1))
			Expect(ms[0].Name).To(Equal("dropped-once"))
			Expect(e.api("POST", "", body).code).To(Equal(http.StatusUnprocessableEntity), "the name is taken by the created machine")
			Expect(e.create(machineBody("pkg")).State).To(Equal("created"), "only one response was dropped")

			st, err := e.ctl.Stats(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(st.Count("POST", flysim.RouteMachines, 0)).To(Equal(1))
		})
	})

	It("counts requests by method, route and status, and resets the counts", func() {
		m := e.started("pkg")
		e.api("GET", "/0123456789abcd", nil)
		e.call("GET", "/v1/apps/"+testApp+"/machines", nil, "Bearer nope")
		st, err := e.ctl.Stats(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Count("POST", flysim.RouteMachines, 200)).To(Equal(1))
		Expect(st.Count("GET", flysim.RouteMachine, 200)).To(BeNumerically(">=", 1))
		Expect(st.Count("GET", flysim.RouteMachine, 404)).To(Equal(1))
		Expect(st.Count("GET", flysim.RouteMachines, 401)).To(Equal(1))
		Expect(st.Machines).To(Equal(map[string]int{"started": 1}))

		Expect(e.ctl.ResetStats(ctx)).To(Succeed())
		e.api("GET", "/"+m.ID+"/wait?state=started", nil)
		st, err = e.ctl.Stats(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(st.Requests).To(Equal([]flysim.RequestCount{{Method: "GET", Route: flysim.RouteWait, Status: 200, Count: 1}}))
	})

	Describe("seed", func() {
		It("creates many started, listening machines with the given metadata and env in one call", func() {
			seeded, err := e.ctl.Seed(ctx, flysim.SeedRequest{
				Count: 300, Package: "@modelcontextprotocol/server-everything", Metadata: map[string]string{"bench": "yes"},
				Machines: []flysim.SeedMachine{{Name: "special", Metadata: map[string]string{"deployment_id": "d-1"}, Package: flysim.PackageHTTP500}},
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(seeded).To(HaveLen(301))
			ips := map[string]bool{}
			for _, sm := range seeded {
				Expect(sm.ID).To(MatchRegexp(`^[0-9a-f]{14}$`))
				ips[sm.PrivateIP] = true
			}
			Expect(ips).To(HaveLen(301))
			for _, sm := range seeded[:300] {
				Expect(e.probeResult(sm.PrivateIP)()).To(Equal("200"), sm.PrivateIP)
			}
			Expect(e.probeResult(seeded[300].PrivateIP)()).To(Equal("500"))

			special := e.get(seeded[300].ID)
			Expect(special.State).To(Equal("started"))
			Expect(special.Name).To(Equal("special"))
			Expect(special.Config["metadata"]).To(Equal(map[string]any{"bench": "yes", "deployment_id": "d-1"}))
			Expect(special.Config["env"]).To(Equal(map[string]any{"MCP_PACKAGE": flysim.PackageHTTP500}))

			var ms []machineView
			Expect(decodeJSONBytes(e.api("GET", "?summary=true&metadata.bench=yes&state=started", nil).body, &ms)).To(Succeed())
			Expect(ms).To(HaveLen(301))
		})
	})

	It("gives two simulators of one process different address blocks, and Close closes every listener", func() {
		other := startSim()
		a := e.started("pkg")
		b := other.started("pkg")
		blockOf := func(ip string) byte { return netip.MustParseAddr(ip).As4()[1] }
		Expect(blockOf(a.PrivateIP)).NotTo(Equal(blockOf(b.PrivateIP)))
		Eventually(other.probeResult(b.PrivateIP)).Should(Equal("200"))

		Expect(other.sim.Close()).To(Succeed())
		Expect(other.probeResult(b.PrivateIP)()).To(Equal("refused"))
		_, err := http.Get(other.sim.URL() + "/v1/apps/" + testApp + "/machines")
		Expect(err).To(HaveOccurred())
		Expect(other.sim.Close()).To(Succeed(), "Close twice is fine")
		Eventually(e.probeResult(a.PrivateIP)).Should(Equal("200"), "the other simulator still serves")
	})
})

func mustJSON(v any) string {
	b, err := jsonMarshal(v)
	if err != nil {
		panic(fmt.Sprintf("encoding %v: %v", v, err))
	}
	return string(b)
}
