package flysim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// This file holds the handlers of the Machines API (/v1).

func badRequest(msg string) *apiError { return &apiError{code: http.StatusBadRequest, msg: msg} }

var errMachineNotFound = &apiError{code: http.StatusNotFound, msg: "machine not found"}

// decodeBody decodes a JSON body into v. An empty body is an error unless
// optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		return badRequest("invalid_argument: reading request body: " + err.Error())
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return badRequest("invalid_argument: request body is required")
	}
	if err := json.Unmarshal(b, v); err != nil {
		return badRequest(err.Error())
	}
	return nil
}

// queryBool parses an optional boolean query parameter.
func queryBool(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, badRequest(fmt.Sprintf("invalid_argument: %s must be a boolean, got %q", name, v))
	}
	return b, nil
}

// withMachine runs fn on the machine of the request with s.mu held and writes
// its result (200, or *code when given; 204 for a nil result) or error. With
// leased, a lease held by someone else refuses the write (409).
func (s *Simulator) withMachine(w http.ResponseWriter, r *http.Request, leased bool, fn func(m *machine) (any, error), code ...*int) {
	s.mu.Lock()
	var (
		out any
		err error
	)
	m := s.machines[r.PathValue("id")]
	switch {
	case m == nil:
		err = errMachineNotFound
	case leased:
		err = s.checkLease(m, r)
	}
	if err == nil {
		out, err = fn(m)
	}
	s.mu.Unlock()
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if out == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	status := http.StatusOK
	if len(code) > 0 {
		status = *code[0]
	}
	writeJSON(w, status, out)
}

// render returns the wire form of m. A summary omits config, checks,
// events, host_status and nonce.
func (s *Simulator) render(m *machine, summary bool) machineJSON {
	j := machineJSON{
		ID:         m.id,
		Name:       m.name,
		State:      m.state,
		Region:     m.region,
		InstanceID: m.instanceID,
		PrivateIP:  m.ip.String(),
		ImageRef:   imageRef(m.cfg.Image),
		CreatedAt:  rfc3339(m.createdAt),
		UpdatedAt:  rfc3339(m.updatedAt),
	}
	if summary {
		return j
	}
	j.Config = m.rawConfig
	j.Events = renderEvents(m, getEvents)
	j.Checks = s.renderChecks(m)
	j.HostStatus = "ok"
	cordoned := m.cordoned
	j.Cordoned = &cordoned
	return j
}

// renderEvents returns the newest limit events, newest first.
func renderEvents(m *machine, limit int) []eventJSON {
	n := min(limit, len(m.events))
	out := make([]eventJSON, 0, n)
	for i := len(m.events) - 1; i >= len(m.events)-n; i-- {
		e := m.events[i]
		out = append(out, eventJSON{ID: e.id, Type: e.typ, Status: e.status, Source: e.source, Timestamp: e.at.UnixMilli(), Request: e.request})
	}
	return out
}

// renderChecks reports the configured checks (top-level by name, service
// checks as servicecheck-NN-<type>-<port>) while the machine is started,
// judged from its /status server: passing when it answers as a healthy
// server would, critical otherwise. Other states report no checks.
func (s *Simulator) renderChecks(m *machine) []checkJSON {
	if m.state != stateStarted {
		return nil
	}
	now := rfc3339ms(s.clock.Now())
	judge := func(name string, c checkConfig) checkJSON {
		status, output := "passing", "Success"
		kind := c.Type
		if kind == "" {
			kind = "tcp"
		}
		switch b := m.serverBehavior(); {
		case b == nil:
			status, output = "critical", "dial tcp: connect: connection refused"
		case b.mode == modeDrop:
			status, output = "critical", "read: connection reset by peer"
		case kind == "tcp":
		case b.mode == modeHang:
			status, output = "critical", "context deadline exceeded"
		case b.mode == modeCode && (b.code < 200 || b.code > 299):
			status, output = "critical", fmt.Sprintf("%d %s", b.code, http.StatusText(b.code))
		}
		return checkJSON{Name: name, Status: status, Output: output, UpdatedAt: now}
	}
	var out []checkJSON
	names := make([]string, 0, len(m.cfg.Checks))
	for name := range m.cfg.Checks {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		out = append(out, judge(name, m.cfg.Checks[name]))
	}
	n := 0
	for _, svc := range m.cfg.Services {
		for _, c := range svc.Checks {
			port := c.Port
			if port == 0 {
				port = svc.InternalPort
			}
			kind := c.Type
			if kind == "" {
				kind = "tcp"
			}
			out = append(out, judge(fmt.Sprintf("servicecheck-%02d-%s-%d", n, kind, port), c))
			n++
		}
	}
	return out
}

