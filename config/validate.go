package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FieldError is one configuration problem: the variable and what is wrong
// with its value. Problem quotes the bad value, except for secrets, which are
// never shown (DATABASE_URL is shown with its password redacted).
type FieldError struct {
	// Var is the variable's name, e.g. CHECK_INTERVAL.
	Var string
	// Problem is the rest of the message, e.g. `"30" is not a duration (try 30s)`.
	Problem string
	// related names other variables the problem compares against.
	related []string
}

// Error returns "VAR: problem".
func (e *FieldError) Error() string { return e.Var + ": " + e.Problem }

// involves reports whether the problem compares against one of vars.
func (e *FieldError) involves(vars map[string]*FieldError) bool {
	for _, r := range e.related {
		if vars[r] != nil {
			return true
		}
	}
	return false
}

// ValidationErrors is every problem of a configuration, in table order. It
// prints one problem per line; errors.As finds each *FieldError.
type ValidationErrors []*FieldError

// Error joins the problems with newlines, like errors.Join.
func (v ValidationErrors) Error() string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns each *FieldError, for errors.As and errors.Is.
func (v ValidationErrors) Unwrap() []error {
	errs := make([]error, len(v))
	for i, e := range v {
		errs[i] = e
	}
	return errs
}

// Vars returns the names of the variables with problems.
func (v ValidationErrors) Vars() []string {
	names := make([]string, 0, len(v))
	for _, e := range v {
		if !slices.Contains(names, e.Var) {
			names = append(names, e.Var)
		}
	}
	return names
}

// Limits that are not defaults.
const (
	maxConcurrentReconciles = 10000
	maxLeaderIDLength       = 128
	// leaseJitterFactor is client-go leaderelection's JitterFactor: it refuses
	// a RenewDeadline that is not longer than JitterFactor × RetryPeriod.
	leaseJitterFactor = 1.2
)

// logLevels are the values of LOG_LEVEL.
var logLevels = []string{"debug", "info", "warn", "error"}

