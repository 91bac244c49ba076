package config_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
)

// secretConfig is a valid configuration whose three secrets all contain "s3cr3t".
func secretConfig() config.Config {
	cfg := config.Default()
	cfg.DatabaseURL = "postgres://app:db-s3cr3t@db.internal:5432/flightdeck?sslmode=disable"
	cfg.FlyAPIToken = "FlyV1 fm2_fly-s3cr3t"
	cfg.FlyAppName = "mcp-servers"
	cfg.APIToken = "api-s3cr3t"
	return cfg
}

var _ = Describe("printing a Config", func() {
	var cfg config.Config
	BeforeEach(func() { cfg = secretConfig() })

	DescribeTable("never shows a secret but keeps the rest readable",
		func(print func(config.Config) string, wantHost bool) {
			out := print(cfg)
			Expect(out).NotTo(ContainSubstring("s3cr3t"))
			Expect(out).To(ContainSubstring("[redacted]"))
			if wantHost {
				Expect(out).To(ContainSubstring("db.internal:5432/flightdeck"))
				Expect(out).To(ContainSubstring("mcp-servers"))
			}
		},
		Entry("String", func(c config.Config) string { return c.String() }, true),
		Entry("%v", func(c config.Config) string { return fmt.Sprintf("%v", c) }, true),
		Entry("%+v", func(c config.Config) string { return fmt.Sprintf("%+v", c) }, true),
		Entry("%#v", func(c config.Config) string { return fmt.Sprintf("%#v", c) }, true),
		Entry("%s", func(c config.Config) string { return fmt.Sprintf("%s", c) }, true),
		Entry("%q", func(c config.Config) string { return fmt.Sprintf("%q", c) }, true),
		Entry("%v of a pointer", func(c config.Config) string { return fmt.Sprintf("%v", &c) }, true),
		Entry("%+v of a pointer", func(c config.Config) string { return fmt.Sprintf("%+v", &c) }, true),
		Entry("%#v of a pointer", func(c config.Config) string { return fmt.Sprintf("%#v", &c) }, true),
		Entry("%+v of a struct holding it", func(c config.Config) string {
			return fmt.Sprintf("%+v", struct{ Cfg config.Config }{c})
		}, true),
		Entry("%#v of a struct holding it", func(c config.Config) string {
			return fmt.Sprintf("%#v", struct{ Cfg config.Config }{c})
		}, true),
		Entry("JSON", func(c config.Config) string { return mustJSON(c) }, true),
		Entry("JSON of a pointer inside a struct", func(c config.Config) string {
			return mustJSON(struct{ Cfg *config.Config }{&c})
		}, true),
		Entry("slog JSON", func(c config.Config) string {
			var b bytes.Buffer
			slog.New(slog.NewJSONHandler(&b, nil)).Info("Starting", "config", c)
			return b.String()
		}, true),
		Entry("slog text", func(c config.Config) string {
			var b bytes.Buffer
			slog.New(slog.NewTextHandler(&b, nil)).Info("Starting", "config", c)
			return b.String()
		}, true),
		Entry("logr MarshalLog as JSON", func(c config.Config) string { return mustJSON(c.MarshalLog()) }, true),
		Entry("%v of the Fly token alone", func(c config.Config) string { return fmt.Sprintf("%v", c.FlyAPIToken) }, false),
		Entry("%x of the API token alone", func(c config.Config) string {
			return fmt.Sprintf("%s %x", c.APIToken, c.APIToken)
		}, false),
		Entry("%#v of the database URL alone", func(c config.Config) string { return fmt.Sprintf("%#v", c.DatabaseURL) }, false),
		Entry("an error wrapping the token with %v", func(c config.Config) string {
			return fmt.Errorf("calling Fly with %v", c.FlyAPIToken).Error()
		}, false),
	)

	It("prints NAME=value pairs in table order with String and %v", func() {
		out := fmt.Sprint(cfg)
		Expect(out).To(HavePrefix(`DATABASE_URL=postgres://app:[redacted]@db.internal:5432/flightdeck?sslmode=disable FLY_API_BASE_URL=https://api.machines.dev FLY_API_TOKEN=[redacted] FLY_APP_NAME=mcp-servers `))
		Expect(out).To(ContainSubstring(" CHECK_INTERVAL=30s "))
		Expect(out).To(ContainSubstring(" STARTUP_TIMEOUT=1m "))
		Expect(out).To(HaveSuffix(" MIGRATE=true RESYNC_INTERVAL=5m SHUTDOWN_TIMEOUT=30s"))
	})

	It("shows an unset secret as empty, not as redacted", func() {
		cfg.APIToken = ""
		Expect(cfg.String()).To(ContainSubstring(` API_TOKEN="" `))
		Expect(fmt.Sprintf("%#v", cfg)).To(ContainSubstring(`APIToken:""`))
		Expect(mustJSON(cfg.APIToken)).To(Equal(`""`))
	})

	It("prints field names and short durations with %+v", func() {
		out := fmt.Sprintf("%+v", cfg)
		Expect(out).To(HavePrefix("{DatabaseURL:postgres://app:[redacted]@db.internal"))
		Expect(out).To(ContainSubstring("FlyAPIToken:[redacted]"))
		Expect(out).To(ContainSubstring("CheckInterval:30s"))
	})

	It("prints Go syntax of a Config with %#v", func() {
		out := fmt.Sprintf("%#v", cfg)
		Expect(out).To(HavePrefix(`config.Config{DatabaseURL:"postgres://app:[redacted]@db.internal:5432/flightdeck?sslmode=disable", `))
		Expect(out).To(ContainSubstring(`FlyAPIToken:"[redacted]"`))
	})

	It("encodes JSON keyed by variable with typed values", func() {
		var m map[string]any
		Expect(json.Unmarshal([]byte(mustJSON(cfg)), &m)).To(Succeed())
		Expect(m).To(HaveLen(len(config.Variables())))
		Expect(m).To(HaveKeyWithValue("FLY_API_TOKEN", "[redacted]"))
		Expect(m).To(HaveKeyWithValue("CHECK_INTERVAL", "30s"))
		Expect(m).To(HaveKeyWithValue("MAX_CONCURRENT_RECONCILES", BeNumerically("==", 64)))
		Expect(m).To(HaveKeyWithValue("LEADER_ELECT", true))
	})

	It("keeps the real values available to the code that needs them", func() {
		Expect(cfg.FlyAPIToken.Value()).To(Equal("FlyV1 fm2_fly-s3cr3t"))
		Expect(cfg.APIToken.Value()).To(Equal("api-s3cr3t"))
		Expect(cfg.DatabaseURL.Value()).To(ContainSubstring("db-s3cr3t"))
	})

	It("redacts a key=value database string", func() {
		cfg.DatabaseURL = "host=db user=app password='db s3cr3t' dbname=flightdeck"
		Expect(cfg.String()).To(ContainSubstring(`DATABASE_URL="host=db user=app password=[redacted] dbname=flightdeck"`))
		Expect(fmt.Sprintf("%+v %#v %s", cfg, cfg, mustJSON(cfg))).NotTo(ContainSubstring("s3cr3t"))
	})
})

