package flysim

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/go-logr/logr"
)

// Routes of the Machines API, as counted in Stats.
const (
	RouteApp         = "/v1/apps/{app}"
	RouteMachines    = "/v1/apps/{app}/machines"
	RouteMachine     = "/v1/apps/{app}/machines/{id}"
	RouteStart       = "/v1/apps/{app}/machines/{id}/start"
	RouteStop        = "/v1/apps/{app}/machines/{id}/stop"
	RouteSuspend     = "/v1/apps/{app}/machines/{id}/suspend"
	RouteRestart     = "/v1/apps/{app}/machines/{id}/restart"
	RouteCordon      = "/v1/apps/{app}/machines/{id}/cordon"
	RouteUncordon    = "/v1/apps/{app}/machines/{id}/uncordon"
	RouteWait        = "/v1/apps/{app}/machines/{id}/wait"
	RouteEvents      = "/v1/apps/{app}/machines/{id}/events"
	RouteLease       = "/v1/apps/{app}/machines/{id}/lease"
	RouteMetadata    = "/v1/apps/{app}/machines/{id}/metadata"
	RouteMetadataKey = "/v1/apps/{app}/machines/{id}/metadata/{key}"
	routeUnmatched   = "unmatched"
)

// Simulator is a running Fly Machines API simulator. Create it with Start and
// stop it with Close.
type Simulator struct {
	opts       Options
	clock      Clock
	log        logr.Logger
	missing    map[string]bool
	url        string
	statusPort int
	api        *http.Server
	status     *http.Server
	ulids      ulidSource
	done       chan struct{}
	closeOnce  sync.Once
	closeErr   error
	serveWG    sync.WaitGroup

	statusRequests atomic.Int64

	mu       sync.Mutex
	closed   bool
	ips      *ipAllocator
	machines map[string]*machine // by id, destroyed ones until removed
	names    map[string]*machine // by name, not destroyed
	seq      uint64

	faultsMu sync.Mutex
	faults   Faults

	statsMu sync.Mutex
	stats   map[statKey]int
}

type statKey struct {
	method, route string
	status        int
}

// Start starts a simulator: the API listens on opts.Addr at once; machines'
// /status servers open as machines come up.
func Start(opts Options) (*Simulator, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Simulator{
		opts:     opts,
		clock:    opts.Clock,
		log:      opts.Logger,
		missing:  map[string]bool{},
		done:     make(chan struct{}),
		machines: map[string]*machine{},
		names:    map[string]*machine{},
		stats:    map[statKey]int{},
	}
	for _, name := range opts.MissingPackages {
		s.missing[packageName(name)] = true
	}
	s.ips, err = newIPAllocator(opts.IPBase)
	if err != nil {
		return nil, fmt.Errorf("starting simulator: %w", err)
	}
	s.statusPort, err = pickStatusPort(s.ips, opts.StatusPort)
	if err != nil {
		s.ips.close()
		return nil, fmt.Errorf("starting simulator: %w", err)
	}
	s.ips.port = s.statusPort
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		s.ips.close()
		return nil, fmt.Errorf("starting simulator: listening on %s: %w", opts.Addr, err)
	}
	s.url = "http://" + ln.Addr().String()
	s.api = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog()}
	s.status = s.newStatusServer()
	s.serveWG.Add(1)
	go func() {
		defer s.serveWG.Done()
		_ = s.api.Serve(ln)
	}()
	return s, nil
}

// pickStatusPort returns port, or with 0 a port free on the first address of
// the block. It also checks that 127.N.x.y addresses can be bound here.
func pickStatusPort(ips *ipAllocator, port int) (int, error) {
	addr := ips.first()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr.String(), strconv.Itoa(port)))
	if err != nil {
		if port != 0 && errors.Is(err, syscall.EADDRINUSE) {
			return port, nil // that one address is taken; allocate skips it
		}
		return 0, fmt.Errorf("binding the status port on %s: %w", addr, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// URL is the API base URL, e.g. http://127.0.0.1:4280 (paths under /v1).
func (s *Simulator) URL() string { return s.url }

// StatusPort is the port every machine's /status listens on.
func (s *Simulator) StatusPort() int { return s.statusPort }

// App is the simulated app's name.
func (s *Simulator) App() string { return s.opts.App }

// Token is the API token the simulator accepts.
func (s *Simulator) Token() string { return s.opts.Token }

// Control returns a control client for this simulator.
func (s *Simulator) Control() *Control {
	return &Control{BaseURL: s.url, Token: s.opts.Token, HTTP: &http.Client{}}
}

// Close stops every machine, closes every listener and connection and waits
// for the server goroutines. Pending transitions never run.
func (s *Simulator) Close() error {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		s.closed = true
		for _, m := range s.machines {
			s.cancel(m)
			s.serverDown(m)
		}
		s.mu.Unlock()
		s.closeErr = s.api.Close()
		// The machines' listeners were closed above; the status server's
		// Close only repeats that (net.ErrClosed) and cuts the connections.
		if err := s.status.Close(); err != nil && !errors.Is(err, net.ErrClosed) && s.closeErr == nil {
			s.closeErr = err
		}
		s.serveWG.Wait()
		s.mu.Lock()
		s.ips.close()
		s.mu.Unlock()
	})
	if s.closeErr != nil {
		return fmt.Errorf("closing simulator: %w", s.closeErr)
	}
	return nil
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }

