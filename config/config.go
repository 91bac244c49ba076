package config

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"time"
)

// Config is flightdeck's whole configuration. Each field is one variable of
// the package table; the comment names it. Get one from Load (environment and
// flags) or Default (tests), and check it with Validate.
//
// Printing a Config in any way (%v, %+v, %#v, String, JSON, slog, logr)
// redacts FLY_API_TOKEN, API_TOKEN and the password in DATABASE_URL.
type Config struct {
	// DatabaseURL is DATABASE_URL, the PostgreSQL connection string.
	DatabaseURL ConnString
	// FlyAPIBaseURL is FLY_API_BASE_URL; the client puts its paths under /v1.
	FlyAPIBaseURL string
	// FlyAPIToken is FLY_API_TOKEN.
	FlyAPIToken Secret
	// FlyAppName is FLY_APP_NAME, the app the machines live in.
	FlyAppName string
	// FlyRunnerImage is FLY_RUNNER_IMAGE, the image of created machines.
	FlyRunnerImage string
	// ProbeURLTemplate is PROBE_URL_TEMPLATE; render it with ProbeURL or
	// ProbeTemplate, never by hand.
	ProbeURLTemplate string

	// CheckInterval is CHECK_INTERVAL.
	CheckInterval time.Duration
	// StartupPollInterval is STARTUP_POLL_INTERVAL.
	StartupPollInterval time.Duration
	// StartupTimeout is STARTUP_TIMEOUT.
	StartupTimeout time.Duration
	// ProbeTimeout is PROBE_TIMEOUT.
	ProbeTimeout time.Duration

	// HTTPAddr is HTTP_ADDR.
	HTTPAddr string
	// APIToken is API_TOKEN; empty disables the write endpoints.
	APIToken Secret
	// LogFormat is LOG_FORMAT: LogFormatJSON or LogFormatConsole.
	LogFormat string
	// LogLevel is LOG_LEVEL: debug, info, warn or error.
	LogLevel string

	// MaxConcurrentReconciles is MAX_CONCURRENT_RECONCILES.
	MaxConcurrentReconciles int
	// LeaderElect is LEADER_ELECT.
	LeaderElect bool
	// LeaseDuration is LEASE_DURATION.
	LeaseDuration time.Duration
	// LeaseRenewDeadline is LEASE_RENEW_DEADLINE.
	LeaseRenewDeadline time.Duration
	// LeaseRetryPeriod is LEASE_RETRY_PERIOD.
	LeaseRetryPeriod time.Duration
	// LeaderID is LEADER_ID.
	LeaderID string

	// Migrate is MIGRATE.
	Migrate bool
	// ResyncInterval is RESYNC_INTERVAL.
	ResyncInterval time.Duration
	// ShutdownTimeout is SHUTDOWN_TIMEOUT.
	ShutdownTimeout time.Duration
}

// Values of LOG_FORMAT.
const (
	LogFormatJSON    = "json"
	LogFormatConsole = "console"
)

// Names of the variables that subcommands require.
const (
	VarDatabaseURL = "DATABASE_URL"
	VarFlyAPIToken = "FLY_API_TOKEN"
	VarFlyAppName  = "FLY_APP_NAME"
)

// DefaultRunnerImage is the default FLY_RUNNER_IMAGE: the runner image this
// project publishes to the Fly registry, which installs the npm package named
// by MCP_PACKAGE and serves /status on port 8080.
const DefaultRunnerImage = "registry.fly.io/flightdeck-runner:latest"

// DefaultProbeURLTemplate is the default PROBE_URL_TEMPLATE: Fly's private
// DNS name of one machine, reached over the app's private network (6PN), so a
// probe never goes through the Fly proxy and never wakes an autostopped
// machine.
const DefaultProbeURLTemplate = "http://{machine_id}.vm.{app}.internal:8080/status"

// DefaultMaxConcurrentReconciles is the default MAX_CONCURRENT_RECONCILES. A
// reconcile whose probe times out holds its worker for PROBE_TIMEOUT (5s) while
// a healthy probe takes milliseconds; 64 workers still pass
// 64 × CHECK_INTERVAL / PROBE_TIMEOUT = 384 timed-out probes per interval
// before healthy deployments wait at all. Workers blocked on the network cost
// almost no CPU, so this is safe on 2 cores.
const DefaultMaxConcurrentReconciles = 64

// Default returns the configuration with every documented default and nothing
// required set. LEADER_ID gets a fresh hostname_random value on each call.
func Default() Config {
	return Config{
		FlyAPIBaseURL:           "https://api.machines.dev",
		FlyRunnerImage:          DefaultRunnerImage,
		ProbeURLTemplate:        DefaultProbeURLTemplate,
		CheckInterval:           30 * time.Second,
		StartupPollInterval:     2 * time.Second,
		StartupTimeout:          60 * time.Second,
		ProbeTimeout:            5 * time.Second,
		HTTPAddr:                "127.0.0.1:8080",
		LogFormat:               LogFormatJSON,
		LogLevel:                "info",
		MaxConcurrentReconciles: DefaultMaxConcurrentReconciles,
		LeaderElect:             true,
		LeaseDuration:           15 * time.Second,
		LeaseRenewDeadline:      10 * time.Second,
		LeaseRetryPeriod:        2 * time.Second,
		LeaderID:                defaultLeaderID(),
		Migrate:                 true,
		ResyncInterval:          5 * time.Minute,
		ShutdownTimeout:         30 * time.Second,
	}
}

