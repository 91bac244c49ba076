package flyclient_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestFlyclient(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "flyclient")
}

var leakBaseline goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	// Servers and clients are closed in DeferCleanup; their goroutines take
	// a moment to exit.
	Eventually(func() error { return goleak.Find(leakBaseline) }).Should(Succeed())
})
