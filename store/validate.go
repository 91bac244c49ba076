package store

import (
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/flightdeck/flightdeck/store/status"
)

// Limits of the deployments columns, enforced by the store before it writes
// and by CHECK constraints in the database.
const (
	// MaxNameLength is the longest deployment name, in characters. The name
	// is only displayed (machine names derive from the id), so it is not held
	// to DNS label rules.
	MaxNameLength = 128
	// MaxPackageLength is the longest package spec, in characters: an npm
	// package name has at most 214 characters, and the spec may add
	// "@<version or tag>".
	MaxPackageLength = 256
	// MaxEnvKeyLength is the longest env variable name.
	MaxEnvKeyLength = 256
	// MaxEnvBytes bounds the JSON encoding of a deployment's env.
	MaxEnvBytes = 65536
	// MaxMessageLength is the longest progress, error or event message, in
	// characters. Use TruncateMessage on text of unknown length (for example
	// an error body from the Fly API).
	MaxMessageLength = 2048
	// MaxMachineIDLength, MaxPrivateIPLength and MaxRegionLength bound the
	// machine columns.
	MaxMachineIDLength = 64
	MaxPrivateIPLength = 64
	MaxRegionLength    = 32
	// MaxPageSize is the largest Limit of a list call; DefaultPageSize is used
	// when Limit is 0.
	MaxPageSize     = 500
	DefaultPageSize = 50
	// MaxLeaseNameLength and MaxLeaseRecordBytes bound leader_leases.
	MaxLeaseNameLength  = 128
	MaxLeaseRecordBytes = 65536
)

var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	envKeyPattern    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	reasonPattern    = regexp.MustCompile(`^[A-Z][A-Za-z0-9]{0,63}$`)
	machineIDPattern = regexp.MustCompile(`^[0-9a-f]{14}$`)
	regionPattern    = regexp.MustCompile(`^[a-z0-9-]+$`)
)

// TruncateMessage shortens s to at most MaxMessageLength characters, ending
// it with "..." when it cut, and replaces invalid UTF-8 and NUL bytes, so that
// any text can be stored as a message.
func TruncateMessage(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "")
	if utf8.RuneCountInString(s) <= MaxMessageLength {
		return s
	}
	r := []rune(s)
	return string(r[:MaxMessageLength-3]) + "..."
}

// parseID returns id in canonical lower-case form, or a *ValidationError.
func parseID(field, id string) (string, error) {
	if !uuidPattern.MatchString(id) {
		return "", &ValidationError{Field: field, Problem: fmt.Sprintf("%q is not a uuid", clip(id))}
	}
	return strings.ToLower(id), nil
}

// clip shortens a bad value quoted in a ValidationError.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

// checkText checks that s is valid UTF-8 without NUL bytes (PostgreSQL text
// cannot hold either) and has between minLen and maxLen characters.
func checkText(field, s string, minLen, maxLen int) error {
	if !utf8.ValidString(s) {
		return &ValidationError{Field: field, Problem: "is not valid UTF-8"}
	}
	if strings.ContainsRune(s, 0) {
		return &ValidationError{Field: field, Problem: "contains a NUL byte"}
	}
	n := utf8.RuneCountInString(s)
	if n < minLen {
		if minLen == 1 {
			return &ValidationError{Field: field, Problem: "is empty"}
		}
		return &ValidationError{Field: field, Problem: fmt.Sprintf("is shorter than %d characters", minLen)}
	}
	if n > maxLen {
		return &ValidationError{Field: field, Problem: fmt.Sprintf("is longer than %d characters", maxLen)}
	}
	return nil
}

// hasControl reports whether s contains a control character.
func hasControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

func checkName(name string) error {
	if err := checkText("name", name, 1, MaxNameLength); err != nil {
		return err
	}
	if strings.TrimSpace(name) == "" {
		return &ValidationError{Field: "name", Problem: "is blank"}
	}
	if hasControl(name) {
		return &ValidationError{Field: "name", Problem: "contains a control character"}
	}
	return nil
}

func checkPackage(pkg string) error {
	if err := checkText("package", pkg, 1, MaxPackageLength); err != nil {
		return err
	}
	if strings.Trim(pkg, " ") != pkg {
		return &ValidationError{Field: "package", Problem: "starts or ends with a space"}
	}
	if hasControl(pkg) {
		return &ValidationError{Field: "package", Problem: "contains a control character"}
	}
	return nil
}

