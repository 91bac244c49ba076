package decision_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestDecision(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Decision Suite")
}

var ignoreGoroutines goleak.Option

var _ = BeforeSuite(func() {
	ignoreGoroutines = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(ignoreGoroutines)).To(Succeed())
})
