package reconciler_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestReconciler(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Reconciler Suite")
}

var ignoreGoroutines goleak.Option

var _ = BeforeSuite(func() {
	ignoreGoroutines = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(ignoreGoroutines)).To(Succeed())
})
