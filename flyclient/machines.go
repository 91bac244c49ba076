package flyclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Route patterns, as errors and OnRequest name them.
const (
	EndpointCreate  = "POST /machines"
	EndpointList    = "GET /machines"
	EndpointGet     = "GET /machines/{id}"
	EndpointUpdate  = "POST /machines/{id}"
	EndpointDestroy = "DELETE /machines/{id}"
	EndpointStart   = "POST /machines/{id}/start"
	EndpointStop    = "POST /machines/{id}/stop"
	EndpointWait    = "GET /machines/{id}/wait"
	EndpointEvents  = "GET /machines/{id}/events"
)

// MaxWaitTimeout is the longest server-side timeout /wait accepts (reference
// §2.5: 1–60 s; more is rejected with 400, not clamped).
const MaxWaitTimeout = 60 * time.Second

// MaxEventsLimit is the largest limit /events accepts (reference §2.6).
const MaxEventsLimit = 50

var machineIDPattern = regexp.MustCompile(`^[0-9a-f]{14}$`)

// ValidMachineID reports whether id is a Fly machine id: 14 lowercase hex
// characters (reference §6). Ids are checked before they go into a URL.
func ValidMachineID(id string) bool { return machineIDPattern.MatchString(id) }

func checkID(id string) error {
	if !ValidMachineID(id) {
		return fmt.Errorf("machine id %q: want 14 lowercase hex characters: %w", truncate(id, 40), ErrInvalidInput)
	}
	return nil
}

// CreateMachineInput is the body of a create (reference §2.1).
type CreateMachineInput struct {
	Name       string        `json:"name,omitempty"`
	Region     string        `json:"region,omitempty"`
	Config     MachineConfig `json:"config"`
	SkipLaunch bool          `json:"skip_launch,omitempty"`
}

// CreateMachine creates (and, unless SkipLaunch, boots) a machine. It is sent
// once: a create is never retried blindly, because an answer lost on the way
// back leaves a machine behind. Use EnsureMachine for a create that may be
// repeated.
func (c *Client) CreateMachine(ctx context.Context, in CreateMachineInput) (*Machine, error) {
	m, err := c.createOnce(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("creating machine %s: %w", in.Name, err)
	}
	return m, nil
}

func (c *Client) createOnce(ctx context.Context, in CreateMachineInput) (*Machine, error) {
	if in.Config.Image == "" {
		return nil, fmt.Errorf("config.image is empty: %w", ErrInvalidInput)
	}
	var m Machine
	err := c.do(ctx, call{
		method: http.MethodPost, pattern: EndpointCreate, path: "/machines",
		body: in, limiter: limitAction, limitKey: c.app, maxBody: maxMachineBody, out: &m,
	})
	if err != nil {
		return nil, err
	}
	if !ValidMachineID(m.ID) {
		return nil, fmt.Errorf("fly api %s: answer has machine id %q: %w", EndpointCreate, truncate(m.ID, 40), ErrUnexpectedResponse)
	}
	return &m, nil
}

// GetMachine returns the machine with id. A destroyed machine is briefly
// returned with state "destroyed", then 404 (ErrNotFound).
func (c *Client) GetMachine(ctx context.Context, id string) (*Machine, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("getting machine: %w", err)
	}
	var m Machine
	err := c.do(ctx, call{
		method: http.MethodGet, pattern: EndpointGet, path: "/machines/" + id,
		limiter: limitGet, limitKey: id, maxBody: maxMachineBody, idempotent: true, out: &m,
	})
	if err != nil {
		return nil, fmt.Errorf("getting machine %s: %w", id, err)
	}
	if m.ID != id {
		return nil, fmt.Errorf("getting machine %s: fly api %s: answer has machine id %q: %w", id, EndpointGet, truncate(m.ID, 40), ErrUnexpectedResponse)
	}
	return &m, nil
}

// ListMachinesOptions filter a list (reference §2.2).
type ListMachinesOptions struct {
	// Metadata keeps machines whose config.metadata has every key=value.
	Metadata map[string]string
	// States keeps machines in one of these states (created, started,
	// stopped, suspended).
	States []string
	// Summary omits config, checks, events, host_status and nonce.
	Summary bool
	// IncludeDeleted also returns destroyed machines.
	IncludeDeleted bool
	// Region keeps machines in this region.
	Region string
}

