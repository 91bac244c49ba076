package config_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
)

// loadErrLines loads env and returns the lines of the error.
func loadErrLines(env map[string]string, args ...string) []string {
	_, err := config.Load(args, envOf(env))
	ExpectWithOffset(1, err).To(HaveOccurred())
	return strings.Split(err.Error(), "\n")
}

var _ = DescribeTable("an invalid value is named, with its variable, in the error",
	func(env map[string]string, want ...string) {
		Expect(loadErrLines(env)).To(Equal(want))
	},
	Entry("a duration without unit suggests seconds", map[string]string{"CHECK_INTERVAL": "30"},
		`CHECK_INTERVAL: "30" is not a duration (try 30s)`),
	Entry("a duration in words suggests the default", map[string]string{"PROBE_TIMEOUT": "five"},
		`PROBE_TIMEOUT: "five" is not a duration (try 5s)`),
	Entry("a negative duration", map[string]string{"STARTUP_TIMEOUT": "-1s"},
		`STARTUP_TIMEOUT: -1s must be greater than zero`),
	Entry("a zero duration", map[string]string{"RESYNC_INTERVAL": "0s"},
		`RESYNC_INTERVAL: 0s must be greater than zero`),
	Entry("a probe timeout as long as the check interval", map[string]string{"PROBE_TIMEOUT": "30s"},
		`PROBE_TIMEOUT: 30s must be shorter than CHECK_INTERVAL (30s)`),
	Entry("a startup poll slower than the check interval", map[string]string{"STARTUP_POLL_INTERVAL": "1m"},
		`STARTUP_POLL_INTERVAL: 1m must not be longer than CHECK_INTERVAL (30s)`),
	Entry("a startup timeout shorter than one poll and one probe", map[string]string{"STARTUP_TIMEOUT": "1s"},
		`STARTUP_TIMEOUT: 1s must not be shorter than STARTUP_POLL_INTERVAL (2s)`,
		`PROBE_TIMEOUT: 5s must be shorter than STARTUP_TIMEOUT (1s)`),
	Entry("a mistyped check interval does not also blame the probe timeout compared with it",
		map[string]string{"CHECK_INTERVAL": "3O s", "PROBE_TIMEOUT": "40s"},
		`CHECK_INTERVAL: "3O s" is not a duration (try 30s)`),
	Entry("a database URL of another scheme, password redacted", map[string]string{"DATABASE_URL": "mysql://app:hunter2@db/x"},
		`DATABASE_URL: "mysql://app:[redacted]@db/x" is not a PostgreSQL URL (postgres://user:password@host:5432/db)`),
	Entry("a database URL with an unescaped slash in its password", map[string]string{"DATABASE_URL": "postgres://app:hun/ter2@db/x"},
		`DATABASE_URL: "postgres://[redacted]@db/x" is not a valid URL (percent-encode special characters of the user and password)`),
	Entry("a key=value string with an unterminated quote", map[string]string{"DATABASE_URL": "host=db password='hunter2"},
		`DATABASE_URL: "host=db password=[redacted]" is not a valid key=value connection string: an unterminated quote in the value of password`),
	Entry("a database URL of neither form is not echoed", map[string]string{"DATABASE_URL": "hunter2"},
		`DATABASE_URL: is neither a postgres:// URL nor a key=value connection string (value not shown: it may hold a password)`),
	Entry("a Fly API base URL without scheme", map[string]string{"FLY_API_BASE_URL": "api.machines.dev"},
		`FLY_API_BASE_URL: "api.machines.dev" is not an absolute http(s) URL`),
	Entry("a Fly API base URL of another scheme", map[string]string{"FLY_API_BASE_URL": "ftp://api.machines.dev"},
		`FLY_API_BASE_URL: "ftp://api.machines.dev" is not an absolute http(s) URL`),
	Entry("a Fly API base URL with credentials", map[string]string{"FLY_API_BASE_URL": "https://me:hunter2@api.machines.dev"},
		`FLY_API_BASE_URL: "https://me:[redacted]@api.machines.dev" must not hold credentials (the token goes in FLY_API_TOKEN)`),
	Entry("a Fly API base URL with a query", map[string]string{"FLY_API_BASE_URL": "https://api.machines.dev/?x=1"},
		`FLY_API_BASE_URL: "https://api.machines.dev/?x=1" must not have a query or fragment`),
	Entry("a Fly token with a trailing newline is not echoed", map[string]string{"FLY_API_TOKEN": "hunter2\n"},
		`FLY_API_TOKEN: has leading or trailing whitespace (value not shown)`),
	Entry("a Fly token smuggling a header is not echoed", map[string]string{"FLY_API_TOKEN": "hunter2\r\nX-Evil: 1"},
		`FLY_API_TOKEN: contains a control character (value not shown)`),
	Entry("an app name with capitals and underscores", map[string]string{"FLY_APP_NAME": "My_App"},
		`FLY_APP_NAME: "My_App" is not a Fly app name (lowercase letters, digits and dashes, at most 63, no dash at either end)`),
	Entry("an app name starting with a dash", map[string]string{"FLY_APP_NAME": "-app"},
		`FLY_APP_NAME: "-app" is not a Fly app name (lowercase letters, digits and dashes, at most 63, no dash at either end)`),
	Entry("an app name longer than a DNS label", map[string]string{"FLY_APP_NAME": strings.Repeat("a", 64)},
		`FLY_APP_NAME: "`+strings.Repeat("a", 64)+`" is not a Fly app name (lowercase letters, digits and dashes, at most 63, no dash at either end)`),
	Entry("an image reference with spaces", map[string]string{"FLY_RUNNER_IMAGE": "my runner"},
		`FLY_RUNNER_IMAGE: "my runner" is not an image reference (registry/name:tag or registry/name@sha256:digest)`),
	Entry("an image reference in capitals", map[string]string{"FLY_RUNNER_IMAGE": "registry.fly.io/Runner:latest"},
		`FLY_RUNNER_IMAGE: "registry.fly.io/Runner:latest" is not an image reference (registry/name:tag or registry/name@sha256:digest)`),
	Entry("a probe template with an unknown placeholder", map[string]string{"PROBE_URL_TEMPLATE": "http://{machine}.vm.{app}.internal:8080/status"},
		`PROBE_URL_TEMPLATE: unknown placeholder {machine} in "http://{machine}.vm.{app}.internal:8080/status" (known: {machine_id}, {app}, {private_ip})`),
	Entry("a probe template that is not http", map[string]string{"PROBE_URL_TEMPLATE": "tcp://{machine_id}.vm.{app}.internal:8080"},
		`PROBE_URL_TEMPLATE: "tcp://{machine_id}.vm.{app}.internal:8080" is not an http(s) URL`),
	Entry("a probe template with the private IP inside a host name", map[string]string{"PROBE_URL_TEMPLATE": "http://{private_ip}.nip.io/status"},
		`PROBE_URL_TEMPLATE: "http://{private_ip}.nip.io/status": {private_ip} must be the whole host (http://{private_ip}:8080/status)`),
	Entry("a probe template with an unclosed brace", map[string]string{"PROBE_URL_TEMPLATE": "http://{machine_id.vm.{app}.internal/"},
		`PROBE_URL_TEMPLATE: "http://{machine_id.vm.{app}.internal/" has a '{' without a matching '}'`),
	Entry("an HTTP address without port", map[string]string{"HTTP_ADDR": "8080"},
		`HTTP_ADDR: "8080" is not host:port (try 127.0.0.1:8080, or :8080 for all interfaces)`),
	Entry("an HTTP address with a port out of range", map[string]string{"HTTP_ADDR": "127.0.0.1:99999"},
		`HTTP_ADDR: "127.0.0.1:99999" has an invalid port (0 to 65535)`),
	Entry("an HTTP address with an invalid host", map[string]string{"HTTP_ADDR": "bad_host:8080"},
		`HTTP_ADDR: "bad_host:8080" has an invalid host`),
	Entry("an API token with a control character is not echoed", map[string]string{"API_TOKEN": "hunter2\x00"},
		`API_TOKEN: contains a control character (value not shown)`),
	Entry("an unknown log format", map[string]string{"LOG_FORMAT": "text"},
		`LOG_FORMAT: "text" is not one of json, console`),
	Entry("an unknown log level", map[string]string{"LOG_LEVEL": "verbose"},
		`LOG_LEVEL: "verbose" is not one of debug, info, warn, error`),
	Entry("zero concurrent reconciles", map[string]string{"MAX_CONCURRENT_RECONCILES": "0"},
		`MAX_CONCURRENT_RECONCILES: 0 is not between 1 and 10000`),
	Entry("a concurrency in words", map[string]string{"MAX_CONCURRENT_RECONCILES": "many"},
		`MAX_CONCURRENT_RECONCILES: "many" is not a whole number`),
	Entry("a boolean in words", map[string]string{"LEADER_ELECT": "yes"},
		`LEADER_ELECT: "yes" is not a boolean (true or false)`),
	Entry("a lease of a fraction of a second", map[string]string{"LEASE_DURATION": "15500ms"},
		`LEASE_DURATION: 15.5s must be a whole number of seconds (the lease records seconds)`),
	Entry("a renew deadline as long as the lease", map[string]string{"LEASE_RENEW_DEADLINE": "15s"},
		`LEASE_RENEW_DEADLINE: 15s must be shorter than LEASE_DURATION (15s)`),
	Entry("a retry period too close to the renew deadline", map[string]string{"LEASE_RETRY_PERIOD": "9s"},
		`LEASE_RETRY_PERIOD: 9s is too long: LEASE_RENEW_DEADLINE (10s) must exceed 1.2 × LEASE_RETRY_PERIOD`),
	Entry("a leader id with a space", map[string]string{"LEADER_ID": "host a"},
		`LEADER_ID: "host a" contains whitespace or a control character`),
	Entry("a migrate flag in words", map[string]string{"MIGRATE": "maybe"},
		`MIGRATE: "maybe" is not a boolean (true or false)`),
	Entry("a negative shutdown timeout", map[string]string{"SHUTDOWN_TIMEOUT": "-5s"},
		`SHUTDOWN_TIMEOUT: -5s must be greater than zero`),
)

