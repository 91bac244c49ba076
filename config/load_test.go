package config_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"os"
	"regexp"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
)

// envOf turns a map into a getenv function.
func envOf(m map[string]string) func(string) string {
	return func(name string) string { return m[name] }
}

// validationVars returns the variables named by a Load or Validate error.
func validationVars(err error) []string {
	var verrs config.ValidationErrors
	ExpectWithOffset(1, errors.As(err, &verrs)).To(BeTrue(), "want ValidationErrors, got %T: %v", err, err)
	return verrs.Vars()
}

var _ = Describe("Load", func() {
	It("applies the documented defaults when nothing is set", func() {
		cfg, err := config.Load(nil, envOf(nil))
		Expect(err).NotTo(HaveOccurred())

		Expect(cfg.DatabaseURL.Value()).To(BeEmpty())
		Expect(cfg.FlyAPIBaseURL).To(Equal("https://api.machines.dev"))
		Expect(cfg.FlyAPIToken.Value()).To(BeEmpty())
		Expect(cfg.FlyAppName).To(BeEmpty())
		Expect(cfg.FlyRunnerImage).To(Equal("registry.fly.io/flightdeck-runner:latest"))
		Expect(cfg.ProbeURLTemplate).To(Equal("http://{machine_id}.vm.{app}.internal:8080/status"))
		Expect(cfg.CheckInterval).To(Equal(30 * time.Second))
		Expect(cfg.StartupPollInterval).To(Equal(2 * time.Second))
		Expect(cfg.StartupTimeout).To(Equal(60 * time.Second))
		Expect(cfg.ProbeTimeout).To(Equal(5 * time.Second))
		Expect(cfg.HTTPAddr).To(Equal("127.0.0.1:8080"))
		Expect(cfg.APIToken.Value()).To(BeEmpty())
		Expect(cfg.LogFormat).To(Equal("json"))
		Expect(cfg.LogLevel).To(Equal("info"))
		Expect(cfg.MaxConcurrentReconciles).To(Equal(64))
		Expect(cfg.LeaderElect).To(BeTrue())
		Expect(cfg.LeaseDuration).To(Equal(15 * time.Second))
		Expect(cfg.LeaseRenewDeadline).To(Equal(10 * time.Second))
		Expect(cfg.LeaseRetryPeriod).To(Equal(2 * time.Second))
		Expect(cfg.Migrate).To(BeTrue())
		Expect(cfg.ResyncInterval).To(Equal(5 * time.Minute))
		Expect(cfg.ShutdownTimeout).To(Equal(30 * time.Second))
		Expect(cfg.LoopbackHTTP()).To(BeTrue())
	})

	It("names the leader after the host plus a random suffix, different for each process", func() {
		host, err := os.Hostname()
		Expect(err).NotTo(HaveOccurred())
		a, err := config.Load(nil, nil)
		Expect(err).NotTo(HaveOccurred())
		b, err := config.Load(nil, nil)
		Expect(err).NotTo(HaveOccurred())
		Expect(a.LeaderID).To(MatchRegexp("^" + regexp.QuoteMeta(host) + "_[0-9a-f]{8}$"))
		Expect(a.LeaderID).NotTo(Equal(b.LeaderID))
	})

	It("reads every variable from the environment", func() {
		cfg, err := config.Load(nil, envOf(map[string]string{
			"DATABASE_URL":              "postgres://app:pw@db.internal:5432/flightdeck",
			"FLY_API_BASE_URL":          "http://127.0.0.1:4280",
			"FLY_API_TOKEN":             "FlyV1 fm2_abc,fm2_def",
			"FLY_APP_NAME":              "mcp-servers",
			"FLY_RUNNER_IMAGE":          "registry.fly.io/runner@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
			"PROBE_URL_TEMPLATE":        "http://{private_ip}:8080/status",
			"CHECK_INTERVAL":            "10s",
			"STARTUP_POLL_INTERVAL":     "500ms",
			"STARTUP_TIMEOUT":           "20s",
			"PROBE_TIMEOUT":             "1s",
			"HTTP_ADDR":                 ":9090",
			"API_TOKEN":                 "write-token",
			"LOG_FORMAT":                "console",
			"LOG_LEVEL":                 "debug",
			"MAX_CONCURRENT_RECONCILES": "8",
			"LEADER_ELECT":              "false",
			"LEASE_DURATION":            "6s",
			"LEASE_RENEW_DEADLINE":      "4s",
			"LEASE_RETRY_PERIOD":        "1s",
			"LEADER_ID":                 "controller-a",
			"MIGRATE":                   "false",
			"RESYNC_INTERVAL":           "1m",
			"SHUTDOWN_TIMEOUT":          "3s",
		}), config.RequiredForRun()...)
		Expect(err).NotTo(HaveOccurred())

		Expect(cfg.DatabaseURL.Value()).To(Equal("postgres://app:pw@db.internal:5432/flightdeck"))
		Expect(cfg.FlyAPIBaseURL).To(Equal("http://127.0.0.1:4280"))
		Expect(cfg.FlyAPIToken.Value()).To(Equal("FlyV1 fm2_abc,fm2_def"))
		Expect(cfg.FlyAppName).To(Equal("mcp-servers"))
		Expect(cfg.FlyRunnerImage).To(HavePrefix("registry.fly.io/runner@sha256:"))
		Expect(cfg.ProbeURLTemplate).To(Equal("http://{private_ip}:8080/status"))
		Expect(cfg.CheckInterval).To(Equal(10 * time.Second))
		Expect(cfg.StartupPollInterval).To(Equal(500 * time.Millisecond))
		Expect(cfg.StartupTimeout).To(Equal(20 * time.Second))
		Expect(cfg.ProbeTimeout).To(Equal(time.Second))
		Expect(cfg.HTTPAddr).To(Equal(":9090"))
		Expect(cfg.APIToken.Value()).To(Equal("write-token"))
		Expect(cfg.LogFormat).To(Equal("console"))
		Expect(cfg.LogLevel).To(Equal("debug"))
		Expect(cfg.MaxConcurrentReconciles).To(Equal(8))
		Expect(cfg.LeaderElect).To(BeFalse())
		Expect(cfg.LeaseDuration).To(Equal(6 * time.Second))
		Expect(cfg.LeaseRenewDeadline).To(Equal(4 * time.Second))
		Expect(cfg.LeaseRetryPeriod).To(Equal(time.Second))
		Expect(cfg.LeaderID).To(Equal("controller-a"))
		Expect(cfg.Migrate).To(BeFalse())
		Expect(cfg.ResyncInterval).To(Equal(time.Minute))
		Expect(cfg.ShutdownTimeout).To(Equal(3 * time.Second))
		Expect(cfg.LoopbackHTTP()).To(BeFalse())
	})

	It("lets a flag win over its variable", func() {
		cfg, err := config.Load([]string{
			"--check-interval=20s",
			"--database-url", "postgres://flag@db/x",
			"--fly-app-name=from-flag",
			"--api-token=", // explicitly empty: writes disabled despite the environment
			"--leader-elect=false",
			"--migrate", // a boolean flag alone means true
		}, envOf(map[string]string{
			"CHECK_INTERVAL": "10s",
			"DATABASE_URL":   "postgres://env@db/x",
			"FLY_APP_NAME":   "from-env",
			"API_TOKEN":      "env-token",
			"LEADER_ELECT":   "true",
			"MIGRATE":        "false",
			"LOG_LEVEL":      "warn",
		}))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.CheckInterval).To(Equal(20 * time.Second))
		Expect(cfg.DatabaseURL.Value()).To(Equal("postgres://flag@db/x"))
		Expect(cfg.FlyAppName).To(Equal("from-flag"))
		Expect(cfg.APIToken.IsSet()).To(BeFalse())
		Expect(cfg.LeaderElect).To(BeFalse())
		Expect(cfg.Migrate).To(BeTrue())
		Expect(cfg.LogLevel).To(Equal("warn"), "a variable without a flag keeps its environment value")
	})

	It("forgets a bad environment value that a good flag overrides", func() {
		cfg, err := config.Load([]string{"--check-interval=45s"}, envOf(map[string]string{"CHECK_INTERVAL": "30"}))
		Expect(err).NotTo(HaveOccurred())
		Expect(cfg.CheckInterval).To(Equal(45 * time.Second))
	})

	It("reports a bad flag that overrides a good environment value", func() {
		_, err := config.Load([]string{"--check-interval=30"}, envOf(map[string]string{"CHECK_INTERVAL": "30s"}))
		Expect(err).To(MatchError(`CHECK_INTERVAL: "30" is not a duration (try 30s)`))
	})

	It("reports every bad flag and every bad variable together", func() {
		_, err := config.Load(
			[]string{"--probe-timeout=soon", "--max-concurrent-reconciles=lots", "--log-format=xml"},
			envOf(map[string]string{"CHECK_INTERVAL": "30", "LEADER_ELECT": "yes please"}),
		)
		Expect(err).To(HaveOccurred())
		Expect(validationVars(err)).To(Equal([]string{
			"CHECK_INTERVAL", "PROBE_TIMEOUT", "LOG_FORMAT", "MAX_CONCURRENT_RECONCILES", "LEADER_ELECT",
		}))
	})

	It("returns flag.ErrHelp for -h and --help, writing nothing", func() {
		for _, arg := range []string{"-h", "--help"} {
			_, err := config.Load([]string{arg}, nil)
			Expect(err).To(BeIdenticalTo(flag.ErrHelp))
		}
	})

	It("rejects an unknown flag", func() {
		_, err := config.Load([]string{"--no-such-flag=1"}, nil)
		Expect(err).To(MatchError(ContainSubstring("no-such-flag")))
		Expect(errors.Is(err, flag.ErrHelp)).To(BeFalse())
	})

	It("rejects positional arguments", func() {
		_, err := config.Load([]string{"extra"}, nil)
		Expect(err).To(MatchError(ContainSubstring(`unexpected argument "extra"`)))
	})

	It("lets a subcommand add its own flags and arguments with LoadWith", func() {
		fs := flag.NewFlagSet("migrate", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		dryRun := fs.Bool("dry-run", false, "print only")
		cfg, err := config.LoadWith(fs, []string{"--dry-run", "--database-url=postgres://db/x", "up"}, nil,
			config.RequiredForMigrate()...)
		Expect(err).NotTo(HaveOccurred())
		Expect(*dryRun).To(BeTrue())
		Expect(fs.Args()).To(Equal([]string{"up"}))
		Expect(cfg.DatabaseURL.Value()).To(Equal("postgres://db/x"))
	})

	It("prints each flag with its variable and default in the flag set's help", func() {
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		var out bytes.Buffer
		fs.SetOutput(&out)
		_, err := config.LoadWith(fs, []string{"-h"}, envOf(map[string]string{"FLY_API_TOKEN": "env-s3cr3t"}))
		Expect(err).To(BeIdenticalTo(flag.ErrHelp))
		Expect(out.String()).To(ContainSubstring("-check-interval"))
		Expect(out.String()).To(ContainSubstring("$CHECK_INTERVAL"))
		Expect(out.String()).To(ContainSubstring("(default 30s)"))
		Expect(out.String()).To(ContainSubstring("-fly-api-token"))
		Expect(out.String()).NotTo(ContainSubstring("env-s3cr3t"))
	})

	Describe("required variables", func() {
		It("names every variable flightdeck run needs when none is set", func() {
			_, err := config.Load(nil, nil, config.RequiredForRun()...)
			Expect(err).To(MatchError(
				"DATABASE_URL: not set (set $DATABASE_URL or --database-url)\n" +
					"FLY_API_TOKEN: not set (set $FLY_API_TOKEN or --fly-api-token)\n" +
					"FLY_APP_NAME: not set (set $FLY_APP_NAME or --fly-app-name)"))
		})

		It("asks only for DATABASE_URL for flightdeck migrate", func() {
			_, err := config.Load(nil, nil, config.RequiredForMigrate()...)
			Expect(validationVars(err)).To(Equal([]string{"DATABASE_URL"}))
			_, err = config.Load([]string{"--database-url=host=db dbname=x"}, nil, config.RequiredForMigrate()...)
			Expect(err).NotTo(HaveOccurred())
		})

		It("treats an unknown required name as a caller bug, not silence", func() {
			err := config.Default().Validate("NO_SUCH_VAR")
			Expect(err).To(MatchError(ContainSubstring("NO_SUCH_VAR: is not a configuration variable")))
		})
	})
})

var _ = DescribeTable("LoopbackHTTP",
	func(addr string, want bool) {
		cfg := config.Default()
		cfg.HTTPAddr = addr
		Expect(cfg.LoopbackHTTP()).To(Equal(want))
	},
	Entry("127.0.0.1 is loopback", "127.0.0.1:8080", true),
	Entry("any 127/8 address is loopback", "127.0.0.2:8080", true),
	Entry("[::1] is loopback", "[::1]:8080", true),
	Entry("localhost is loopback", "localhost:8080", true),
	Entry("LOCALHOST is loopback", "LOCALHOST:8080", true),
	Entry("an empty host is every interface", ":8080", false),
	Entry("0.0.0.0 is every interface", "0.0.0.0:8080", false),
	Entry("[::] is every interface", "[::]:8080", false),
	Entry("a private address is not loopback", "10.0.0.1:8080", false),
	Entry("a host name is not loopback", "flightdeck.internal:8080", false),
	Entry("a malformed address is not loopback", "127.0.0.1", false),
)

func errorsAs(err error, target any) bool { return errors.As(err, target) }
