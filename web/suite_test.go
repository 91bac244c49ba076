package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/jackc/pgx/v5/pgxpool"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/goleak"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/internal/envtest"
	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
	"github.com/flightdeck/flightdeck/web"
)

func TestWeb(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "web suite")
}

var (
	pg          *envtest.Postgres
	databaseURL string
	pool        *pgxpool.Pool
	st          *store.Store
	// client is the suite's HTTP client; its idle connections are closed
	// before the leak check.
	transport = &http.Transport{}
	client    = &http.Client{Transport: transport}
	// goroutinesBefore are those running before the suite started anything.
	goroutinesBefore goleak.Option
)

var _ = BeforeSuite(func(ctx SpecContext) {
	goroutinesBefore = goleak.IgnoreCurrent()
	// A browser on a busy two-core machine needs more than gomega's default
	// second; nothing here waits longer than it must.
	SetDefaultEventuallyTimeout(15 * time.Second)
	SetDefaultEventuallyPollingInterval(20 * time.Millisecond)
	var err error
	pg, err = envtest.StartPostgres(ctx)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pg.Stop)
	databaseURL, err = pg.NewDatabase(ctx, "web")
	Expect(err).NotTo(HaveOccurred())
	pool, err = pgxpool.New(ctx, databaseURL)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(pool.Close)
	st = store.New(pool)
}, NodeTimeout(2*time.Minute))

var _ = AfterSuite(func() {
	transport.CloseIdleConnections()
	// ginkgo runs DeferCleanup of BeforeSuite after AfterSuite: close the pool
	// and stop the cluster here (both are idempotent), so that their
	// goroutines are gone before the leak check.
	if pool != nil {
		pool.Close()
	}
	if pg != nil {
		Expect(pg.Stop()).To(Succeed())
	}
	Expect(goleak.Find(goroutinesBefore)).To(Succeed())
})

// ----- the server under test -----

// logSink collects every log line of a server, at every verbosity.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.lines = append(s.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: 10})
}

func (s *logSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// harness is one web.Server behind httptest, fed by a real store.Listener on
// the suite's database.
type harness struct {
	URL  string
	Logs *logSink

	mu       sync.Mutex
	requests []string
}

// Requests lists the requests served so far as "METHOD URI" plus
// " authorized" when they carried an Authorization header.
func (h *harness) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.requests...)
}

// record wraps the handler under test to note each request.
func (h *harness) record(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		line := r.Method + " " + r.URL.RequestURI()
		if r.Header.Get("Authorization") != "" {
			line += " authorized"
		}
		h.mu.Lock()
		h.requests = append(h.requests, line)
		h.mu.Unlock()
		next.ServeHTTP(w, r)
	})
}

type harnessOption func(*web.Options)

func withToken(token string) harnessOption {
	return func(o *web.Options) { o.APIToken = config.Secret(token) }
}
func withReadsNeedToken() harnessOption {
	return func(o *web.Options) { o.ReadsNeedToken = true }
}
func withHeartbeat(d time.Duration) harnessOption {
	return func(o *web.Options) { o.HeartbeatInterval = d }
}
func withMaxStreamClients(n int) harnessOption {
	return func(o *web.Options) { o.MaxStreamClients = n }
}
func withHandlers(health, ready, metrics http.Handler) harnessOption {
	return func(o *web.Options) { o.Health, o.Ready, o.Metrics = health, ready, metrics }
}