var _ = Describe("Validate", func() {
	It("reports one problem for every variable at once, in table order", func() {
		_, err := config.Load(nil, envOf(map[string]string{
			"DATABASE_URL":              "mysql://db/x",
			"FLY_API_BASE_URL":          "api.machines.dev",
			"FLY_API_TOKEN":             " fly-s3cr3t",
			"FLY_APP_NAME":              "Bad App",
			"FLY_RUNNER_IMAGE":          "not an image",
			"PROBE_URL_TEMPLATE":        "http://{nope}/",
			"CHECK_INTERVAL":            "30",
			"STARTUP_POLL_INTERVAL":     "-2s",
			"STARTUP_TIMEOUT":           "a minute",
			"PROBE_TIMEOUT":             "0",
			"HTTP_ADDR":                 "localhost",
			"API_TOKEN":                 "api-s3cr3t\n",
			"LOG_FORMAT":                "xml",
			"LOG_LEVEL":                 "loud",
			"MAX_CONCURRENT_RECONCILES": "-1",
			"LEADER_ELECT":              "sure",
			"LEASE_DURATION":            "ten seconds",
			"LEASE_RENEW_DEADLINE":      "0s",
			"LEASE_RETRY_PERIOD":        "forever",
			"LEADER_ID":                 "has\ttab",
			"MIGRATE":                   "perhaps",
			"RESYNC_INTERVAL":           "5",
			"SHUTDOWN_TIMEOUT":          "0s",
		}))
		Expect(err).To(HaveOccurred())
		var names []string
		for _, v := range config.Variables() {
			names = append(names, v.Name)
		}
		Expect(validationVars(err)).To(Equal(names))
		Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
	})

	It("accepts the defaults plus the required variables", func() {
		cfg := config.Default()
		cfg.DatabaseURL = "postgres://app:pw@localhost:5432/flightdeck?sslmode=disable"
		cfg.FlyAPIToken = "fly-token"
		cfg.FlyAppName = "mcp-servers"
		Expect(cfg.Validate(config.RequiredForRun()...)).To(Succeed())
	})

	DescribeTable("accepts the database URL forms pgx accepts",
		func(dsn string) {
			cfg := config.Default()
			cfg.DatabaseURL = config.ConnString(dsn)
			Expect(cfg.Validate(config.RequiredForMigrate()...)).To(Succeed())
		},
		Entry("a postgres URL", "postgres://app:pw@db.internal:5432/flightdeck"),
		Entry("a postgresql URL with query", "postgresql://app@db/flightdeck?sslmode=verify-full&connect_timeout=5"),
		Entry("a URL with a socket directory", "postgres:///flightdeck?host=/var/run/postgresql"),
		Entry("a URL with several hosts", "postgres://app:pw@db1:5432,db2:5433/flightdeck"),
		Entry("a URL with an escaped password", "postgres://app:p%2Fw%40rd@db/flightdeck"),
		Entry("key=value pairs", "host=db port=5432 user=app password=pw dbname=flightdeck"),
		Entry("key = value with a quoted password", `host = db password = 'p w\'d'`),
	)

	It("accepts the probe URL forms the simulator and Fly use", func() {
		for _, tmpl := range []string{
			"http://{machine_id}.vm.{app}.internal:8080/status",
			"http://{private_ip}:8080/status",
			"https://{private_ip}/status",
			"http://127.0.0.1:4280/machines/{machine_id}/status?app={app}",
		} {
			cfg := config.Default()
			cfg.ProbeURLTemplate = tmpl
			Expect(cfg.Validate()).To(Succeed(), tmpl)
		}
	})

	It("lets errors.As find each problem", func() {
		cfg := config.Default()
		cfg.CheckInterval = 0
		cfg.LogLevel = "trace"
		var fe *config.FieldError
		err := cfg.Validate()
		Expect(err).To(BeAssignableToTypeOf(config.ValidationErrors{}))
		Expect(errorsAs(err, &fe)).To(BeTrue())
		Expect(fe.Var).To(Equal("CHECK_INTERVAL"))
		Expect(fe.Problem).To(Equal("0s must be greater than zero"))
	})
})