// routeKind says which middleware a route gets.
type routeKind int

const (
	routeAPI     routeKind = iota // /v1: app check, faults, stats
	routeControl                  // /_sim: token only
)

// routes builds the API and control mux.
func (s *Simulator) routes() http.Handler {
	mux := http.NewServeMux()
	api := func(pattern string, h http.HandlerFunc) { s.handle(mux, pattern, routeAPI, h) }
	api("GET "+RouteApp, s.handleGetApp)
	api("GET "+RouteMachines, s.handleList)
	api("POST "+RouteMachines, s.handleCreate)
	api("GET "+RouteMachine, s.handleGet)
	api("POST "+RouteMachine, s.handleUpdate)
	api("DELETE "+RouteMachine, s.handleDestroy)
	api("POST "+RouteStart, s.handleStart)
	api("POST "+RouteStop, s.handleStop)
	api("POST "+RouteSuspend, s.handleSuspend)
	api("POST "+RouteRestart, s.handleRestart)
	api("POST "+RouteCordon, s.handleCordon(true))
	api("POST "+RouteUncordon, s.handleCordon(false))
	api("GET "+RouteWait, s.handleWait)
	api("GET "+RouteEvents, s.handleEvents)
	api("POST "+RouteLease, s.handleLeaseAcquire)
	api("GET "+RouteLease, s.handleLeaseGet)
	api("DELETE "+RouteLease, s.handleLeaseRelease)
	api("GET "+RouteMetadata, s.handleMetadataGet)
	api("POST "+RouteMetadataKey, s.handleMetadataSet)
	api("DELETE "+RouteMetadataKey, s.handleMetadataDelete)

	ctl := func(pattern string, h http.HandlerFunc) { s.handle(mux, pattern, routeControl, h) }
	ctl("GET /_sim/info", s.handleInfo)
	ctl("POST /_sim/machines/{id}/autostop", s.handleAutostop)
	ctl("POST /_sim/machines/{id}/autostart", s.handleAutostart)
	ctl("POST /_sim/machines/{id}/status", s.handleSetStatus)
	ctl("POST /_sim/machines/{id}/crash", s.handleCrash)
	ctl("GET /_sim/faults", s.handleGetFaults)
	ctl("PUT /_sim/faults", s.handleSetFaults)
	ctl("GET /_sim/stats", s.handleGetStats)
	ctl("DELETE /_sim/stats", s.handleResetStats)
	ctl("POST /_sim/seed", s.handleSeed)

	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/") {
			s.count(r.Method, routeUnmatched, http.StatusNotFound)
		}
		writeError(w, http.StatusNotFound, "not found", "")
	})
	return mux
}

// handle registers h behind the middleware: request id, stats, token, app
// name, faults and a body size limit.
func (s *Simulator) handle(mux *http.ServeMux, pattern string, kind routeKind, h http.HandlerFunc) {
	method, route, _ := strings.Cut(pattern, " ")
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w}
		w.Header().Set("fly-request-id", strings.ToLower(s.ulids.New(s.clock.Now()))+"-"+s.opts.Region)
		if kind == routeAPI {
			defer func() { s.count(method, route, rec.finalStatus()) }()
		}
		if !s.authorized(r) {
			writeError(rec, http.StatusUnauthorized, "invalid token", "")
			return
		}
		if kind == routeAPI {
			if r.PathValue("app") != s.opts.App {
				writeError(rec, http.StatusNotFound, "app not found", "")
				return
			}
			if s.injectFault(rec, r) {
				return
			}
		}
		r.Body = http.MaxBytesReader(rec, r.Body, 64<<20)
		h(rec, r)
	})
}