// startServer starts a server and registers its shutdown with DeferCleanup.
// It returns once the listener listens, so no later change is missed. stop
// ends Server.Start early (the stream then refuses new clients).
func startServer(opts ...harnessOption) (h *harness, stop func()) {
	h = &harness{Logs: &logSink{}}
	ctx, cancel := context.WithCancel(context.Background())
	listener, err := store.NewListener(store.ListenerConfig{DatabaseURL: databaseURL, Channels: []string{store.ChannelStatus}})
	Expect(err).NotTo(HaveOccurred())
	listenerDone := make(chan error, 1)
	go func() { listenerDone <- listener.Run(ctx) }()
	Eventually(listener.Ready()).WithTimeout(10 * time.Second).Should(BeClosed())

	o := web.Options{Store: st, Logger: h.Logs.logger(), Notifications: listener.Notifications(), StreamRetry: 250 * time.Millisecond}
	for _, opt := range opts {
		opt(&o)
	}
	srv := web.NewServer(o)
	startCtx, stopStart := context.WithCancel(ctx)
	startDone := make(chan error, 1)
	go func() { startDone <- srv.Start(startCtx) }()
	ts := httptest.NewServer(h.record(srv.Handler()))
	h.URL = ts.URL
	DeferCleanup(func() {
		stopStart()
		Eventually(startDone).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
		cancel()
		Eventually(listenerDone).WithTimeout(5 * time.Second).Should(Receive(BeNil()))
		ts.Close()
	})
	return h, stopStart
}

// ----- HTTP helpers -----

type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) JSON() map[string]any {
	GinkgoHelper()
	var m map[string]any
	Expect(json.Unmarshal(r.Body, &m)).To(Succeed(), "body: %s", r.Body)
	return m
}

// call sends one request; header holds extra headers.
func call(method, url, body string, header ...string) response {
	GinkgoHelper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	Expect(err).NotTo(HaveOccurred())
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return response{Code: resp.StatusCode, Header: resp.Header, Body: b}
}

func bearer(token string) []string { return []string{"Authorization", "Bearer " + token} }

// expectError asserts a JSON error answer: the code, a body of exactly
// {"error": "..."} and a message containing each of parts.
func expectError(r response, code int, parts ...string) {
	GinkgoHelper()
	Expect(r.Code).To(Equal(code), "body: %s", r.Body)
	Expect(r.Header.Get("Content-Type")).To(Equal("application/json"))
	var body map[string]any
	Expect(json.Unmarshal(r.Body, &body)).To(Succeed(), "body: %s", r.Body)
	Expect(body).To(HaveLen(1))
	Expect(body).To(HaveKeyWithValue("error", BeAssignableToTypeOf("")))
	for _, p := range parts {
		Expect(body["error"]).To(ContainSubstring(p))
	}
}

// ----- Server-Sent Events client -----

// sseMessage is one dispatched event or one comment line.
type sseMessage struct {
	Event, Data, Comment, Retry string
}

type sseClient struct {
	Resp     *http.Response
	Messages chan sseMessage
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	raw      strings.Builder
}

// Raw returns every byte received so far.
func (c *sseClient) Raw() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.raw.String()
}

func (c *sseClient) Close() {
	c.cancel()
	<-c.done
}

// openStream opens GET url; when the answer is 200 it parses the stream into
// Messages until Close (registered with DeferCleanup).
func openStream(url string, header ...string) *sseClient {
	GinkgoHelper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	Expect(err).NotTo(HaveOccurred())
	c := &sseClient{Resp: resp, Messages: make(chan sseMessage, 1000), cancel: cancel, done: make(chan struct{})}
	DeferCleanup(c.Close)
	go func() {
		defer close(c.done)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			c.mu.Lock()
			c.raw.Write(body)
			c.mu.Unlock()
			return
		}
		r := bufio.NewReader(resp.Body)
		var msg sseMessage
		for {
			line, err := r.ReadString('\n')
			c.mu.Lock()
			c.raw.WriteString(line)
			c.mu.Unlock()
			if err != nil {
				return
			}
			line = strings.TrimSuffix(line, "\n")
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch {
			case line == "":
				if msg != (sseMessage{}) {
					c.Messages <- msg
				}
				msg = sseMessage{}
			case field == "":
				c.Messages <- sseMessage{Comment: value}
			case field == "event":
				msg.Event = value
			case field == "data":
				msg.Data = value
			case field == "retry":
				// The reconnection time applies at once, not at dispatch.
				c.Messages <- sseMessage{Retry: value}
			}
		}
	}()
	return c
}