// serverBehavior is the /status behaviour while the server listens, nil
// otherwise.
func (m *machine) serverBehavior() *behavior {
	if m.server == nil {
		return nil
	}
	return m.server.behavior.Load()
}

func (s *Simulator) handleGetApp(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	n := 0
	for _, m := range s.machines {
		if m.state != stateDestroyed {
			n++
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"id": s.opts.App, "name": s.opts.App, "status": "deployed", "machine_count": n,
		"organization": map[string]string{"name": "flightdeck", "slug": "personal"},
	})
}

// handleList: GET /v1/apps/{app}/machines with include_deleted, region,
// state (comma list, repeatable), summary and metadata.{key} filters.
func (s *Simulator) handleList(w http.ResponseWriter, r *http.Request) {
	includeDeleted, err := queryBool(r, "include_deleted")
	if err != nil {
		writeAPIError(w, err)
		return
	}
	summary, err := queryBool(r, "summary")
	if err != nil {
		writeAPIError(w, err)
		return
	}
	q := r.URL.Query()
	region := q.Get("region")
	states := map[string]bool{}
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			if st = strings.TrimSpace(st); st != "" {
				states[st] = true
			}
		}
	}
	metadata := map[string]string{}
	for key, vals := range q {
		if k, ok := strings.CutPrefix(key, "metadata."); ok && k != "" && len(vals) > 0 {
			metadata[k] = vals[0]
		}
	}

	s.mu.Lock()
	matches := make([]*machine, 0, len(s.machines))
	for _, m := range s.machines {
		if !includeDeleted && m.state == stateDestroyed {
			continue
		}
		if region != "" && m.region != region {
			continue
		}
		if len(states) > 0 && !states[m.state] {
			continue
		}
		ok := true
		for k, v := range metadata {
			if got, has := m.cfg.Metadata[k]; !has || got != v {
				ok = false
				break
			}
		}
		if ok {
			matches = append(matches, m)
		}
	}
	sort.Slice(matches, func(i, j int) bool { return matches[i].seq < matches[j].seq })
	out := make([]machineJSON, len(matches))
	for i, m := range matches {
		out[i] = s.render(m, summary)
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// newMachine creates and registers a machine in state created with its
// launch events. testBind checks that no other process listens on the
// address handed out (seeding skips it: its machines bind at once, and
// serverUp moves a machine whose address is taken). Called with s.mu held.
func (s *Simulator) newMachine(name, region string, cfg machineConfig, raw json.RawMessage, testBind bool) (*machine, error) {
	if name == "" {
		for {
			name = newMachineName()
			if s.names[name] == nil {
				break
			}
		}
	} else if s.names[name] != nil {
		return nil, &apiError{code: http.StatusUnprocessableEntity, status: "name_taken",
			msg: fmt.Sprintf("already_exists: unable to create machine: name %q is already taken in app %s", name, s.opts.App)}
	}
	id := newMachineID()
	for s.machines[id] != nil {
		id = newMachineID()
	}
	ip, err := s.ips.allocate(testBind)
	if err != nil {
		return nil, &apiError{code: http.StatusServiceUnavailable, status: "insufficient_capacity", msg: "out of capacity: " + err.Error()}
	}
	now := s.clock.Now()
	s.seq++
	m := &machine{
		seq: s.seq, id: id, name: name, region: region, ip: ip,
		instanceID: s.ulids.New(now), cfg: cfg, rawConfig: raw, kind: s.classify(cfg.mcpPackage()),
		state: stateCreated, createdAt: now, updatedAt: now, changed: make(chan struct{}),
	}
	s.machines[id] = m
	s.names[name] = m
	s.addEvent(m, "launch", "pending", sourceFlyd, nil)
	s.addEvent(m, "launch", stateCreated, sourceUser, nil)
	return m, nil
}

// handleCreate: POST /v1/apps/{app}/machines. Answers created at once and
// boots asynchronously (unless skip_launch). Region "xxx" is out of
// capacity. A pending "drop create response" fault creates the machine and
// then closes the connection without an answer.
func (s *Simulator) handleCreate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeAPIError(w, err)
		return
	}
	cfg, raw, err := parseConfig(req.Config)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	region := req.Region
	if region == "" {
		region = s.opts.Region
	}
	if region == "xxx" {
		writeError(w, http.StatusServiceUnavailable, "out of capacity", "insufficient_capacity")
		return
	}
	s.mu.Lock()
	m, err := s.newMachine(req.Name, region, cfg, raw, true)
	var out machineJSON
	if err == nil {
		var nonce string
		if req.LeaseTTL > 0 {
			nonce = s.grantLease(m, time.Duration(req.LeaseTTL)*time.Second, "").nonce
		}
		if !req.SkipLaunch {
			s.launch(m)
		}
		out = s.render(m, false)
		out.Nonce = nonce
	}
	s.mu.Unlock()
	if err != nil {
		writeAPIError(w, err)
		return
	}
	if rec, ok := w.(*recorder); ok && s.takeDropCreate() {
		rec.hijackAndClose()
		return
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Simulator) handleGet(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) { return s.render(m, false), nil })
}