var _ = DescribeTable("Secret prints the same redacted text for every verb",
	func(format string, want string) {
		Expect(fmt.Sprintf(format, config.Secret("t0ken"))).To(Equal(want))
	},
	Entry("%v", "%v", "[redacted]"),
	Entry("%s", "%s", "[redacted]"),
	Entry("%+v", "%+v", "[redacted]"),
	Entry("%#v", "%#v", `"[redacted]"`),
	Entry("%q", "%q", `"[redacted]"`),
	Entry("%12s keeps width", "%12s", "  [redacted]"),
	Entry("%x hex-dumps the redacted text", "%x", fmt.Sprintf("%x", "[redacted]")),
)

var _ = Describe("Secret and ConnString", func() {
	It("print empty when empty", func() {
		Expect(config.Secret("").String()).To(Equal(""))
		Expect(fmt.Sprintf("%v|%#v", config.Secret(""), config.Secret(""))).To(Equal(`|""`))
		Expect(config.ConnString("").String()).To(Equal(""))
	})

	It("encode redacted in JSON, text and slog", func() {
		s := config.Secret("t0ken")
		Expect(mustJSON(s)).To(Equal(`"[redacted]"`))
		text, err := s.MarshalText()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(text)).To(Equal("[redacted]"))
		var b bytes.Buffer
		slog.New(slog.NewJSONHandler(&b, nil)).Info("Calling", "token", s, "db", config.ConnString("postgres://u:t0ken@h/db"))
		Expect(b.String()).NotTo(ContainSubstring("t0ken"))
		Expect(b.String()).To(ContainSubstring(`"db":"postgres://u:[redacted]@h/db"`))
	})
})

