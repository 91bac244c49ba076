package flyclient_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"

	"github.com/flightdeck/flightdeck/flyclient"
	"github.com/flightdeck/flightdeck/internal/version"
)

var _ = Describe("Client against hand-written servers", func() {
	var (
		ctx   context.Context
		clock *fakeClock
	)
	BeforeEach(func() {
		ctx = context.Background()
		clock = newFakeClock()
	})

	Describe("requests on the wire", func() {
		It("sends a plain token as Bearer, the User-Agent and JSON headers", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			req := srv.Requests()[0]
			Expect(req.Method).To(Equal("GET"))
			Expect(req.Path).To(Equal("/v1/apps/" + testApp + "/machines/" + machineA))
			Expect(req.Header.Get("Authorization")).To(Equal("Bearer " + testToken))
			Expect(req.Header.Get("User-Agent")).To(Equal(version.UserAgent()))
			Expect(req.Header.Get("User-Agent")).To(HavePrefix("flightdeck/"))
			Expect(req.Header.Get("Accept")).To(Equal("application/json"))
		})

		DescribeTable("chooses the Authorization scheme from the token",
			func(token, want string) {
				srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `[]`) })
				c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.Token = flyclient.Token(token) })
				_, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
				Expect(err).NotTo(HaveOccurred())
				Expect(srv.Requests()[0].Header.Get("Authorization")).To(Equal(want))
			},
			Entry("a plain token goes as Bearer", "abc123", "Bearer abc123"),
			Entry("a macaroon (fm2_) goes as FlyV1", "fm2_aaa,fm2_bbb", "FlyV1 fm2_aaa,fm2_bbb"),
			Entry("an fm1r_ macaroon goes as FlyV1", "fm1r_xyz", "FlyV1 fm1r_xyz"),
			Entry("a user-supplied Bearer scheme is not doubled", "Bearer abc123", "Bearer abc123"),
			Entry("a user-supplied FlyV1 scheme is kept once", "FlyV1 fm2_aaa", "FlyV1 fm2_aaa"),
			Entry("a Bearer scheme on a macaroon is corrected to FlyV1", "bearer fm1a_q", "FlyV1 fm1a_q"),
		)

		It("accepts a base URL that already ends in /v1", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `[]`) })
			c := newClient(srv.URL+"/v1/", clock)
			_, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(srv.Requests()[0].Path).To(Equal("/v1/apps/" + testApp + "/machines"))
		})

		It("encodes list filters as Fly's query parameters", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, "["+machineJSON(machineA, "started")+"]")
			})
			c := newClient(srv.URL, clock)
			ms, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{
				Metadata: map[string]string{"deployment_id": "d1"}, States: []string{"started", "stopped"},
				Summary: true, IncludeDeleted: true, Region: "ord",
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(ms).To(HaveLen(1))
			Expect(ms[0].ID).To(Equal(machineA))
			q, _ := url.ParseQuery(srv.Requests()[0].RawQuery)
			Expect(q).To(Equal(url.Values{
				"metadata.deployment_id": {"d1"}, "state": {"started,stopped"}, "summary": {"true"},
				"include_deleted": {"true"}, "region": {"ord"},
			}))
		})

		It("sends create, update, stop and destroy with the documented bodies and parameters", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, machineJSON(machineA, "created"))
			})
			c := newClient(srv.URL, clock)
			_, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{
				Name: "fd-x", Region: "ord", SkipLaunch: true,
				Config: flyclient.MachineConfig{Image: "runner:1", Env: flyclient.Env{"MCP_PACKAGE": "left-pad"}},
			})
			Expect(err).NotTo(HaveOccurred())
			_, err = c.UpdateMachine(ctx, machineA, flyclient.UpdateMachineInput{
				Config: flyclient.MachineConfig{Image: "runner:2"}, CurrentVersion: "01HEPA330HZ37A78TK080NAK1M",
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(c.StopMachine(ctx, machineA, flyclient.StopOptions{Signal: "SIGTERM", Timeout: 10 * time.Second})).To(Succeed())
			Expect(c.StopMachine(ctx, machineA, flyclient.StopOptions{})).To(Succeed())
			Expect(c.StartMachine(ctx, machineA)).To(Succeed())
			Expect(c.DestroyMachine(ctx, machineA, true)).To(Succeed())
			Expect(c.DestroyMachine(ctx, machineA, false)).To(Succeed())

			reqs := srv.Requests()
			Expect(reqs).To(HaveLen(7))
			Expect(reqs[0].Method + " " + reqs[0].Path).To(Equal("POST /v1/apps/" + testApp + "/machines"))
			Expect(reqs[0].Header.Get("Content-Type")).To(Equal("application/json"))
			Expect(reqs[0].Body).To(MatchJSON(`{"name":"fd-x","region":"ord","skip_launch":true,
				"config":{"image":"runner:1","env":{"MCP_PACKAGE":"left-pad"}}}`))
			Expect(reqs[1].Method + " " + reqs[1].Path).To(Equal("POST /v1/apps/" + testApp + "/machines/" + machineA))
			Expect(reqs[1].Body).To(MatchJSON(`{"config":{"image":"runner:2"},"current_version":"01HEPA330HZ37A78TK080NAK1M"}`))
			Expect(reqs[2].Path).To(HaveSuffix("/machines/" + machineA + "/stop"))
			Expect(reqs[2].Body).To(MatchJSON(`{"signal":"SIGTERM","timeout":"10s"}`))
			Expect(reqs[3].Body).To(BeEmpty())
			Expect(reqs[4].Method + " " + reqs[4].Path).To(Equal("POST /v1/apps/" + testApp + "/machines/" + machineA + "/start"))
			Expect(reqs[5].Method).To(Equal("DELETE"))
			q, _ := url.ParseQuery(reqs[5].RawQuery)
			Expect(q.Get("force")).To(Equal("true"))
			Expect(q.Get("kill")).To(Equal("true"))
			Expect(reqs[6].RawQuery).To(BeEmpty())
		})

		It("clamps the events limit to Fly's 1–50", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, `[{"id":"01J","type":"start","status":"started","source":"flyd","timestamp":1699408350300}]`)
			})
			c := newClient(srv.URL, clock)
			events, err := c.ListEvents(ctx, machineA, 500)
			Expect(err).NotTo(HaveOccurred())
			Expect(events).To(HaveLen(1))
			Expect(events[0].Time()).To(Equal(time.UnixMilli(1699408350300).UTC()))
			_, err = c.ListEvents(ctx, machineA, 0)
			Expect(err).NotTo(HaveOccurred())
			Expect(srv.Requests()[0].RawQuery).To(Equal("limit=50"))
			Expect(srv.Requests()[1].RawQuery).To(BeEmpty())
		})

		It("refuses a malformed machine id before sending anything", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `{}`) })
			c := newClient(srv.URL, clock)
			for _, id := range []string{"", "../apps", "1857156B526DD8", "1857156b526dd8/stop", "1857156b526dd", "1857156b526dd8a"} {
				_, err := c.GetMachine(ctx, id)
				Expect(errors.Is(err, flyclient.ErrInvalidInput)).To(BeTrue(), id)
				Expect(flyclient.IsPermanent(err)).To(BeTrue())
				Expect(c.StartMachine(ctx, id)).To(MatchError(flyclient.ErrInvalidInput))
				Expect(c.DestroyMachine(ctx, id, true)).To(MatchError(flyclient.ErrInvalidInput))
			}
			Expect(srv.Count()).To(BeZero())
		})

		It("reports every attempt to the OnRequest hook with the route pattern", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 503, `{"error":"try again"}`)
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			var mu sync.Mutex
			var seen []string
			c := newClient(srv.URL, clock, func(o *flyclient.Options) {
				o.OnRequest = func(endpoint string, code int, _ time.Duration) {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, fmt.Sprintf("%s %d", endpoint, code))
				}
			})
			_, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			mu.Lock()
			defer mu.Unlock()
			Expect(seen).To(Equal([]string{"GET /machines/{id} 503", "GET /machines/{id} 200"}))
		})
	})

	Describe("error answers", func() {
		DescribeTable("map to one *APIError class each",
			func(code int, body string, sentinel error, transient, permanent bool) {
				srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
					w.Header().Set("Fly-Request-Id", "01REQUESTID")
					writeJSON(w, code, body)
				})
				c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.MaxRetries = -1 })
				err := c.StartMachine(ctx, machineA)
				Expect(err).To(HaveOccurred())
				var apiErr *flyclient.APIError
				Expect(errors.As(err, &apiErr)).To(BeTrue())
				Expect(apiErr.StatusCode).To(Equal(code))
				Expect(apiErr.RequestID).To(Equal("01REQUESTID"))
				Expect(apiErr.Endpoint).To(Equal(flyclient.EndpointStart))
				Expect(errors.Is(err, sentinel)).To(BeTrue())
				Expect(flyclient.IsTransient(err)).To(Equal(transient))
				Expect(flyclient.IsPermanent(err)).To(Equal(permanent))
				Expect(err.Error()).To(ContainSubstring("starting machine " + machineA))
				Expect(err.Error()).To(ContainSubstring("01REQUESTID"))
			},
			Entry("404 is not found", 404, `{"error":"machine not found"}`, flyclient.ErrNotFound, false, true),
			Entry("401 is unauthorized", 401, `{"error":"invalid token"}`, flyclient.ErrUnauthorized, false, true),
			Entry("403 is unauthorized", 403, `{"error":"unauthorized"}`, flyclient.ErrUnauthorized, false, true),
			Entry("400 is a bad request", 400, `{"error":"invalid_argument: bad"}`, flyclient.ErrBadRequest, false, true),
			Entry("422 is a bad request", 422, `{"error":"org machine limit reached"}`, flyclient.ErrBadRequest, false, true),
			Entry("408 is a timeout", 408, `{"error":"deadline_exceeded: x"}`, flyclient.ErrTimeout, true, false),
			Entry("409 is a conflict", 409, `{"error":"aborted: machine ID 1857156b526dd8 lease currently held by x"}`, flyclient.ErrConflict, true, false),
			Entry("412 is a failed precondition", 412, `{"error":"failed_precondition: machine getting replaced, refusing to start"}`, flyclient.ErrPrecondition, true, false),
			Entry("429 is rate limited", 429, `{"error":"rate limit exceeded"}`, flyclient.ErrRateLimited, true, false),
			Entry("503 insufficient_capacity is capacity", 503, `{"error":"out of capacity","status":"insufficient_capacity"}`, flyclient.ErrCapacity, true, false),
			Entry("name_taken is name taken", 422, `{"error":"a machine with this name already exists","status":"name_taken"}`, flyclient.ErrNameTaken, true, false),
		)

		It("keeps Fly's message and status code string", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 503, `{"error":"out of capacity","status":"insufficient_capacity"}`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.CreateMachine(ctx, flyclient.CreateMachineInput{Config: flyclient.MachineConfig{Image: "i"}})
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.Message).To(Equal("out of capacity"))
			Expect(apiErr.Code).To(Equal("insufficient_capacity"))
			Expect(srv.Count()).To(Equal(1), "a create is never repeated by CreateMachine")
		})

		It("keeps the start of a non-JSON error body, cut to 512 characters", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				w.WriteHeader(500)
				_, _ = io.WriteString(w, "<html>"+strings.Repeat("x", 10000)+"</html>")
			})
			c := newClient(srv.URL, clock)
			err := c.StartMachine(ctx, machineA)
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.Message).To(HavePrefix("<html>xxx"))
			Expect(len(apiErr.Message)).To(BeNumerically("<=", 512+len("…")))
		})

		It("reads the lease envelope's message", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 409, `{"status":"error","message":"lease currently held","code":"already_leased"}`)
			})
			c := newClient(srv.URL, clock)
			err := c.StopMachine(ctx, machineA, flyclient.StopOptions{})
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.Message).To(Equal("lease currently held"))
			Expect(apiErr.Code).To(Equal("already_leased"))
		})
	})

	Describe("bodies the client must not trust", func() {
		It("fails on malformed JSON without retrying", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, `{"id": "1857156b526dd8", "state": started}`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(errors.Is(err, flyclient.ErrUnexpectedResponse)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("getting machine " + machineA))
			Expect(srv.Count()).To(Equal(1))
		})

		It("fails on a machine answer with another id", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, machineJSON(machineB, "started"))
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(errors.Is(err, flyclient.ErrUnexpectedResponse)).To(BeTrue())
		})

		It("fails on trailing data after the JSON value", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, machineJSON(machineA, "started")+`{"id":"x"}`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(errors.Is(err, flyclient.ErrUnexpectedResponse)).To(BeTrue())
		})

		It("stops reading a 10 MB machine body at the 1 MiB cap", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, `{"id":"1857156b526dd8","name":"`)
				chunk := strings.Repeat("a", 64<<10)
				for i := 0; i < 160; i++ { // 10 MiB
					if _, err := io.WriteString(w, chunk); err != nil {
						return
					}
				}
				_, _ = io.WriteString(w, `"}`)
			})
			counter := &countingTransport{next: http.DefaultTransport.(*http.Transport).Clone()}
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.HTTPClient = &http.Client{Transport: counter} })
			DeferCleanup(counter.next.CloseIdleConnections)
			_, err := c.GetMachine(ctx, machineA)
			Expect(errors.Is(err, flyclient.ErrUnexpectedResponse)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("exceeds its size cap"))
			Expect(counter.read.Load()).To(BeNumerically("<=", 1<<20+64<<10), "the client read far more than the cap")
			Expect(srv.Count()).To(Equal(1))
		})

		It("gives up at the context deadline when the server never answers", func() {
			release := make(chan struct{})
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				select {
				case <-r.Context().Done():
				case <-release:
				}
			})
			DeferCleanup(func() { close(release) })
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.Now, o.Sleep = nil, nil })
			dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := c.GetMachine(dctx, machineA)
			Expect(errors.Is(err, context.DeadlineExceeded)).To(BeTrue())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
			Expect(srv.Count()).To(Equal(1), "a dead context is not retried")
		})

		It("retries a GET whose per-attempt timeout passed while the context lives on", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					<-r.Context().Done()
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.RequestTimeout = 100 * time.Millisecond })
			m, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			Expect(m.State).To(Equal(flyclient.StateStarted))
			Expect(srv.Count()).To(Equal(2))
		})
	})

	Describe("retries", func() {
		It("waits out a Retry-After in seconds after a 429, then succeeds", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", "3")
					writeJSON(w, 429, `{"error":"rate limited"}`)
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			Expect(clock.Sleeps()).To(Equal([]time.Duration{3 * time.Second}))
		})

		It("waits out a Retry-After given as an HTTP date", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					w.Header().Set("Retry-After", clock.Now().Add(7*time.Second).Format(http.TimeFormat))
					writeJSON(w, 429, `{"error":"rate limited"}`)
					return
				}
				writeJSON(w, 200, `[]`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(clock.Sleeps()).To(Equal([]time.Duration{7 * time.Second}))
		})

		It("backs off exponentially with jitter after a 429 without Retry-After", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 3 {
					writeJSON(w, 429, `{"error":"rate limited"}`)
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			c := newClient(srv.URL, clock, func(o *flyclient.Options) {
				o.RetryBaseDelay, o.RetryMaxDelay = 100*time.Millisecond, time.Second
			})
			_, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			sleeps := clock.Sleeps()
			Expect(sleeps).To(HaveLen(3))
			Expect(sleeps[0]).To(BeNumerically("~", 75*time.Millisecond, 25*time.Millisecond))
			Expect(sleeps[1]).To(BeNumerically("~", 150*time.Millisecond, 50*time.Millisecond))
			Expect(sleeps[2]).To(BeNumerically("~", 300*time.Millisecond, 100*time.Millisecond))
		})

		It("retries a 429 even on a POST, since Fly refused it before acting", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 429, `{"error":"rate limited"}`)
					return
				}
				writeJSON(w, 200, `{"previous_state":"stopped"}`)
			})
			c := newClient(srv.URL, clock)
			Expect(c.StartMachine(ctx, machineA)).To(Succeed())
			Expect(srv.Count()).To(Equal(2))
		})

		It("gives up at once when Retry-After reaches past the context deadline, reporting it", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				w.Header().Set("Retry-After", "120")
				writeJSON(w, 429, `{"error":"rate limited"}`)
			})
			c := newClient(srv.URL, clock)
			dctx, cancel := context.WithDeadline(ctx, clock.Now().Add(10*time.Second))
			defer cancel()
			_, err := c.GetMachine(dctx, machineA)
			Expect(errors.Is(err, flyclient.ErrRateLimited)).To(BeTrue())
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.RetryAfter).To(Equal(120 * time.Second))
			Expect(srv.Count()).To(Equal(1))
			Expect(clock.Sleeps()).To(BeEmpty())
		})

		It("retries a GET after 503 and 502, then succeeds", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				switch n {
				case 1:
					writeJSON(w, 503, `{"error":"unavailable"}`)
				case 2:
					writeJSON(w, 502, `bad gateway`)
				default:
					writeJSON(w, 200, machineJSON(machineA, "started"))
				}
			})
			c := newClient(srv.URL, clock)
			m, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			Expect(m.ID).To(Equal(machineA))
			Expect(srv.Count()).To(Equal(3))
		})

		It("stops after MaxRetries retries", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 503, `{"error":"unavailable"}`) })
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.MaxRetries = 2 })
			_, err := c.ListEvents(ctx, machineA, 10)
			Expect(errors.Is(err, flyclient.ErrNotFound)).To(BeFalse())
			var apiErr *flyclient.APIError
			Expect(errors.As(err, &apiErr)).To(BeTrue())
			Expect(apiErr.StatusCode).To(Equal(503))
			Expect(srv.Count()).To(Equal(3))
		})

		It("does not retry a POST after a 503 or a 500", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 500+3*(n%2), `{"error":"unavailable"}`)
			})
			c := newClient(srv.URL, clock)
			Expect(c.StartMachine(ctx, machineA)).To(HaveOccurred())
			_, err := c.UpdateMachine(ctx, machineA, flyclient.UpdateMachineInput{Config: flyclient.MachineConfig{Image: "i"}})
			Expect(err).To(HaveOccurred())
			Expect(srv.Count()).To(Equal(2))
		})

		It("retries a GET whose connection is reset in the middle of the body", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					resetConnection(w, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{\"id\":\"1857156b526dd8\",\"sta")
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "stopped"))
			})
			c := newClient(srv.URL, clock)
			m, err := c.GetMachine(ctx, machineA)
			Expect(err).NotTo(HaveOccurred())
			Expect(m.State).To(Equal(flyclient.StateStopped))
			Expect(srv.Count()).To(Equal(2))
		})

		It("does not resend a POST whose connection dropped before the answer", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				resetConnection(w, "")
			})
			c := newClient(srv.URL, clock)
			err := c.StartMachine(ctx, machineA)
			Expect(err).To(HaveOccurred())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(srv.Count()).To(Equal(1))
		})

		It("retries even a POST when the connection cannot be made at all", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {})
			addr := srv.URL
			srv.Close()
			var attempts atomic.Int32
			c := newClient(addr, clock, func(o *flyclient.Options) {
				o.MaxRetries = 2
				o.OnRequest = func(string, int, time.Duration) { attempts.Add(1) }
			})
			err := c.StartMachine(ctx, machineA)
			Expect(err).To(HaveOccurred())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(attempts.Load()).To(BeEquivalentTo(3))
		})

		It("stops retrying when the context is cancelled during the backoff", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 503, `{}`) })
			cctx, cancel := context.WithCancel(ctx)
			c := newClient(srv.URL, clock, func(o *flyclient.Options) {
				o.Sleep = func(context.Context, time.Duration) error { cancel(); return context.Canceled }
			})
			_, err := c.GetMachine(cctx, machineA)
			Expect(err).To(HaveOccurred())
			Expect(srv.Count()).To(Equal(1))
		})
	})

	Describe("the client-side rate limiter", func() {
		It("lets a burst of 10 Get Machine calls through, then spaces them at 5 per second", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.GetRate, o.GetBurst = 0, 0 })
			for i := 0; i < 12; i++ {
				_, err := c.GetMachine(ctx, machineA)
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(clock.Sleeps()).To(Equal([]time.Duration{200 * time.Millisecond, 200 * time.Millisecond}))
		})

		It("limits actions at 1 per second, burst 3, per machine", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `{}`) })
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.ActionRate, o.ActionBurst = 0, 0 })
			for i := 0; i < 3; i++ {
				Expect(c.StartMachine(ctx, machineA)).To(Succeed())
				Expect(c.StartMachine(ctx, machineB)).To(Succeed())
			}
			Expect(clock.Sleeps()).To(BeEmpty(), "each machine has its own bucket")
			Expect(c.StartMachine(ctx, machineA)).To(Succeed())
			Expect(clock.Sleeps()).To(Equal([]time.Duration{time.Second}))
		})

		It("fails fast with ErrRateLimited when the wait would pass the deadline", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `{}`) })
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.ActionRate, o.ActionBurst = 0.1, 1 })
			dctx, cancel := context.WithTimeout(ctx, 5*time.Second) // the next slot is 10s away
			defer cancel()
			Expect(c.StartMachine(dctx, machineA)).To(Succeed())
			err := c.StartMachine(dctx, machineA)
			Expect(errors.Is(err, flyclient.ErrRateLimited)).To(BeTrue())
			Expect(flyclient.IsTransient(err)).To(BeTrue())
			Expect(srv.Count()).To(Equal(1))
		})

		It("forgets the buckets of machines idle long enough to have refilled", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, `{}`) })
			c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.ActionRate, o.ActionBurst = 0, 0 })
			for i := 0; i < 2000; i++ {
				Expect(c.StartMachine(ctx, fmt.Sprintf("%014x", i))).To(Succeed())
			}
			_, actions := c.LimiterSizes()
			Expect(actions).To(Equal(2000))
			clock.Advance(3 * time.Minute)
			Expect(c.StartMachine(ctx, machineA)).To(Succeed())
			_, actions = c.LimiterSizes()
			Expect(actions).To(Equal(1))
		})
	})

	Describe("WaitMachine", func() {
		It("loops over 408s with server timeouts of at most 60s until the overall timeout", func() {
			var mu sync.Mutex
			var timeouts []string
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				t := r.URL.Query().Get("timeout")
				mu.Lock()
				timeouts = append(timeouts, t)
				mu.Unlock()
				var secs int
				_, _ = fmt.Sscan(t, &secs)
				clock.Advance(time.Duration(secs) * time.Second) // the server blocked that long
				writeJSON(w, 408, `{"error":"deadline_exceeded: machine failed to reach desired state, started, currently created"}`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{Timeout: 150 * time.Second})
			Expect(errors.Is(err, flyclient.ErrTimeout)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("waiting for machine " + machineA + " to be started"))
			mu.Lock()
			defer mu.Unlock()
			Expect(timeouts).To(Equal([]string{"60", "60", "30"}))
		})

		It("stays inside the context's deadline and reports a timeout, not a cut request", func() {
			var mu sync.Mutex
			var timeouts []string
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				t := r.URL.Query().Get("timeout")
				mu.Lock()
				timeouts = append(timeouts, t)
				mu.Unlock()
				var secs int
				_, _ = fmt.Sscan(t, &secs)
				clock.Advance(time.Duration(secs) * time.Second)
				writeJSON(w, 408, `{"error":"deadline_exceeded: machine failed to reach desired state, started, currently created"}`)
			})
			c := newClient(srv.URL, clock)
			dctx, cancel := context.WithDeadline(ctx, clock.Now().Add(90*time.Second+500*time.Millisecond))
			defer cancel()
			_, err := c.WaitMachine(dctx, machineA, flyclient.WaitOptions{Timeout: 10 * time.Minute})
			Expect(errors.Is(err, flyclient.ErrTimeout)).To(BeTrue())
			Expect(errors.Is(err, context.DeadlineExceeded)).To(BeFalse())
			mu.Lock()
			defer mu.Unlock()
			Expect(timeouts).To(Equal([]string{"60", "30"}), "the context's 90.5s, rounded down")
		})

		It("returns the state reached and sends states, timeout and instance_id", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 200, `{"ok":true,"state":"suspended"}`)
			})
			c := newClient(srv.URL, clock)
			state, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{
				States: []string{"stopped", "suspended"}, InstanceID: "01HEPA330HZ37A78TK080NAK1M", Timeout: 20 * time.Second,
			})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal("suspended"))
			q, _ := url.ParseQuery(srv.Requests()[0].RawQuery)
			Expect(q).To(Equal(url.Values{"state": {"stopped", "suspended"}, "timeout": {"20"}, "instance_id": {"01HEPA330HZ37A78TK080NAK1M"}}))
		})

		It("tolerates the 404 of a just-created machine", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n <= 2 {
					writeJSON(w, 404, `{"error":"machine not found"}`)
					return
				}
				writeJSON(w, 200, `{"ok":true}`)
			})
			c := newClient(srv.URL, clock)
			state, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{Timeout: time.Minute})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateStarted))
			Expect(srv.Count()).To(Equal(3))
		})

		It("gives up with ErrNotFound when the machine never appears", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 404, `{"error":"machine not found"}`)
			})
			c := newClient(srv.URL, clock)
			_, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{Timeout: 5 * time.Second})
			Expect(errors.Is(err, flyclient.ErrNotFound)).To(BeTrue())
		})

		It("treats 404 as reached when waiting for destroyed", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				writeJSON(w, 404, `{"error":"machine not found"}`)
			})
			c := newClient(srv.URL, clock)
			state, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{States: []string{flyclient.StateDestroyed}})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateDestroyed))
		})

		It("reads the machine's state when a settled wait does not say it", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if strings.HasSuffix(r.URL.Path, "/wait") {
					writeJSON(w, 200, `{"ok":true}`)
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "failed"))
			})
			c := newClient(srv.URL, clock)
			state, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{States: []string{flyclient.StateSettled}})
			Expect(err).NotTo(HaveOccurred())
			Expect(state).To(Equal(flyclient.StateFailed))
		})

		It("returns other errors at once", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) { writeJSON(w, 401, `{"error":"invalid token"}`) })
			c := newClient(srv.URL, clock)
			_, err := c.WaitMachine(ctx, machineA, flyclient.WaitOptions{})
			Expect(errors.Is(err, flyclient.ErrUnauthorized)).To(BeTrue())
			Expect(srv.Count()).To(Equal(1))
		})
	})

	Describe("EnsureMachine", func() {
		const deploymentID = "6f1c9a52-1c1e-4e8a-9d57-2f0e4c1d7a10"
		name := flyclient.MachineNameFor(deploymentID)
		owned := func(id string) string {
			return fmt.Sprintf(`{"id":%q,"name":%q,"state":"started","config":{"image":"i","metadata":{"deployment_id":%q}}}`, id, name, deploymentID)
		}
		input := flyclient.CreateMachineInput{Region: "ord", Config: flyclient.MachineConfig{
			Image: "runner", Metadata: map[string]string{"team": "a"},
		}}

		It("creates the machine under the derived name with the deployment id in its metadata", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, 200, owned(machineA)) })
			c := newClient(srv.URL, clock)
			m, created, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeTrue())
			Expect(m.ID).To(Equal(machineA))
			var sent struct {
				Name   string `json:"name"`
				Config struct {
					Metadata map[string]string `json:"metadata"`
				} `json:"config"`
			}
			Expect(json.Unmarshal([]byte(srv.Requests()[0].Body), &sent)).To(Succeed())
			Expect(sent.Name).To(Equal("fd-" + deploymentID))
			Expect(sent.Config.Metadata).To(Equal(map[string]string{"team": "a", "deployment_id": deploymentID}))
			Expect(input.Config.Metadata).To(Equal(map[string]string{"team": "a"}), "the caller's map is not changed")
		})

		It("returns the existing machine when the name is taken", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				if r.Method == "POST" {
					writeJSON(w, 422, `{"error":"machine name already taken","status":"name_taken"}`)
					return
				}
				Expect(r.URL.Query().Get("metadata.deployment_id")).To(Equal(deploymentID))
				writeJSON(w, 200, "["+owned(machineB)+"]")
			})
			c := newClient(srv.URL, clock)
			m, created, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse())
			Expect(m.ID).To(Equal(machineB))
			Expect(srv.Count()).To(Equal(2))
		})

		It("adopts the holder of the name when it carries no deployment id", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				switch {
				case r.Method == "POST":
					writeJSON(w, 409, `{"error":"a machine with name `+name+` already exists"}`)
				case r.URL.Query().Get("summary") == "true":
					writeJSON(w, 200, fmt.Sprintf(`[{"id":%q,"name":"other","state":"started"},{"id":%q,"name":%q,"state":"stopped"}]`, machineA, machineB, name))
				case strings.HasSuffix(r.URL.Path, "/machines"):
					writeJSON(w, 200, `[]`)
				default:
					writeJSON(w, 200, fmt.Sprintf(`{"id":%q,"name":%q,"state":"stopped","config":{"image":"i"}}`, machineB, name))
				}
			})
			c := newClient(srv.URL, clock)
			m, created, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse())
			Expect(m.ID).To(Equal(machineB))
		})

		It("refuses a name held by another deployment's machine", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				switch {
				case r.Method == "POST":
					writeJSON(w, 422, `{"error":"name taken","status":"name_taken"}`)
				case r.URL.Query().Get("summary") == "true":
					writeJSON(w, 200, fmt.Sprintf(`[{"id":%q,"name":%q,"state":"started"}]`, machineB, name))
				case strings.HasSuffix(r.URL.Path, "/machines"):
					writeJSON(w, 200, `[]`)
				default:
					writeJSON(w, 200, fmt.Sprintf(`{"id":%q,"name":%q,"state":"started","config":{"image":"i","metadata":{"deployment_id":"someone-else"}}}`, machineB, name))
				}
			})
			c := newClient(srv.URL, clock)
			_, _, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(errors.Is(err, flyclient.ErrNameTaken)).To(BeTrue())
			Expect(flyclient.IsPermanent(err)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("someone-else"))
		})

		It("finds the machine after a 408 on create instead of making a second one", func() {
			var creates atomic.Int32
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				if r.Method == "POST" {
					creates.Add(1)
					writeJSON(w, 408, `{"error":"deadline_exceeded: request timed out"}`)
					return
				}
				writeJSON(w, 200, "["+owned(machineA)+"]")
			})
			c := newClient(srv.URL, clock)
			m, created, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeFalse())
			Expect(m.ID).To(Equal(machineA))
			Expect(creates.Load()).To(BeEquivalentTo(1))
		})

		It("creates again after an ambiguous failure when no machine exists", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				switch {
				case r.Method == "POST" && n == 1:
					resetConnection(w, "")
				case r.Method == "POST":
					writeJSON(w, 200, owned(machineA))
				default:
					writeJSON(w, 200, `[]`)
				}
			})
			c := newClient(srv.URL, clock)
			m, created, err := c.EnsureMachine(ctx, deploymentID, input)
			Expect(err).NotTo(HaveOccurred())
			Expect(created).To(BeTrue())
			Expect(m.ID).To(Equal(machineA))
			var methods []string
			for _, r := range srv.Requests() {
				methods = append(methods, r.Method)
			}
			Expect(methods).To(Equal([]string{"POST", "GET", "POST"}))
		})

		It("neither looks up nor retries after a definite refusal", func() {
			for _, answer := range []struct {
				code int
				body string
			}{{400, `{"error":"invalid_argument: bad image"}`}, {503, `{"error":"out of capacity","status":"insufficient_capacity"}`}} {
				srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) { writeJSON(w, answer.code, answer.body) })
				c := newClient(srv.URL, clock)
				_, _, err := c.EnsureMachine(ctx, deploymentID, input)
				var apiErr *flyclient.APIError
				Expect(errors.As(err, &apiErr)).To(BeTrue())
				Expect(apiErr.StatusCode).To(Equal(answer.code))
				Expect(srv.Count()).To(Equal(1))
			}
		})
	})

	Describe("secrecy of the token", func() {
		It("never prints the token in %v, %+v, %#v or %s of Options, Client and Token", func() {
			opts := flyclient.Options{BaseURL: "http://127.0.0.1:1", Token: testToken, App: testApp}
			c, err := flyclient.New(opts)
			Expect(err).NotTo(HaveOccurred())
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
				hidden := struct{ inner flyclient.Client }{*c} // unexported: fmt skips Format methods
				for _, v := range []any{opts, &opts, c, *c, hidden, &hidden, opts.Token, []any{opts.Token}, map[string]any{"t": opts}} {
					out := fmt.Sprintf(verb, v)
					Expect(out).NotTo(ContainSubstring(testToken), verb)
					Expect(out).NotTo(ContainSubstring(fmt.Sprintf("%x", testToken)), verb)
				}
			}
			b, err := json.Marshal(opts.Token)
			Expect(err).NotTo(HaveOccurred())
			Expect(string(b)).NotTo(ContainSubstring(testToken))
			Expect(fmt.Sprintf("%v", c)).To(ContainSubstring(testApp))
		})

		It("scrubs the token from an error message that echoes it", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
				writeJSON(w, 401, fmt.Sprintf(`{"error":"invalid token %s"}`, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")))
			})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(ctx, machineA)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring(testToken))
			Expect(fmt.Sprintf("%+v", err)).NotTo(ContainSubstring(testToken))
			Expect(fmt.Sprintf("%#v", err)).NotTo(ContainSubstring(testToken))
			Expect(err.Error()).To(ContainSubstring("invalid token [redacted]"))
		})

		It("logs retries with the endpoint, from the context's logger, without the token", func() {
			srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, n int) {
				if n == 1 {
					writeJSON(w, 503, fmt.Sprintf(`{"error":"busy %s"}`, testToken))
					return
				}
				writeJSON(w, 200, machineJSON(machineA, "started"))
			})
			var mu sync.Mutex
			var lines []string
			logger := funcr.New(func(prefix, args string) {
				mu.Lock()
				defer mu.Unlock()
				lines = append(lines, args)
			}, funcr.Options{Verbosity: 1})
			c := newClient(srv.URL, clock)
			_, err := c.GetMachine(logr.NewContext(ctx, logger), machineA)
			Expect(err).NotTo(HaveOccurred())
			mu.Lock()
			defer mu.Unlock()
			Expect(lines).To(HaveLen(1))
			Expect(lines[0]).To(ContainSubstring(`"msg"="Retrying Fly API request"`))
			Expect(lines[0]).To(ContainSubstring(`"endpoint"="GET /machines/{id}"`))
			Expect(lines[0]).NotTo(ContainSubstring(testToken))
		})

		It("keeps the token out of transport errors", func() {
			c := newClient("http://127.0.0.1:1", clock, func(o *flyclient.Options) { o.MaxRetries = -1 })
			_, err := c.ListMachines(ctx, flyclient.ListMachinesOptions{})
			Expect(err).To(HaveOccurred())
			Expect(fmt.Sprintf("%+v", err)).NotTo(ContainSubstring(testToken))
		})

		It("refuses empty tokens and bad base URLs without echoing them", func() {
			_, err := flyclient.New(flyclient.Options{App: testApp, Token: "Bearer   "})
			Expect(err).To(MatchError(ContainSubstring("token is empty")))
			_, err = flyclient.New(flyclient.Options{App: testApp, Token: "a\nb"})
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring("a\nb"))
			_, err = flyclient.New(flyclient.Options{App: testApp, Token: testToken, BaseURL: "http://user:pw@127.0.0.1"})
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).NotTo(ContainSubstring("pw"))
			_, err = flyclient.New(flyclient.Options{App: testApp, Token: testToken, BaseURL: "ftp://127.0.0.1"})
			Expect(err).To(HaveOccurred())
			_, err = flyclient.New(flyclient.Options{Token: testToken})
			Expect(err).To(MatchError(ContainSubstring("app name is empty")))
		})
	})

	It("classifies errors as transient or permanent", func() {
		Expect(flyclient.IsTransient(nil)).To(BeFalse())
		Expect(flyclient.IsPermanent(nil)).To(BeFalse())
		Expect(flyclient.IsTransient(context.Canceled)).To(BeFalse())
		Expect(flyclient.IsPermanent(context.Canceled)).To(BeFalse())
		Expect(flyclient.IsTransient(fmt.Errorf("x: %w", context.DeadlineExceeded))).To(BeTrue())
		Expect(flyclient.IsTransient(&flyclient.APIError{StatusCode: 500})).To(BeTrue())
		Expect(flyclient.IsPermanent(&flyclient.APIError{StatusCode: 500})).To(BeFalse())
		Expect(flyclient.IsPermanent(&flyclient.APIError{StatusCode: 404})).To(BeTrue())
		Expect(flyclient.IsTransient(&flyclient.APIError{StatusCode: 409, Code: "insufficient_capacity"})).To(BeTrue())
		Expect(flyclient.IsTransient(fmt.Errorf("x: %w", io.ErrUnexpectedEOF))).To(BeTrue())
		Expect(flyclient.IsTransient(errors.New("something else"))).To(BeFalse())
		Expect(flyclient.IsPermanent(errors.New("something else"))).To(BeFalse())
	})

	It("serves concurrent calls from one client without a data race", func() {
		srv := newAPIServer(func(w http.ResponseWriter, r *http.Request, _ int) {
			id := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
			writeJSON(w, 200, machineJSON(id, "started"))
		})
		c := newClient(srv.URL, clock, func(o *flyclient.Options) { o.GetRate = rate.Inf })
		var wg sync.WaitGroup
		errs := make(chan error, 200)
		for i := 0; i < 200; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				defer GinkgoRecover()
				id := fmt.Sprintf("%014x", i)
				m, err := c.GetMachine(ctx, id)
				if err == nil && m.ID != id {
					err = fmt.Errorf("got %s for %s", m.ID, id)
				}
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			Expect(err).NotTo(HaveOccurred())
		}
	})
})

// countingTransport counts the response body bytes the client reads.
type countingTransport struct {
	next *http.Transport
	read atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.read}
	return resp, nil
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}
