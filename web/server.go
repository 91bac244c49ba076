package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"

	"github.com/flightdeck/flightdeck/config"
	"github.com/flightdeck/flightdeck/store"
)

// Store is what the web package needs from the database: *store.Store
// implements it.
type Store interface {
	DeploymentGet(ctx context.Context, id string) (*store.Deployment, error)
	DeploymentList(ctx context.Context, params store.DeploymentListParams) ([]store.Deployment, string, error)
	DeploymentCreate(ctx context.Context, params store.DeploymentCreateParams) (*store.Deployment, error)
	DeploymentMarkDeleted(ctx context.Context, id string) (*store.Deployment, error)
	EventList(ctx context.Context, params store.EventListParams) ([]store.Event, string, error)
}

// Defaults of Options.
const (
	// DefaultHeartbeatInterval is how often an idle event stream gets a
	// ": heartbeat" comment, so that proxies keep it open and clients notice
	// a dead connection.
	DefaultHeartbeatInterval = 15 * time.Second
	// DefaultStreamRetry is the reconnection delay the stream suggests to
	// EventSource clients ("retry:").
	DefaultStreamRetry = 3 * time.Second
	// DefaultMaxStreamClients bounds the open event streams.
	DefaultMaxStreamClients = 256
)

// Options configures a Server. Store is required; every other field has a
// working zero value.
type Options struct {
	// Store reads and writes deployments.
	Store Store
	// APIToken is API_TOKEN. Write endpoints need it as a bearer token; when
	// it is empty they answer 403.
	APIToken config.Secret
	// ReadsNeedToken makes the read endpoints (everything under /api/) need
	// the token too. Set it when HTTP_ADDR is not a loopback address
	// (config.Config.LoopbackHTTP() is false). The dashboard page itself
	// holds no data and is always served.
	ReadsNeedToken bool
	// Logger receives errors and the writes made through the API. Neither
	// env values nor tokens are ever logged.
	Logger logr.Logger
	// Notifications feeds GET /api/stream; Start reads it. Give it the
	// Notifications of a store.Listener on store.ChannelStatus (other
	// channels are ignored; Reconnected makes clients fetch the list again).
	// Nil means the stream only sends heartbeats.
	Notifications <-chan store.Notification
	// Health, Ready and Metrics are mounted at /healthz, /readyz and
	// /metrics when set. They never need the token: platform probes and
	// scrapers reach them as they are.
	Health, Ready, Metrics http.Handler
	// HeartbeatInterval defaults to DefaultHeartbeatInterval.
	HeartbeatInterval time.Duration
	// StreamRetry defaults to DefaultStreamRetry.
	StreamRetry time.Duration
	// MaxStreamClients defaults to DefaultMaxStreamClients; further
	// GET /api/stream requests get 503.
	MaxStreamClients int
}

// Server serves the JSON API, the event stream and the dashboard. Create it
// with NewServer, serve Handler, and run Start for the event stream.
type Server struct {
	opts    Options
	log     logr.Logger
	hub     *hub
	handler http.Handler
}

// NewServer returns a Server for opts, with defaults filled in.
func NewServer(opts Options) *Server {
	if opts.HeartbeatInterval <= 0 {
		opts.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if opts.StreamRetry <= 0 {
		opts.StreamRetry = DefaultStreamRetry
	}
	if opts.MaxStreamClients <= 0 {
		opts.MaxStreamClients = DefaultMaxStreamClients
	}
	s := &Server{opts: opts, log: opts.Logger.WithName("web")}
	s.hub = newHub(s.log, opts.MaxStreamClients, s.streamEventFor)
	s.handler = s.routes()
	return s
}

// Handler returns the HTTP handler of every route: /, /static/, /api/...,
// and /healthz, /readyz, /metrics when given.
func (s *Server) Handler() http.Handler { return s.handler }

// Start feeds GET /api/stream from Options.Notifications until ctx ends; it
// then ends every open stream and returns nil. Streams opened before Start
// runs wait for it; after it returned, GET /api/stream answers 503 and the
// dashboard polls instead. Its signature is controller-runtime's
// manager.Runnable; it may be called once.
func (s *Server) Start(ctx context.Context) error {
	return s.hub.run(ctx, s.opts.Notifications)
}

// streamEventFor loads deployment id and encodes the event that tells stream
// clients about it: its JSON, or "deleted" when the row is gone.
func (s *Server) streamEventFor(ctx context.Context, id string) (sseEvent, error) {
	d, err := s.opts.Store.DeploymentGet(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		data, err := marshalJSON(map[string]string{"id": id})
		return sseEvent{name: eventDeleted, data: data}, err
	}
	if err != nil {
		return sseEvent{}, fmt.Errorf("getting deployment %s: %w", id, err)
	}
	data, err := marshalJSON(newDeploymentJSON(d))
	if err != nil {
		return sseEvent{}, fmt.Errorf("encoding deployment %s: %w", id, err)
	}
	return sseEvent{name: eventDeployment, data: data}, nil
}

// routes builds the mux. Each API path also gets a method-less pattern that
// answers 405 in JSON (the mux's own 405 is plain text).
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()

	mux.Handle("GET /api/deployments", s.read(s.listDeployments))
	mux.Handle("POST /api/deployments", s.write(s.createDeployment))
	mux.Handle("/api/deployments", methodNotAllowed("GET, HEAD, POST"))
	mux.Handle("GET /api/deployments/{id}", s.read(s.getDeployment))
	mux.Handle("DELETE /api/deployments/{id}", s.write(s.deleteDeployment))
	mux.Handle("/api/deployments/{id}", methodNotAllowed("GET, HEAD, DELETE"))
	mux.Handle("GET /api/deployments/{id}/events", s.read(s.listEvents))
	mux.Handle("/api/deployments/{id}/events", methodNotAllowed("GET, HEAD"))
	mux.Handle("GET /api/stream", s.read(s.serveStream))
	mux.Handle("/api/stream", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no API endpoint %s", r.URL.Path))
	})

	mux.Handle("GET /{$}", dashboardHandler())
	mux.Handle("GET /static/", staticHandler())

	for path, h := range map[string]http.Handler{"/healthz": s.opts.Health, "/readyz": s.opts.Ready, "/metrics": s.opts.Metrics} {
		if h != nil {
			mux.Handle(path, h)
		}
	}
	return securityHeaders(mux)
}

// securityHeaders sets the headers every response carries: no MIME sniffing,
// no referrer, no framing.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers 405 with the allowed methods.
func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s is not allowed on %s: use %s", r.Method, r.URL.Path, allow))
	})
}
