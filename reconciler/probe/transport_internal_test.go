package probe

import (
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// The environment's proxy settings cannot be tested by behaviour (net/http reads them once per process and
// never proxies loopback), so the shared transport's configuration is checked directly.
var _ = Describe("The shared transport", func() {
	It("takes no proxy from the environment and keeps the configured timeouts and limits", func() {
		p, err := New(Options{Timeout: 4 * time.Second, IdleConnTimeout: time.Minute, MaxIdleConns: 5000})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		Expect(p.transport.Proxy).To(BeNil())
		Expect(p.transport.IdleConnTimeout).To(Equal(time.Minute))
		Expect(p.transport.MaxIdleConns).To(Equal(5000))
		Expect(p.transport.MaxIdleConnsPerHost).To(Equal(DefaultMaxIdleConnsPerHost))
		Expect(p.transport.TLSHandshakeTimeout).To(Equal(2*time.Second), "dial timeout defaults to half the probe timeout")
		Expect(p.client.CheckRedirect(nil, nil)).To(MatchError(http.ErrUseLastResponse))
		Expect(p.client.Timeout).To(BeZero(), "each probe's context carries the timeout")
	})
})