// Validate checks every variable and returns nil or a ValidationErrors that
// lists every problem at once, in table order. required names the variables
// that must be set (RequiredForRun, RequiredForMigrate); Validate() with none
// checks only the values that are set.
func (c Config) Validate(required ...string) error {
	var errs ValidationErrors
	add := func(name string, related []string, format string, args ...any) {
		errs = append(errs, &FieldError{Var: name, Problem: fmt.Sprintf(format, args...), related: related})
	}

	for _, name := range required {
		v := lookup(name)
		switch {
		case v == nil:
			add(name, nil, "is not a configuration variable (a bug in the caller)")
		case v.show(c) == "":
			add(name, nil, "not set (set $%s or --%s)", name, v.Flag)
		}
	}

	if c.DatabaseURL != "" {
		if p := connStringProblem(c.DatabaseURL.Value()); p != "" {
			add(VarDatabaseURL, nil, "%s", p)
		}
	}
	if p := baseURLProblem(c.FlyAPIBaseURL); p != "" {
		add("FLY_API_BASE_URL", nil, "%s", p)
	}
	if p := tokenProblem(c.FlyAPIToken); p != "" {
		add(VarFlyAPIToken, nil, "%s", p)
	}
	if c.FlyAppName != "" {
		if err := checkAppName(c.FlyAppName); err != nil {
			add(VarFlyAppName, nil, "%q %v", c.FlyAppName, err)
		}
	}
	if !imageRef.MatchString(c.FlyRunnerImage) || len(c.FlyRunnerImage) > 255 {
		add("FLY_RUNNER_IMAGE", nil, "%q is not an image reference (registry/name:tag or registry/name@sha256:digest)", c.FlyRunnerImage)
	}
	if _, err := ParseProbeTemplate(c.ProbeURLTemplate); err != nil {
		add("PROBE_URL_TEMPLATE", nil, "%v", err)
	}

	positive := func(name string, d time.Duration) bool {
		if d <= 0 {
			add(name, nil, "%s must be greater than zero", formatDuration(d))
			return false
		}
		return true
	}
	check := positive("CHECK_INTERVAL", c.CheckInterval)
	poll := positive("STARTUP_POLL_INTERVAL", c.StartupPollInterval)
	startup := positive("STARTUP_TIMEOUT", c.StartupTimeout)
	probe := positive("PROBE_TIMEOUT", c.ProbeTimeout)
	if poll && check && c.StartupPollInterval > c.CheckInterval {
		add("STARTUP_POLL_INTERVAL", []string{"CHECK_INTERVAL"}, "%s must not be longer than CHECK_INTERVAL (%s)",
			formatDuration(c.StartupPollInterval), formatDuration(c.CheckInterval))
	}
	if startup && poll && c.StartupTimeout < c.StartupPollInterval {
		add("STARTUP_TIMEOUT", []string{"STARTUP_POLL_INTERVAL"}, "%s must not be shorter than STARTUP_POLL_INTERVAL (%s)",
			formatDuration(c.StartupTimeout), formatDuration(c.StartupPollInterval))
	}
	if probe && check && c.ProbeTimeout >= c.CheckInterval {
		add("PROBE_TIMEOUT", []string{"CHECK_INTERVAL"}, "%s must be shorter than CHECK_INTERVAL (%s)",
			formatDuration(c.ProbeTimeout), formatDuration(c.CheckInterval))
	}
	if probe && startup && c.ProbeTimeout >= c.StartupTimeout {
		add("PROBE_TIMEOUT", []string{"STARTUP_TIMEOUT"}, "%s must be shorter than STARTUP_TIMEOUT (%s)",
			formatDuration(c.ProbeTimeout), formatDuration(c.StartupTimeout))
	}

	if p := hostPortProblem(c.HTTPAddr); p != "" {
		add("HTTP_ADDR", nil, "%s", p)
	}
	if p := tokenProblem(c.APIToken); p != "" {
		add("API_TOKEN", nil, "%s", p)
	}
	if c.LogFormat != LogFormatJSON && c.LogFormat != LogFormatConsole {
		add("LOG_FORMAT", nil, "%q is not one of %s, %s", c.LogFormat, LogFormatJSON, LogFormatConsole)
	}
	if !slices.Contains(logLevels, c.LogLevel) {
		add("LOG_LEVEL", nil, "%q is not one of %s", c.LogLevel, strings.Join(logLevels, ", "))
	}
	if c.MaxConcurrentReconciles < 1 || c.MaxConcurrentReconciles > maxConcurrentReconciles {
		add("MAX_CONCURRENT_RECONCILES", nil, "%d is not between 1 and %d", c.MaxConcurrentReconciles, maxConcurrentReconciles)
	}

	lease := positive("LEASE_DURATION", c.LeaseDuration)
	renew := positive("LEASE_RENEW_DEADLINE", c.LeaseRenewDeadline)
	retry := positive("LEASE_RETRY_PERIOD", c.LeaseRetryPeriod)
	if lease && c.LeaseDuration%time.Second != 0 {
		add("LEASE_DURATION", nil, "%s must be a whole number of seconds (the lease records seconds)", formatDuration(c.LeaseDuration))
	}
	if lease && renew && c.LeaseRenewDeadline >= c.LeaseDuration {
		add("LEASE_RENEW_DEADLINE", []string{"LEASE_DURATION"}, "%s must be shorter than LEASE_DURATION (%s)",
			formatDuration(c.LeaseRenewDeadline), formatDuration(c.LeaseDuration))
	}
	if renew && retry && c.LeaseRenewDeadline <= time.Duration(leaseJitterFactor*float64(c.LeaseRetryPeriod)) {
		add("LEASE_RETRY_PERIOD", []string{"LEASE_RENEW_DEADLINE"}, "%s is too long: LEASE_RENEW_DEADLINE (%s) must exceed 1.2 × LEASE_RETRY_PERIOD",
			formatDuration(c.LeaseRetryPeriod), formatDuration(c.LeaseRenewDeadline))
	}
	if p := leaderIDProblem(c.LeaderID); p != "" {
		add("LEADER_ID", nil, "%s", p)
	}
	positive("RESYNC_INTERVAL", c.ResyncInterval)
	positive("SHUTDOWN_TIMEOUT", c.ShutdownTimeout)

	if len(errs) == 0 {
		return nil
	}
	slices.SortStableFunc(errs, func(a, b *FieldError) int { return tableIndex(a.Var) - tableIndex(b.Var) })
	return errs
}