// ListMachines lists the app's machines.
func (c *Client) ListMachines(ctx context.Context, opts ListMachinesOptions) ([]Machine, error) {
	q := url.Values{}
	keys := make([]string, 0, len(opts.Metadata))
	for k := range opts.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		q.Set("metadata."+k, opts.Metadata[k])
	}
	if len(opts.States) > 0 {
		q.Set("state", strings.Join(opts.States, ","))
	}
	if opts.Summary {
		q.Set("summary", "true")
	}
	if opts.IncludeDeleted {
		q.Set("include_deleted", "true")
	}
	if opts.Region != "" {
		q.Set("region", opts.Region)
	}
	var ms []Machine
	err := c.do(ctx, call{
		method: http.MethodGet, pattern: EndpointList, path: "/machines", query: q,
		limiter: limitAction, limitKey: c.app, maxBody: maxListBody, idempotent: true, out: &ms,
	})
	if err != nil {
		return nil, fmt.Errorf("listing machines of app %s: %w", c.app, err)
	}
	return ms, nil
}

// UpdateMachineInput is the body of an update (reference §2.3): the whole
// config, and the instance_id the caller last saw (409 when it changed).
type UpdateMachineInput struct {
	Config         MachineConfig `json:"config"`
	CurrentVersion string        `json:"current_version,omitempty"`
	SkipLaunch     bool          `json:"skip_launch,omitempty"`
}

// UpdateMachine replaces the machine's config. It is not retried except on
// 429: an update answered by a dropped connection may have happened; the
// caller re-reads the machine and decides.
func (c *Client) UpdateMachine(ctx context.Context, id string, in UpdateMachineInput) (*Machine, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("updating machine: %w", err)
	}
	if in.Config.Image == "" {
		return nil, fmt.Errorf("updating machine %s: config.image is empty: %w", id, ErrInvalidInput)
	}
	var m Machine
	err := c.do(ctx, call{
		method: http.MethodPost, pattern: EndpointUpdate, path: "/machines/" + id,
		body: in, limiter: limitAction, limitKey: id, maxBody: maxMachineBody, out: &m,
	})
	if err != nil {
		return nil, fmt.Errorf("updating machine %s: %w", id, err)
	}
	return &m, nil
}

// StartMachine starts a stopped or suspended machine.
func (c *Client) StartMachine(ctx context.Context, id string) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("starting machine: %w", err)
	}
	err := c.do(ctx, call{
		method: http.MethodPost, pattern: EndpointStart, path: "/machines/" + id + "/start",
		limiter: limitAction, limitKey: id, maxBody: maxSmallBody,
	})
	if err != nil {
		return fmt.Errorf("starting machine %s: %w", id, err)
	}
	return nil
}

// StopOptions are the optional stop parameters (reference §2.4): the signal
// (Fly's default SIGINT) and how long to wait before killing.
type StopOptions struct {
	Signal  string
	Timeout time.Duration
}

// StopMachine stops a machine.
func (c *Client) StopMachine(ctx context.Context, id string, opts StopOptions) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("stopping machine: %w", err)
	}
	var body any
	if opts.Signal != "" || opts.Timeout > 0 {
		b := struct {
			Signal  string `json:"signal,omitempty"`
			Timeout string `json:"timeout,omitempty"`
		}{Signal: opts.Signal}
		if opts.Timeout > 0 {
			b.Timeout = opts.Timeout.String()
		}
		body = b
	}
	err := c.do(ctx, call{
		method: http.MethodPost, pattern: EndpointStop, path: "/machines/" + id + "/stop",
		body: body, limiter: limitAction, limitKey: id, maxBody: maxSmallBody,
	})
	if err != nil {
		return fmt.Errorf("stopping machine %s: %w", id, err)
	}
	return nil
}

// DestroyMachine destroys a machine; force kills it first when it runs. It
// sends both force=true (docs) and kill=true (flyctl) since Fly has used
// both names (reference §2.4).
func (c *Client) DestroyMachine(ctx context.Context, id string, force bool) error {
	if err := checkID(id); err != nil {
		return fmt.Errorf("destroying machine: %w", err)
	}
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}, "kill": {"true"}}
	}
	err := c.do(ctx, call{
		method: http.MethodDelete, pattern: EndpointDestroy, path: "/machines/" + id, query: q,
		limiter: limitAction, limitKey: id, maxBody: maxSmallBody,
	})
	if err != nil {
		return fmt.Errorf("destroying machine %s: %w", id, err)
	}
	return nil
}

