package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/flightdeck/flightdeck/store"
)

// Names of the Server-Sent Events of GET /api/stream.
const (
	// eventDeployment carries a deployment's JSON after it changed.
	eventDeployment = "deployment"
	// eventDeleted carries {"id": ...} of a deployment that no longer exists.
	eventDeleted = "deleted"
	// eventResync carries {} and tells the client it may have missed changes.
	eventResync = "resync"
)

// clientBuffer is how many events a stream client may lag behind before it is
// dropped; its browser reconnects and fetches the list again.
const clientBuffer = 64

// streamWriteTimeout bounds each write to a stream client, so that a client
// that stopped reading is dropped instead of holding a goroutine forever.
const streamWriteTimeout = 10 * time.Second

// sseEvent is one event of the stream, already encoded.
type sseEvent struct {
	name string
	data []byte
}

// streamClient is one open GET /api/stream.
type streamClient struct {
	events chan sseEvent
	// gone is closed when the hub drops the client (too slow, or the hub
	// stopped); the handler then ends the response.
	gone     chan struct{}
	goneOnce sync.Once
}

func (c *streamClient) drop() { c.goneOnce.Do(func() { close(c.gone) }) }

// hubState is where the hub is in its life. Streams opened before Start runs
// wait for it (the HTTP server may well start first); once Start returned,
// streams are refused, so that a dashboard never believes it is live when
// nothing feeds it.
type hubState int

const (
	hubNotStarted hubState = iota
	hubRunning
	hubStopped
)

// errStreamUnavailable and errTooManyStreams are the reasons subscribe refuses.
var (
	errStreamUnavailable = errors.New("live updates are not available right now: poll GET /api/deployments instead")
	errTooManyStreams    = errors.New("too many open event streams: try again later or poll GET /api/deployments")
)

// hub fans notifications out to the open event streams. One goroutine
// (run) turns each notification into one event, loading the deployment once
// for all clients, and skips the load when nobody listens.
type hub struct {
	log        logr.Logger
	maxClients int
	// load returns the event that tells clients about deployment id.
	load func(ctx context.Context, id string) (sseEvent, error)

	mu      sync.Mutex
	state   hubState
	clients map[*streamClient]struct{}
}

func newHub(log logr.Logger, maxClients int, load func(ctx context.Context, id string) (sseEvent, error)) *hub {
	return &hub{log: log, maxClients: maxClients, load: load, clients: map[*streamClient]struct{}{}}
}

// subscribe registers a new stream client.
func (h *hub) subscribe() (*streamClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.state == hubStopped {
		return nil, errStreamUnavailable
	}
	if len(h.clients) >= h.maxClients {
		return nil, errTooManyStreams
	}
	c := &streamClient{events: make(chan sseEvent, clientBuffer), gone: make(chan struct{})}
	h.clients[c] = struct{}{}
	return c, nil
}

// unsubscribe forgets a client whose response ended.
func (h *hub) unsubscribe(c *streamClient) {
	h.mu.Lock()
	delete(h.clients, c)
	h.mu.Unlock()
}

// clientCount is the number of open streams.
func (h *hub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// broadcast hands ev to every client without blocking; a client whose buffer
// is full is dropped.
func (h *hub) broadcast(ev sseEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.clients {
		select {
		case c.events <- ev:
		default:
			h.log.V(1).Info("Dropping slow event stream client")
			delete(h.clients, c)
			c.drop()
		}
	}
}

// run consumes notifications until ctx ends, then drops every client. It
// returns an error if called twice.
//
// Notifications are read promptly into a set of pending ids (so a burst for
// one deployment costs one load and the feeder never waits on the database);
// a second goroutine loads and broadcasts them one at a time.
func (h *hub) run(ctx context.Context, notifications <-chan store.Notification) error {
	h.mu.Lock()
	if h.state != hubNotStarted {
		h.mu.Unlock()
		return errors.New("web server already started")
	}
	h.state = hubRunning
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		h.state = hubStopped
		for c := range h.clients {
			c.drop()
		}
		h.clients = map[*streamClient]struct{}{}
		h.mu.Unlock()
	}()

	var (
		mu      sync.Mutex
		pending = map[string]struct{}{}
		order   []string
		resync  bool
		wake    = make(chan struct{}, 1)
		wg      sync.WaitGroup
	)
	// next handles one pending resync or id; it reports false when there was
	// nothing to do.
	next := func() bool {
		mu.Lock()
		doResync := resync
		resync = false
		var id string
		if !doResync && len(order) > 0 {
			id = order[0]
			order = order[1:]
			delete(pending, id)
		}
		mu.Unlock()
		switch {
		case doResync:
			h.broadcast(sseEvent{name: eventResync, data: []byte("{}")})
		case id != "":
			h.publish(ctx, id)
		default:
			return false
		}
		return true
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			for next() {
			}
		}
	}()
	defer wg.Wait()

	for {
		select {
		case <-ctx.Done():
			return nil
		case n, ok := <-notifications:
			if !ok {
				notifications = nil // a nil channel blocks: wait for ctx
				continue
			}
			if !n.Reconnected && n.Channel != store.ChannelStatus {
				continue
			}
			mu.Lock()
			if n.Reconnected {
				// Whatever was pending is covered by the clients' refetch.
				resync = true
				pending = map[string]struct{}{}
				order = nil
			}
			if id := n.Payload; id != "" && !n.Reconnected {
				if _, dup := pending[id]; !dup {
					pending[id] = struct{}{}
					order = append(order, id)
				}
			}
			mu.Unlock()
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
}

// publish loads one deployment and broadcasts it, unless nobody listens.
func (h *hub) publish(ctx context.Context, id string) {
	if h.clientCount() == 0 {
		return
	}
	ev, err := h.load(ctx, id)
	if err != nil {
		if ctx.Err() == nil {
			h.log.Error(err, "Loading deployment for the event stream", "deployment", id)
		}
		return
	}
	h.broadcast(ev)
}

// serveStream is GET /api/stream: Server-Sent Events, a "retry:" hint, then
// one event per change and a ": heartbeat" comment every heartbeat interval.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	c, err := s.hub.subscribe()
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	defer s.hub.unsubscribe(c)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // tell reverse proxies not to buffer the stream
	w.WriteHeader(http.StatusOK)

	write := func(format string, args ...any) bool {
		// ErrNotSupported (a writer without deadlines) is fine: the write
		// just has no deadline.
		_ = rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write("retry: %d\n: connected\n\n", s.opts.StreamRetry.Milliseconds()) {
		return
	}
	heartbeat := time.NewTicker(s.opts.HeartbeatInterval)
	defer heartbeat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case ev := <-c.events:
			if !write("event: %s\ndata: %s\n\n", ev.name, ev.data) {
				return
			}
		case <-heartbeat.C:
			if !write(": heartbeat\n\n") {
				return
			}
		}
	}
}
