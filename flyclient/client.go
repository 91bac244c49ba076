package flyclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"

	"github.com/flightdeck/flightdeck/internal/version"
)

// Defaults for Options (reference §5 for the rates).
const (
	DefaultBaseURL        = "https://api.machines.dev"
	DefaultGetRate        = rate.Limit(5)
	DefaultGetBurst       = 10
	DefaultActionRate     = rate.Limit(1)
	DefaultActionBurst    = 3
	DefaultMaxRetries     = 4
	DefaultRequestTimeout = 30 * time.Second
	DefaultRetryBaseDelay = 250 * time.Millisecond
	DefaultRetryMaxDelay  = 8 * time.Second
	DefaultMaxRetryWait   = 30 * time.Second
	DefaultWaitTimeout    = 5 * time.Minute
)

// Body caps per endpoint (see the package doc).
const (
	maxMachineBody = 1 << 20
	maxEventsBody  = 1 << 20
	maxListBody    = 128 << 20
	maxSmallBody   = 64 << 10
	maxErrorBody   = 64 << 10
	maxMessageLen  = 512
)

// Options configure a Client. Zero values take the defaults above.
type Options struct {
	// BaseURL of the Machines API, without or with the /v1 suffix.
	BaseURL string
	// Token is the Fly API token (bare, or with a "Bearer "/"FlyV1 " scheme).
	Token Token
	// App is the Fly app the machines live in.
	App string
	// HTTPClient sends the requests; its Timeout must be 0 or above 60s
	// (/wait long-polls). Default: a client that follows no redirects.
	HTTPClient *http.Client
	// Logger receives retry decisions at V(1) when the call's context
	// carries no logger (logr.FromContext). Default: discard.
	Logger logr.Logger

	// GetRate/GetBurst limit Get Machine per machine; ActionRate/ActionBurst
	// every other call per machine (per app for create and list). Use
	// rate.Inf to disable a limiter.
	GetRate     rate.Limit
	GetBurst    int
	ActionRate  rate.Limit
	ActionBurst int

	// MaxRetries bounds the retries of one call (0: DefaultMaxRetries;
	// negative: none).
	MaxRetries int
	// RetryBaseDelay and RetryMaxDelay shape the exponential backoff.
	RetryBaseDelay time.Duration
	RetryMaxDelay  time.Duration
	// MaxRetryWait is the longest Retry-After the client waits out itself;
	// a longer one ends the call with the *APIError (RetryAfter set).
	MaxRetryWait time.Duration
	// RequestTimeout bounds one attempt (a /wait attempt gets its server
	// timeout on top).
	RequestTimeout time.Duration

	// Now and Sleep replace the clock in tests. Sleep must return ctx.Err()
	// when ctx ends first.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error

	// OnRequest, when set, is called after every HTTP attempt with the route
	// pattern (e.g. "GET /machines/{id}"), the status code (0 when no answer
	// came) and the attempt's duration. For metrics.
	OnRequest func(endpoint string, code int, d time.Duration)
}

// Client calls the Fly Machines API for one app. It is safe for concurrent
// use.
type Client struct {
	base      string // <base url>/v1/apps/{app}, path-escaped
	app       string
	auth      secret
	http      *http.Client
	ownHTTP   bool
	log       logr.Logger
	getLim    *keyedLimiter
	actionLim *keyedLimiter

	maxRetries     int
	retryBase      time.Duration
	retryMax       time.Duration
	maxRetryWait   time.Duration
	requestTimeout time.Duration
	now            func() time.Time
	sleep          func(ctx context.Context, d time.Duration) error
	onRequest      func(endpoint string, code int, d time.Duration)
}

