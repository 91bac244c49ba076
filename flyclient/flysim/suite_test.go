package flysim_test

import (
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestFlysim(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "flysim suite")
}

var leakOpts goleak.Option

var _ = BeforeSuite(func() {
	SetDefaultEventuallyTimeout(5 * time.Second)
	SetDefaultEventuallyPollingInterval(5 * time.Millisecond)
	SetDefaultConsistentlyDuration(150 * time.Millisecond)
	SetDefaultConsistentlyPollingInterval(10 * time.Millisecond)
	leakOpts = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakOpts)).To(Succeed())
})
