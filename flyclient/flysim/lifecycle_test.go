package flysim_test

import (
	"net/http"
	"net/netip"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// slowTransitions makes transient states last long enough to be seen
// between two requests, even on a loaded machine.
func slowTransitions(o *flysim.Options) {
	o.StopDuration = 400 * time.Millisecond
	o.BootDuration = 400 * time.Millisecond
}

var _ = Describe("Machine lifecycle", func() {
	var e *env
	BeforeEach(func() { e = startSim() })

	It("answers a create with a created machine in Fly's shape and then starts it", func() {
		m := e.create(map[string]any{"name": "web-1", "config": map[string]any{
			"image": testImage, "env": map[string]any{"MCP_PACKAGE": "@modelcontextprotocol/server-everything"},
			"metadata": map[string]any{"deployment_id": "d-1"},
		}})
		Expect(m.State).To(Equal("created"))
		Expect(m.ID).To(MatchRegexp(`^[0-9a-f]{14}$`))
		Expect(m.InstanceID).To(MatchRegexp(`^[0-9A-HJKMNP-TV-Z]{26}$`))
		Expect(m.Name).To(Equal("web-1"))
		Expect(m.Region).To(Equal("ord"))
		ip := netip.MustParseAddr(m.PrivateIP)
		Expect(ip.As4()[0]).To(BeEquivalentTo(127))
		Expect(ip).NotTo(Equal(netip.MustParseAddr("127.0.0.1")))
		_, err := time.Parse(time.RFC3339, m.CreatedAt)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.Config).To(HaveKeyWithValue("image", testImage))
		Expect(m.Config).To(HaveKeyWithValue("metadata", map[string]any{"deployment_id": "d-1"}))
		Expect(m.Config).To(HaveKey("guest"))
		Expect(m.Events).To(HaveLen(2))
		Expect(m.Events[0].String()).To(Equal("launch/created/user"))
		Expect(m.Events[1].String()).To(Equal("launch/pending/flyd"))
		Expect(m.Events[0].ID).To(MatchRegexp(`^[0-9A-HJKMNP-TV-Z]{26}$`))
		Expect(m.Events[0].Timestamp).To(BeNumerically("~", time.Now().UnixMilli(), 5000))

		Eventually(e.state(m.ID)).Should(Equal("started"))
		got := e.get(m.ID)
		Expect(got.Events[0].String()).To(Equal("start/started/flyd"))
		Expect(got.InstanceID).To(Equal(m.InstanceID))
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
	})

	It("gives every machine a generated name, a distinct id and a distinct private IP", func() {
		a := e.create(machineBody("pkg-a"))
		b := e.create(machineBody("pkg-b"))
		Expect(a.Name).To(MatchRegexp(`^[a-z]+-[a-z]+-\d{4}$`))
		Expect(a.ID).NotTo(Equal(b.ID))
		Expect(a.PrivateIP).NotTo(Equal(b.PrivateIP))
	})

	It("refuses a second machine with a taken name with 422 name_taken, and frees the name on destroy", func() {
		body := machineBody("pkg")
		body["name"] = "only-one"
		m := e.create(body)
		r := e.api("POST", "", body)
		Expect(r.code).To(Equal(http.StatusUnprocessableEntity))
		Expect(r.object()).To(HaveKeyWithValue("status", "name_taken"))
		Expect(r.object()["error"]).To(ContainSubstring(`"only-one"`))

		Expect(e.api("DELETE", "/"+m.ID+"?force=true", nil).code).To(Equal(http.StatusOK))
		Eventually(e.state(m.ID)).Should(Equal("destroyed"))
		Expect(e.create(body).Name).To(Equal("only-one"))
	})

	It("stops a started machine through stopping to stopped with a requested exit, and its /status refuses connections", func() {
		e = startSim(slowTransitions)
		m := e.started("pkg")
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		r := e.api("POST", "/"+m.ID+"/stop", map[string]any{"signal": "SIGTERM", "timeout": "5s"})
		Expect(r.code).To(Equal(http.StatusOK), string(r.body))
		Expect(e.get(m.ID).State).To(Equal("stopping"))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))
		Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))

		evs := e.get(m.ID).Events
		Expect(evs[0].String()).To(Equal("exit/stopped/flyd"))
		Expect(evs[0].Request.ExitEvent.RequestedStop).To(BeTrue())
		Expect(evs[0].Request.ExitEvent.Restarting).To(BeFalse())
		Expect(evs[0].Request.ExitEvent.ExitCode).To(Equal(0))
		_, err := time.Parse(time.RFC3339Nano, evs[0].Request.ExitEvent.ExitedAt)
		Expect(err).NotTo(HaveOccurred())
		Expect(evs[1].String()).To(Equal("stop/stopping/user"))

		By("stopping a stopped machine again, which changes nothing")
		Expect(e.api("POST", "/"+m.ID+"/stop", nil).code).To(Equal(http.StatusOK))
		Expect(e.get(m.ID).State).To(Equal("stopped"))
	})

	It("starts a stopped machine again, which installs and serves again", func() {
		m := e.started("pkg")
		Expect(e.api("POST", "/"+m.ID+"/stop", nil).code).To(Equal(http.StatusOK))
		Eventually(e.state(m.ID)).Should(Equal("stopped"))

		r := e.api("POST", "/"+m.ID+"/start", nil)
		Expect(r.code).To(Equal(http.StatusOK))
		Expect(r.object()).To(HaveKeyWithValue("previous_state", "stopped"))
		Expect(r.object()).To(HaveKeyWithValue("migrated", false))
		Eventually(e.state(m.ID)).Should(Equal("started"))
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		Expect(e.events(m.ID, 3)[1].String()).To(Equal("start/starting/user"))
	})

	It("refuses to start a started machine with 412 failed_precondition", func() {
		m := e.started("pkg")
		r := e.api("POST", "/"+m.ID+"/start", nil)
		Expect(r.code).To(Equal(http.StatusPreconditionFailed))
		Expect(r.object()["error"]).To(HavePrefix("failed_precondition: "))
	})

	It("suspends a started machine and resumes it on start without installing again", func() {
		e = startSim(slowTransitions, func(o *flysim.Options) { o.InstallDuration = 1500 * time.Millisecond })
		m := e.create(machineBody("pkg"))
		Eventually(e.probeResult(m.PrivateIP), 5*time.Second).Should(Equal("200"))

		Expect(e.api("POST", "/"+m.ID+"/suspend", nil).code).To(Equal(http.StatusOK))
		Expect(e.get(m.ID).State).To(Equal("suspending"))
		Eventually(e.state(m.ID)).Should(Equal("suspended"))
		Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
		evs := e.get(m.ID).Events
		Expect(evs[0].String()).To(Equal("suspend/suspended/flyd"))
		Expect(evs[1].String()).To(Equal("suspend/suspending/user"))

		Expect(e.api("POST", "/"+m.ID+"/start", nil).code).To(Equal(http.StatusOK))
		// A fresh boot would take the 1.5s install; a resume answers after the boot.
		Eventually(e.probeResult(m.PrivateIP), time.Second).Should(Equal("200"))
	})

	It("refuses connections while the package installs, then answers", func() {
		e = startSim(func(o *flysim.Options) { o.InstallDuration = time.Second })
		m := e.create(machineBody("pkg"))
		r := e.api("GET", "/"+m.ID+"/wait?state=started&timeout=5", nil)
		Expect(r.code).To(Equal(http.StatusOK))
		Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
	})

	It("restarts a started machine with a requested, restarting exit", func() {
		e = startSim(slowTransitions)
		m := e.started("pkg")
		Expect(e.api("POST", "/"+m.ID+"/restart?force_stop=false", nil).code).To(Equal(http.StatusOK))
		Expect(e.get(m.ID).State).To(Equal("restarting"))
		Eventually(e.state(m.ID)).Should(Equal("started"))
		exits := e.exits(m.ID)
		Expect(exits).To(HaveLen(1))
		Expect(exits[0].RequestedStop).To(BeTrue())
		Expect(exits[0].Restarting).To(BeTrue())
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
	})

	It("keeps a skip_launch machine created until it is started", func() {
		body := machineBody("pkg")
		body["skip_launch"] = true
		m := e.create(body)
		Consistently(e.state(m.ID)).Should(Equal("created"))
		r := e.api("GET", "/"+m.ID+"/wait?state=settled&timeout=1", nil)
		Expect(r.code).To(Equal(http.StatusOK))
		Expect(r.object()).To(HaveKeyWithValue("state", "created"))
		Expect(e.api("POST", "/"+m.ID+"/start", nil).code).To(Equal(http.StatusOK))
		Eventually(e.state(m.ID)).Should(Equal("started"))
	})

	Describe("destroy", func() {
		It("refuses a started machine without force, destroys it with force, shows it destroyed briefly, then 404", func() {
			e = startSim(slowTransitions)
			m := e.started("pkg")
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			r := e.api("DELETE", "/"+m.ID, nil)
			Expect(r.code).To(Equal(http.StatusPreconditionFailed))
			Expect(r.object()["error"]).To(HavePrefix("failed_precondition: "))
			Expect(e.get(m.ID).State).To(Equal("started"))

			r = e.api("DELETE", "/"+m.ID+"?force=true", nil)
			Expect(r.code).To(Equal(http.StatusOK))
			Expect(r.object()).To(HaveKeyWithValue("ok", true))
			Expect(e.get(m.ID).State).To(Equal("destroying"))
			Eventually(e.state(m.ID)).Should(Equal("destroyed"))
			Expect(e.probeResult(m.PrivateIP)()).To(Equal("refused"))
			evs := e.get(m.ID).Events
			Expect(evs[0].String()).To(Equal("destroy/destroyed/flyd"))
			Expect(evs[1].String()).To(Equal("exit/stopped/flyd"))
			Expect(evs[2].String()).To(Equal("destroy/destroying/user"))

			Eventually(e.state(m.ID)).Should(Equal("404"))
			r = e.api("GET", "/"+m.ID, nil)
			Expect(r.object()).To(Equal(map[string]any{"error": "machine not found"}))
		})

		It("accepts flyctl's kill=true and destroys a stopped machine without force", func() {
			a := e.started("pkg")
			Expect(e.api("DELETE", "/"+a.ID+"?kill=true", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(a.ID)).Should(Equal("destroyed"))

			b := e.started("pkg")
			Expect(e.api("POST", "/"+b.ID+"/stop", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(b.ID)).Should(Equal("stopped"))
			Expect(e.api("DELETE", "/"+b.ID, nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(b.ID)).Should(Equal("destroyed"))
		})
	})

	Describe("update", func() {
		It("replaces the config with a new instance_id and comes back started with the new package", func() {
			e = startSim(slowTransitions)
			m := e.started("pkg")
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
			body := machineBody(flysim.PackageHTTP500, withMetadata("deployment_id", "d-2"))
			body["current_version"] = m.InstanceID
			up := decodeMachine(e.api("POST", "/"+m.ID, body))
			Expect(up.State).To(Equal("replacing"))
			Expect(up.InstanceID).NotTo(Equal(m.InstanceID))
			Expect(up.InstanceID).To(MatchRegexp(`^[0-9A-HJKMNP-TV-Z]{26}$`))
			Expect(up.Config["env"]).To(HaveKeyWithValue("MCP_PACKAGE", flysim.PackageHTTP500))
			Expect(up.Events[0].String()).To(Equal("update/replacing/user"))

			By("refusing a start while replacing")
			r := e.api("POST", "/"+m.ID+"/start", nil)
			Expect(r.code).To(Equal(http.StatusPreconditionFailed))
			Expect(r.object()["error"]).To(Equal("failed_precondition: machine getting replaced, refusing to start"))

			Eventually(e.state(m.ID)).Should(Equal("started"))
			Eventually(e.probeResult(m.PrivateIP)).Should(Equal("500"))
		})

		It("refuses a stale current_version with 409 aborted", func() {
			m := e.started("pkg")
			body := machineBody("pkg")
			body["current_version"] = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
			r := e.api("POST", "/"+m.ID, body)
			Expect(r.code).To(Equal(http.StatusConflict))
			Expect(r.object()["error"]).To(HavePrefix("aborted: "))
			Expect(e.get(m.ID).InstanceID).To(Equal(m.InstanceID))
		})

		It("leaves a stopped machine stopped", func() {
			m := e.started("pkg")
			Expect(e.api("POST", "/"+m.ID+"/stop", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			up := decodeMachine(e.api("POST", "/"+m.ID, machineBody("other")))
			Expect(up.State).To(Equal("replacing"))
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			Consistently(e.state(m.ID)).Should(Equal("stopped"))
		})

		It("refuses a config without an image with 400 invalid_argument", func() {
			m := e.started("pkg")
			r := e.api("POST", "/"+m.ID, map[string]any{"config": map[string]any{"env": map[string]any{}}})
			Expect(r.code).To(Equal(http.StatusBadRequest))
			Expect(r.object()["error"]).To(HavePrefix("invalid_argument: "))
		})
	})
})