// New checks opts and returns a Client.
func New(opts Options) (*Client, error) {
	rawBase := opts.BaseURL
	if rawBase == "" {
		rawBase = DefaultBaseURL
	}
	base, err := url.Parse(strings.TrimRight(rawBase, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		return nil, errors.New("fly api base url: want an absolute http or https URL")
	}
	if base.User != nil {
		return nil, errors.New("fly api base url must not carry credentials")
	}
	if opts.App == "" {
		return nil, errors.New("fly app name is empty")
	}
	header, err := opts.Token.authorization()
	if err != nil {
		return nil, err
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, errors.New("fly api base url: want no query or fragment")
	}
	prefix := base.Scheme + "://" + base.Host + base.EscapedPath()
	if !strings.HasSuffix(prefix, "/v1") {
		prefix += "/v1"
	}
	prefix += "/apps/" + url.PathEscape(opts.App)

	c := &Client{
		base:           prefix,
		app:            opts.App,
		auth:           newSecret(header),
		http:           opts.HTTPClient,
		log:            opts.Logger,
		maxRetries:     opts.MaxRetries,
		retryBase:      opts.RetryBaseDelay,
		retryMax:       opts.RetryMaxDelay,
		maxRetryWait:   opts.MaxRetryWait,
		requestTimeout: opts.RequestTimeout,
		now:            opts.Now,
		sleep:          opts.Sleep,
		onRequest:      opts.OnRequest,
	}
	if c.http == nil {
		c.http, c.ownHTTP = newHTTPClient(), true
	}
	if c.log.GetSink() == nil {
		c.log = logr.Discard()
	}
	switch {
	case c.maxRetries == 0:
		c.maxRetries = DefaultMaxRetries
	case c.maxRetries < 0:
		c.maxRetries = 0
	}
	c.retryBase = orDefault(c.retryBase, DefaultRetryBaseDelay)
	c.retryMax = orDefault(c.retryMax, DefaultRetryMaxDelay)
	c.maxRetryWait = orDefault(c.maxRetryWait, DefaultMaxRetryWait)
	c.requestTimeout = orDefault(c.requestTimeout, DefaultRequestTimeout)
	if c.now == nil {
		c.now = time.Now
	}
	if c.sleep == nil {
		c.sleep = sleepContext
	}
	getRate, getBurst := opts.GetRate, opts.GetBurst
	if getRate == 0 {
		getRate = DefaultGetRate
	}
	if getBurst <= 0 {
		getBurst = DefaultGetBurst
	}
	actionRate, actionBurst := opts.ActionRate, opts.ActionBurst
	if actionRate == 0 {
		actionRate = DefaultActionRate
	}
	if actionBurst <= 0 {
		actionBurst = DefaultActionBurst
	}
	c.getLim = newKeyedLimiter(getRate, getBurst)
	c.actionLim = newKeyedLimiter(actionRate, actionBurst)
	return c, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// newHTTPClient returns a client with a tuned transport that follows no
// redirects (an Authorization header must never travel elsewhere).
func newHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 64
	tr.MaxIdleConnsPerHost = 32
	tr.IdleConnTimeout = 90 * time.Second
	return &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CloseIdleConnections closes the idle keep-alive connections of the client's
// transport (for tests and shutdown).
func (c *Client) CloseIdleConnections() { c.http.CloseIdleConnections() }

// App returns the app the client works on.
func (c *Client) App() string { return c.app }

// String describes the client without its token.
func (c *Client) String() string {
	if c == nil {
		return "flyclient.Client(nil)"
	}
	return fmt.Sprintf("flyclient.Client{base: %s, app: %s, token: %s}", c.base, c.app, redacted)
}

// GoString is String (no token).
func (c *Client) GoString() string { return c.String() }

// Format prints String for every verb, for a Client and a *Client alike.
func (c Client) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, c.String()) }

func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// limiterKind selects the bucket family of a call.
type limiterKind int

const (
	limitAction limiterKind = iota
	limitGet
)

// call describes one API call for do.
type call struct {
	method     string
	pattern    string // route pattern for errors and metrics, e.g. "GET /machines/{id}"
	path       string // below /v1/apps/{app}, e.g. "/machines/0123"
	query      url.Values
	body       any
	limiter    limiterKind
	limitKey   string // identifier: machine id or app
	maxBody    int64
	timeout    time.Duration // per attempt; 0: requestTimeout
	idempotent bool          // safe to resend after an answer or a failed exchange
	out        any           // decode target for a 2xx body; nil discards it
}

