package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store/status"
)

var _ = Describe("the event stream", func() {
	BeforeEach(truncate)

	It("starts with a retry hint and pushes each committed status change with the deployment's JSON", func() {
		id := deployment("streamed", withEnv(map[string]string{"TOKEN": "t"}))
		h, _ := startServer(withHeartbeat(time.Hour))
		s := openStream(h.URL + "/api/stream")
		Expect(s.Resp.StatusCode).To(Equal(http.StatusOK))
		Expect(s.Resp.Header.Get("Content-Type")).To(Equal("text/event-stream; charset=utf-8"))
		Expect(s.Resp.Header.Get("Cache-Control")).To(Equal("no-store"))
		Eventually(s.Messages).Should(Receive(Equal(sseMessage{Retry: "250"})))

		for _, step := range []struct {
			to       status.Status
			progress string
		}{
			{status.Installing, "Creating Fly machine..."},
			{status.Starting, "Installing packages and starting server..."},
			{status.Running, ""},
		} {
			setStatus(id, step.to, step.progress, "")
			ev := s.nextEvent()
			Expect(ev.Event).To(Equal("deployment"))
			var d map[string]any
			Expect(json.Unmarshal([]byte(ev.Data), &d)).To(Succeed())
			Expect(d["id"]).To(Equal(id))
			Expect(d["status"]).To(Equal(string(step.to)))
			if step.progress == "" {
				Expect(d["progress_message"]).To(BeNil())
			} else {
				Expect(d["progress_message"]).To(Equal(step.progress))
			}
			Expect(d["env_keys"]).To(Equal([]any{"TOKEN"}))
			Expect(d).NotTo(HaveKey("env"))
		}
	})

	It("pushes a new deployment as soon as it is inserted", func() {
		h, _ := startServer()
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		id := deployment("fresh")
		ev := s.nextEvent()
		Expect(ev.Event).To(Equal("deployment"))
		Expect(ev.Data).To(ContainSubstring(`"id":"` + id + `"`))
		Expect(ev.Data).To(ContainSubstring(`"status":"pending"`))
	})

	It("says deleted when a row is removed", func() {
		id := deployment("gone")
		h, _ := startServer()
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		_, err := pool.Exec(context.Background(), `DELETE FROM deployments WHERE id = $1`, id)
		Expect(err).NotTo(HaveOccurred())
		ev := s.nextEvent()
		Expect(ev).To(Equal(sseMessage{Event: "deleted", Data: `{"id":"` + id + `"}`}))
	})

	It("sends every client the same change", func() {
		id := deployment("shared")
		h, _ := startServer()
		a := openStream(h.URL + "/api/stream")
		b := openStream(h.URL + "/api/stream")
		Eventually(a.Messages).Should(Receive(HaveField("Retry", "250")))
		Eventually(b.Messages).Should(Receive(HaveField("Retry", "250")))
		setStatus(id, status.Installing, "Creating Fly machine...", "")
		Expect(a.nextEvent().Data).To(ContainSubstring(`"status":"installing"`))
		Expect(b.nextEvent().Data).To(ContainSubstring(`"status":"installing"`))
	})

	It("sends a heartbeat comment at the configured interval while idle", func() {
		h, _ := startServer(withHeartbeat(50 * time.Millisecond))
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		Eventually(s.Messages).Should(Receive(Equal(sseMessage{Comment: "connected"})))
		Eventually(s.Messages).Should(Receive(Equal(sseMessage{Comment: "heartbeat"})))
		Eventually(s.Messages).Should(Receive(Equal(sseMessage{Comment: "heartbeat"})))
	})

	It("sends no heartbeat before the interval", func() {
		h, _ := startServer(withHeartbeat(time.Hour))
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		Eventually(s.Messages).Should(Receive(Equal(sseMessage{Comment: "connected"})))
		Consistently(s.Messages, 300*time.Millisecond).ShouldNot(Receive())
	})

	It("ends open streams and refuses new ones with 503 once Start returned", func() {
		h, stop := startServer()
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		stop()
		Eventually(s.done).Should(BeClosed())
		expectError(call("GET", h.URL+"/api/stream", ""), http.StatusServiceUnavailable, "live updates are not available")
		Expect(call("GET", h.URL+"/api/deployments", "").Code).To(Equal(http.StatusOK), "reads still work")
	})

	It("refuses streams beyond the configured number with 503", func() {
		h, _ := startServer(withMaxStreamClients(2))
		a := openStream(h.URL + "/api/stream")
		b := openStream(h.URL + "/api/stream")
		Expect(a.Resp.StatusCode).To(Equal(http.StatusOK))
		Expect(b.Resp.StatusCode).To(Equal(http.StatusOK))
		expectError(call("GET", h.URL+"/api/stream", ""), http.StatusServiceUnavailable, "too many open event streams")
		a.Close()
		Eventually(func() int {
			c := openStream(h.URL + "/api/stream")
			defer c.Close()
			return c.Resp.StatusCode
		}).Should(Equal(http.StatusOK), "a closed stream frees its place")
	})
})

var _ = Describe("the event stream after a lost database connection", func() {
	It("tells clients to fetch the list again, since changes may have been missed", func(ctx SpecContext) {
		h, _ := startServer()
		s := openStream(h.URL + "/api/stream")
		Eventually(s.Messages).Should(Receive(HaveField("Retry", "250")))
		n, err := pg.TerminateBackends(ctx, "web")
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeNumerically(">=", 1))
		pool.Reset() // the pool's connections were cut too
		Expect(s.nextEvent()).To(Equal(sseMessage{Event: "resync", Data: "{}"}))

		id := deployment("after-reconnect")
		Expect(s.nextEvent().Data).To(ContainSubstring(id), "the stream goes on after the resync")
	})
})
