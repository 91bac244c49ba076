package config

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Variable describes one configuration variable, for help texts and docs.
type Variable struct {
	// Name is the environment variable, e.g. CHECK_INTERVAL.
	Name string
	// Flag is the flag name without dashes, e.g. check-interval.
	Flag string
	// Default is the default as documented; "" when there is none.
	Default string
	// Meaning says what the variable does, in one sentence.
	Meaning string
	// Secret is true for values that are never printed.
	Secret bool
}

// variable is a Variable bound to its Config field.
type variable struct {
	Variable
	// docDefault replaces the computed default in docs (LEADER_ID's is random).
	docDefault string
	set        func(c *Config, s string) error
	show       func(c Config) string // the printable (redacted) value
	isBool     bool
}

// variables is the single table every loader, printer and doc reads.
var variables = []variable{
	connStringVar(VarDatabaseURL, "PostgreSQL connection string: postgres://user:password@host:5432/db or key=value pairs",
		func(c *Config) *ConnString { return &c.DatabaseURL }),
	stringVar("FLY_API_BASE_URL", "Fly Machines API base URL; request paths go under /v1",
		func(c *Config) *string { return &c.FlyAPIBaseURL }),
	secretVar(VarFlyAPIToken, "Fly API token, sent as Authorization: Bearer (FlyV1 for macaroon tokens)",
		func(c *Config) *Secret { return &c.FlyAPIToken }),
	stringVar(VarFlyAppName, "the Fly app the deployments' machines live in",
		func(c *Config) *string { return &c.FlyAppName }),
	stringVar("FLY_RUNNER_IMAGE", "image of created machines; it installs config.env.MCP_PACKAGE and serves /status on 8080",
		func(c *Config) *string { return &c.FlyRunnerImage }),
	stringVar("PROBE_URL_TEMPLATE", "URL of a machine's /status; placeholders {machine_id}, {app}, {private_ip} (the whole host)",
		func(c *Config) *string { return &c.ProbeURLTemplate }),
	durationVar("CHECK_INTERVAL", "how often running, unhealthy and stopped deployments are checked (±10% jitter)",
		func(c *Config) *time.Duration { return &c.CheckInterval }),
	durationVar("STARTUP_POLL_INTERVAL", "how often starting deployments are probed; also the delay of a confirming re-probe",
		func(c *Config) *time.Duration { return &c.StartupPollInterval }),
	durationVar("STARTUP_TIMEOUT", "how long a deployment may stay starting before it is unhealthy",
		func(c *Config) *time.Duration { return &c.StartupTimeout }),
	durationVar("PROBE_TIMEOUT", "time limit of one /status probe",
		func(c *Config) *time.Duration { return &c.ProbeTimeout }),
	stringVar("HTTP_ADDR", "host:port of the JSON API, dashboard, /healthz, /readyz and /metrics (empty host: all interfaces)",
		func(c *Config) *string { return &c.HTTPAddr }),
	secretVar("API_TOKEN", "bearer token of the JSON API's write endpoints (and of reads when HTTP_ADDR is not loopback); empty disables writes",
		func(c *Config) *Secret { return &c.APIToken }),
	stringVar("LOG_FORMAT", "log format: json or console",
		func(c *Config) *string { return &c.LogFormat }),
	stringVar("LOG_LEVEL", "log level: debug, info, warn or error",
		func(c *Config) *string { return &c.LogLevel }),
	intVar("MAX_CONCURRENT_RECONCILES", "reconciles run at once; enough that a fleet of timing-out probes cannot starve the rest",
		func(c *Config) *int { return &c.MaxConcurrentReconciles }),
	boolVar("LEADER_ELECT", "hold a lease in PostgreSQL so only one controller acts per database",
		func(c *Config) *bool { return &c.LeaderElect }),
	durationVar("LEASE_DURATION", "how long a standby waits before taking over a lease that was not renewed (whole seconds)",
		func(c *Config) *time.Duration { return &c.LeaseDuration }),
	durationVar("LEASE_RENEW_DEADLINE", "how long the leader keeps trying to renew before it steps down",
		func(c *Config) *time.Duration { return &c.LeaseRenewDeadline }),
	durationVar("LEASE_RETRY_PERIOD", "how often the lease is tried or renewed",
		func(c *Config) *time.Duration { return &c.LeaseRetryPeriod }),
	withDocDefault("<hostname>_<8 random hex digits>", stringVar("LEADER_ID", "this process's identity in the lease",
		func(c *Config) *string { return &c.LeaderID })),
	boolVar("MIGRATE", "flightdeck run applies the database migrations before it starts",
		func(c *Config) *bool { return &c.Migrate }),
	durationVar("RESYNC_INTERVAL", "how often the controller re-lists every deployment besides NOTIFY",
		func(c *Config) *time.Duration { return &c.ResyncInterval }),
	durationVar("SHUTDOWN_TIMEOUT", "how long SIGTERM waits for in-flight reconciles and HTTP requests",
		func(c *Config) *time.Duration { return &c.ShutdownTimeout }),
}

