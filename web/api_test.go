package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store/status"
)

const token = "test-token-0123456789"

// page decodes a list answer.
type listAnswer struct {
	Deployments []map[string]any `json:"deployments"`
	NextCursor  *string          `json:"next_cursor"`
}

type eventsAnswer struct {
	Events     []map[string]any `json:"events"`
	NextCursor *string          `json:"next_cursor"`
}

func decode[T any](r response) T {
	GinkgoHelper()
	var v T
	Expect(r.Code).To(Equal(http.StatusOK), "body: %s", r.Body)
	Expect(json.Unmarshal(r.Body, &v)).To(Succeed(), "body: %s", r.Body)
	return v
}

func names(list []map[string]any) []string {
	out := make([]string, 0, len(list))
	for _, d := range list {
		out = append(out, d["name"].(string))
	}
	return out
}

var _ = Describe("the JSON API", func() {
	var h *harness

	BeforeEach(func() {
		truncate()
		h, _ = startServer(withToken(token))
	})

	Describe("GET /api/deployments", func() {
		It("answers an empty list with a null cursor when there are no deployments", func() {
			r := call("GET", h.URL+"/api/deployments", "")
			Expect(r.Code).To(Equal(http.StatusOK))
			Expect(r.Header.Get("Content-Type")).To(Equal("application/json"))
			Expect(r.JSON()).To(Equal(map[string]any{"deployments": []any{}, "next_cursor": nil}))
		})

		It("lists deployments newest first", func() {
			base := time.Now().Add(-time.Hour)
			deployment("oldest", withCreatedAt(base))
			deployment("middle", withCreatedAt(base.Add(time.Minute)))
			deployment("newest", withCreatedAt(base.Add(2*time.Minute)))
			list := decode[listAnswer](call("GET", h.URL+"/api/deployments", ""))
			Expect(names(list.Deployments)).To(Equal([]string{"newest", "middle", "oldest"}))
			Expect(list.NextCursor).To(BeNil())
		})

		It("pages with a default limit of 50 and a cursor that visits every deployment once", func() {
			base := time.Now().Add(-time.Hour)
			for i := range 60 {
				deployment(fmt.Sprintf("d%02d", i), withCreatedAt(base.Add(time.Duration(i)*time.Second)))
			}
			first := decode[listAnswer](call("GET", h.URL+"/api/deployments", ""))
			Expect(first.Deployments).To(HaveLen(50))
			Expect(first.Deployments[0]["name"]).To(Equal("d59"))
			Expect(first.NextCursor).NotTo(BeNil())

			seen := map[string]bool{}
			var cursor string
			pages := 0
			for {
				url := h.URL + "/api/deployments?limit=7"
				if cursor != "" {
					url += "&cursor=" + cursor
				}
				page := decode[listAnswer](call("GET", url, ""))
				pages++
				Expect(len(page.Deployments)).To(BeNumerically("<=", 7))
				for _, n := range names(page.Deployments) {
					Expect(seen).NotTo(HaveKey(n))
					seen[n] = true
				}
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			Expect(seen).To(HaveLen(60))
			Expect(pages).To(Equal(9))
		})

		It("accepts the largest limit, 200", func() {
			deployment("one")
			list := decode[listAnswer](call("GET", h.URL+"/api/deployments?limit=200", ""))
			Expect(list.Deployments).To(HaveLen(1))
		})

		It("filters by status", func() {
			deployment("a", withStatus(status.Running), withMachine("0123456789abcd", "ams"))
			deployment("b", withStatus(status.Pending))
			deployment("c", withStatus(status.Running), withMachine("0123456789abce", "ams"))
			list := decode[listAnswer](call("GET", h.URL+"/api/deployments?status=running", ""))
			Expect(names(list.Deployments)).To(ConsistOf("a", "c"))
			for _, d := range list.Deployments {
				Expect(d["status"]).To(Equal("running"))
			}
		})

		DescribeTable("refuses a bad query with 400",
			func(query string, parts ...string) {
				expectError(call("GET", h.URL+"/api/deployments?"+query, ""), http.StatusBadRequest, parts...)
			},
			Entry("an unknown status", "status=sleeping", "unknown deployment status", "sleeping"),
			Entry("a limit of zero", "limit=0", "limit must be a whole number from 1 to 200"),
			Entry("a limit over 200", "limit=201", "limit must be a whole number from 1 to 200"),
			Entry("a limit that is not a number", "limit=ten", "limit"),
			Entry("a negative limit", "limit=-5", "limit"),
			Entry("a cursor that this list did not make", "cursor=not-a-cursor", "cursor"),
		)
	})

	Describe("GET /api/deployments/{id}", func() {
		It("shows every documented field, env names only, and null for unset text", func() {
			id := deployment("weather", withEnv(map[string]string{"ZED": "z", "API_KEY": "k", "DEBUG": "1"}),
				withStatus(status.Starting), withMachine("0123456789abcd", "ams"),
				withMessages("Installing packages and starting server...", ""))
			r := call("GET", h.URL+"/api/deployments/"+id, "")
			Expect(r.Code).To(Equal(http.StatusOK))
			d := r.JSON()
			Expect(d).To(HaveKeyWithValue("id", id))
			Expect(d).To(HaveKeyWithValue("name", "weather"))
			Expect(d).To(HaveKeyWithValue("package", "@modelcontextprotocol/server-everything@1.0.0"))
			Expect(d).To(HaveKeyWithValue("status", "starting"))
			Expect(d).To(HaveKeyWithValue("progress_message", "Installing packages and starting server..."))
			Expect(d).To(HaveKeyWithValue("error_message", BeNil()))
			Expect(d).To(HaveKeyWithValue("machine_id", "0123456789abcd"))
			Expect(d).To(HaveKeyWithValue("region", "ams"))
			Expect(d).To(HaveKeyWithValue("env_keys", []any{"API_KEY", "DEBUG", "ZED"}))
			Expect(d).To(HaveKeyWithValue("deleted_at", BeNil()))
			for _, k := range []string{"created_at", "updated_at", "status_changed_at"} {
				Expect(d).To(HaveKey(k))
				_, err := time.Parse(time.RFC3339Nano, d[k].(string))
				Expect(err).NotTo(HaveOccurred(), k)
			}
			Expect(d).NotTo(HaveKey("env"))
			Expect(d).To(HaveLen(13))
		})

		It("shows the live status that jq reads", func() {
			id := deployment("live")
			setStatus(id, status.Installing, "Creating Fly machine...", "")
			d := call("GET", h.URL+"/api/deployments/"+id, "").JSON()
			Expect(d["status"]).To(Equal("installing"))
			Expect(d["progress_message"]).To(Equal("Creating Fly machine..."))
		})

		It("accepts an id in upper case", func() {
			id := deployment("upper")
			r := call("GET", h.URL+"/api/deployments/"+strings.ToUpper(id), "")
			Expect(r.Code).To(Equal(http.StatusOK))
			Expect(r.JSON()["id"]).To(Equal(id))
		})

		It("answers 400 for a malformed id", func() {
			expectError(call("GET", h.URL+"/api/deployments/not-a-uuid", ""), http.StatusBadRequest, "malformed deployment id", "not-a-uuid")
		})

		It("answers 404 for an unknown id", func() {
			expectError(call("GET", h.URL+"/api/deployments/6f1c2a44-8e0b-4b8e-9a55-0d6f3c1e2b7a", ""), http.StatusNotFound,
				"deployment 6f1c2a44-8e0b-4b8e-9a55-0d6f3c1e2b7a not found")
		})
	})

	Describe("GET /api/deployments/{id}/events", func() {
		It("lists the transition history newest first and pages it", func() {
			id := deployment("history")
			setStatus(id, status.Installing, "Creating Fly machine...", "")
			setStatus(id, status.Starting, "Installing packages and starting server...", "")
			setStatus(id, status.Running, "", "")
			all := decode[eventsAnswer](call("GET", h.URL+"/api/deployments/"+id+"/events", ""))
			Expect(all.Events).To(HaveLen(3))
			Expect(all.NextCursor).To(BeNil())
			Expect(all.Events[0]).To(HaveKeyWithValue("from", "starting"))
			Expect(all.Events[0]).To(HaveKeyWithValue("to", "running"))
			Expect(all.Events[0]).To(HaveKeyWithValue("reason", "ProbeSucceeded"))
			Expect(all.Events[0]).To(HaveKeyWithValue("deployment_id", id))
			Expect(all.Events[0]).To(HaveKey("at"))
			Expect(all.Events[0]).To(HaveKey("id"))
			Expect(all.Events[2]).To(HaveKeyWithValue("message", "Creating Fly machine..."))

			first := decode[eventsAnswer](call("GET", h.URL+"/api/deployments/"+id+"/events?limit=2", ""))
			Expect(first.Events).To(HaveLen(2))
			Expect(first.NextCursor).NotTo(BeNil())
			second := decode[eventsAnswer](call("GET", h.URL+"/api/deployments/"+id+"/events?limit=2&cursor="+*first.NextCursor, ""))
			Expect(second.Events).To(HaveLen(1))
			Expect(second.Events[0]["to"]).To(Equal("installing"))
			Expect(second.NextCursor).To(BeNil())
		})

		It("answers an empty history for a deployment without changes", func() {
			id := deployment("quiet")
			Expect(decode[eventsAnswer](call("GET", h.URL+"/api/deployments/"+id+"/events", "")).Events).To(BeEmpty())
		})

		It("answers 404 for an unknown deployment", func() {
			expectError(call("GET", h.URL+"/api/deployments/6f1c2a44-8e0b-4b8e-9a55-0d6f3c1e2b7a/events", ""), http.StatusNotFound, "not found")
		})

		It("answers 400 for a malformed id, limit or cursor", func() {
			id := deployment("bad")
			expectError(call("GET", h.URL+"/api/deployments/1234/events", ""), http.StatusBadRequest, "malformed deployment id")
			expectError(call("GET", h.URL+"/api/deployments/"+id+"/events?limit=500", ""), http.StatusBadRequest, "limit")
			expectError(call("GET", h.URL+"/api/deployments/"+id+"/events?cursor=zzz", ""), http.StatusBadRequest, "cursor")
		})
	})

	Describe("POST /api/deployments", func() {
		It("creates a pending deployment and answers 201 with its location and env names only", func() {
			r := call("POST", h.URL+"/api/deployments", `{"name":"weather","package":"@acme/weather-mcp@^1.2.0","env":{"B_KEY":"b","A_KEY":"a"}}`, bearer(token)...)
			Expect(r.Code).To(Equal(http.StatusCreated), "body: %s", r.Body)
			d := r.JSON()
			Expect(d["status"]).To(Equal("pending"))
			Expect(d["name"]).To(Equal("weather"))
			Expect(d["package"]).To(Equal("@acme/weather-mcp@^1.2.0"))
			Expect(d["env_keys"]).To(Equal([]any{"A_KEY", "B_KEY"}))
			Expect(r.Header.Get("Location")).To(Equal("/api/deployments/" + d["id"].(string)))

			var env map[string]string
			Expect(pool.QueryRow(context.Background(), `SELECT env FROM deployments WHERE id = $1`, d["id"]).Scan(&env)).To(Succeed())
			Expect(env).To(Equal(map[string]string{"A_KEY": "a", "B_KEY": "b"}))
			Expect(call("GET", h.URL+r.Header.Get("Location"), "").Code).To(Equal(http.StatusOK))
		})

		It("creates a deployment without env", func() {
			r := call("POST", h.URL+"/api/deployments", `{"name":"plain","package":"left-pad"}`, bearer(token)...)
			Expect(r.Code).To(Equal(http.StatusCreated), "body: %s", r.Body)
			Expect(r.JSON()["env_keys"]).To(Equal([]any{}))
		})

		DescribeTable("refuses a bad body with 400",
			func(body string, parts ...string) {
				expectError(call("POST", h.URL+"/api/deployments", body, bearer(token)...), http.StatusBadRequest, parts...)
				Expect(decode[listAnswer](call("GET", h.URL+"/api/deployments", "")).Deployments).To(BeEmpty())
			},
			Entry("no name", `{"package":"left-pad"}`, "name is required"),
			Entry("a blank name", `{"name":"  ","package":"left-pad"}`, "name is required"),
			Entry("a name that is a number", `{"name":5,"package":"left-pad"}`, "name must be a string"),
			Entry("a name with a control character", `{"name":"a\u0007b","package":"left-pad"}`, "name"),
			Entry("a name over 128 characters", `{"name":"`+strings.Repeat("n", 129)+`","package":"left-pad"}`, "name"),
			Entry("no package", `{"name":"x"}`, "package is required"),
			Entry("a git URL", `{"name":"x","package":"git+https://github.com/acme/weather.git"}`, "only npm registry packages"),
			Entry("a GitHub shorthand", `{"name":"x","package":"acme/weather"}`, "GitHub shorthand"),
			Entry("a tarball URL", `{"name":"x","package":"https://example.com/weather.tgz"}`, "only npm registry packages"),
			Entry("a local path", `{"name":"x","package":"./weather"}`, "path"),
			Entry("a name with capitals", `{"name":"x","package":"Weather"}`, "lower case"),
			Entry("a bad version", `{"name":"x","package":"weather@1.2.3.4"}`, "neither a semver version or range"),
			Entry("a shell injection", `{"name":"x","package":"weather; rm -rf /"}`, "package"),
			Entry("env that is an array", `{"name":"x","package":"left-pad","env":["A=1"]}`, "env must be a JSON object"),
			Entry("env that is a string", `{"name":"x","package":"left-pad","env":"A=1"}`, "env must be a JSON object"),
			Entry("env with a number value", `{"name":"x","package":"left-pad","env":{"PORT":8080}}`, "env PORT must be a string"),
			Entry("env with a boolean value", `{"name":"x","package":"left-pad","env":{"DEBUG":true}}`, "env DEBUG must be a string"),
			Entry("env with a null value", `{"name":"x","package":"left-pad","env":{"DEBUG":null}}`, "env DEBUG must be a string"),
			Entry("env with a nested object", `{"name":"x","package":"left-pad","env":{"CFG":{"a":"b"}}}`, "env CFG must be a string"),
			Entry("env with a bad name", `{"name":"x","package":"left-pad","env":{"1BAD":"v"}}`, "not a valid variable name"),
			Entry("env with a dash in a name", `{"name":"x","package":"left-pad","env":{"MY-VAR":"v"}}`, "not a valid variable name"),
			Entry("env setting MCP_PACKAGE", `{"name":"x","package":"left-pad","env":{"MCP_PACKAGE":"evil"}}`, "MCP_PACKAGE is reserved"),
			Entry("env with a NUL in a value", `{"name":"x","package":"left-pad","env":{"K":"a\u0000b"}}`, "NUL"),
			Entry("an unknown field", `{"name":"x","package":"left-pad","replicas":3}`, `unknown field "replicas"`),
			Entry("invalid JSON", `{"name":"x",`, "not valid JSON"),
			Entry("a body that is an array", `[{"name":"x"}]`, "must be a JSON object"),
			Entry("two objects", `{"name":"x","package":"left-pad"}{"name":"y"}`, "nothing after it"),
		)

		It("refuses an empty body with 400", func() {
			r := call("POST", h.URL+"/api/deployments", "", append(bearer(token), "Content-Type", "application/json")...)
			expectError(r, http.StatusBadRequest, "request body is empty")
		})

		It("refuses a body over 64 KiB with 413, with or without a Content-Length", func() {
			big := `{"name":"x","package":"left-pad","env":{"BIG":"` + strings.Repeat("a", 70<<10) + `"}}`
			expectError(call("POST", h.URL+"/api/deployments", big, bearer(token)...), http.StatusRequestEntityTooLarge, "larger than 64 KiB")

			req, err := http.NewRequest("POST", h.URL+"/api/deployments", struct{ *strings.Reader }{strings.NewReader(big)})
			Expect(err).NotTo(HaveOccurred())
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := client.Do(req)
			Expect(err).NotTo(HaveOccurred())
			resp.Body.Close()
			Expect(req.ContentLength).To(BeZero(), "the request was sent chunked")
			Expect(resp.StatusCode).To(Equal(http.StatusRequestEntityTooLarge))
		})

		It("refuses a body that is not JSON with 415", func() {
			expectError(call("POST", h.URL+"/api/deployments", "", append(bearer(token), "Content-Type", "text/plain")...),
				http.StatusUnsupportedMediaType, "content type must be application/json")
			r := call("POST", h.URL+"/api/deployments", "", append(bearer(token), "Content-Type", "application/json; charset=utf-8")...)
			Expect(r.Code).To(Equal(http.StatusBadRequest), "a charset parameter is fine")
		})
	})

	Describe("DELETE /api/deployments/{id}", func() {
		It("marks the deployment deleted, answers 202, and does so again without error", func() {
			id := deployment("doomed", withStatus(status.Running), withMachine("0123456789abcd", "ams"))
			r := call("DELETE", h.URL+"/api/deployments/"+id, "", bearer(token)...)
			Expect(r.Code).To(Equal(http.StatusAccepted), "body: %s", r.Body)
			Expect(r.JSON()["deleted_at"]).NotTo(BeNil())
			var marked bool
			Expect(pool.QueryRow(context.Background(), `SELECT deleted_at IS NOT NULL FROM deployments WHERE id = $1`, id).Scan(&marked)).To(Succeed())
			Expect(marked).To(BeTrue())

			again := call("DELETE", h.URL+"/api/deployments/"+id, "", bearer(token)...)
			Expect(again.Code).To(Equal(http.StatusAccepted))
			Expect(again.JSON()["deleted_at"]).To(Equal(r.JSON()["deleted_at"]))
		})

		It("answers 404 for an unknown id and 400 for a malformed one", func() {
			expectError(call("DELETE", h.URL+"/api/deployments/6f1c2a44-8e0b-4b8e-9a55-0d6f3c1e2b7a", "", bearer(token)...), http.StatusNotFound, "not found")
			expectError(call("DELETE", h.URL+"/api/deployments/'; DROP TABLE deployments; --", "", bearer(token)...), http.StatusBadRequest, "malformed deployment id")
		})
	})

	Describe("routing", func() {
		It("answers 405 in JSON, with Allow, for a method an endpoint does not take", func() {
			r := call("PUT", h.URL+"/api/deployments", `{}`, bearer(token)...)
			expectError(r, http.StatusMethodNotAllowed, "PUT")
			Expect(r.Header.Get("Allow")).To(Equal("GET, HEAD, POST"))
			expectError(call("PATCH", h.URL+"/api/deployments/6f1c2a44-8e0b-4b8e-9a55-0d6f3c1e2b7a", `{}`), http.StatusMethodNotAllowed, "PATCH")
			expectError(call("POST", h.URL+"/api/stream", `{}`), http.StatusMethodNotAllowed, "POST")
		})

		It("answers 404 in JSON for an unknown API path", func() {
			expectError(call("GET", h.URL+"/api/machines", ""), http.StatusNotFound, "no API endpoint /api/machines")
		})

		It("sets no-sniff and no-referrer on every answer", func() {
			for _, path := range []string{"/", "/api/deployments", "/api/nope", "/static/app.js"} {
				r := call("GET", h.URL+path, "")
				Expect(r.Header.Get("X-Content-Type-Options")).To(Equal("nosniff"), path)
				Expect(r.Header.Get("Referrer-Policy")).To(Equal("no-referrer"), path)
			}
		})
	})
})

var _ = Describe("the token rules", func() {
	BeforeEach(truncate)

	Context("on a loopback address without API_TOKEN", func() {
		var h *harness
		BeforeEach(func() { h, _ = startServer() })

		It("serves reads without a token", func() {
			Expect(call("GET", h.URL+"/api/deployments", "").Code).To(Equal(http.StatusOK))
		})

		It("disables writes with 403 and says how to enable them, token or not", func() {
			id := deployment("keep")
			for _, hdr := range [][]string{nil, bearer("anything")} {
				expectError(call("POST", h.URL+"/api/deployments", `{"name":"x","package":"left-pad"}`, hdr...), http.StatusForbidden)
				r := call("DELETE", h.URL+"/api/deployments/"+id, "", hdr...)
				Expect(r.Code).To(Equal(http.StatusForbidden))
				Expect(r.JSON()).To(Equal(map[string]any{"error": "write endpoints are disabled: set API_TOKEN (or --api-token) to enable them"}))
			}
			Expect(decode[listAnswer](call("GET", h.URL+"/api/deployments", "")).Deployments).To(HaveLen(1))
		})
	})

	Context("on a loopback address with API_TOKEN", func() {
		var h *harness
		BeforeEach(func() { h, _ = startServer(withToken(token)) })

		It("serves reads without a token", func() {
			Expect(call("GET", h.URL+"/api/deployments", "").Code).To(Equal(http.StatusOK))
		})

		It("answers 401 with a challenge to a write without the right bearer token", func() {
			for _, hdr := range [][]string{nil, bearer("wrong"), bearer(token + "x"), {"Authorization", "Basic " + token}, {"Authorization", token}} {
				r := call("POST", h.URL+"/api/deployments", `{"name":"x","package":"left-pad"}`, hdr...)
				expectError(r, http.StatusUnauthorized, "missing or invalid bearer token")
				Expect(r.Header.Get("WWW-Authenticate")).To(Equal(`Bearer realm="flightdeck"`))
			}
			Expect(decode[listAnswer](call("GET", h.URL+"/api/deployments", "")).Deployments).To(BeEmpty())
		})

		It("takes the bearer scheme in any case", func() {
			r := call("POST", h.URL+"/api/deployments", `{"name":"x","package":"left-pad"}`, "Authorization", "bearer "+token)
			Expect(r.Code).To(Equal(http.StatusCreated))
		})

		It("checks the token before the body", func() {
			expectError(call("POST", h.URL+"/api/deployments", `not json`), http.StatusUnauthorized)
		})
	})

	Context("on a non-loopback address with API_TOKEN", func() {
		var h *harness
		BeforeEach(func() {
			h, _ = startServer(withToken(token), withReadsNeedToken(),
				withHandlers(okHandler("healthy"), okHandler("ready"), okHandler("metrics")))
		})

		It("needs the token for every read", func() {
			id := deployment("secretive")
			for _, path := range []string{"/api/deployments", "/api/deployments/" + id, "/api/deployments/" + id + "/events", "/api/stream"} {
				expectError(call("GET", h.URL+path, ""), http.StatusUnauthorized, "bearer token")
				expectError(call("GET", h.URL+path, "", bearer("wrong")...), http.StatusUnauthorized, "bearer token")
			}
			for _, path := range []string{"/api/deployments", "/api/deployments/" + id, "/api/deployments/" + id + "/events"} {
				Expect(call("GET", h.URL+path, "", bearer(token)...).Code).To(Equal(http.StatusOK), path)
			}
			s := openStream(h.URL+"/api/stream", bearer(token)...)
			Expect(s.Resp.StatusCode).To(Equal(http.StatusOK))
		})

		It("never takes the token from the URL", func() {
			expectError(call("GET", h.URL+"/api/deployments?access_token="+token, ""), http.StatusUnauthorized)
			expectError(call("GET", h.URL+"/api/stream?access_token="+token, ""), http.StatusUnauthorized)
		})

		It("serves the dashboard page, health, readiness and metrics without a token", func() {
			for path, want := range map[string]string{"/": "<table", "/static/app.js": "EventSource", "/healthz": "healthy", "/readyz": "ready", "/metrics": "metrics"} {
				r := call("GET", h.URL+path, "")
				Expect(r.Code).To(Equal(http.StatusOK), path)
				Expect(string(r.Body)).To(ContainSubstring(want), path)
			}
		})
	})

	Context("on a non-loopback address without API_TOKEN", func() {
		It("disables reads with 403 and says how to enable them", func() {
			h, _ := startServer(withReadsNeedToken())
			expectError(call("GET", h.URL+"/api/deployments", ""), http.StatusForbidden, "HTTP_ADDR is not a loopback address", "set API_TOKEN")
			expectError(call("GET", h.URL+"/api/stream", ""), http.StatusForbidden, "set API_TOKEN")
			expectError(call("POST", h.URL+"/api/deployments", `{}`), http.StatusForbidden, "write endpoints are disabled")
		})
	})
})

var _ = Describe("the dashboard's files", func() {
	var h *harness
	BeforeEach(func() { h, _ = startServer() })

	It("serves the page with a strict content security policy", func() {
		r := call("GET", h.URL+"/", "")
		Expect(r.Code).To(Equal(http.StatusOK))
		Expect(r.Header.Get("Content-Type")).To(HavePrefix("text/html"))
		Expect(r.Header.Get("Content-Security-Policy")).To(And(ContainSubstring("script-src 'self'"), ContainSubstring("default-src 'none'")))
		Expect(string(r.Body)).To(And(ContainSubstring(`<caption>`), ContainSubstring(`aria-live="polite"`), ContainSubstring(`<label for="token">`)))
	})

	It("serves the script and the style sheet with their types", func() {
		Expect(call("GET", h.URL+"/static/app.js", "").Header.Get("Content-Type")).To(HavePrefix("text/javascript"))
		css := call("GET", h.URL+"/static/style.css", "")
		Expect(css.Header.Get("Content-Type")).To(HavePrefix("text/css"))
		Expect(string(css.Body)).To(And(ContainSubstring("#22c55e"), ContainSubstring("#ef4444"), ContainSubstring("#eab308"),
			ContainSubstring("#3b82f6"), ContainSubstring("#6b7280")))
	})

	It("lists no folder and answers 404 for a missing file", func() {
		expectError(call("GET", h.URL+"/static/", ""), http.StatusNotFound)
		Expect(call("GET", h.URL+"/static/nope.js", "").Code).To(Equal(http.StatusNotFound))
		Expect(call("GET", h.URL+"/index.html", "").Code).To(Equal(http.StatusNotFound))
	})
})

func okHandler(body string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(body)) })
}
