package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
)

// plain has Config's fields and none of its methods, so that fmt can print
// the fields (each secret through its own redacting Format) without recursing
// into Config.Format.
type plain Config

// String prints every variable as NAME=value on one line, in table order,
// with secrets redacted: what `flightdeck run` logs at start-up.
func (c Config) String() string {
	var b strings.Builder
	for i, v := range variables {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(v.Name)
		b.WriteByte('=')
		b.WriteString(quoteIfNeeded(v.show(c)))
	}
	return b.String()
}

// quoteIfNeeded quotes values that would otherwise not read back as one
// NAME=value pair.
func quoteIfNeeded(s string) string {
	if s == "" || strings.ContainsAny(s, " \t\r\n\"'\\") || !strconv.CanBackquote(s) {
		return strconv.Quote(s)
	}
	return s
}

// GoString prints Go syntax with secrets redacted, for %#v.
func (c Config) GoString() string {
	s := fmt.Sprintf("%#v", plain(c))
	return strings.Replace(s, "config.plain{", "config.Config{", 1)
}

// Format redacts the secrets whatever the verb: %v and %s print String, %+v
// the fields by name (durations as 30s), %#v GoString, %q String quoted.
func (c Config) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, c.GoString())
	case verb == 'v' && f.Flag('+'):
		fmt.Fprintf(f, "%+v", plain(c))
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(c.String()))
	default:
		fmt.Fprint(f, c.String())
	}
}

// values returns the printable value of each variable: strings (secrets
// redacted, durations as 30s), ints and bools.
func (c Config) values() map[string]any {
	m := make(map[string]any, len(variables))
	for _, v := range variables {
		m[v.Name] = v.show(c)
	}
	m["MAX_CONCURRENT_RECONCILES"] = c.MaxConcurrentReconciles
	m["LEADER_ELECT"] = c.LeaderElect
	m["MIGRATE"] = c.Migrate
	return m
}

// MarshalJSON encodes an object keyed by variable name, secrets redacted and
// durations as strings ("30s").
func (c Config) MarshalJSON() ([]byte, error) { return json.Marshal(c.values()) }

// LogValue makes log/slog print a group keyed by variable name, secrets
// redacted.
func (c Config) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(variables))
	vals := c.values()
	for _, v := range variables {
		attrs = append(attrs, slog.Any(v.Name, vals[v.Name]))
	}
	return slog.GroupValue(attrs...)
}

// MarshalLog makes logr sinks (zapr, funcr) print the same object as JSON.
func (c Config) MarshalLog() any { return c.values() }