// lookup returns the variable named name, or nil.
func lookup(name string) *variable {
	for i := range variables {
		if variables[i].Name == name {
			return &variables[i]
		}
	}
	return nil
}

// flagName turns CHECK_INTERVAL into check-interval.
func flagName(name string) string {
	return strings.ReplaceAll(strings.ToLower(name), "_", "-")
}

func (v *variable) flagUsage() string {
	u := v.Meaning + " ($" + v.Name + ")"
	if v.Secret {
		u += "; prefer the environment: flags show in ps"
	}
	return u
}

// Variables returns the table of every variable in documentation order.
func Variables() []Variable {
	def := Default()
	out := make([]Variable, len(variables))
	for i, v := range variables {
		out[i] = v.Variable
		out[i].Default = v.show(def)
		if v.docDefault != "" {
			out[i].Default = v.docDefault
		}
	}
	return out
}

// Usage writes the variables as an aligned table (flag, variable, default,
// meaning), for a subcommand's -h.
func Usage(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tVARIABLE\tDEFAULT\tMEANING")
	for _, v := range Variables() {
		def := v.Default
		if def == "" {
			def = "-"
		}
		fmt.Fprintf(tw, "--%s\t%s\t%s\t%s\n", v.Flag, v.Name, def, v.Meaning)
	}
	fmt.Fprintln(tw, "\nFlags win over variables. Secrets are best passed in the environment: flags show in ps.")
	return tw.Flush()
}

// MarkdownTable returns the variables as a Markdown table, for README.md and
// docs/operations.md.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, v := range Variables() {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		meaning := v.Meaning
		if v.Secret {
			meaning += " (secret: never printed)"
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", v.Name, v.Flag, def, strings.ReplaceAll(meaning, "|", `\|`))
	}
	return b.String()
}

func withDocDefault(doc string, v variable) variable {
	v.docDefault = doc
	return v
}

func stringVar(name, meaning string, field func(*Config) *string) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning},
		set:      func(c *Config, s string) error { *field(c) = s; return nil },
		show:     func(c Config) string { return *field(&c) },
	}
}

func secretVar(name, meaning string, field func(*Config) *Secret) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning, Secret: true},
		set:      func(c *Config, s string) error { *field(c) = Secret(s); return nil },
		show:     func(c Config) string { return field(&c).String() },
	}
}

func connStringVar(name, meaning string, field func(*Config) *ConnString) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning},
		set:      func(c *Config, s string) error { *field(c) = ConnString(s); return nil },
		show:     func(c Config) string { return field(&c).String() },
	}
}

func durationVar(name, meaning string, field func(*Config) *time.Duration) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning},
		set: func(c *Config, s string) error {
			d, err := time.ParseDuration(strings.TrimSpace(s))
			if err != nil {
				// A bare number most likely meant seconds; otherwise show the default.
				hint := strings.TrimSpace(s) + "s"
				if !isDecimal(strings.TrimSpace(s)) {
					def := Default()
					hint = formatDuration(*field(&def))
				}
				return fmt.Errorf("%q is not a duration (try %s)", s, hint)
			}
			*field(c) = d
			return nil
		},
		show: func(c Config) string { return formatDuration(*field(&c)) },
	}
}

func intVar(name, meaning string, field func(*Config) *int) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning},
		set: func(c *Config, s string) error {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not a whole number", s)
			}
			*field(c) = n
			return nil
		},
		show: func(c Config) string { return strconv.Itoa(*field(&c)) },
	}
}

func boolVar(name, meaning string, field func(*Config) *bool) variable {
	return variable{
		Variable: Variable{Name: name, Flag: flagName(name), Meaning: meaning},
		set: func(c *Config, s string) error {
			b, err := strconv.ParseBool(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%q is not a boolean (true or false)", s)
			}
			*field(c) = b
			return nil
		},
		show:   func(c Config) string { return strconv.FormatBool(*field(&c)) },
		isBool: true,
	}
}

// formatDuration prints 1m and 1h rather than time's 1m0s and 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// isDecimal reports whether s is a plain decimal number such as 30 or 1.5.
func isDecimal(s string) bool {
	digits, dots := 0, 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '.':
			dots++
		default:
			return false
		}
	}
	return digits > 0 && dots <= 1
}
