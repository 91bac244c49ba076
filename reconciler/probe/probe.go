// Package probe GETs a deployment's /status and classifies the outcome for the state machine
// (decision.ProbeResult): ok, another HTTP status, refused, reset, timeout, DNS failure, or other.
//
// One Prober serves every deployment. It holds a single http.Client and Transport tuned for probing
// thousands of servers on 2 cores: a per-probe timeout (PROBE_TIMEOUT), a dial timeout shorter than it,
// redirects reported rather than followed, at most 64 KiB of body read (drained so that the connection goes
// back to the pool), keep-alive connections kept longer than CHECK_INTERVAL so that every check reuses the
// previous one, no proxy from the environment (probes go straight to the machine's 6PN address, never
// through the Fly proxy, so they do not wake autostopped machines), and an optional bound on the probes in
// flight. URLs come only from config.ProbeTemplate (PROBE_URL_TEMPLATE), whose placeholders are validated before they reach a URL.
package probe

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

	"github.com/flightdeck/flightdeck/internal/version"
	"github.com/flightdeck/flightdeck/reconciler/decision"
)

// Defaults of Options.
const (
	DefaultTimeout             = 5 * time.Second
	DefaultIdleConnTimeout     = 60 * time.Second // 2 × the default CHECK_INTERVAL
	DefaultMaxBodyBytes        = 64 << 10
	DefaultMaxIdleConns        = 10000
	DefaultMaxIdleConnsPerHost = 2
	maxResponseHeaderBytes     = 32 << 10
)

// Options tune a Prober. Zero fields take the defaults.
type Options struct {
	// Timeout bounds one probe from dial to the end of the body (PROBE_TIMEOUT). Default 5s.
	Timeout time.Duration
	// DialTimeout bounds connecting (and a TLS handshake); it must be shorter than Timeout, so that an
	// unroutable machine is told apart from a slow server. Default Timeout/2.
	DialTimeout time.Duration
	// IdleConnTimeout keeps an idle keep-alive connection in the pool; set it above CHECK_INTERVAL (2× is
	// the rule) so that each check reuses the previous check's connection. Default 60s.
	IdleConnTimeout time.Duration
	// MaxBodyBytes caps the body read of a response. Default 64 KiB.
	MaxBodyBytes int64
	// MaxIdleConns caps idle connections over all hosts: one per deployment is the steady state, so size
	// it above the fleet (each is a file descriptor). Default 10000.
	MaxIdleConns int
	// MaxIdleConnsPerHost caps idle connections per machine. Default 2.
	MaxIdleConnsPerHost int
	// MaxInFlight bounds the probes running at once (0: unbounded); a probe waits for a slot before its
	// timeout starts.
	MaxInFlight int
	// UserAgent is sent with every probe. Default version.UserAgent().
	UserAgent string
	// Resolver resolves host names (nil: the default resolver). Tests inject one that answers locally.
	Resolver *net.Resolver
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = o.Timeout / 2
	}
	if o.IdleConnTimeout == 0 {
		o.IdleConnTimeout = DefaultIdleConnTimeout
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxIdleConns == 0 {
		o.MaxIdleConns = DefaultMaxIdleConns
	}
	if o.MaxIdleConnsPerHost == 0 {
		o.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if o.UserAgent == "" {
		o.UserAgent = version.UserAgent()
	}
	switch {
	case o.Timeout < 0 || o.DialTimeout < 0 || o.IdleConnTimeout < 0:
		return o, errors.New("probe timeouts must not be negative")
	case o.DialTimeout >= o.Timeout:
		return o, fmt.Errorf("probe dial timeout %s must be shorter than the probe timeout %s", o.DialTimeout, o.Timeout)
	case o.MaxBodyBytes < 0 || o.MaxIdleConns < 0 || o.MaxIdleConnsPerHost < 0 || o.MaxInFlight < 0:
		return o, errors.New("probe limits must not be negative")
	}
	return o, nil
}

// Result is a classified probe and how long it took (for the probe duration metric).
type Result struct {
	decision.ProbeResult
	Duration time.Duration
}

// Prober probes servers over one shared transport. It is safe for concurrent use.
type Prober struct {
	opts      Options
	client    *http.Client
	transport *http.Transport
	slots     chan struct{}
}

// New returns a Prober; it fails only on inconsistent options.
func New(opts Options) (*Prober, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("configuring the prober: %w", err)
	}
	dialer := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second, Resolver: o.Resolver}
	transport := &http.Transport{
		Proxy:                  nil, // never HTTP(S)_PROXY from the environment
		DialContext:            dialer.DialContext,
		TLSHandshakeTimeout:    o.DialTimeout,
		MaxIdleConns:           o.MaxIdleConns,
		MaxIdleConnsPerHost:    o.MaxIdleConnsPerHost,
		IdleConnTimeout:        o.IdleConnTimeout,
		DisableCompression:     true,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
		// A probe request is one short line plus a few headers, and its answer's
		// head fits in a kilobyte or two; net/http's 4 KiB default buffers, kept
		// per idle keep-alive connection, are most of a fleet's memory.
		ReadBufferSize:  2 << 10,
		WriteBufferSize: 1 << 10,
	}
	p := &Prober{
		opts:      o,
		transport: transport,
		client: &http.Client{
			Transport: transport,
			// A redirect is an answer: report its status, follow nothing.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	if o.MaxInFlight > 0 {
		p.slots = make(chan struct{}, o.MaxInFlight)
	}
	return p, nil
}

