package config_test

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestConfig(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Config Suite")
}

var leakOpts []goleak.Option

var _ = BeforeSuite(func() {
	leakOpts = []goleak.Option{goleak.IgnoreCurrent()}
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(leakOpts...)).To(Succeed())
})