// tableIndex orders problems like the table; unknown names go last.
func tableIndex(name string) int {
	for i := range variables {
		if variables[i].Name == name {
			return i
		}
	}
	return len(variables)
}

// connStringProblem checks a non-empty DATABASE_URL the way pgx will read it:
// a postgres:// or postgresql:// URL, or libpq key=value pairs. The value is
// only ever shown redacted.
func connStringProblem(s string) string {
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		if scheme := strings.ToLower(s[:i]); scheme != "postgres" && scheme != "postgresql" {
			return fmt.Sprintf("%q is not a PostgreSQL URL (postgres://user:password@host:5432/db)", RedactURL(s))
		}
		u, err := url.Parse(s)
		if err != nil || (u.User == nil && strings.Contains(s[i+3:], "@")) {
			return fmt.Sprintf("%q is not a valid URL (percent-encode special characters of the user and password)", RedactURL(s))
		}
		return ""
	}
	if strings.Contains(s, "=") {
		if _, _, err := scanKeywordValue(s); err != nil {
			return fmt.Sprintf("%q is not a valid key=value connection string: %v", RedactURL(s), err)
		}
		return ""
	}
	return "is neither a postgres:// URL nor a key=value connection string (value not shown: it may hold a password)"
}

// baseURLProblem checks FLY_API_BASE_URL: an absolute http(s) URL without
// credentials, query or fragment (the client appends /v1/... to it).
func baseURLProblem(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Hostname() == "":
		return fmt.Sprintf("%q is not an absolute http(s) URL", RedactURL(s))
	case u.User != nil:
		return fmt.Sprintf("%q must not hold credentials (the token goes in FLY_API_TOKEN)", RedactURL(s))
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery:
		return fmt.Sprintf("%q must not have a query or fragment", s)
	}
	return ""
}

// tokenProblem checks a bearer token without ever showing it: it must go
// into an Authorization header as it is. Inner spaces are allowed ("FlyV1 fm2_...").
func tokenProblem(s Secret) string {
	v := s.Value()
	if v == "" {
		return ""
	}
	if strings.TrimSpace(v) != v {
		return "has leading or trailing whitespace (value not shown)"
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f {
			return "contains a control character (value not shown)"
		}
	}
	return ""
}

var errNotAppName = errors.New("is not a Fly app name (lowercase letters, digits and dashes, at most 63, no dash at either end)")

var appName = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$`)

// checkAppName checks a Fly app name; it is also a DNS label ({app}.internal).
func checkAppName(name string) error {
	if !appName.MatchString(name) {
		return errNotAppName
	}
	return nil
}

// imageRef is a container image reference after the OCI distribution
// grammar: [domain[:port]/]path[:tag][@algorithm:hex].
var imageRef = func() *regexp.Regexp {
	const (
		domainLabel = `(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])`
		domain      = domainLabel + `(?:\.` + domainLabel + `)*(?::[0-9]+)?`
		component   = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		tag         = `[\w][\w.-]{0,127}`
		digest      = `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
	)
	return regexp.MustCompile(`^(?:` + domain + `/)?` + component + `(?:/` + component + `)*(?::` + tag + `)?(?:@` + digest + `)?$`)
}()

// hostPortProblem checks HTTP_ADDR: host:port with a numeric port (0 picks a
// free one) and an IP, a host name or nothing (all interfaces) as host.
func hostPortProblem(s string) string {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Sprintf("%q is not host:port (try 127.0.0.1:8080, or :8080 for all interfaces)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Sprintf("%q has an invalid port (0 to 65535)", s)
	}
	if host != "" && net.ParseIP(host) == nil && !hostName.MatchString(host) {
		return fmt.Sprintf("%q has an invalid host", s)
	}
	return ""
}

var hostName = regexp.MustCompile(`^[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*$`)

// leaderIDProblem checks LEADER_ID: it is stored in the lease and shown in
// logs, so it must be short and printable.
func leaderIDProblem(id string) string {
	if id == "" {
		return "must not be empty"
	}
	if len(id) > maxLeaderIDLength {
		return fmt.Sprintf("%q is longer than %d bytes", id, maxLeaderIDLength)
	}
	for _, r := range id {
		if r <= 0x20 || r == 0x7f {
			return fmt.Sprintf("%q contains whitespace or a control character", id)
		}
	}
	return ""
}