// Close drops the idle keep-alive connections. Probes may still run afterwards (they dial anew).
func (p *Prober) Close() { p.transport.CloseIdleConnections() }

// Probe GETs rawURL (rendered by config.ProbeTemplate) and classifies the outcome. It never returns an error: every
// failure is a classification with a short message that does not repeat the URL. A cancelled ctx gives
// decision.ProbeOther ("probe cancelled"); the caller should not decide on it.
func (p *Prober) Probe(ctx context.Context, rawURL string) Result {
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
			defer func() { <-p.slots }()
		case <-ctx.Done():
			return Result{ProbeResult: decision.ProbeResult{Kind: decision.ProbeOther, Message: "probe cancelled"}}
		}
	}
	start := time.Now()
	r := p.probe(ctx, rawURL)
	return Result{ProbeResult: r, Duration: time.Since(start)}
}

func (p *Prober) probe(parent context.Context, rawURL string) decision.ProbeResult {
	ctx, cancel := context.WithTimeout(parent, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return decision.ProbeResult{Kind: decision.ProbeOther, Message: "invalid probe URL"}
	}
	req.Header.Set("User-Agent", p.opts.UserAgent)
	req.Header.Set("Accept", "application/json, */*")
	resp, err := p.client.Do(req)
	if err != nil {
		return p.classify(parent, err)
	}
	// Read at most MaxBodyBytes (plus one byte, to see whether the body ended there): a body that ends
	// within the cap leaves the connection reusable; a longer one is cut and its connection closed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, p.opts.MaxBodyBytes+1))
	_ = resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return decision.ProbeResult{Kind: decision.ProbeOK, Code: resp.StatusCode, Message: "HTTP status 200"}
	}
	return decision.ProbeResult{Kind: decision.ProbeHTTPStatus, Code: resp.StatusCode, Message: fmt.Sprintf("HTTP status %d", resp.StatusCode)}
}

// classify turns a failed request into a probe result.
func (p *Prober) classify(parent context.Context, err error) decision.ProbeResult {
	result := func(k decision.ProbeKind, msg string) decision.ProbeResult {
		return decision.ProbeResult{Kind: k, Message: msg}
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	dialing := errors.As(err, &opErr) && opErr.Op == "dial"
	switch {
	case parent.Err() != nil:
		return result(decision.ProbeOther, "probe cancelled")
	case errors.As(err, &dnsErr):
		if dnsErr.IsNotFound {
			return result(decision.ProbeDNS, "DNS lookup failed: no such host")
		}
		if dnsErr.IsTimeout {
			return result(decision.ProbeDNS, "DNS lookup timed out")
		}
		return result(decision.ProbeDNS, "DNS lookup failed: "+shorten(dnsErr.Err))
	case errors.Is(err, syscall.ECONNREFUSED):
		return result(decision.ProbeRefused, "connection refused")
	case dialing && errors.As(err, &netErr) && netErr.Timeout():
		return result(decision.ProbeTimeout, "connection timed out after "+p.opts.DialTimeout.String())
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()):
		return result(decision.ProbeTimeout, "timed out after "+p.opts.Timeout.String())
	case errors.Is(err, syscall.ECONNRESET):
		return result(decision.ProbeReset, "connection reset by peer")
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return result(decision.ProbeReset, "connection closed before a response")
	case errors.Is(err, syscall.EHOSTUNREACH):
		return result(decision.ProbeOther, "host unreachable")
	case errors.Is(err, syscall.ENETUNREACH):
		return result(decision.ProbeOther, "network unreachable")
	default:
		return result(decision.ProbeOther, "request failed: "+shorten(innermost(err)))
	}
}

// innermost returns the last error of err's chain: the cause without the URL and addresses the outer
// layers add.
func innermost(err error) string {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// shorten keeps a message to one short line.
func shorten(msg string) string {
	msg = strings.Join(strings.Fields(msg), " ")
	if r := []rune(msg); len(r) > 120 {
		msg = string(r[:120]) + "…"
	}
	return msg
}