// handleUpdate: POST /v1/apps/{app}/machines/{id} with the whole config.
func (s *Simulator) handleUpdate(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if err := decodeBody(r, &req, false); err != nil {
		writeAPIError(w, err)
		return
	}
	cfg, raw, err := parseConfig(req.Config)
	if err != nil {
		writeAPIError(w, err)
		return
	}
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		if req.Name != "" && req.Name != m.name {
			return nil, badRequest("invalid_argument: name cannot be changed")
		}
		if req.Region != "" && req.Region != m.region {
			return nil, badRequest("invalid_argument: region cannot be changed")
		}
		if req.CurrentVersion != "" && req.CurrentVersion != m.instanceID {
			return nil, &apiError{code: http.StatusConflict,
				msg: fmt.Sprintf("aborted: current_version %q does not match the machine's version %q", req.CurrentVersion, m.instanceID)}
		}
		if err := s.update(m, cfg, raw, req.SkipLaunch); err != nil {
			return nil, err
		}
		return s.render(m, false), nil
	})
}

// handleDestroy: DELETE with ?force=true (docs) or ?kill=true (flyctl).
func (s *Simulator) handleDestroy(w http.ResponseWriter, r *http.Request) {
	force, err := queryBool(r, "force")
	if err != nil {
		writeAPIError(w, err)
		return
	}
	kill, err := queryBool(r, "kill")
	if err != nil {
		writeAPIError(w, err)
		return
	}
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		if err := s.destroy(m, force || kill); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	})
}

func (s *Simulator) handleStart(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		prev, err := s.start(m, sourceUser)
		if err != nil {
			return nil, err
		}
		return map[string]any{"previous_state": prev, "migrated": false, "new_host": ""}, nil
	})
}

// handleStop: the body {"signal","timeout"} is optional; timeout is a Go
// duration string or a number of seconds.
func (s *Simulator) handleStop(w http.ResponseWriter, r *http.Request) {
	var req stopRequest
	if err := decodeBody(r, &req, true); err != nil {
		writeAPIError(w, err)
		return
	}
	if len(req.Timeout) > 0 && string(req.Timeout) != "null" {
		var str string
		var secs float64
		switch {
		case json.Unmarshal(req.Timeout, &secs) == nil:
		case json.Unmarshal(req.Timeout, &str) == nil:
			if _, err := time.ParseDuration(str); err != nil {
				writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: invalid timeout %q", str)))
				return
			}
		default:
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: invalid timeout %s", req.Timeout)))
			return
		}
	}
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		if err := s.stop(m, sourceUser, req.Signal); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	})
}

func (s *Simulator) handleSuspend(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		if err := s.suspend(m, sourceUser); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	})
}

