package probe_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestProbe(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Probe Suite")
}

var ignoreGoroutines goleak.Option

var _ = BeforeSuite(func() {
	ignoreGoroutines = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	// Closed servers and closed idle connections leave their goroutines a moment to return.
	Eventually(func() error { return goleak.Find(ignoreGoroutines) }).Should(Succeed())
})
