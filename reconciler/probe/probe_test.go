package probe_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/reconciler/decision"
	"github.com/flightdeck/flightdeck/reconciler/probe"
)

// newProber returns a prober closed when the spec ends.
func newProber(opts probe.Options) *probe.Prober {
	p, err := probe.New(opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(p.Close)
	return p
}

// serve starts a loopback server closed when the spec ends; newConns counts the connections it accepted.
func serve(h http.HandlerFunc) (srv *httptest.Server, newConns *atomic.Int64) {
	newConns = &atomic.Int64{}
	srv = httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			newConns.Add(1)
		}
	}
	srv.Start()
	DeferCleanup(srv.Close)
	return srv, newConns
}

// closedPort returns a loopback address nothing listens on: listen, note the port, close.
func closedPort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	addr := l.Addr().String()
	Expect(l.Close()).To(Succeed())
	return addr
}

var _ = Describe("Prober", func() {
	var ctx context.Context

	BeforeEach(func() {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
		DeferCleanup(cancel)
	})

	It("classifies a 200 as ok", func() {
		srv, _ := serve(func(w http.ResponseWriter, r *http.Request) {
			Expect(r.URL.Path).To(Equal("/status"))
			Expect(r.Header.Get("User-Agent")).To(HavePrefix("flightdeck/"))
			_, _ = w.Write([]byte(`{"status":"ok"}`))
		})
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeOK, Code: 200, Message: "HTTP status 200"}))
		Expect(r.Duration).To(BeNumerically(">", 0))
	})

	It("reports a 500 as an HTTP status", func() {
		srv, _ := serve(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeHTTPStatus, Code: 500, Message: "HTTP status 500"}))
	})

	It("reports a redirect as its status and does not follow it", func() {
		var followed atomic.Bool
		srv, _ := serve(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				followed.Store(true)
				return
			}
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
		})
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeHTTPStatus, Code: 302, Message: "HTTP status 302"}))
		Expect(followed.Load()).To(BeFalse())
	})

	It("classifies a closed port as refused", func() {
		r := newProber(probe.Options{}).Probe(ctx, "http://"+closedPort()+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeRefused, Message: "connection refused"}))
	})

	It("classifies a connection reset by the server as reset", func() {
		srv, _ := serve(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.(*net.TCPConn).SetLinger(0)).To(Succeed())
			Expect(conn.Close()).To(Succeed())
		})
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeReset, Message: "connection reset by peer"}))
	})

	It("classifies a server that closes without answering as reset", func() {
		srv, _ := serve(func(w http.ResponseWriter, _ *http.Request) {
			conn, _, err := http.NewResponseController(w).Hijack()
			Expect(err).NotTo(HaveOccurred())
			Expect(conn.Close()).To(Succeed())
		})
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.Kind).To(Equal(decision.ProbeReset))
	})

	It("classifies a server that does not answer within the probe timeout as timeout", func() {
		release := make(chan struct{})
		srv, _ := serve(func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		DeferCleanup(func() { close(release) }) // runs before srv.Close (cleanups run last-in first-out)
		start := time.Now()
		r := newProber(probe.Options{Timeout: 200 * time.Millisecond}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeTimeout, Message: "timed out after 200ms"}))
		Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second))
	})

	It("classifies a host name that does not resolve as a DNS failure", func() {
		dns := startNXDomainServer()
		p := newProber(probe.Options{Resolver: dns.resolver()})
		r := p.Probe(ctx, "http://1857156b526dd8.vm.myapp.internal:8080/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeDNS, Message: "DNS lookup failed: no such host"}))
		Expect(dns.queries.Load()).To(BeNumerically(">", 0), "the injected resolver must have been asked")
	})

	It("reads at most the body cap: an endless body does not hold the probe", func() {
		srv, _ := serve(func(w http.ResponseWriter, r *http.Request) {
			chunk := []byte(strings.Repeat("x", 32<<10))
			for r.Context().Err() == nil {
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		})
		start := time.Now()
		r := newProber(probe.Options{Timeout: 3 * time.Second}).Probe(ctx, srv.URL+"/status")
		Expect(r.Kind).To(Equal(decision.ProbeOK))
		Expect(time.Since(start)).To(BeNumerically("<", 2*time.Second), "the body must be cut, not read to the timeout")
	})

	It("cuts a 10 MB body at the cap and answers with its status", func() {
		srv, _ := serve(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write(make([]byte, 10<<20))
		})
		r := newProber(probe.Options{}).Probe(ctx, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeHTTPStatus, Code: 503, Message: "HTTP status 503"}))
	})

	It("reuses one keep-alive connection across probes, bodies up to the cap included", func() {
		srv, newConns := serve(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(make([]byte, probe.DefaultMaxBodyBytes))
		})
		p := newProber(probe.Options{})
		for range 5 {
			Expect(p.Probe(ctx, srv.URL+"/status").Kind).To(Equal(decision.ProbeOK))
		}
		Expect(newConns.Load()).To(Equal(int64(1)))
	})

	It("does not reuse the connection of a body beyond the cap", func() {
		srv, newConns := serve(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write(make([]byte, 1<<20))
		})
		p := newProber(probe.Options{MaxBodyBytes: 1024})
		for range 3 {
			Expect(p.Probe(ctx, srv.URL+"/status").Kind).To(Equal(decision.ProbeOK))
		}
		Expect(newConns.Load()).To(Equal(int64(3)))
	})

	It("bounds the probes in flight", func() {
		var inFlight, most atomic.Int64
		release := make(chan struct{})
		srv, _ := serve(func(_ http.ResponseWriter, r *http.Request) {
			n := inFlight.Add(1)
			defer inFlight.Add(-1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		p := newProber(probe.Options{MaxInFlight: 2})
		done := make(chan decision.ProbeKind, 5)
		for range 5 {
			go func() { done <- p.Probe(ctx, srv.URL+"/status").Kind }()
		}
		Eventually(inFlight.Load).Should(Equal(int64(2)))
		Consistently(inFlight.Load, 200*time.Millisecond).Should(BeNumerically("<=", 2))
		close(release)
		for range 5 {
			Eventually(done).Should(Receive(Equal(decision.ProbeOK)))
		}
		Expect(most.Load()).To(Equal(int64(2)))
	})

	It("gives up waiting for a slot when the context ends", func() {
		release := make(chan struct{})
		var started atomic.Int64
		srv, _ := serve(func(_ http.ResponseWriter, r *http.Request) {
			started.Add(1)
			select {
			case <-release:
			case <-r.Context().Done():
			}
		})
		DeferCleanup(func() { close(release) })
		p := newProber(probe.Options{MaxInFlight: 1})
		go p.Probe(ctx, srv.URL+"/status")
		Eventually(started.Load).Should(Equal(int64(1)))
		short, cancel := context.WithCancel(ctx)
		cancel()
		r := p.Probe(short, srv.URL+"/status")
		Expect(r.ProbeResult).To(Equal(decision.ProbeResult{Kind: decision.ProbeOther, Message: "probe cancelled"}))
	})

	DescribeTable("rejects inconsistent options",
		func(o probe.Options, msg string) {
			_, err := probe.New(o)
			Expect(err).To(MatchError(ContainSubstring(msg)))
		},
		Entry("a dial timeout as long as the probe timeout", probe.Options{Timeout: time.Second, DialTimeout: time.Second}, "must be shorter than the probe timeout"),
		Entry("a negative timeout", probe.Options{Timeout: -time.Second}, "must not be negative"),
		Entry("a negative in-flight bound", probe.Options{MaxInFlight: -1}, "must not be negative"),
	)
})
