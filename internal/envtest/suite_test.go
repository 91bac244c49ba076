package envtest_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestEnvtest(t *testing.T) {
	RegisterFailHandler(Fail)
	// Generous for a loaded machine; passing specs do not wait for it.
	SetDefaultEventuallyTimeout(10 * time.Second)
	RunSpecs(t, "envtest suite")
}

var leakBaseline goleak.Option

var _ = BeforeSuite(func() {
	leakBaseline = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakBaseline)).To(Succeed())
})
