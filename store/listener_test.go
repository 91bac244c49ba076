package store_test

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// received collects what a running Listener delivers.
type received struct {
	mu   sync.Mutex
	list []store.Notification
}

func (r *received) all() []store.Notification {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]store.Notification(nil), r.list...)
}

// startListener runs a Listener on both channels against url until the spec
// ends, and waits until it listens.
func startListener(ctx context.Context, cfg store.ListenerConfig) (*store.Listener, *received) {
	GinkgoHelper()
	if cfg.Channels == nil {
		cfg.Channels = []string{store.ChannelDeployments, store.ChannelStatus}
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff, cfg.MaxBackoff = 10*time.Millisecond, 100*time.Millisecond
	}
	l, err := store.NewListener(cfg)
	Expect(err).NotTo(HaveOccurred())
	runCtx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- l.Run(runCtx) }()
	r := &received{}
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for n := range l.Notifications() {
			r.mu.Lock()
			r.list = append(r.list, n)
			r.mu.Unlock()
		}
	}()
	DeferCleanup(func() {
		cancel()
		Eventually(runErr).Should(Receive(BeNil()))
		Eventually(drained).Should(BeClosed())
	})
	return l, r
}

func on(channel, id string) store.Notification {
	return store.Notification{Channel: channel, Payload: id}
}

var _ = Describe("notifications", func() {
	var (
		url string
		s   *store.Store
		l   *store.Listener
		got *received
	)

	BeforeEach(func(ctx SpecContext) {
		url, s = newStore(ctx)
		l, got = startListener(ctx, store.ListenerConfig{DatabaseURL: url + "&application_name=listener_under_test"})
		Eventually(l.Ready()).Should(BeClosed())
	})

	// marker makes a change that notifies flightdeck_deployments and waits
	// for it: notifications arrive in commit order, so whatever an earlier
	// commit sent has arrived by then.
	marker := func(ctx context.Context) {
		GinkgoHelper()
		m := createDeployment(ctx, s, "marker")
		Eventually(got.all).Should(ContainElement(on(store.ChannelDeployments, m.ID)))
	}
	deploymentsNotified := func(id string) bool {
		for _, n := range got.all() {
			if n == on(store.ChannelDeployments, id) {
				return true
			}
		}
		return false
	}

	It("tells the controller about an insert, a spec change, a deletion mark and a deletion", func(ctx SpecContext) {
		d := createDeployment(ctx, s, "watched")
		Eventually(got.all).Should(ContainElement(on(store.ChannelDeployments, d.ID)))

		for _, change := range []string{
			`UPDATE deployments SET package = 'watched@2' WHERE id = $1`,
			`UPDATE deployments SET env = '{"LOG_LEVEL": "debug"}' WHERE id = $1`,
			`UPDATE deployments SET deleted_at = now() WHERE id = $1`,
			`DELETE FROM deployments WHERE id = $1`,
		} {
			before := len(got.all())
			execSQL(ctx, url, change, d.ID)
			Eventually(func() []store.Notification { return got.all()[before:] }).
				Should(ContainElement(on(store.ChannelDeployments, d.ID)), change)
		}
	})

	It("does not tell the controller about its own status and machine writes, nor a rename", func(ctx SpecContext) {
		d := createDeployment(ctx, s, "quiet")
		marker(ctx)
		before := len(got.all())

		d, err := s.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))
		Expect(err).NotTo(HaveOccurred())
		_, err = s.DeploymentRecordMachine(ctx, store.DeploymentRecordMachineParams{ID: d.ID, MachineID: "3d8d9014b32d89", Generation: d.Generation})
		Expect(err).NotTo(HaveOccurred())
		execSQL(ctx, url, `UPDATE deployments SET name = 'renamed', error_message = 'x' WHERE id = $1`, d.ID)
		marker(ctx)

		after := got.all()[before:]
		Expect(after).NotTo(ContainElement(on(store.ChannelDeployments, d.ID)))
		Expect(after).To(ContainElement(on(store.ChannelStatus, d.ID)))
	})

	It("tells live views about every status change", func(ctx SpecContext) {
		d := createDeployment(ctx, s, "live")
		Eventually(got.all).Should(ContainElement(on(store.ChannelStatus, d.ID)))
		before := len(got.all())

		_, err := s.DeploymentTransition(ctx, transition(d, status.Installing, "MachineCreating"))
		Expect(err).NotTo(HaveOccurred())

		Eventually(func() []store.Notification { return got.all()[before:] }).
			Should(ContainElement(on(store.ChannelStatus, d.ID)))
		Expect(deploymentsNotified(d.ID)).To(BeTrue()) // from the insert only
	})

	It("survives a terminated backend and reports that it reconnected", func(ctx SpecContext) {
		Expect(queryValue[int](ctx, pg.AdminURL(),
			`SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'listener_under_test'`)).To(Equal(1))

		Eventually(got.all).Should(ContainElement(store.Notification{Reconnected: true}))
		Expect(l.Check()).To(Succeed())
		d := createDeployment(ctx, s, "after-reconnect")
		Eventually(got.all).Should(ContainElement(on(store.ChannelDeployments, d.ID)))
		all := got.all()
		reconnectedAt := -1
		for i, n := range all {
			if n.Reconnected {
				reconnectedAt = i
			}
		}
		Expect(all[reconnectedAt:]).To(ContainElement(on(store.ChannelDeployments, d.ID)))
	})
})

var _ = Describe("a listener that cannot connect", func() {
	var deadURL string

	BeforeEach(func() {
		// A port nobody listens on.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		port := ln.Addr().(*net.TCPAddr).Port
		Expect(ln.Close()).To(Succeed())
		deadURL = fmt.Sprintf("postgres://nobody@127.0.0.1:%d/none?sslmode=disable&connect_timeout=1", port)
	})

	It("keeps trying, and fails its check once down for longer than allowed", func(ctx SpecContext) {
		l, got := startListener(ctx, store.ListenerConfig{DatabaseURL: deadURL, MaxDowntime: 200 * time.Millisecond})

		Eventually(l.Check).Should(MatchError(And(ContainSubstring("not connected for"), ContainSubstring("connection refused"))))
		Consistently(l.Ready()).ShouldNot(BeClosed())
		Expect(got.all()).To(BeEmpty())
	})

	It("passes its check while down for less than allowed", func(ctx SpecContext) {
		l, _ := startListener(ctx, store.ListenerConfig{DatabaseURL: deadURL, MaxDowntime: time.Hour})

		Consistently(l.Check).Should(Succeed())
	})

	It("is refused without channels or with a bad URL", func() {
		_, err := store.NewListener(store.ListenerConfig{DatabaseURL: "postgres://127.0.0.1/x"})
		Expect(err).To(MatchError(ContainSubstring("channels")))
		_, err = store.NewListener(store.ListenerConfig{DatabaseURL: "postgres://u:hunter2@127.0.0.1:notaport/x", Channels: []string{"c"}})
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("hunter2"))
	})
})
