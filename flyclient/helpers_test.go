package flyclient_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/time/rate"

	"github.com/flightdeck/flightdeck/flyclient"
)

const (
	testToken = "s3cr3t-t0ken-value-for-tests"
	testApp   = "flightdeck-test"
	machineA  = "1857156b526dd8"
	machineB  = "3d8d413b29d089"
)

// fakeClock is a manual clock: Sleep advances it and records the delay
// instead of waiting.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock {
	// Start at the real time so that context deadlines derived from the
	// fake clock mean the same to the runtime.
	return &fakeClock{now: time.Now().Truncate(time.Second)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.now = f.now.Add(d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// recordedRequest is what a test server saw.
type recordedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   string
}

// apiServer is an httptest server that records requests and answers with
// the handler of the test.
type apiServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

func newAPIServer(handler func(w http.ResponseWriter, r *http.Request, n int)) *apiServer {
	s := &apiServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.requests = append(s.requests, recordedRequest{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(body)})
		n := len(s.requests)
		s.mu.Unlock()
		handler(w, r, n)
	}))
	DeferCleanup(s.Close)
	return s
}

func (s *apiServer) Requests() []recordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recordedRequest(nil), s.requests...)
}

func (s *apiServer) Count() int { return len(s.Requests()) }

// newClient returns a client for baseURL with a fake clock and no rate
// limits unless opts say otherwise.
func newClient(baseURL string, clock *fakeClock, mutate ...func(*flyclient.Options)) *flyclient.Client {
	opts := flyclient.Options{
		BaseURL: baseURL, Token: testToken, App: testApp,
		GetRate: rate.Inf, ActionRate: rate.Inf,
		Now: clock.Now, Sleep: clock.Sleep,
	}
	for _, m := range mutate {
		m(&opts)
	}
	c, err := flyclient.New(opts)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(c.CloseIdleConnections)
	return c
}

func writeJSON(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

func machineJSON(id, state string) string {
	return fmt.Sprintf(`{"id":%q,"name":"fd-x","state":%q,"region":"ord","instance_id":"01HEPA330HZ37A78TK080NAK1M",
"private_ip":"127.0.0.2","created_at":"2023-11-08T01:52:30Z","updated_at":"2023-11-08T01:52:30Z",
"config":{"image":"runner:latest","metadata":{"deployment_id":"d1"}},
"events":[{"type":"launch","status":"created","source":"user","timestamp":1699408350300}]}`, id, state)
}

// resetConnection hijacks the connection, writes raw, and resets it (RST).
func resetConnection(w http.ResponseWriter, raw string) {
	conn, buf, err := w.(http.Hijacker).Hijack()
	Expect(err).NotTo(HaveOccurred())
	_, _ = buf.WriteString(raw)
	_ = buf.Flush()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}
