package config

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// The placeholders PROBE_URL_TEMPLATE may hold.
const (
	PlaceholderMachineID = "{machine_id}"
	PlaceholderApp       = "{app}"
	PlaceholderPrivateIP = "{private_ip}"
)

// ErrInvalidMachineID is returned (wrapped) for a machine id that is not 14
// lowercase hex digits. Such an id never goes into a URL.
var ErrInvalidMachineID = errors.New("invalid machine id")

// ValidateMachineID returns an error wrapping ErrInvalidMachineID unless id is
// a Fly machine id: exactly 14 lowercase hex digits. The id is quoted in the
// error (ids are not secret) so that a bad row can be found.
func ValidateMachineID(id string) error {
	if len(id) != 14 {
		return fmt.Errorf("%w %q: want 14 lowercase hex digits", ErrInvalidMachineID, id)
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("%w %q: want 14 lowercase hex digits", ErrInvalidMachineID, id)
		}
	}
	return nil
}

// ProbeTemplate is a parsed PROBE_URL_TEMPLATE. Its zero value is not usable;
// get one from ParseProbeTemplate or Config.ProbeTemplate.
//
// Rendering only ever puts validated values into the URL: a machine id of 14
// lowercase hex digits, an app name of lowercase letters, digits and dashes,
// and a private IP re-printed from its parsed form (IPv6 in brackets, zones
// refused). So nothing a database row holds can change the URL's host beyond
// the placeholder it fills.
type ProbeTemplate struct {
	raw      string
	segments []probeSegment
}

// probeSegment is either literal text or one placeholder.
type probeSegment struct {
	literal     string
	placeholder string
}

// Sample values that a template is rendered with to check that it makes a URL.
const (
	sampleMachineID = "3d8d9e1f2a4b6c"
	sampleApp       = "sample-app"
	sampleIPv6      = "fdaa:0:1:a7b:1::2"
)

// ParseProbeTemplate parses and checks a probe URL template: only the
// placeholders {machine_id}, {app} and {private_ip}; {private_ip} only as the
// whole host (it may be IPv6, which needs brackets); and once rendered with
// sample values, an absolute http(s) URL with a host and no user info. Errors
// quote the template (it holds no secret) and name unknown placeholders.
func ParseProbeTemplate(raw string) (ProbeTemplate, error) {
	t := ProbeTemplate{raw: raw}
	var unknown []string
	rest := raw
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.segments = append(t.segments, probeSegment{literal: rest})
			break
		}
		if rest[open] == '}' {
			return ProbeTemplate{}, fmt.Errorf("%q has a '}' without a matching '{'", raw)
		}
		if open > 0 {
			t.segments = append(t.segments, probeSegment{literal: rest[:open]})
		}
		end := strings.IndexAny(rest[open+1:], "{}")
		if end < 0 || rest[open+1+end] == '{' {
			return ProbeTemplate{}, fmt.Errorf("%q has a '{' without a matching '}'", raw)
		}
		name := rest[open : open+end+2]
		switch name {
		case PlaceholderMachineID, PlaceholderApp, PlaceholderPrivateIP:
		default:
			unknown = append(unknown, name)
		}
		t.segments = append(t.segments, probeSegment{placeholder: name})
		rest = rest[open+end+2:]
	}
	if len(unknown) > 0 {
		return ProbeTemplate{}, fmt.Errorf("unknown placeholder %s in %q (known: %s, %s, %s)",
			strings.Join(unknown, ", "), raw, PlaceholderMachineID, PlaceholderApp, PlaceholderPrivateIP)
	}
	if strings.Contains(raw, PlaceholderPrivateIP) {
		host, ok := templateHost(raw)
		if !ok || host != PlaceholderPrivateIP || strings.Count(raw, PlaceholderPrivateIP) != 1 {
			return ProbeTemplate{}, fmt.Errorf("%q: %s must be the whole host (http://%s:8080/status)",
				raw, PlaceholderPrivateIP, PlaceholderPrivateIP)
		}
	}
	sample := t.render(sampleMachineID, sampleApp, "["+sampleIPv6+"]")
	u, err := url.Parse(sample)
	switch {
	case err != nil:
		return ProbeTemplate{}, fmt.Errorf("%q does not make a URL: %w", raw, errors.Unwrap(err))
	case u.Scheme != "http" && u.Scheme != "https":
		return ProbeTemplate{}, fmt.Errorf("%q is not an http(s) URL", raw)
	case u.Host == "" || u.Hostname() == "":
		return ProbeTemplate{}, fmt.Errorf("%q has no host", raw)
	case u.User != nil:
		return ProbeTemplate{}, fmt.Errorf("%q must not hold user info", raw)
	}
	return t, nil
}

