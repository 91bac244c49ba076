package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/jackc/pgx/v5"
)

// The notification channels the deployments triggers use.
const (
	// ChannelDeployments carries the id of a deployment that was inserted or
	// deleted, whose spec changed, or that was marked deleted.
	ChannelDeployments = "flightdeck_deployments"
	// ChannelStatus carries the id of a deployment with any visible change,
	// including the controller's status writes.
	ChannelStatus = "flightdeck_status"
)

// Notification is what a Listener delivers.
type Notification struct {
	// Channel and Payload are those of the NOTIFY; both are "" when
	// Reconnected is set.
	Channel, Payload string
	// Reconnected reports that the connection was lost and is listening
	// again. Notifications sent in between are lost: resync.
	Reconnected bool
}

// ListenerConfig configures a Listener. Zero durations take the defaults.
type ListenerConfig struct {
	// DatabaseURL is the PostgreSQL URL. The listener holds its own
	// connection, outside any pool.
	DatabaseURL string
	// Channels to LISTEN on; at least one.
	Channels []string
	// MinBackoff and MaxBackoff bound the wait between reconnection attempts,
	// which doubles from MinBackoff (default 100ms) up to MaxBackoff (default
	// 10s), with jitter.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how long the connection may be quiet before the
	// listener pings it, to notice a dead peer (default 15s).
	PingInterval time.Duration
	// MaxDowntime is how long the listener may be disconnected before Check
	// reports it (default 30s).
	MaxDowntime time.Duration
}

// Listener receives PostgreSQL notifications on a long-lived connection,
// reconnecting with exponential backoff.
//
// Run it in a goroutine and receive from Notifications until Run returns.
// Notifications arrive in commit order. After each reconnection the listener
// delivers a Notification with Reconnected set before any other, so the
// caller can resync whatever it missed; Ready is closed after the first
// successful LISTEN, so that a caller can list the initial state after it and
// miss nothing.
type Listener struct {
	cfg        ListenerConfig
	connConfig *pgx.ConnConfig
	out        chan Notification
	ready      chan struct{}

	mu        sync.Mutex
	running   bool
	connected bool
	downSince time.Time
	lastErr   error
}

var channelPattern = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// NewListener checks cfg and returns a Listener; nothing connects until Run.
func NewListener(cfg ListenerConfig) (*Listener, error) {
	connConfig, err := pgx.ParseConfig(cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("parsing database URL: %w", err)
	}
	if len(cfg.Channels) == 0 {
		return nil, &ValidationError{Field: "channels", Problem: "is empty"}
	}
	for _, ch := range cfg.Channels {
		if !channelPattern.MatchString(ch) {
			return nil, &ValidationError{Field: "channels", Problem: fmt.Sprintf("%q is not a lower-case identifier", clip(ch))}
		}
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	cfg.MaxBackoff = max(cfg.MaxBackoff, cfg.MinBackoff)
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	if cfg.MaxDowntime <= 0 {
		cfg.MaxDowntime = 30 * time.Second
	}
	return &Listener{
		cfg:        cfg,
		connConfig: connConfig,
		out:        make(chan Notification, 64),
		ready:      make(chan struct{}),
		downSince:  time.Now(),
	}, nil
}

// Notifications delivers the notifications; it is closed when Run returns.
// Run blocks while nobody receives, so keep receiving.
func (l *Listener) Notifications() <-chan Notification { return l.out }

// Ready is closed once the listener is listening for the first time.
func (l *Listener) Ready() <-chan struct{} { return l.ready }

// Check returns nil while the listener is connected, or has been
// disconnected for at most MaxDowntime; otherwise an error saying for how
// long and why. It suits a health check.
func (l *Listener) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected {
		return nil
	}
	down := time.Since(l.downSince)
	if down <= l.cfg.MaxDowntime {
		return nil
	}
	if l.lastErr == nil {
		return fmt.Errorf("notification listener not connected for %s", down.Round(time.Millisecond))
	}
	return fmt.Errorf("notification listener not connected for %s: %w", down.Round(time.Millisecond), l.lastErr)
}

// Run connects, listens and delivers notifications until ctx is done, then
// closes Notifications and returns nil. Connection failures are retried
// forever (watch Check); it logs them through the logr logger of ctx. Run may
// be called once.
func (l *Listener) Run(ctx context.Context) error {
	l.mu.Lock()
	if l.running {
		l.mu.Unlock()
		return errors.New("listener is already running")
	}
	l.running = true
	l.mu.Unlock()
	defer close(l.out)

	log := logr.FromContextOrDiscard(ctx)
	backoff := l.cfg.MinBackoff
	first := true
	for {
		conn, err := l.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.setDown(err)
			wait := jitter(backoff)
			log.Info("Notification listener cannot connect, retrying", "error", err.Error(), "retryIn", wait)
			if !sleep(ctx, wait) {
				return nil
			}
			backoff = min(2*backoff, l.cfg.MaxBackoff)
			continue
		}
		backoff = l.cfg.MinBackoff
		l.setUp()
		if first {
			close(l.ready)
			first = false
		} else {
			log.Info("Notification listener reconnected")
			if !l.deliver(ctx, Notification{Reconnected: true}) {
				closeConn(conn)
				return nil
			}
		}
		err = l.receive(ctx, conn)
		closeConn(conn)
		if ctx.Err() != nil {
			return nil
		}
		l.setDown(err)
		log.Info("Notification listener lost its connection", "error", err.Error())
		if !sleep(ctx, jitter(backoff)) {
			return nil
		}
	}
}

// connect opens a connection and LISTENs on every channel.
func (l *Listener) connect(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, max(l.cfg.PingInterval, 5*time.Second))
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, l.connConfig)
	if err != nil {
		return nil, fmt.Errorf("connecting: %w", err)
	}
	for _, ch := range l.cfg.Channels {
		// Channel names are checked identifiers; LISTEN takes no parameters.
		if _, err := conn.Exec(cctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			closeConn(conn)
			return nil, fmt.Errorf("listening on %s: %w", ch, err)
		}
	}
	return conn, nil
}

// receive delivers notifications until the connection fails or ctx is done,
// pinging the server whenever it has been quiet for PingInterval.
func (l *Listener) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, l.cfg.PingInterval)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			if !l.deliver(ctx, Notification{Channel: n.Channel, Payload: n.Payload}) {
				return ctx.Err()
			}
			continue
		}
		if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			return fmt.Errorf("waiting for notifications: %w", err)
		}
		pctx, cancel := context.WithTimeout(ctx, l.cfg.PingInterval)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return fmt.Errorf("pinging: %w", err)
		}
	}
}

func (l *Listener) deliver(ctx context.Context, n Notification) bool {
	select {
	case l.out <- n:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *Listener) setUp() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.connected = true
	l.lastErr = nil
}

func (l *Listener) setDown(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.connected {
		l.connected = false
		l.downSince = time.Now()
	}
	l.lastErr = err
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = conn.Close(ctx)
}

// jitter returns d randomised by up to ±20%.
func jitter(d time.Duration) time.Duration {
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// sleep waits d, or returns false early when ctx is done.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