// nextEvent waits for the next message that is an event (not a comment).
func (c *sseClient) nextEvent() sseMessage {
	GinkgoHelper()
	var got sseMessage
	Eventually(func() bool {
		select {
		case m := <-c.Messages:
			if m.Event != "" {
				got = m
				return true
			}
		default:
		}
		return false
	}).WithTimeout(10 * time.Second).WithPolling(5 * time.Millisecond).Should(BeTrue())
	return got
}

// ----- fixtures -----

// fixture is a deployment row to insert with SQL, as the platform's API would.
type fixture struct {
	name, pkg                     string
	env                           map[string]string
	status                        status.Status
	machineID, region             string
	progressMessage, errorMessage string
	createdAt                     time.Time
}

type fixtureOption func(*fixture)

func withStatus(s status.Status) fixtureOption { return func(f *fixture) { f.status = s } }
func withEnv(env map[string]string) fixtureOption {
	return func(f *fixture) { f.env = env }
}
func withMachine(id, region string) fixtureOption {
	return func(f *fixture) { f.machineID, f.region = id, region }
}
func withMessages(progress, errMsg string) fixtureOption {
	return func(f *fixture) { f.progressMessage, f.errorMessage = progress, errMsg }
}
func withCreatedAt(t time.Time) fixtureOption { return func(f *fixture) { f.createdAt = t } }
func withPackage(p string) fixtureOption      { return func(f *fixture) { f.pkg = p } }

// deployment inserts a deployment row with SQL and returns its id.
func deployment(name string, opts ...fixtureOption) string {
	GinkgoHelper()
	f := fixture{name: name, pkg: "@modelcontextprotocol/server-everything@1.0.0", env: map[string]string{}, status: status.Pending, createdAt: time.Now()}
	for _, o := range opts {
		o(&f)
	}
	var id string
	err := pool.QueryRow(context.Background(), `
		INSERT INTO deployments (name, package, env, status, machine_id, region, progress_message, error_message, created_at)
		VALUES ($1, $2, $3, $4, NULLIF($5, ''), NULLIF($6, ''), NULLIF($7, ''), NULLIF($8, ''), $9)
		RETURNING id::text`,
		f.name, f.pkg, f.env, string(f.status), f.machineID, f.region, f.progressMessage, f.errorMessage, f.createdAt).Scan(&id)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// setStatus updates a deployment's status and messages with SQL, as the
// controller's guarded write would, and records the event.
func setStatus(id string, to status.Status, progress, errMsg string) {
	GinkgoHelper()
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = tx.Rollback(ctx) }()
	var from string
	Expect(tx.QueryRow(ctx, `SELECT status::text FROM deployments WHERE id = $1`, id).Scan(&from)).To(Succeed())
	_, err = tx.Exec(ctx, `UPDATE deployments SET status = $2, progress_message = NULLIF($3, ''), error_message = NULLIF($4, '') WHERE id = $1`,
		id, string(to), progress, errMsg)
	Expect(err).NotTo(HaveOccurred())
	_, err = tx.Exec(ctx, `INSERT INTO deployment_events (deployment_id, from_status, to_status, reason, message) VALUES ($1, $2, $3, $4, $5)`,
		id, from, string(to), reasonFor(to), progress+errMsg)
	Expect(err).NotTo(HaveOccurred())
	Expect(tx.Commit(ctx)).To(Succeed())
}

func reasonFor(s status.Status) string {
	return map[status.Status]string{
		status.Installing: "CreatingMachine", status.Starting: "MachineCreated", status.Running: "ProbeSucceeded",
		status.Unhealthy: "ProbeFailed", status.Stopped: "MachineStopped", status.Failed: "MachineCreateFailed",
		status.Pending: "SpecChanged",
	}[s]
}

// truncate empties the tables between specs that count rows.
func truncate() {
	GinkgoHelper()
	_, err := pool.Exec(context.Background(), `TRUNCATE deployments CASCADE`)
	Expect(err).NotTo(HaveOccurred())
}
