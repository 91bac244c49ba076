package flyclient

import (
	"errors"
	"fmt"
	"strings"
)

const redacted = "[redacted]"

// Token is a Fly API token. Every fmt verb, String, GoString and JSON print
// it as "[redacted]", so an Options or Client value can be logged or printed
// without leaking it. Convert with Token(s) when filling Options. (fmt skips
// formatting methods inside unexported struct fields, so do not keep an
// Options in one; the Client keeps no Token at all.)
type Token string

// String returns "[redacted]".
func (Token) String() string { return redacted }

// GoString returns "[redacted]".
func (Token) GoString() string { return redacted }

// Format prints "[redacted]" for every verb.
func (Token) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON encodes "[redacted]".
func (Token) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText encodes "[redacted]" (for loggers that prefer text).
func (Token) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// macaroonPrefixes mark tokens that go in a FlyV1 Authorization header
// (fly-go tokens.Parse, reference §1).
var macaroonPrefixes = []string{"fm1r_", "fm1a_", "fm2_"}

// authorization returns the Authorization header value for t: "FlyV1 <t>"
// when the token holds macaroons, else "Bearer <t>". A scheme the user put in
// front ("Bearer ", "FlyV1 ") is stripped first.
func (t Token) authorization() (string, error) {
	s := strings.TrimSpace(string(t))
	for _, scheme := range []string{"bearer", "flyv1"} {
		if strings.EqualFold(s, scheme) {
			s = ""
			break
		}
		if len(s) > len(scheme) && strings.EqualFold(s[:len(scheme)], scheme) && (s[len(scheme)] == ' ' || s[len(scheme)] == '\t') {
			s = strings.TrimSpace(s[len(scheme):])
			break
		}
	}
	if s == "" {
		return "", errors.New("fly api token is empty")
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", errors.New("fly api token contains control characters")
		}
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		for _, p := range macaroonPrefixes {
			if strings.HasPrefix(part, p) {
				return "FlyV1 " + s, nil
			}
		}
	}
	return "Bearer " + s, nil
}

// secret holds the Authorization header and the bare token inside a
// closure, so that no print of a Client (any verb, even through unexported
// fields, where fmt bypasses formatting methods) can reach their bytes.
type secret struct {
	reveal func() (header, bare string)
}

func newSecret(header string) secret {
	bare := strings.TrimSpace(header[strings.IndexByte(header, ' ')+1:])
	return secret{reveal: func() (string, string) { return header, bare }}
}

// header returns the Authorization header value.
func (s secret) header() string {
	h, _ := s.reveal()
	return h
}

// scrub removes the token from msg (a server message might echo it).
func (s secret) scrub(msg string) string {
	if s.reveal == nil {
		return msg
	}
	_, bare := s.reveal()
	if bare == "" {
		return msg
	}
	msg = strings.ReplaceAll(msg, bare, redacted)
	for _, part := range strings.Split(bare, ",") {
		if part = strings.TrimSpace(part); len(part) >= 8 {
			msg = strings.ReplaceAll(msg, part, redacted)
		}
	}
	return msg
}