// handleRestart accepts force_stop, timeout and signal and ignores them.
func (s *Simulator) handleRestart(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, true, func(m *machine) (any, error) {
		if err := s.restart(m); err != nil {
			return nil, err
		}
		return map[string]bool{"ok": true}, nil
	})
}

func (s *Simulator) handleCordon(on bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.withMachine(w, r, true, func(m *machine) (any, error) {
			if m.state == stateDestroyed || m.state == stateDestroying {
				return nil, precondition("unable to cordon machine from current state: '%s'", m.state)
			}
			m.cordoned = on
			return map[string]bool{"ok": true}, nil
		})
	}
}

// waitStates are the states /wait accepts.
var waitStates = map[string]bool{stateStarted: true, stateStopped: true, stateSuspended: true, stateDestroyed: true, "settled": true}

// handleWait: GET .../wait?state=...&timeout=N long-polls until the machine
// is in one of the states (any of several when repeated or comma-separated).
func (s *Simulator) handleWait(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var states []string
	for _, v := range q["state"] {
		for _, st := range strings.Split(v, ",") {
			if st = strings.TrimSpace(st); st != "" {
				if !waitStates[st] {
					writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: invalid state %q: must be one of started, stopped, suspended, destroyed, settled", st)))
					return
				}
				states = append(states, st)
			}
		}
	}
	if len(states) == 0 {
		states = []string{stateStarted}
	}
	timeout := 60 * time.Second
	if v := q.Get("timeout"); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			timeout = time.Duration(n) * time.Second
		} else if d, err := time.ParseDuration(v); err == nil {
			timeout = d
		} else {
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: invalid timeout %q: must be a number of seconds between 1 and 60", v)))
			return
		}
		if timeout < time.Second || timeout > 60*time.Second {
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: timeout %q out of range: must be between 1 and 60 seconds", v)))
			return
		}
	}
	matches := func(m *machine) bool {
		for _, st := range states {
			if st == m.state || st == "settled" && settled(m) {
				return true
			}
		}
		return false
	}

	expired := make(chan struct{})
	t := s.clock.AfterFunc(timeout, func() { close(expired) })
	defer t.Stop()
	id := r.PathValue("id")
	for {
		s.mu.Lock()
		m := s.machines[id]
		if m == nil {
			s.mu.Unlock()
			writeAPIError(w, errMachineNotFound)
			return
		}
		state, ok, changed := m.state, matches(m), m.changed
		s.mu.Unlock()
		if ok {
			writeJSON(w, http.StatusOK, map[string]any{"ok": true, "state": state})
			return
		}
		select {
		case <-changed:
		case <-expired:
			writeError(w, http.StatusRequestTimeout, fmt.Sprintf(
				"deadline_exceeded: machine failed to reach desired state, %s, currently %s", strings.Join(states, "|"), state), "")
			return
		case <-r.Context().Done():
			return
		case <-s.done:
			writeError(w, http.StatusServiceUnavailable, "unavailable: simulator shutting down", "")
			return
		}
	}
}

// handleEvents: newest first, limit default 20, at most 50 (larger limits
// are capped).
func (s *Simulator) handleEvents(w http.ResponseWriter, r *http.Request) {
	limit := getEvents
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: limit must be a positive integer, got %q", v)))
			return
		}
		limit = min(n, maxEventsLimit)
	}
	s.withMachine(w, r, false, func(m *machine) (any, error) { return renderEvents(m, limit), nil })
}

// Leases (reference §2.9).

// leaseEnvelope is the success envelope of the lease endpoints.
func leaseEnvelope(l *lease) map[string]any {
	return map[string]any{"status": "success", "data": map[string]any{
		"nonce": l.nonce, "expires_at": l.expiresAt.Unix(), "owner": l.owner,
		"description": l.description, "version": l.version,
	}}
}

// activeLease returns m's lease unless it expired.
func (s *Simulator) activeLease(m *machine) *lease {
	if m.lease != nil && s.clock.Now().Before(m.lease.expiresAt) {
		return m.lease
	}
	m.lease = nil
	return nil
}