// authorized checks "Bearer <token>" or "FlyV1 <token>" in constant time.
func (s *Simulator) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	var tok string
	switch {
	case strings.HasPrefix(h, "Bearer "):
		tok = strings.TrimPrefix(h, "Bearer ")
	case strings.HasPrefix(h, "FlyV1 "):
		tok = strings.TrimPrefix(h, "FlyV1 ")
	default:
		return false
	}
	return subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), []byte(s.opts.Token)) == 1
}

// injectFault applies the configured latency and random 429/5xx answers.
// It reports whether the request was answered (or abandoned).
func (s *Simulator) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.faultsMu.Lock()
	f := s.faults
	s.faultsMu.Unlock()
	if f.Latency > 0 {
		elapsed := make(chan struct{})
		t := s.clock.AfterFunc(f.Latency, func() { close(elapsed) })
		select {
		case <-elapsed:
		case <-r.Context().Done():
			t.Stop()
			return true
		case <-s.done:
			t.Stop()
			writeError(w, http.StatusServiceUnavailable, "unavailable: simulator shutting down", "")
			return true
		}
	}
	if f.Rate429 > 0 && rand.Float64() < f.Rate429 {
		if !f.NoRetryAfter {
			ra := f.RetryAfter
			if ra <= 0 {
				ra = time.Second
			}
			w.Header().Set("Retry-After", strconv.Itoa(int((ra+time.Second-1)/time.Second)))
		}
		writeError(w, http.StatusTooManyRequests, "rate limit exceeded", "")
		return true
	}
	if f.Rate5xx > 0 && rand.Float64() < f.Rate5xx {
		code := f.Status5xx
		if code < 500 || code > 599 {
			code = http.StatusServiceUnavailable
		}
		writeError(w, code, "unavailable: simulated server error", "")
		return true
	}
	return false
}

// takeDropCreate consumes one "drop the next create response" fault.
func (s *Simulator) takeDropCreate() bool {
	s.faultsMu.Lock()
	defer s.faultsMu.Unlock()
	if s.faults.DropCreateResponses > 0 {
		s.faults.DropCreateResponses--
		return true
	}
	return false
}

// count records one answered request.
func (s *Simulator) count(method, route string, status int) {
	s.statsMu.Lock()
	s.stats[statKey{method, route, status}]++
	s.statsMu.Unlock()
}

// recorder remembers the status code for stats and whether the connection
// was hijacked.
type recorder struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// hijackAndClose closes the connection without an answer.
func (r *recorder) hijackAndClose() {
	conn, _, err := http.NewResponseController(r.ResponseWriter).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	r.hijacked = true
	_ = conn.Close()
}

// finalStatus is the code counted in stats: 0 for a dropped connection.
func (r *recorder) finalStatus() int {
	switch {
	case r.hijacked:
		return 0
	case r.status == 0:
		return http.StatusOK
	}
	return r.status
}

// writeJSON writes v with code.
func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal: encoding response: "+err.Error(), "")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}

// writeError writes {"error": msg} (and "status" when given) with code.
func writeError(w http.ResponseWriter, code int, msg, status string) {
	writeJSON(w, code, errorJSON{Error: msg, Status: status})
}

// writeAPIError writes err, an *apiError or anything else (500).
func writeAPIError(w http.ResponseWriter, err error) {
	var ae *apiError
	if errors.As(err, &ae) {
		writeError(w, ae.code, ae.msg, ae.status)
		return
	}
	writeError(w, http.StatusInternalServerError, "internal: "+err.Error(), "")
}

// statsSnapshot returns the request counts sorted by route, method, status.
func (s *Simulator) statsSnapshot() Stats {
	s.statsMu.Lock()
	st := Stats{Requests: make([]RequestCount, 0, len(s.stats)), Machines: map[string]int{}}
	for k, n := range s.stats {
		st.Requests = append(st.Requests, RequestCount{Method: k.method, Route: k.route, Status: k.status, Count: n})
	}
	s.statsMu.Unlock()
	sort.Slice(st.Requests, func(i, j int) bool {
		a, b := st.Requests[i], st.Requests[j]
		if a.Route != b.Route {
			return a.Route < b.Route
		}
		if a.Method != b.Method {
			return a.Method < b.Method
		}
		return a.Status < b.Status
	})
	s.mu.Lock()
	for _, m := range s.machines {
		st.Machines[m.state]++
	}
	s.mu.Unlock()
	st.StatusRequests = s.statusRequests.Load()
	return st
}
