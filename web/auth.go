package web

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// Messages of the token checks. msgWritesDisabled is the wording: it
// tells the operator how to enable the write endpoints.
const (
	msgWritesDisabled = "write endpoints are disabled: set API_TOKEN (or --api-token) to enable them"
	msgReadsDisabled  = "read endpoints are disabled: HTTP_ADDR is not a loopback address, so they need a token: set API_TOKEN (or --api-token) to enable them"
	msgUnauthorized   = "missing or invalid bearer token: send Authorization: Bearer <API_TOKEN>"
)

// read wraps a read endpoint: it needs the token only when Options says so.
func (s *Server) read(h http.HandlerFunc) http.Handler {
	if !s.opts.ReadsNeedToken {
		return h
	}
	return s.requireToken(h, msgReadsDisabled)
}

// write wraps a write endpoint: it always needs the token.
func (s *Server) write(h http.HandlerFunc) http.Handler {
	return s.requireToken(h, msgWritesDisabled)
}

// requireToken answers 403 with disabled when no token is configured, 401
// when the request does not carry it, and calls h otherwise.
func (s *Server) requireToken(h http.HandlerFunc, disabled string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.APIToken.IsSet() {
			writeError(w, http.StatusForbidden, disabled)
			return
		}
		if !tokenMatches(bearerToken(r), s.opts.APIToken.Value()) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="flightdeck"`)
			writeError(w, http.StatusUnauthorized, msgUnauthorized)
			return
		}
		h(w, r)
	})
}

// bearerToken returns the token of an "Authorization: Bearer" header, or "".
// The scheme is case-insensitive (RFC 9110).
func bearerToken(r *http.Request) string {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// tokenMatches compares in constant time. Hashing first makes the time
// independent of the lengths too.
func tokenMatches(got, want string) bool {
	if got == "" || want == "" {
		return false
	}
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}