// checkLease refuses a write to a leased machine without the lease's nonce.
func (s *Simulator) checkLease(m *machine, r *http.Request) error {
	l := s.activeLease(m)
	if l == nil || r.Header.Get("fly-machine-lease-nonce") == l.nonce {
		return nil
	}
	return &apiError{code: http.StatusConflict, msg: fmt.Sprintf("aborted: machine ID %s lease currently held by %s, expires at %s",
		m.id, l.owner, l.expiresAt.UTC().Format(time.RFC3339))}
}

func (s *Simulator) grantLease(m *machine, ttl time.Duration, description string) *lease {
	m.lease = &lease{nonce: newNonce(), owner: "sim@flightdeck.local", description: description,
		version: m.instanceID, expiresAt: s.clock.Now().Add(ttl)}
	return m.lease
}

// handleLeaseAcquire: POST .../lease (ttl from ?ttl= or the body, default
// 30s): 201 for a new lease, 200 for a refresh with the nonce header, 409
// when someone else holds it.
func (s *Simulator) handleLeaseAcquire(w http.ResponseWriter, r *http.Request) {
	var body struct {
		TTL         int    `json:"ttl"`
		Description string `json:"description"`
	}
	if err := decodeBody(r, &body, true); err != nil {
		writeAPIError(w, err)
		return
	}
	ttl := 30
	if body.TTL > 0 {
		ttl = body.TTL
	}
	if v := r.URL.Query().Get("ttl"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeAPIError(w, badRequest(fmt.Sprintf("invalid_argument: ttl must be a positive number of seconds, got %q", v)))
			return
		}
		ttl = n
	}
	code := http.StatusOK
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		if m.state == stateDestroyed {
			return nil, precondition("machine is destroyed")
		}
		if l := s.activeLease(m); l != nil {
			if err := s.checkLease(m, r); err != nil {
				return nil, err
			}
			l.expiresAt = s.clock.Now().Add(time.Duration(ttl) * time.Second)
			return leaseEnvelope(l), nil
		}
		code = http.StatusCreated
		return leaseEnvelope(s.grantLease(m, time.Duration(ttl)*time.Second, body.Description)), nil
	}, &code)
}

func (s *Simulator) handleLeaseGet(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		l := s.activeLease(m)
		if l == nil {
			return nil, &apiError{code: http.StatusNotFound, msg: "lease not found"}
		}
		return leaseEnvelope(l), nil
	})
}

func (s *Simulator) handleLeaseRelease(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		l := s.activeLease(m)
		if l == nil {
			return nil, &apiError{code: http.StatusNotFound, msg: "lease not found"}
		}
		if r.Header.Get("fly-machine-lease-nonce") != l.nonce {
			return nil, s.checkLease(m, r)
		}
		m.lease = nil
		return map[string]any{"status": "success", "data": map[string]bool{"ok": true}}, nil
	})
}

// Metadata (not lease-guarded, no new version).

func (s *Simulator) handleMetadataGet(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		md := make(map[string]string, len(m.cfg.Metadata))
		for k, v := range m.cfg.Metadata {
			md[k] = v
		}
		return md, nil
	})
}

func (s *Simulator) handleMetadataSet(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Value *string `json:"value"`
	}
	if err := decodeBody(r, &body, false); err != nil {
		writeAPIError(w, err)
		return
	}
	if body.Value == nil {
		writeAPIError(w, badRequest("invalid_argument: value is required"))
		return
	}
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		s.setMetadata(m, r.PathValue("key"), body.Value)
		return nil, nil
	})
}

func (s *Simulator) handleMetadataDelete(w http.ResponseWriter, r *http.Request) {
	s.withMachine(w, r, false, func(m *machine) (any, error) {
		s.setMetadata(m, r.PathValue("key"), nil)
		return nil, nil
	})
}

// setMetadata sets (value non-nil) or deletes a metadata key.
func (s *Simulator) setMetadata(m *machine, key string, value *string) {
	md := make(map[string]string, len(m.cfg.Metadata)+1)
	for k, v := range m.cfg.Metadata {
		md[k] = v
	}
	if value != nil {
		md[key] = *value
	} else {
		delete(md, key)
	}
	m.cfg.Metadata = md
	m.rawConfig = withMetadata(m.rawConfig, md)
	m.updatedAt = s.clock.Now()
}