var _ = DescribeTable("RedactURL",
	func(in, want string) {
		got := config.RedactURL(in)
		Expect(got).To(Equal(want))
		Expect(got).NotTo(ContainSubstring("pw"), "no part of a password survives")
	},
	Entry("the password of a URL", "postgres://app:pw@db:5432/flightdeck", "postgres://app:[redacted]@db:5432/flightdeck"),
	Entry("a URL without password stays as it is", "postgresql://app@db/flightdeck?sslmode=require", "postgresql://app@db/flightdeck?sslmode=require"),
	Entry("a URL without user info stays as it is", "https://api.machines.dev/v1", "https://api.machines.dev/v1"),
	Entry("an empty password is still redacted", "postgres://app:@db/x", "postgres://app:[redacted]@db/x"),
	Entry("a percent-encoded password", "postgres://app:p%77%40rd@db/x", "postgres://app:[redacted]@db/x"),
	Entry("a password in the query", "postgres://db/x?sslmode=require&password=pw&user=app", "postgres://db/x?sslmode=require&password=[redacted]&user=app"),
	Entry("an sslpassword in the query", "postgres://db/x?sslpassword=pw", "postgres://db/x?sslpassword=[redacted]"),
	Entry("several hosts", "postgres://app:pw@db1:5432,db2:5433/x", "postgres://app:[redacted]@db1:5432,db2:5433/x"),
	Entry("an unescaped slash in the password", "postgres://app:p/w@db/x", "postgres://[redacted]@db/x"),
	Entry("a password of digits split by a slash, which parses as a port", "postgres://app:12/pw34@db/x", "postgres://[redacted]@db/x"),
	Entry("an unescaped hash in the password", "postgres://app:p#w@db/x", "postgres://[redacted]@db/x"),
	Entry("an unescaped at sign in the password", "postgres://app:p@w@db/x", "postgres://app:[redacted]@db/x"),
	Entry("an unparseable URL with a password in the query", "postgres://db:x/y?password=pw#frag", "postgres://db:x/y?password=[redacted]#frag"),
	Entry("key=value pairs", "host=db user=app password=pw dbname=x", "host=db user=app password=[redacted] dbname=x"),
	Entry("key = value with a quoted password", `host=db password = 'p w\'pw' sslmode=disable`, "host=db password = [redacted] sslmode=disable"),
	Entry("an upper-case key", "host=db PASSWORD=pw", "host=db PASSWORD=[redacted]"),
	Entry("an unterminated quote redacts the rest", "host=db password='pw dbname=x", "host=db password=[redacted]"),
	Entry("a stray word redacts the rest", "host=db password=p w", "host=db password=[redacted] [redacted]"),
	Entry("an empty string", "", ""),
	Entry("a string of neither form", "db.internal", "db.internal"),
)

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return string(b)
}