// checkEnv checks env against the rules of deployments_env_valid. Problems
// name the key, never the value.
func checkEnv(env map[string]string) error {
	for k, v := range env {
		if len(k) > MaxEnvKeyLength || !envKeyPattern.MatchString(k) {
			return &ValidationError{Field: "env", Problem: fmt.Sprintf("key %q is not an environment variable name ([A-Za-z_][A-Za-z0-9_]*, at most %d characters)", clip(k), MaxEnvKeyLength)}
		}
		if !utf8.ValidString(v) {
			return &ValidationError{Field: "env", Problem: fmt.Sprintf("value of %s is not valid UTF-8", k)}
		}
		if strings.ContainsRune(v, 0) {
			return &ValidationError{Field: "env", Problem: fmt.Sprintf("value of %s contains a NUL byte", k)}
		}
	}
	if n := envTextLen(env); n > MaxEnvBytes {
		return &ValidationError{Field: "env", Problem: fmt.Sprintf("is %d bytes encoded, more than %d", n, MaxEnvBytes)}
	}
	return nil
}

// envTextLen is the length in bytes of PostgreSQL's text form of env as
// jsonb ({"k": "v", ...}), which deployments_env_valid bounds.
func envTextLen(env map[string]string) int {
	n := 2 // {}
	first := true
	for k, v := range env {
		if !first {
			n += 2 // ", "
		}
		first = false
		n += jsonStringLen(k) + 2 + jsonStringLen(v) // "k": "v"
	}
	return n
}

// jsonStringLen is the length of s quoted the way PostgreSQL's escape_json does.
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t':
			n += 2
		case c < 0x20:
			n += 6
		default:
			n++
		}
	}
	return n
}

func checkStatus(field string, s status.Status) error {
	if !s.Valid() {
		return &ValidationError{Field: field, Problem: fmt.Sprintf("%q is not a status (want one of pending, installing, starting, running, unhealthy, stopped, failed)", clip(string(s)))}
	}
	return nil
}

// checkMessage checks a progress, error or event message; "" is allowed.
func checkMessage(field, msg string) error {
	return checkText(field, msg, 0, MaxMessageLength)
}

func checkReason(reason string) error {
	if !reasonPattern.MatchString(reason) {
		return &ValidationError{Field: "reason", Problem: fmt.Sprintf("%q is not a CamelCase reason of at most 64 characters", clip(reason))}
	}
	return nil
}

func checkGeneration(field string, g, min int64) error {
	if g < min {
		return &ValidationError{Field: field, Problem: fmt.Sprintf("%d is less than %d", g, min)}
	}
	return nil
}

// checkMachine checks the machine columns: a Fly machine id (14 lower-case
// hex digits), an IP address and a region code, or all empty.
func checkMachine(machineID, privateIP, region string) error {
	if machineID == "" {
		if privateIP != "" || region != "" {
			return &ValidationError{Field: "machineID", Problem: "is empty while privateIP or region is set"}
		}
		return nil
	}
	if !machineIDPattern.MatchString(machineID) {
		return &ValidationError{Field: "machineID", Problem: fmt.Sprintf("%q is not a Fly machine id (14 lower-case hex digits)", clip(machineID))}
	}
	if privateIP != "" {
		if len(privateIP) > MaxPrivateIPLength {
			return &ValidationError{Field: "privateIP", Problem: fmt.Sprintf("is longer than %d characters", MaxPrivateIPLength)}
		}
		if _, err := netip.ParseAddr(privateIP); err != nil {
			return &ValidationError{Field: "privateIP", Problem: fmt.Sprintf("%q is not an IP address", clip(privateIP))}
		}
	}
	if region != "" && (len(region) > MaxRegionLength || !regionPattern.MatchString(region)) {
		return &ValidationError{Field: "region", Problem: fmt.Sprintf("%q is not a region code (lower-case letters, digits and '-', at most %d)", clip(region), MaxRegionLength)}
	}
	return nil
}

// pageLimit returns the LIMIT for a list call.
func pageLimit(limit int) (int, error) {
	switch {
	case limit == 0:
		return DefaultPageSize, nil
	case limit < 0 || limit > MaxPageSize:
		return 0, &ValidationError{Field: "limit", Problem: fmt.Sprintf("%d is not between 1 and %d", limit, MaxPageSize)}
	}
	return limit, nil
}
