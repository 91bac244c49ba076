package flysim

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// statusMode is what a machine's /status does.
type statusMode int

const (
	modeOK   statusMode = iota // 200 {"status":"ok"}
	modeCode                   // answer with a given code
	modeHang                   // accept, read the request, never answer
	modeDrop                   // accept the connection and close it at once
)

// behavior is the resolved /status behaviour of a running server.
type behavior struct {
	mode statusMode
	code int
}

// instance is one run of a machine's /status server: it lives from the moment
// the listener opens until the process exits, stops or is suspended. Each
// instance has its own listener on the machine's private IP; all instances of
// a simulator share one http.Server, which finds the instance of a
// connection through ConnContext.
type instance struct {
	machineID string
	ln        net.Listener
	behavior  atomic.Pointer[behavior]
	down      chan struct{} // closed when the server goes down

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

// instanceKey is the context key of the *instance serving a connection.
type instanceKey struct{}

// instanceListener drops connections in drop mode and tracks the others so
// that they can be cut when the process goes away.
type instanceListener struct{ inst *instance }

func (l instanceListener) Accept() (net.Conn, error) {
	for {
		c, err := l.inst.ln.Accept()
		if err != nil {
			return nil, err
		}
		if l.inst.behavior.Load().mode == modeDrop {
			_ = c.Close()
			continue
		}
		tc := &trackedConn{Conn: c, inst: l.inst}
		l.inst.mu.Lock()
		if l.inst.closed {
			l.inst.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.inst.conns[tc] = struct{}{}
		l.inst.mu.Unlock()
		return tc, nil
	}
}

func (l instanceListener) Close() error   { return l.inst.ln.Close() }
func (l instanceListener) Addr() net.Addr { return l.inst.ln.Addr() }

// trackedConn removes itself from its instance when closed.
type trackedConn struct {
	net.Conn
	inst *instance
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.inst.mu.Lock()
		delete(c.inst.conns, c)
		c.inst.mu.Unlock()
	})
	return c.Conn.Close()
}

// shutdown closes the listener and every connection: what a process exit
// does to its sockets.
func (inst *instance) shutdown() {
	inst.mu.Lock()
	if inst.closed {
		inst.mu.Unlock()
		return
	}
	inst.closed = true
	conns := make([]*trackedConn, 0, len(inst.conns))
	for c := range inst.conns {
		conns = append(conns, c)
	}
	inst.mu.Unlock()
	close(inst.down)
	_ = inst.ln.Close()
	for _, c := range conns {
		_ = c.Close()
	}
}

// newStatusServer builds the http.Server shared by every machine's listener.
// Its idle timeout is Node's default keep-alive timeout (5s), which also keeps
// the number of idle connections (file descriptors) bounded.
func (s *Simulator) newStatusServer() *http.Server {
	return &http.Server{
		Handler:           http.HandlerFunc(s.serveStatus),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       5 * time.Second,
		ErrorLog:          discardLog(),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*trackedConn); ok {
				return context.WithValue(ctx, instanceKey{}, tc.inst)
			}
			return ctx
		},
	}
}

// serveStatus answers a machine's /status per its behaviour.
func (s *Simulator) serveStatus(w http.ResponseWriter, r *http.Request) {
	inst, _ := r.Context().Value(instanceKey{}).(*instance)
	if inst == nil {
		http.NotFound(w, r)
		return
	}
	s.statusRequests.Add(1)
	b := inst.behavior.Load()
	switch b.mode {
	case modeDrop:
		panic(http.ErrAbortHandler) // closes the connection without an answer
	case modeHang:
		select {
		case <-r.Context().Done():
		case <-inst.down:
		case <-s.done:
		}
		panic(http.ErrAbortHandler)
	}
	if r.URL.Path != "/status" {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, "Cannot %s %s\n", r.Method, r.URL.Path)
		return
	}
	code := http.StatusOK
	if b.mode == modeCode {
		code = b.code
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if code == http.StatusOK {
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
		return
	}
	_, _ = w.Write([]byte(`{"status":"error","code":` + strconv.Itoa(code) + `}` + "\n"))
}

// resolveBehavior combines the package's behaviour with a control override.
func resolveBehavior(kind packageKind, override *behavior) *behavior {
	if override != nil {
		return override
	}
	switch kind {
	case kindHTTP500:
		return &behavior{mode: modeCode, code: http.StatusInternalServerError}
	case kindHang:
		return &behavior{mode: modeHang}
	}
	return &behavior{mode: modeOK}
}

// serverUp opens the machine's /status listener. When another process took
// the machine's address, the machine moves to a fresh one (on Fly a
// machine's 6PN address may change on reboot too). Any other failure is
// returned: the caller treats it as the server process exiting. Called with
// s.mu held.
func (s *Simulator) serverUp(m *machine) error {
	if s.closed {
		return errors.New("simulator closed")
	}
	if m.server != nil {
		return nil
	}
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		var ln net.Listener
		ln, err = net.Listen("tcp", netip.AddrPortFrom(m.ip, uint16(s.statusPort)).String())
		if err == nil {
			inst := &instance{machineID: m.id, ln: ln, down: make(chan struct{}), conns: map[*trackedConn]struct{}{}}
			inst.behavior.Store(resolveBehavior(m.kind, m.override))
			m.server = inst
			s.serveWG.Add(1)
			go func() {
				defer s.serveWG.Done()
				_ = s.status.Serve(instanceListener{inst})
			}()
			return nil
		}
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
		next, aerr := s.ips.allocate(true)
		if aerr != nil {
			err = aerr
			break
		}
		s.log.Info("Moving machine to a new private IP, its address is taken", "machineID", m.id, "from", m.ip.String(), "to", next.String())
		s.ips.release(m.ip)
		m.ip = next
	}
	return fmt.Errorf("listening on %s port %d: %w", m.ip, s.statusPort, err)
}

// serverDown closes the machine's /status listener and connections, if any.
// Called with s.mu held.
func (s *Simulator) serverDown(m *machine) {
	if m.server == nil {
		return
	}
	m.server.shutdown()
	m.server = nil
}
