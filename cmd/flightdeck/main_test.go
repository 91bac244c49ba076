package main

import (
	"bytes"
	"context"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"
)

func TestFlightdeck(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "flightdeck command Suite")
}

var ignoreGoroutines goleak.Option

var _ = BeforeSuite(func() {
	ignoreGoroutines = goleak.IgnoreCurrent()
})

var _ = AfterSuite(func() {
	Expect(goleak.Find(ignoreGoroutines)).To(Succeed())
})

// runCommand runs the flightdeck command line with args and returns its exit
// code, standard output and standard error.
func runCommand(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := dispatch(context.Background(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

var _ = Describe("the flightdeck command", func() {
	It("lists its subcommands and exits 2 when called without one", func() {
		code, _, stderr := runCommand()
		Expect(code).To(Equal(2))
		for _, name := range []string{"run", "migrate", "sim", "version"} {
			Expect(stderr).To(ContainSubstring("  " + name + " "))
		}
	})

	It("names an unknown subcommand", func() {
		code, _, stderr := runCommand("deploy")
		Expect(code).To(Equal(2))
		Expect(stderr).To(ContainSubstring(`unknown command "deploy"`))
	})

	It("prints its version", func() {
		code, stdout, _ := runCommand("version")
		Expect(code).To(Equal(0))
		Expect(stdout).To(HavePrefix("flightdeck "))
	})

	It("refuses to run with every configuration problem named, and no secret in the output", func() {
		GinkgoT().Setenv("DATABASE_URL", "")
		GinkgoT().Setenv("FLY_APP_NAME", "")
		GinkgoT().Setenv("FLY_API_TOKEN", "")
		code, _, stderr := runCommand("run", "--check-interval", "30", "--api-token", "tok-s3cr3t-value",
			"--database-url", "postgres://app:pw-s3cr3t@127.0.0.1:1/db")
		Expect(code).To(Equal(1))
		Expect(stderr).To(ContainSubstring(`CHECK_INTERVAL: "30" is not a duration (try 30s)`))
		Expect(stderr).To(ContainSubstring("FLY_APP_NAME"))
		Expect(stderr).To(ContainSubstring("FLY_API_TOKEN"))
		Expect(stderr).NotTo(ContainSubstring("s3cr3t"))
	})

	It("refuses to migrate without a database URL, naming the variable", func() {
		GinkgoT().Setenv("DATABASE_URL", "")
		code, _, stderr := runCommand("migrate")
		Expect(code).To(Equal(1))
		Expect(stderr).To(ContainSubstring("DATABASE_URL: not set"))
	})
})
