package flysim_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

var _ = Describe("Package behaviours (config.env.MCP_PACKAGE)", func() {
	var e *env
	BeforeEach(func() { e = startSim() })

	It("a normal package answers 200 {\"status\":\"ok\"} once installed", func() {
		m := e.started("@modelcontextprotocol/server-filesystem@1.2.3")
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		resp, err := e.probe.Get(e.statusURL(m.PrivateIP))
		Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		var body map[string]any
		Expect(decodeJSON(resp.Body, &body)).To(Succeed())
		Expect(body).To(Equal(map[string]any{"status": "ok"}))
	})

	It("an @invalid/ package exits 1, restarts 10 times with a growing restart_count and ends stopped", func() {
		m := e.create(machineBody("@invalid/does-not-exist@1.0.0"))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))
		Consistently(e.state(m.ID)).Should(Equal("stopped"))
		exits := e.exits(m.ID)
		Expect(exits).To(HaveLen(11), "the first run and 10 restarts")
		evs := e.events(m.ID, 50)
		counts := []int{}
		for _, ev := range evs {
			if ev.Type == "exit" {
				counts = append(counts, *ev.Request.RestartCount)
			}
		}
		Expect(counts).To(Equal([]int{10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0}))
		Expect(exits[0].Restarting).To(BeFalse(), "the last exit")
		for _, x := range exits {
			Expect(x.ExitCode).To(Equal(1))
			Expect(x.RequestedStop).To(BeFalse())
			Expect(x.OOMKilled).To(BeFalse())
		}
		for _, x := range exits[1:] {
			Expect(x.Restarting).To(BeTrue())
		}
		Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
	})

	It("a package registered as missing fails like an @invalid/ one, within the machine's max_retries", func() {
		e = startSim(func(o *flysim.Options) { o.MissingPackages = []string{"left-pad-mcp"} })
		m := e.create(machineBody("left-pad-mcp@latest", withRestart("on-failure", 2)))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))
		exits := e.exits(m.ID)
		Expect(exits).To(HaveLen(3))
		Expect(exits[0].Restarting).To(BeFalse())
		Expect(exits[1].Restarting).To(BeTrue())
	})

	It("restart policy no stops at the first exit", func() {
		m := e.create(machineBody(flysim.PackageMissing, withRestart("no", -1)))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))
		exits := e.exits(m.ID)
		Expect(exits).To(HaveLen(1))
		Expect(exits[0].Restarting).To(BeFalse())
	})

	It("restart policy always keeps restarting past max_retries and never ends stopped on its own", func() {
		m := e.create(machineBody(flysim.PackageMissing, withRestart("always", 1)))
		Eventually(func() int { return len(e.exits(m.ID)) }).Should(BeNumerically(">=", 4))
		Expect(e.exits(m.ID)[0].Restarting).To(BeTrue())
		Expect(e.state(m.ID)()).NotTo(Equal("stopped"))
		Expect(e.api("DELETE", "/"+m.ID+"?force=true", nil).code).To(Equal(200))
		Eventually(e.state(m.ID)).Should(Equal("destroyed"))
	})

	It("auto_destroy destroys a machine whose process exits for good", func() {
		m := e.create(machineBody(flysim.PackageMissing, withRestart("no", -1), func(cfg map[string]any) { cfg["auto_destroy"] = true }))
		Eventually(e.state(m.ID)).Should(Equal("destroyed"))
		Expect(e.exits(m.ID)).To(HaveLen(1))
	})

	It("@flightdeck-sim/crash serves 200, then exits 1 and is restarted", func() {
		e = startSim(func(o *flysim.Options) { o.CrashAfter = 300 * time.Millisecond })
		m := e.create(machineBody(flysim.PackageCrash))
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		Eventually(func() int { return len(e.exits(m.ID)) }).Should(BeNumerically(">=", 1))
		x := e.exits(m.ID)[len(e.exits(m.ID))-1]
		Expect(x.ExitCode).To(Equal(1))
		Expect(x.RequestedStop).To(BeFalse())
		Expect(x.Restarting).To(BeTrue())
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"), "serving again after the restart")
	})

	It("@flightdeck-sim/http-500 answers 500", func() {
		m := e.started(flysim.PackageHTTP500)
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("500"))
	})

	It("@flightdeck-sim/hang accepts connections and never answers", func() {
		m := e.started(flysim.PackageHang)
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("timeout"))
		Expect(e.get(m.ID).State).To(Equal("started"))
	})

	It("@flightdeck-sim/oom is killed with oom_killed and exit code 137", func() {
		m := e.create(machineBody(flysim.PackageOOM, withRestart("on-failure", 1)))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))
		exits := e.exits(m.ID)
		Expect(exits).To(HaveLen(2))
		for _, x := range exits {
			Expect(x.ExitCode).To(Equal(137))
			Expect(x.OOMKilled).To(BeTrue())
		}
	})

	It("reports configured checks as passing or critical from the /status behaviour", func() {
		checks := func(cfg map[string]any) {
			cfg["checks"] = map[string]any{"status": map[string]any{"type": "http", "port": 8080, "path": "/status", "interval": "15s"}}
			cfg["services"] = []any{map[string]any{"protocol": "tcp", "internal_port": 8080, "autostop": "stop",
				"checks": []any{map[string]any{"type": "tcp"}}}}
		}
		ok := e.create(machineBody("pkg", checks))
		Expect(ok.Config["services"]).To(ConsistOf(HaveKeyWithValue("autostop", true)), "autostop \"stop\" is echoed as true")
		Eventually(e.probeResult(ok.PrivateIP)).Should(Equal("200"))
		Expect(e.get(ok.ID).Checks).To(ConsistOf(
			checkView{Name: "status", Status: "passing", Output: "Success"},
			checkView{Name: "servicecheck-00-tcp-8080", Status: "passing", Output: "Success"},
		))

		bad := e.create(machineBody(flysim.PackageHTTP500, checks))
		Eventually(e.probeResult(bad.PrivateIP)).Should(Equal("500"))
		Expect(e.get(bad.ID).Checks).To(ContainElement(checkView{Name: "status", Status: "critical", Output: "500 Internal Server Error"}))
	})
})
