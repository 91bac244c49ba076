package config

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
)

// Redacted is what every secret prints as.
const Redacted = "[redacted]"

// Secret is a string that never prints itself: String, GoString, every fmt verb,
// JSON, slog and logr all show Redacted (or "" when the secret is empty, so an
// unset token stays visibly unset). Value returns the real string; call it only
// where the secret is used (an Authorization header), never to log it.
type Secret string

// Value returns the secret itself.
func (s Secret) Value() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

// String returns Redacted, or "" for an empty secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return Redacted
}

// GoString quotes the redacted form, so %#v of a struct holding a Secret
// shows `"[redacted]"`.
func (s Secret) GoString() string { return strconv.Quote(s.String()) }

// Format makes every verb (%v, %+v, %#v, %s, %q, %x, ...) print the redacted
// form: without it %x would hex-dump the secret.
func (s Secret) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// MarshalJSON encodes the redacted form.
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(s.String()) }

// MarshalText encodes the redacted form, for encoders that use
// encoding.TextMarshaler (logfmt, YAML, map keys).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// LogValue makes log/slog print the redacted form.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalLog makes logr sinks (zapr, funcr) print the redacted form.
func (s Secret) MarshalLog() any { return s.String() }

// ConnString is a PostgreSQL connection string (a postgres:// URL or a
// key=value list) that prints with its password redacted (see RedactURL): the
// host and database stay visible, which is what an operator reading a start-up
// log needs. Value returns the real string for pgx.
type ConnString string

// Value returns the connection string itself, password included.
func (c ConnString) Value() string { return string(c) }

// String returns the connection string with its password redacted.
func (c ConnString) String() string { return RedactURL(string(c)) }

// GoString quotes the redacted form.
func (c ConnString) GoString() string { return strconv.Quote(c.String()) }

// Format makes every verb print the redacted form.
func (c ConnString) Format(f fmt.State, verb rune) { formatRedacted(f, verb, c.String()) }

// MarshalJSON encodes the redacted form.
func (c ConnString) MarshalJSON() ([]byte, error) { return json.Marshal(c.String()) }

// MarshalText encodes the redacted form.
func (c ConnString) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// LogValue makes log/slog print the redacted form.
func (c ConnString) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalLog makes logr sinks print the redacted form.
func (c ConnString) MarshalLog() any { return c.String() }

// formatRedacted prints shown (an already redacted string) for any verb,
// honouring width and flags; %#v prints it quoted like a Go string literal.
func formatRedacted(f fmt.State, verb rune, shown string) {
	if verb == 'v' && f.Flag('#') {
		fmt.Fprint(f, strconv.Quote(shown))
		return
	}
	fmt.Fprintf(f, fmt.FormatString(f, verb), shown)
}

// secretKeys are the connection-string keys (URL query or key=value form)
// whose values are secrets.
var secretKeys = map[string]bool{"password": true, "sslpassword": true}

// RedactURL returns s with any password replaced by Redacted, for printing
// URLs and connection strings in logs and errors. It understands
//
//   - URLs: the userinfo password (postgres://user:[redacted]@host/db) and the
//     query parameters password and sslpassword;
//   - PostgreSQL key=value strings: password=... and sslpassword=..., quoted
//     or not (host=db password=[redacted]).
//
// When a URL cannot be parsed, everything between "://" and the last "@" is
// redacted, so a malformed password (an unescaped '/', '#' or '@') never leaks;
// over-redacting is the safe failure. Strings of neither form are returned as
// they are.
func RedactURL(s string) string {
	if i := strings.Index(s, "://"); i > 0 && isScheme(s[:i]) {
		return redactURLForm(s, i)
	}
	if strings.Contains(s, "=") {
		return redactKeywordValue(s)
	}
	return s
}

// isScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, '+', '-' or '.').
func isScheme(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case i > 0 && (r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// redactURLForm redacts a URL whose scheme ends at index i ("://" follows).
func redactURLForm(s string, i int) string {
	rest := s[i+3:]
	u, err := url.Parse(s)
	// A URL that parses but holds an '@' outside its userinfo was probably
	// meant to have one: "postgres://u:12/34@h" parses as host u, port 12.
	if err != nil || u.Opaque != "" || (u.User == nil && strings.Contains(rest, "@")) {
		return redactURLFallback(s[:i+3], rest)
	}
	u.RawQuery = redactQuery(u.RawQuery)
	if u.User == nil {
		return u.String()
	}
	name := u.User.Username()
	_, hasPassword := u.User.Password()
	u.User = url.User(name)
	out := u.String()
	if !hasPassword {
		return out
	}
	prefix := u.Scheme + "://" + u.User.String()
	if !strings.HasPrefix(out, prefix+"@") {
		return redactURLFallback(s[:i+3], rest)
	}
	return prefix + ":" + Redacted + out[len(prefix):]
}

// redactURLFallback redacts an unparseable URL: the whole userinfo (up to the
// last '@') and any secret query parameter after it.
func redactURLFallback(schemePrefix, rest string) string {
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = Redacted + rest[at:]
	}
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		query, frag, hasFrag := strings.Cut(rest[q+1:], "#")
		rest = rest[:q+1] + redactQuery(query)
		if hasFrag {
			rest += "#" + frag
		}
	}
	return schemePrefix + rest
}

// redactQuery replaces the values of secret keys in a raw URL query, keeping
// everything else byte for byte.
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	for i, part := range parts {
		key, _, hasValue := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil {
			key = k
		}
		if hasValue && secretKeys[strings.ToLower(key)] {
			parts[i] = part[:strings.IndexByte(part, '=')+1] + Redacted
		}
	}
	return strings.Join(parts, "&")
}

// kvToken is one key=value pair of a key=value connection string; value spans
// s[valStart:valEnd], quotes included.
type kvToken struct {
	key              string
	valStart, valEnd int
}

// scanKeywordValue splits a libpq key=value connection string the way pgx's
// pgconn.ParseConfig does (keys up to '=', values single-quoted with backslash
// escapes or ending at whitespace). On malformed input it returns the tokens
// read so far, the offset where it stopped and an error that quotes nothing of
// the input (the rest may be a password).
func scanKeywordValue(s string) (tokens []kvToken, stop int, err error) {
	i := 0
	for {
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		if i >= len(s) {
			return tokens, i, nil
		}
		eq := strings.IndexByte(s[i:], '=')
		if eq < 0 {
			return tokens, i, fmt.Errorf("a word without '=' after %d key=value pairs", len(tokens))
		}
		key := strings.TrimSpace(s[i : i+eq])
		if key == "" {
			return tokens, i, fmt.Errorf("an '=' without a key after %d key=value pairs", len(tokens))
		}
		i += eq + 1
		for i < len(s) && isSpace(s[i]) {
			i++
		}
		start := i
		if i < len(s) && s[i] == '\'' {
			i++
			closed := false
			for i < len(s) {
				if s[i] == '\\' {
					i += 2
					continue
				}
				i++
				if s[i-1] == '\'' {
					closed = true
					break
				}
			}
			if !closed {
				return tokens, start, fmt.Errorf("an unterminated quote in the value of %s", key)
			}
		} else {
			for i < len(s) && !isSpace(s[i]) {
				if s[i] == '\\' {
					i++
				}
				i++
			}
		}
		i = min(i, len(s))
		tokens = append(tokens, kvToken{key: key, valStart: start, valEnd: i})
	}
}

// redactKeywordValue redacts the secret values of a key=value connection
// string; from a malformed part on, everything is redacted.
func redactKeywordValue(s string) string {
	tokens, stop, err := scanKeywordValue(s)
	var b strings.Builder
	prev := 0
	for _, t := range tokens {
		if secretKeys[strings.ToLower(t.key)] {
			b.WriteString(s[prev:t.valStart])
			b.WriteString(Redacted)
			prev = t.valEnd
		}
	}
	if err != nil {
		b.WriteString(s[prev:stop])
		b.WriteString(Redacted)
		return b.String()
	}
	b.WriteString(s[prev:])
	return b.String()
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}