// ListEvents returns the machine's newest events, newest first. limit is
// clamped to 1–50; 0 leaves Fly's default (20).
func (c *Client) ListEvents(ctx context.Context, id string, limit int) ([]MachineEvent, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("listing machine events: %w", err)
	}
	var q url.Values
	if limit != 0 {
		limit = min(max(limit, 1), MaxEventsLimit)
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var events []MachineEvent
	err := c.do(ctx, call{
		method: http.MethodGet, pattern: EndpointEvents, path: "/machines/" + id + "/events", query: q,
		limiter: limitAction, limitKey: id, maxBody: maxEventsBody, idempotent: true, out: &events,
	})
	if err != nil {
		return nil, fmt.Errorf("listing events of machine %s: %w", id, err)
	}
	return events, nil
}

// WaitOptions are the parameters of WaitMachine.
type WaitOptions struct {
	// States to wait for, any of them (default: started). More than one is
	// sent as a repeated state parameter.
	States []string
	// InstanceID pins the wait to one version (needed by older servers when
	// waiting for stopped).
	InstanceID string
	// Timeout is the overall wait (default DefaultWaitTimeout); it is split
	// into /wait calls of at most 60 s each.
	Timeout time.Duration
}

// WaitMachine blocks until the machine reaches one of opts.States and returns
// the state reached. It loops over /wait calls of at most 60 s (never asking
// for more, which Fly rejects), goes on after a 408, and tolerates the 404 of
// a just-created machine until the overall timeout. Waiting for destroyed
// treats 404 as reached. When the overall timeout (or ctx's deadline, if
// earlier) passes, the error matches ErrTimeout, or ErrNotFound when the
// machine never appeared.
func (c *Client) WaitMachine(ctx context.Context, id string, opts WaitOptions) (string, error) {
	if err := checkID(id); err != nil {
		return "", fmt.Errorf("waiting for machine: %w", err)
	}
	states := opts.States
	if len(states) == 0 {
		states = []string{StateStarted}
	}
	total := opts.Timeout
	if total <= 0 {
		total = DefaultWaitTimeout
	}
	deadline := c.now().Add(total)
	ctxBound := false // the context's deadline comes first: stay inside it
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline, ctxBound = dl, true
	}
	wrap := func(err error) error {
		return fmt.Errorf("waiting for machine %s to be %s: %w", id, strings.Join(states, " or "), err)
	}
	var lastErr error
	for attempt := 0; ; attempt++ {
		// Whole seconds within Fly's 1–60 s: rounded up for the first call
		// (a 1.5 s wait asks for 2 s), down when the context would cut the
		// call short or a 408 already came.
		remaining := min(deadline.Sub(c.now()), MaxWaitTimeout)
		secs := int64(remaining / time.Second)
		if !ctxBound && lastErr == nil && remaining > 0 {
			secs = int64((remaining + time.Second - 1) / time.Second)
		}
		if secs < 1 {
			if lastErr == nil {
				lastErr = &APIError{StatusCode: http.StatusRequestTimeout, Endpoint: EndpointWait, Message: "wait timeout passed before the machine reached the state"}
			}
			return "", wrap(lastErr)
		}
		q := url.Values{"state": states, "timeout": {strconv.FormatInt(secs, 10)}}
		if opts.InstanceID != "" {
			q.Set("instance_id", opts.InstanceID)
		}
		var res struct {
			OK    bool   `json:"ok"`
			State string `json:"state"`
		}
		err := c.do(ctx, call{
			method: http.MethodGet, pattern: EndpointWait, path: "/machines/" + id + "/wait", query: q,
			limiter: limitAction, limitKey: id, maxBody: maxSmallBody, idempotent: true, out: &res,
			timeout: time.Duration(secs)*time.Second + c.requestTimeout,
		})
		switch {
		case err == nil:
			return c.reachedState(ctx, id, states, res.State)
		case errors.Is(err, ErrTimeout):
			lastErr = err
			continue
		case errors.Is(err, ErrNotFound):
			if contains(states, StateDestroyed) {
				return StateDestroyed, nil
			}
			lastErr = err
			delay := c.backoff(min(attempt, 3))
			if c.now().Add(delay).After(deadline) {
				return "", wrap(err)
			}
			if serr := c.sleep(ctx, delay); serr != nil {
				return "", wrap(serr)
			}
			continue
		default:
			return "", wrap(err)
		}
	}
}

// reachedState names the state a successful /wait reached: the answer's
// state when the server sent one, the only state asked for, or else the
// machine's current state.
func (c *Client) reachedState(ctx context.Context, id string, states []string, answered string) (string, error) {
	if answered != "" {
		return answered, nil
	}
	if len(states) == 1 && states[0] != StateSettled {
		return states[0], nil
	}
	m, err := c.GetMachine(ctx, id)
	if err != nil {
		return "", fmt.Errorf("reading the state machine %s reached: %w", id, err)
	}
	return m.State, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
