package flysim_test

import (
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

var _ = Describe("Machines API", func() {
	var e *env
	BeforeEach(func() { e = startSim() })

	Describe("authentication and routing", func() {
		It("answers 401 invalid token without a token, with a wrong one, or with an unknown scheme", func() {
			path := "/v1/apps/" + testApp + "/machines"
			for _, auth := range []string{"", "Bearer wrong", "Basic " + testToken, testToken} {
				r := e.call("GET", path, nil, auth)
				Expect(r.code).To(Equal(http.StatusUnauthorized), auth)
				Expect(r.object()).To(Equal(map[string]any{"error": "invalid token"}))
			}
			r := e.call("GET", "/_sim/stats", nil, "Bearer wrong")
			Expect(r.code).To(Equal(http.StatusUnauthorized), "control endpoints need the token too")
		})

		It("accepts the token as Bearer or FlyV1", func() {
			path := "/v1/apps/" + testApp + "/machines"
			Expect(e.call("GET", path, nil, "Bearer "+testToken).code).To(Equal(http.StatusOK))
			Expect(e.call("GET", path, nil, "FlyV1 "+testToken).code).To(Equal(http.StatusOK))
		})

		It("answers 404 app not found for another app and machine not found for an unknown id", func() {
			r := e.call("GET", "/v1/apps/other-app/machines", nil)
			Expect(r.code).To(Equal(http.StatusNotFound))
			Expect(r.object()).To(Equal(map[string]any{"error": "app not found"}))

			r = e.api("GET", "/0123456789abcd", nil)
			Expect(r.code).To(Equal(http.StatusNotFound))
			Expect(r.object()).To(Equal(map[string]any{"error": "machine not found"}))
			Expect(r.header.Get("fly-request-id")).NotTo(BeEmpty())
			Expect(r.header.Get("Content-Type")).To(Equal("application/json"))
		})

		It("answers 400 for a malformed body or a config without image, and 503 insufficient_capacity in region xxx", func() {
			r := e.api("POST", "", `{"config": [1,2]}`)
			Expect(r.code).To(Equal(http.StatusBadRequest))
			Expect(r.object()["error"]).To(ContainSubstring("cannot unmarshal array"))

			r = e.api("POST", "", map[string]any{"config": map[string]any{"env": map[string]any{"A": "b"}}})
			Expect(r.code).To(Equal(http.StatusBadRequest))
			Expect(r.object()).To(Equal(map[string]any{"error": "invalid_argument: config.image is required"}))

			body := machineBody("pkg")
			body["region"] = "xxx"
			r = e.api("POST", "", body)
			Expect(r.code).To(Equal(http.StatusServiceUnavailable))
			Expect(r.object()).To(Equal(map[string]any{"error": "out of capacity", "status": "insufficient_capacity"}))

			r = e.api("POST", "", `not json`)
			Expect(r.code).To(Equal(http.StatusBadRequest))
		})
	})

	Describe("wait", func() {
		It("answers 200 with the state at once when the machine is already there", func() {
			m := e.started("pkg")
			start := time.Now()
			r := e.api("GET", "/"+m.ID+"/wait?state=started&timeout=30", nil)
			Expect(r.code).To(Equal(http.StatusOK))
			Expect(r.object()).To(Equal(map[string]any{"ok": true, "state": "started"}))
			Expect(time.Since(start)).To(BeNumerically("<", time.Second))
		})

		It("blocks until the machine reaches the state, started by default", func() {
			e = startSim(func(o *flysim.Options) { o.BootDuration = 300 * time.Millisecond })
			m := e.create(machineBody("pkg"))
			r := e.api("GET", "/"+m.ID+"/wait", nil)
			Expect(r.code).To(Equal(http.StatusOK))
			Expect(r.object()).To(HaveKeyWithValue("state", "started"))
			Expect(e.get(m.ID).State).To(Equal("started"))
		})

		It("accepts several states, repeated or comma-separated, and answers the one reached", func() {
			m := e.started("pkg")
			Expect(e.api("POST", "/"+m.ID+"/suspend", nil).code).To(Equal(http.StatusOK))
			r := e.api("GET", "/"+m.ID+"/wait?state=stopped&state=suspended&timeout=5", nil)
			Expect(r.code).To(Equal(http.StatusOK))
			Expect(r.object()).To(HaveKeyWithValue("state", "suspended"))
			r = e.api("GET", "/"+m.ID+"/wait?state=stopped,settled&timeout=5", nil)
			Expect(r.object()).To(HaveKeyWithValue("state", "suspended"))
		})

		It("answers 408 deadline_exceeded when the state is not reached in time", func() {
			m := e.started("pkg")
			Expect(e.api("POST", "/"+m.ID+"/stop", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			start := time.Now()
			r := e.api("GET", "/"+m.ID+"/wait?state=started&timeout=1", nil)
			Expect(time.Since(start)).To(BeNumerically(">=", 900*time.Millisecond))
			Expect(r.code).To(Equal(http.StatusRequestTimeout))
			Expect(r.object()).To(Equal(map[string]any{
				"error": "deadline_exceeded: machine failed to reach desired state, started, currently stopped"}))
		})

		It("answers 400 invalid_argument for a timeout outside 1..60 or an unknown state", func() {
			m := e.started("pkg")
			for _, q := range []string{"timeout=61", "timeout=0", "timeout=abc", "state=running"} {
				r := e.api("GET", "/"+m.ID+"/wait?"+q, nil)
				Expect(r.code).To(Equal(http.StatusBadRequest), q)
				Expect(r.object()["error"]).To(HavePrefix("invalid_argument: "), q)
			}
		})

		It("answers 404 for an unknown machine and waits for destroyed", func() {
			r := e.api("GET", "/0123456789abcd/wait?state=started&timeout=1", nil)
			Expect(r.code).To(Equal(http.StatusNotFound))
			m := e.started("pkg")
			Expect(e.api("DELETE", "/"+m.ID+"?force=true", nil).code).To(Equal(http.StatusOK))
			r = e.api("GET", "/"+m.ID+"/wait?state=destroyed&timeout=5", nil)
			Expect(r.code).To(Equal(http.StatusOK))
			Expect(r.object()).To(HaveKeyWithValue("state", "destroyed"))
		})
	})

	Describe("list", func() {
		It("filters by metadata, by state and summarises", func() {
			a := e.started("pkg", withMetadata("deployment_id", "a", "tier", "free"))
			b := e.started("pkg", withMetadata("deployment_id", "b", "tier", "free"))
			c := e.started("pkg", withMetadata("deployment_id", "c", "tier", "paid"))
			Expect(e.api("POST", "/"+c.ID+"/stop", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(c.ID)).Should(Equal("stopped"))

			ids := func(query string) []string {
				r := e.api("GET", query, nil)
				Expect(r.code).To(Equal(http.StatusOK), string(r.body))
				var ms []machineView
				Expect(json.Unmarshal(r.body, &ms)).To(Succeed())
				out := []string{}
				for _, m := range ms {
					out = append(out, m.ID)
				}
				return out
			}
			Expect(ids("")).To(Equal([]string{a.ID, b.ID, c.ID}), "in creation order")
			Expect(ids("?metadata.tier=free")).To(Equal([]string{a.ID, b.ID}))
			Expect(ids("?metadata.tier=free&metadata.deployment_id=b")).To(Equal([]string{b.ID}))
			Expect(ids("?metadata.deployment_id=zzz")).To(BeEmpty())
			Expect(ids("?state=stopped")).To(Equal([]string{c.ID}))
			Expect(ids("?state=started,stopped")).To(HaveLen(3))
			Expect(ids("?region=iad")).To(BeEmpty())

			r := e.api("GET", "?summary=true", nil)
			var raw []map[string]any
			Expect(json.Unmarshal(r.body, &raw)).To(Succeed())
			Expect(raw).To(HaveLen(3))
			Expect(raw[0]).NotTo(HaveKey("config"))
			Expect(raw[0]).NotTo(HaveKey("events"))
			Expect(raw[0]).To(HaveKeyWithValue("id", a.ID))
			Expect(raw[0]).To(HaveKey("private_ip"))
		})

		It("omits destroyed machines unless include_deleted is set", func() {
			m := e.started("pkg")
			Expect(e.api("DELETE", "/"+m.ID+"?force=true", nil).code).To(Equal(http.StatusOK))
			Eventually(e.state(m.ID)).Should(Equal("destroyed"))
			Expect(string(e.api("GET", "", nil).body)).To(MatchJSON(`[]`))
			r := e.api("GET", "?include_deleted=true", nil)
			Expect(string(r.body)).To(ContainSubstring(m.ID))
		})
	})

	Describe("events", func() {
		It("lists events newest first, 20 by default, limit capped at 50", func() {
			m := e.create(machineBody(flysim.PackageMissing)) // 11 exits and 11 starts
			Eventually(e.state(m.ID)).Should(Equal("stopped"))
			r := e.api("GET", "/"+m.ID+"/events", nil)
			var evs []eventView
			Expect(json.Unmarshal(r.body, &evs)).To(Succeed())
			Expect(evs).To(HaveLen(20))
			for i := 1; i < len(evs); i++ {
				Expect(evs[i-1].Timestamp).To(BeNumerically(">=", evs[i].Timestamp))
				Expect(evs[i-1].ID > evs[i].ID).To(BeTrue(), "ULIDs sort newest first too")
			}
			Expect(evs[0].String()).To(Equal("exit/stopped/flyd"))

			Expect(e.events(m.ID, 2)).To(Equal(evs[:2]))
			all := e.events(m.ID, 500)
			Expect(all).To(HaveLen(24))
			Expect(all[23].String()).To(Equal("launch/pending/flyd"))

			r = e.api("GET", "/"+m.ID+"/events?limit=0", nil)
			Expect(r.code).To(Equal(http.StatusBadRequest))
		})
	})

	Describe("leases", func() {
		It("are optional, and while held refuse writes without their nonce with 409 aborted", func() {
			m := e.started("pkg")
			r := e.api("POST", "/"+m.ID+"/lease?ttl=30", nil)
			Expect(r.code).To(Equal(http.StatusCreated))
			data := r.object()["data"].(map[string]any)
			nonce := data["nonce"].(string)
			Expect(nonce).To(MatchRegexp(`^[0-9a-f]{12}$`))
			Expect(data["version"]).To(Equal(m.InstanceID))

			r = e.api("POST", "/"+m.ID+"/stop", nil)
			Expect(r.code).To(Equal(http.StatusConflict))
			Expect(r.object()["error"]).To(ContainSubstring("lease currently held by"))
			Expect(r.object()["error"]).To(HavePrefix("aborted: "))

			req, _ := http.NewRequest("POST", e.sim.URL()+"/v1/apps/"+testApp+"/machines/"+m.ID+"/stop", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("fly-machine-lease-nonce", nonce)
			resp, err := e.hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))

			req, _ = http.NewRequest("DELETE", e.sim.URL()+"/v1/apps/"+testApp+"/machines/"+m.ID+"/lease", nil)
			req.Header.Set("Authorization", "Bearer "+testToken)
			req.Header.Set("fly-machine-lease-nonce", nonce)
			resp, err = e.hc.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(resp.StatusCode).To(Equal(http.StatusOK))
			Expect(e.api("GET", "/"+m.ID+"/lease", nil).code).To(Equal(http.StatusNotFound))
		})

		It("come with a create that asks for lease_ttl, in the create answer's nonce", func() {
			body := machineBody("pkg")
			body["lease_ttl"] = 60
			m := e.create(body)
			Expect(m.Nonce).To(MatchRegexp(`^[0-9a-f]{12}$`))
			Expect(e.get(m.ID).Nonce).To(BeEmpty())
			Expect(e.api("POST", "/"+m.ID, machineBody("pkg")).code).To(Equal(http.StatusConflict))
		})
	})

	It("sets and deletes metadata without a new version", func() {
		m := e.started("pkg", withMetadata("deployment_id", "d-9"))
		Expect(e.api("POST", "/"+m.ID+"/metadata/owner", map[string]any{"value": "team-a"}).code).To(Equal(http.StatusNoContent))
		r := e.api("GET", "/"+m.ID+"/metadata", nil)
		Expect(r.object()).To(Equal(map[string]any{"deployment_id": "d-9", "owner": "team-a"}))
		Expect(string(e.api("GET", "?metadata.owner=team-a", nil).body)).To(ContainSubstring(m.ID))
		Expect(e.api("DELETE", "/"+m.ID+"/metadata/deployment_id", nil).code).To(Equal(http.StatusNoContent))
		got := e.get(m.ID)
		Expect(got.Config["metadata"]).To(Equal(map[string]any{"owner": "team-a"}))
		Expect(got.InstanceID).To(Equal(m.InstanceID))
	})
})
