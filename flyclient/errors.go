package flyclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Sentinels for errors.Is. An *APIError matches the sentinel of its class
// (see APIError.Is); client-side failures wrap the matching sentinel.
var (
	// ErrNotFound: 404, the app or machine does not exist (yet, or any more).
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: 401 (missing or invalid token) or 403 (token without
	// access to the app).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRateLimited: 429, or the client-side limiter could not grant a slot
	// before the context's deadline.
	ErrRateLimited = errors.New("rate limited")
	// ErrConflict: 409 (lease held, version mismatch, concurrent update).
	ErrConflict = errors.New("conflict")
	// ErrCapacity: Fly has no capacity for the machine (status
	// "insufficient_capacity", usually with 503 or 409).
	ErrCapacity = errors.New("insufficient capacity")
	// ErrTimeout: 408, the server gave up (a /wait that did not see the state,
	// or an operation that may or may not have happened).
	ErrTimeout = errors.New("request timed out")
	// ErrPrecondition: 412 (start while replacing, volume in use).
	ErrPrecondition = errors.New("failed precondition")
	// ErrNameTaken: a machine of that name already exists in the app.
	ErrNameTaken = errors.New("machine name taken")
	// ErrBadRequest: 400 or 422, Fly refused the request as invalid.
	ErrBadRequest = errors.New("bad request")
	// ErrInvalidInput: the client refused the call before sending it (bad
	// machine id, empty image, ...).
	ErrInvalidInput = errors.New("invalid input")
	// ErrUnexpectedResponse: a 2xx answer whose body is malformed or larger
	// than the endpoint's cap.
	ErrUnexpectedResponse = errors.New("unexpected response")
)

// APIError is a non-2xx answer of the Fly Machines API.
type APIError struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Message is Fly's "error" (or "message") text, or the start of a
	// non-JSON body; at most 512 characters, never the token.
	Message string
	// Code is Fly's "status" code string, e.g. insufficient_capacity,
	// name_taken; "" when absent.
	Code string
	// RequestID is the fly-request-id response header.
	RequestID string
	// Endpoint is the route pattern, e.g. "GET /machines/{id}".
	Endpoint string
	// RetryAfter is the server's Retry-After, 0 when absent.
	RetryAfter time.Duration
}

// Error reads like "fly api GET /machines/{id}: 404 Not Found: machine not
// found (request id 01J...)".
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("fly api ")
	if e.Endpoint != "" {
		b.WriteString(e.Endpoint)
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%d %s", e.StatusCode, http.StatusText(e.StatusCode))
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	if e.Code != "" && !strings.Contains(e.Message, e.Code) {
		fmt.Fprintf(&b, " [%s]", e.Code)
	}
	if e.RequestID != "" {
		fmt.Fprintf(&b, " (request id %s)", e.RequestID)
	}
	return b.String()
}

// Is matches the sentinel of the error's class.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrRateLimited:
		return e.StatusCode == http.StatusTooManyRequests
	case ErrConflict:
		return e.StatusCode == http.StatusConflict
	case ErrCapacity:
		return e.Code == "insufficient_capacity"
	case ErrTimeout:
		return e.StatusCode == http.StatusRequestTimeout
	case ErrPrecondition:
		return e.StatusCode == http.StatusPreconditionFailed
	case ErrNameTaken:
		return e.nameTaken()
	case ErrBadRequest:
		return e.StatusCode == http.StatusBadRequest || e.StatusCode == http.StatusUnprocessableEntity
	}
	return false
}

// nameTaken recognises Fly's name_taken status and, for servers that send
// only a message, the usual wordings of a unique-name conflict.
func (e *APIError) nameTaken() bool {
	if e.Code == "name_taken" {
		return true
	}
	if e.StatusCode != http.StatusConflict && e.StatusCode != http.StatusUnprocessableEntity && e.StatusCode != http.StatusBadRequest {
		return false
	}
	msg := strings.ToLower(e.Message)
	return strings.Contains(msg, "name") &&
		(strings.Contains(msg, "taken") || strings.Contains(msg, "already exists") || strings.Contains(msg, "already in use") || strings.Contains(msg, "unique"))
}

// IsTransient reports whether err is worth retrying later unchanged: 408,
// 409, 412, 429, 5xx (including capacity), a name taken by a machine that
// is not (or no longer) visible, transport failures, a context deadline, the
// client-side rate limiter, and unexpected 2xx bodies. A cancelled context is
// neither transient nor permanent.
func IsTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		return transientStatus(apiErr.StatusCode) || apiErr.Is(ErrCapacity) || apiErr.Is(ErrNameTaken)
	}
	if errors.Is(err, ErrInvalidInput) {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrRateLimited) ||
		errors.Is(err, ErrUnexpectedResponse) || isNetworkError(err)
}

// IsPermanent reports whether repeating the same request cannot succeed: a
// 4xx other than 408, 409, 412 and 429 (for example 400, 401, 403, 404,
// 422) and other than a taken name (the holder may be on its way out), input
// the client refused before sending, or EnsureMachine finding its name held
// by another deployment's machine.
func IsPermanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		c := apiErr.StatusCode
		return c >= 400 && c < 500 && !transientStatus(c) && !apiErr.Is(ErrCapacity) && !apiErr.Is(ErrNameTaken)
	}
	return errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrNameTaken)
}

func transientStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusConflict, http.StatusPreconditionFailed, http.StatusTooManyRequests:
		return true
	}
	return code >= 500
}

// isNetworkError recognises transport failures: dial errors, resets, a body
// cut short, timeouts.
func isNetworkError(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr)
}

// isDialError reports whether err happened before any byte of the request
// could reach the server, so even a non-idempotent request may be resent.
func isDialError(err error) bool {
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}
