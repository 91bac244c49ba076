package probe

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"regexp"
	"strings"

	"github.com/flightdeck/flightdeck/reconciler/decision"
)

// The placeholders a URLTemplate may hold.
const (
	PlaceholderMachineID = "{machine_id}"
	PlaceholderApp       = "{app}"
	PlaceholderPrivateIP = "{private_ip}"
)

// DefaultURLTemplate is PROBE_URL_TEMPLATE's default: the machine's stable 6PN name, port 8080, /status.
const DefaultURLTemplate = "http://{machine_id}.vm.{app}.internal:8080/status"

// appNamePattern is a Fly app name: a DNS label of lowercase letters, digits and dashes.
var appNamePattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// URLTemplate is a parsed PROBE_URL_TEMPLATE. Its literal text is fixed at parse time; the values that fill
// its placeholders are validated on every render, so nothing but a 14-hex machine id, a Fly app name and
// an IP address can reach a probe URL.
type URLTemplate struct {
	raw   string
	parts []part
}

// part is a literal (placeholder "") or a placeholder.
type part struct{ literal, placeholder string }

// Target holds the values of one deployment's placeholders. Only those the template uses are required.
type Target struct {
	MachineID string
	App       string
	// PrivateIP is an IPv4 or IPv6 address (no zone); IPv6 is rendered in brackets, as a URL host.
	PrivateIP string
}

// ParseURLTemplate parses and checks a template: only the three placeholders, an http or https URL with a
// host once filled, no credentials, no spaces. Errors name the variable.
func ParseURLTemplate(s string) (URLTemplate, error) {
	t := URLTemplate{raw: s}
	switch {
	case strings.ContainsAny(s, " \t\r\n"):
		return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must not contain spaces")
	case !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://"):
		return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must be an http:// or https:// URL")
	}
	rest := s
	for rest != "" {
		open := strings.IndexAny(rest, "{}")
		if open < 0 {
			t.parts = append(t.parts, part{literal: rest})
			break
		}
		if rest[open] == '}' {
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE has a '}' without a '{'")
		}
		if open > 0 {
			t.parts = append(t.parts, part{literal: rest[:open]})
		}
		closing := strings.IndexByte(rest[open:], '}')
		if closing < 0 {
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE has a '{' without a '}'")
		}
		name := rest[open : open+closing+1]
		switch name {
		case PlaceholderMachineID, PlaceholderApp, PlaceholderPrivateIP:
		default:
			return URLTemplate{}, fmt.Errorf("PROBE_URL_TEMPLATE has an unknown placeholder %s (want {machine_id}, {app} or {private_ip})", name)
		}
		t.parts = append(t.parts, part{placeholder: name})
		rest = rest[open+closing+1:]
	}
	if strings.Contains(s, "["+PlaceholderPrivateIP+"]") {
		return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must not bracket {private_ip}: IPv6 addresses are bracketed when rendered")
	}
	// Render with sample values (both address families) and check the URL's shape.
	for _, ip := range []string{"fdaa:0:1::2", "10.0.0.2"} {
		u, err := t.URL(Target{MachineID: "0123456789abcd", App: "app", PrivateIP: ip})
		if err != nil {
			return URLTemplate{}, fmt.Errorf("PROBE_URL_TEMPLATE: %w", err)
		}
		parsed, err := url.Parse(u)
		switch {
		case err != nil:
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE is not a valid URL once filled in")
		case parsed.Scheme != "http" && parsed.Scheme != "https":
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must be an http:// or https:// URL")
		case parsed.Host == "" || parsed.Hostname() == "":
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must name a host")
		case parsed.User != nil:
			return URLTemplate{}, errors.New("PROBE_URL_TEMPLATE must not hold credentials")
		}
	}
	return t, nil
}

// MustParseURLTemplate is ParseURLTemplate for constants; it panics on an invalid template.
func MustParseURLTemplate(s string) URLTemplate {
	t, err := ParseURLTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// String returns the template as written.
func (t URLTemplate) String() string { return t.raw }

// Uses reports whether the template holds placeholder (one of the Placeholder constants): the controller
// needs a deployment's private IP only when the template uses {private_ip}.
func (t URLTemplate) Uses(placeholder string) bool {
	for _, p := range t.parts {
		if p.placeholder == placeholder {
			return true
		}
	}
	return false
}

// URL renders the probe URL of target, validating each value the template uses.
func (t URLTemplate) URL(target Target) (string, error) {
	var b strings.Builder
	for _, p := range t.parts {
		switch p.placeholder {
		case "":
			b.WriteString(p.literal)
		case PlaceholderMachineID:
			if !decision.ValidMachineID(target.MachineID) {
				return "", fmt.Errorf("machine id %q is not 14 lowercase hexadecimal characters", target.MachineID)
			}
			b.WriteString(target.MachineID)
		case PlaceholderApp:
			if !appNamePattern.MatchString(target.App) {
				return "", fmt.Errorf("app name %q is not a Fly app name (lowercase letters, digits and dashes)", target.App)
			}
			b.WriteString(target.App)
		case PlaceholderPrivateIP:
			host, err := ipHost(target.PrivateIP)
			if err != nil {
				return "", err
			}
			b.WriteString(host)
		}
	}
	return b.String(), nil
}

// ipHost renders an IP address as a URL host: IPv4 as is, IPv6 in brackets.
func ipHost(s string) (string, error) {
	if s == "" {
		return "", errors.New("no private IP is known for the machine")
	}
	addr, err := netip.ParseAddr(s)
	if err != nil || addr.Zone() != "" {
		return "", fmt.Errorf("private IP %q is not an IP address", s)
	}
	if addr.Is4() || addr.Is4In6() {
		return addr.Unmap().String(), nil
	}
	return "[" + addr.String() + "]", nil
}
