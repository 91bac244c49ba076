package main

import (
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestBench(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Bench Suite")
}

var ignoreGoroutines goleak.Option

var _ = BeforeSuite(func() {
	ignoreGoroutines = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Eventually(func() error { return goleak.Find(ignoreGoroutines) }).Should(Succeed())
})
