package web_test

import (
	"net/http"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store/status"
)

const secretValue = "s3cr3t-value-xyz"

var _ = Describe("env values", func() {
	BeforeEach(truncate)

	It("appear in no response body, stream event, log line or page", func() {
		h, _ := startServer(withToken(token))
		stream := openStream(h.URL + "/api/stream")
		Eventually(stream.Messages).Should(Receive(HaveField("Retry", "250")))

		var bodies []string
		record := func(r response) response {
			bodies = append(bodies, string(r.Body))
			return r
		}

		created := record(call("POST", h.URL+"/api/deployments",
			`{"name":"with-secret","package":"@acme/weather-mcp","env":{"SECRET":"`+secretValue+`","OTHER":"`+secretValue+`-2"}}`, bearer(token)...))
		Expect(created.Code).To(Equal(http.StatusCreated), "body: %s", created.Body)
		id := created.JSON()["id"].(string)
		Expect(created.JSON()["env_keys"]).To(Equal([]any{"OTHER", "SECRET"}))
		Expect(stream.nextEvent().Data).To(ContainSubstring(id))

		// A row written by the platform directly, moving through statuses.
		other := deployment("sql-secret", withEnv(map[string]string{"API_KEY": secretValue}))
		Expect(stream.nextEvent().Data).To(ContainSubstring(other))
		setStatus(other, status.Installing, "Creating Fly machine...", "")
		Expect(stream.nextEvent().Data).To(ContainSubstring(`"installing"`))
		setStatus(other, status.Unhealthy, "", "Server failed to start within 60 seconds")
		Expect(stream.nextEvent().Data).To(ContainSubstring(`"unhealthy"`))

		for _, path := range []string{
			"/api/deployments", "/api/deployments?status=unhealthy", "/api/deployments?limit=1",
			"/api/deployments/" + id, "/api/deployments/" + other,
			"/api/deployments/" + id + "/events", "/api/deployments/" + other + "/events",
			"/", "/static/app.js", "/static/style.css",
		} {
			Expect(record(call("GET", h.URL+path, "")).Code).To(Equal(http.StatusOK), path)
		}

		// Refused writes that carry the secret: the errors name the variable,
		// never its value.
		for _, body := range []string{
			`{"name":"x","package":"left-pad","env":{"bad-key":"` + secretValue + `"}}`,
			`{"name":"x","package":"left-pad","env":{"K":"` + secretValue + `","MCP_PACKAGE":"` + secretValue + `"}}`,
			`{"name":"x","package":"left-pad","env":{"K":"` + secretValue + `\u0000"}}`,
			`{"name":"x","package":"Not/Valid","env":{"K":"` + secretValue + `"}}`,
			`{"name":"x","package":"left-pad","env":{"K":"` + secretValue + `"},"extra":1}`,
			`{"name":"x","package":"left-pad","env":{"K":["` + secretValue + `"]}}`,
			`{"name":"x","package":"left-pad","env":{"K":"` + secretValue + `"`,
		} {
			r := record(call("POST", h.URL+"/api/deployments", body, bearer(token)...))
			Expect(r.Code).To(Equal(http.StatusBadRequest), "body: %s", r.Body)
		}
		Expect(record(call("POST", h.URL+"/api/deployments", `{"name":"x","package":"left-pad","env":{"K":"`+secretValue+`"}}`)).Code).
			To(Equal(http.StatusUnauthorized))

		deleted := record(call("DELETE", h.URL+"/api/deployments/"+id, "", bearer(token)...))
		Expect(deleted.Code).To(Equal(http.StatusAccepted))
		Expect(stream.nextEvent().Data).To(ContainSubstring(`"deleted_at":"`))

		Expect(bodies).To(HaveLen(20))
		for _, b := range bodies {
			Expect(b).NotTo(ContainSubstring(secretValue))
		}
		Expect(stream.Raw()).To(ContainSubstring(id), "the stream was read")
		Expect(stream.Raw()).NotTo(ContainSubstring(secretValue))
		Expect(h.Logs.String()).To(ContainSubstring("Creating deployment"), "the log was captured")
		Expect(h.Logs.String()).NotTo(ContainSubstring(secretValue))
		Expect(strings.Join(bodies, "\n")).To(ContainSubstring("SECRET"), "names are shown")
	})
})