// defaultLeaderID is hostname_<8 hex digits>: the hostname tells operators
// which machine leads, the suffix keeps two processes on one host apart.
func defaultLeaderID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "flightdeck"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return host + "_" + hex.EncodeToString(b[:])
}

// RequiredForRun lists the variables `flightdeck run` cannot do without.
func RequiredForRun() []string { return []string{VarDatabaseURL, VarFlyAPIToken, VarFlyAppName} }

// RequiredForMigrate lists the variables `flightdeck migrate` cannot do without.
func RequiredForMigrate() []string { return []string{VarDatabaseURL} }

// Load builds the configuration from defaults, then the environment (read
// through getenv; nil reads none; an empty value counts as unset), then the
// command-line flags in args (a flag wins over its variable, even when set to
// ""). It then validates the result, with required naming the variables that
// must be set (RequiredForRun, RequiredForMigrate).
//
// Every problem is reported at once in a ValidationErrors; a value that cannot
// be parsed is reported once, not again by the checks that depend on it. -h or
// --help returns flag.ErrHelp; nothing is written anywhere (print Usage
// yourself). Positional arguments are an error; use LoadWith to accept them or
// to add flags of your own.
func Load(args []string, getenv func(string) string, required ...string) (Config, error) {
	fs := flag.NewFlagSet("flightdeck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	cfg, err := LoadWith(fs, args, getenv, required...)
	var verrs ValidationErrors
	if fs.NArg() > 0 && (err == nil || errors.As(err, &verrs)) {
		err = errors.Join(fmt.Errorf("unexpected argument %q", fs.Arg(0)), err)
	}
	return cfg, err
}

// LoadWith is Load on a flag set of the caller's: define your own flags on fs
// before calling, read them and fs.Args() after. fs keeps its output, Usage and
// error handling (use flag.ContinueOnError); each flag's usage names its
// variable, so fs.PrintDefaults documents both.
func LoadWith(fs *flag.FlagSet, args []string, getenv func(string) string, required ...string) (Config, error) {
	cfg := Default()
	var parseErrs parseErrors
	for i := range variables {
		v := &variables[i]
		fs.Var(&flagValue{v: v, cfg: &cfg, errs: &parseErrs}, v.Flag, v.flagUsage())
	}
	if getenv != nil {
		for i := range variables {
			v := &variables[i]
			if s := getenv(v.Name); s != "" {
				parseErrs.record(v, v.set(&cfg, s))
			}
		}
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, flag.ErrHelp
		}
		return cfg, fmt.Errorf("parsing flags: %w", err)
	}
	return cfg, parseErrs.merge(cfg.Validate(required...))
}

// flagValue binds one variable's flag to a Config. Set never fails: the
// problem is recorded so that every bad flag is reported, not just the first.
type flagValue struct {
	v    *variable
	cfg  *Config
	errs *parseErrors
}

func (f *flagValue) String() string {
	if f == nil || f.cfg == nil {
		return ""
	}
	return f.v.show(*f.cfg)
}

func (f *flagValue) Set(s string) error {
	f.errs.record(f.v, f.v.set(f.cfg, s))
	return nil
}

// IsBoolFlag lets a boolean flag stand alone (--leader-elect).
func (f *flagValue) IsBoolFlag() bool { return f != nil && f.v != nil && f.v.isBool }

// parseErrors holds the latest parse problem of each variable, in table order.
type parseErrors struct {
	byVar map[string]*FieldError
}

// record keeps err as the variable's problem, or forgets an earlier one when
// a later source (a flag over the environment) parsed fine.
func (p *parseErrors) record(v *variable, err error) {
	if p.byVar == nil {
		p.byVar = map[string]*FieldError{}
	}
	if err == nil {
		delete(p.byVar, v.Name)
		return
	}
	p.byVar[v.Name] = &FieldError{Var: v.Name, Problem: err.Error()}
}

// merge returns the parse problems followed by the validation problems that
// do not concern a variable that failed to parse (its value is the default,
// so such problems would be noise).
func (p *parseErrors) merge(validation error) error {
	var all ValidationErrors
	for _, v := range variables {
		if fe := p.byVar[v.Name]; fe != nil {
			all = append(all, fe)
		}
	}
	var verrs ValidationErrors
	if validation != nil && !errors.As(validation, &verrs) {
		return validation
	}
	for _, fe := range verrs {
		if p.byVar[fe.Var] == nil && !fe.involves(p.byVar) {
			all = append(all, fe)
		}
	}
	if len(all) == 0 {
		return nil
	}
	slices.SortStableFunc(all, func(a, b *FieldError) int { return tableIndex(a.Var) - tableIndex(b.Var) })
	return all
}

// LoopbackHTTP reports whether HTTP_ADDR binds only to the local machine: its
// host is a loopback IP or "localhost". An empty host means all interfaces.
func (c Config) LoopbackHTTP() bool {
	host, _, err := net.SplitHostPort(c.HTTPAddr)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
