package web

import (
	"context"
	"time"

	"github.com/go-logr/logr"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
)

// The hub's own specs, for what the API suite cannot provoke on purpose: a
// client too slow to keep up.
var _ = Describe("the stream hub", func() {
	noLoad := func(context.Context, string) (sseEvent, error) { return sseEvent{}, nil }

	It("drops a client that falls a full buffer behind, and keeps the others", func() {
		h := newHub(logr.Discard(), 10, noLoad)
		slow, err := h.subscribe()
		Expect(err).NotTo(HaveOccurred())
		fast, err := h.subscribe()
		Expect(err).NotTo(HaveOccurred())
		for i := 0; i < clientBuffer; i++ {
			h.broadcast(sseEvent{name: eventDeployment, data: []byte("{}")})
			Eventually(fast.events).Should(Receive())
		}
		Expect(slow.gone).NotTo(BeClosed())
		h.broadcast(sseEvent{name: eventDeployment, data: []byte("{}")})
		Expect(slow.gone).To(BeClosed())
		Expect(fast.gone).NotTo(BeClosed())
		Expect(fast.events).To(Receive())
		Expect(h.clientCount()).To(Equal(1))
	})

	It("runs once, and refuses new clients once it has stopped", func() {
		h := newHub(logr.Discard(), 10, noLoad)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- h.run(ctx, make(chan store.Notification)) }()
		c, err := h.subscribe()
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() hubState {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.state
		}).Should(Equal(hubRunning))
		Expect(h.run(ctx, nil)).To(MatchError("web server already started"))
		cancel()
		Eventually(done).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
		Expect(c.gone).To(BeClosed())
		_, err = h.subscribe()
		Expect(err).To(MatchError(errStreamUnavailable))
	})
})