// do sends cl with rate limiting and retries, and decodes a 2xx body into
// cl.out. It returns an *APIError for non-2xx answers.
func (c *Client) do(ctx context.Context, cl call) error {
	var body []byte
	if cl.body != nil {
		var err error
		if body, err = json.Marshal(cl.body); err != nil {
			return fmt.Errorf("fly api %s: encoding request: %w", cl.pattern, err)
		}
	}
	for attempt := 0; ; attempt++ {
		if err := c.waitRateLimit(ctx, cl); err != nil {
			return err
		}
		retry, after, err := c.attempt(ctx, cl, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= c.maxRetries || ctx.Err() != nil {
			return err
		}
		delay := c.backoff(attempt)
		if after > 0 {
			if after > c.maxRetryWait || c.beyondDeadline(ctx, after) {
				return err
			}
			delay = after
		}
		if c.beyondDeadline(ctx, delay) {
			return err
		}
		c.logger(ctx).V(1).Info("Retrying Fly API request", "endpoint", cl.pattern, "attempt", attempt+1, "delay", delay, "error", err.Error())
		if serr := c.sleep(ctx, delay); serr != nil {
			return err
		}
	}
}

// logger is the context's logger (the caller's, with its keys) or else
// Options.Logger.
func (c *Client) logger(ctx context.Context) logr.Logger {
	if l, err := logr.FromContext(ctx); err == nil {
		return l
	}
	return c.log
}

// beyondDeadline reports whether waiting d would pass ctx's deadline.
func (c *Client) beyondDeadline(ctx context.Context, d time.Duration) bool {
	dl, ok := ctx.Deadline()
	return ok && c.now().Add(d).After(dl)
}

// backoff is exponential with jitter: a random delay in [d/2, d] where d
// doubles from RetryBaseDelay up to RetryMaxDelay.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retryBase
	for i := 0; i < attempt && d < c.retryMax; i++ {
		d *= 2
	}
	if d > c.retryMax {
		d = c.retryMax
	}
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// waitRateLimit waits for the call's bucket; it fails with ErrRateLimited at
// once when the wait would pass ctx's deadline.
func (c *Client) waitRateLimit(ctx context.Context, cl call) error {
	lim := c.actionLim
	if cl.limiter == limitGet {
		lim = c.getLim
	}
	now := c.now()
	delay, cancel := lim.reserve(cl.pattern+" "+cl.limitKey, now)
	if delay <= 0 {
		return nil
	}
	if c.beyondDeadline(ctx, delay) {
		cancel()
		return fmt.Errorf("fly api %s: client-side limit needs %s, beyond the deadline: %w", cl.pattern, delay.Round(time.Millisecond), ErrRateLimited)
	}
	if err := c.sleep(ctx, delay); err != nil {
		cancel()
		return fmt.Errorf("fly api %s: waiting for the client-side rate limit: %w", cl.pattern, err)
	}
	return nil
}

// attempt makes one HTTP exchange. retry says whether the failure may be
// retried; after is the server's Retry-After.
func (c *Client) attempt(ctx context.Context, cl call, body []byte) (retry bool, after time.Duration, err error) {
	timeout := cl.timeout
	if timeout <= 0 {
		timeout = c.requestTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	u := c.endpointURL(cl.path, cl.query)
	var rdr io.Reader
	if body != nil {
		rdr = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(actx, cl.method, u, rdr)
	if err != nil {
		return false, 0, fmt.Errorf("fly api %s: building request: %w", cl.pattern, err)
	}
	req.Header.Set("Authorization", c.auth.header())
	req.Header.Set("User-Agent", version.UserAgent())
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := c.now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.record(cl.pattern, 0, start)
		err = c.transportError(cl.pattern, err)
		// An idempotent request may always be resent; any other only when no
		// byte reached the server.
		return ctx.Err() == nil && (cl.idempotent || isDialError(err)), 0, err
	}
	defer resp.Body.Close()

	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		err := decodeBody(resp.Body, cl.maxBody, cl.out)
		c.record(cl.pattern, resp.StatusCode, start)
		if err == nil {
			return false, 0, nil
		}
		if errors.Is(err, errBodyTooLarge) || errors.Is(err, errMalformed) {
			return false, 0, fmt.Errorf("fly api %s: %w: %w", cl.pattern, ErrUnexpectedResponse, c.scrubErr(err))
		}
		// The body was cut short: a transport failure after the answer began.
		return ctx.Err() == nil && cl.idempotent, 0, c.transportError(cl.pattern, err)
	}

	apiErr := c.readAPIError(resp, cl.pattern)
	c.record(cl.pattern, resp.StatusCode, start)
	switch resp.StatusCode {
	case http.StatusTooManyRequests:
		// Refused before it was processed: safe for any method.
		return true, apiErr.RetryAfter, apiErr
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return cl.idempotent && !apiErr.Is(ErrCapacity), apiErr.RetryAfter, apiErr
	}
	return false, 0, apiErr
}

func (c *Client) record(pattern string, code int, start time.Time) {
	if c.onRequest != nil {
		c.onRequest(pattern, code, c.now().Sub(start))
	}
}

// endpointURL joins the app base, path and query.
func (c *Client) endpointURL(path string, q url.Values) string {
	if len(q) > 0 {
		return c.base + path + "?" + q.Encode()
	}
	return c.base + path
}

// transportError strips the URL that net/http puts into its errors (the
// endpoint pattern names the call) and names the endpoint.
func (c *Client) transportError(pattern string, err error) error {
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err
	}
	return fmt.Errorf("fly api %s: %w", pattern, c.scrubErr(err))
}