// templateHost returns the host of a template (without port), found
// textually because the template itself is not yet a URL.
func templateHost(raw string) (string, bool) {
	_, rest, ok := strings.Cut(raw, "://")
	if !ok {
		return "", false
	}
	if end := strings.IndexAny(rest, "/?#"); end >= 0 {
		rest = rest[:end]
	}
	if strings.Contains(rest, "@") {
		return "", false
	}
	host, port, found := strings.Cut(rest, ":")
	if found && port == "" {
		return "", false
	}
	return host, true
}

// String returns the template as written.
func (t ProbeTemplate) String() string { return t.raw }

// Uses reports whether the template holds the placeholder (one of the
// Placeholder constants), e.g. to know whether a machine's private IP is needed.
func (t ProbeTemplate) Uses(placeholder string) bool {
	for _, s := range t.segments {
		if s.placeholder == placeholder {
			return true
		}
	}
	return false
}

// Render returns the probe URL of one machine. Each value the template uses
// is validated first: the machine id (ErrInvalidMachineID), the app name and
// the private IP (an IPv4 or IPv6 address without zone; IPv6 goes in
// brackets). Values the template does not use are ignored.
func (t ProbeTemplate) Render(app, machineID, privateIP string) (string, error) {
	if len(t.segments) == 0 {
		return "", errors.New("rendering probe URL: empty template")
	}
	var ip string
	if t.Uses(PlaceholderMachineID) {
		if err := ValidateMachineID(machineID); err != nil {
			return "", fmt.Errorf("rendering probe URL: %w", err)
		}
	}
	if t.Uses(PlaceholderApp) {
		if err := checkAppName(app); err != nil {
			return "", fmt.Errorf("rendering probe URL: app name %q %w", app, err)
		}
	}
	if t.Uses(PlaceholderPrivateIP) {
		if privateIP == "" {
			return "", errors.New("rendering probe URL: the machine has no private IP")
		}
		addr, err := netip.ParseAddr(privateIP)
		if err != nil || addr.Zone() != "" {
			return "", fmt.Errorf("rendering probe URL: private IP %q is not an IP address without zone", privateIP)
		}
		addr = addr.Unmap()
		ip = addr.String()
		if addr.Is6() {
			ip = "[" + ip + "]"
		}
	}
	return t.render(machineID, app, ip), nil
}

// render substitutes values as they are; callers validate them.
func (t ProbeTemplate) render(machineID, app, ip string) string {
	var b strings.Builder
	for _, s := range t.segments {
		switch s.placeholder {
		case "":
			b.WriteString(s.literal)
		case PlaceholderMachineID:
			b.WriteString(machineID)
		case PlaceholderApp:
			b.WriteString(app)
		case PlaceholderPrivateIP:
			b.WriteString(ip)
		}
	}
	return b.String()
}

// ProbeTemplate parses the configured PROBE_URL_TEMPLATE. Parse it once and
// Render per machine; a Config that passed Validate never fails here.
func (c Config) ProbeTemplate() (ProbeTemplate, error) {
	t, err := ParseProbeTemplate(c.ProbeURLTemplate)
	if err != nil {
		return ProbeTemplate{}, fmt.Errorf("PROBE_URL_TEMPLATE: %w", err)
	}
	return t, nil
}

// ProbeURL renders the probe URL of one machine of the configured app: see
// ProbeTemplate.Render for what is validated.
func (c Config) ProbeURL(machineID, privateIP string) (string, error) {
	t, err := c.ProbeTemplate()
	if err != nil {
		return "", err
	}
	return t.Render(c.FlyAppName, machineID, privateIP)
}