// scrubErr guards against an error text that carries the token; it keeps the
// chain for errors.Is when the text is clean.
func (c *Client) scrubErr(err error) error {
	msg := err.Error()
	if clean := c.auth.scrub(msg); clean != msg {
		return errors.New(clean)
	}
	return err
}

// readAPIError builds the *APIError of a non-2xx answer from its body
// ({"error": ..., "status": ...} or text) and headers.
func (c *Client) readAPIError(resp *http.Response, pattern string) *APIError {
	e := &APIError{
		StatusCode: resp.StatusCode,
		RequestID:  resp.Header.Get("Fly-Request-Id"),
		Endpoint:   pattern,
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), c.now()),
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	var body struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Status  string          `json:"status"`
		Code    json.RawMessage `json:"code"`
	}
	if json.Unmarshal(raw, &body) == nil {
		var s string
		if json.Unmarshal(body.Error, &s) == nil {
			e.Message = s
		} else if len(body.Error) > 0 && string(body.Error) != "null" {
			e.Message = string(body.Error)
		}
		if e.Message == "" {
			e.Message = body.Message
		}
		if body.Status != "" && body.Status != "error" { // lease envelope uses status "error"
			e.Code = body.Status
		} else if json.Unmarshal(body.Code, &s) == nil {
			e.Code = s
		}
	} else {
		e.Message = strings.TrimSpace(string(raw))
	}
	e.Message = truncate(c.auth.scrub(strings.ToValidUTF8(e.Message, "?")), maxMessageLen)
	e.Code = truncate(c.auth.scrub(e.Code), 64)
	e.RequestID = truncate(e.RequestID, 128)
	return e
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !isRuneStart(s[len(s)-1]) {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0x80 { // drop a multi-byte rune cut in half
		s = s[:len(s)-1]
	}
	return s + "…"
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// parseRetryAfter reads delta-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > 24*3600 {
			secs = 24 * 3600
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

var (
	errBodyTooLarge = errors.New("response body exceeds its size cap")
	errMalformed    = errors.New("malformed JSON")
)

// cappedReader returns errBodyTooLarge once more than n bytes are read.
type cappedReader struct {
	r io.Reader
	n int64
}

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n < 0 {
		return 0, errBodyTooLarge
	}
	if int64(len(p)) > c.n+1 {
		p = p[:c.n+1]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	if c.n < 0 {
		return n, errBodyTooLarge
	}
	return n, err
}

// decodeBody streams a 2xx body into out through a cap; with no out it only
// drains the body. An empty body decodes as nothing. Read errors come back as they are; syntax
// and type errors wrap errMalformed.
func decodeBody(body io.Reader, maxBytes int64, out any) error {
	if out == nil {
		// The 2xx status is the answer; the body is read (up to the cap) only
		// so that the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(body, maxBytes))
		return nil
	}
	r := &cappedReader{r: body, n: maxBytes}
	dec := json.NewDecoder(r)
	if err := dec.Decode(out); err != nil {
		if errors.Is(err, errBodyTooLarge) {
			return fmt.Errorf("more than %d bytes: %w", maxBytes, errBodyTooLarge)
		}
		var syn *json.SyntaxError
		var typ *json.UnmarshalTypeError
		if err == io.EOF { // empty body: nothing to decode; callers check required fields
			return nil
		}
		if errors.As(err, &syn) || errors.As(err, &typ) {
			return fmt.Errorf("%w: %w", errMalformed, err)
		}
		if errors.Is(err, io.ErrUnexpectedEOF) || isNetworkError(err) {
			return err
		}
		// Errors from custom decoders (bad timestamp, bad autostop).
		return fmt.Errorf("%w: %w", errMalformed, err)
	}
	// Trailing garbage after the value is malformed too; drain what is left.
	if _, err := dec.Token(); err != io.EOF {
		if errors.Is(err, errBodyTooLarge) {
			return fmt.Errorf("more than %d bytes: %w", maxBytes, errBodyTooLarge)
		}
		if err == nil || errors.As(err, new(*json.SyntaxError)) {
			return fmt.Errorf("%w: trailing data after the JSON value", errMalformed)
		}
		return err
	}
	return nil
}
