package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// Limits of the API.
const (
	// MaxBodyBytes bounds a request body; a larger one gets 413.
	MaxBodyBytes = 64 << 10
	// DefaultPageLimit and MaxPageLimit bound ?limit= of the list endpoints.
	DefaultPageLimit = 50
	MaxPageLimit     = 200
	// reservedEnvKey is set by flightdeck on every machine from the package;
	// a deployment's env cannot override it.
	reservedEnvKey = "MCP_PACKAGE"
)

// envKeyPattern is the rule for env names: a shell variable name, as the
// database's check on deployments.env states it.
var envKeyPattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,255}$`)

// uuidPattern matches a deployment id in its canonical text form.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// deploymentJSON is a deployment as the API shows it. It carries the names of
// the env variables only: no env value ever leaves the server. Optional text
// columns are null when unset.
type deploymentJSON struct {
	ID              string        `json:"id"`
	Name            string        `json:"name"`
	Package         string        `json:"package"`
	Status          status.Status `json:"status"`
	ProgressMessage *string       `json:"progress_message"`
	ErrorMessage    *string       `json:"error_message"`
	MachineID       *string       `json:"machine_id"`
	Region          *string       `json:"region"`
	EnvKeys         []string      `json:"env_keys"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
	StatusChangedAt time.Time     `json:"status_changed_at"`
	DeletedAt       *time.Time    `json:"deleted_at"`
}

// newDeploymentJSON copies what may be shown of d.
func newDeploymentJSON(d *store.Deployment) deploymentJSON {
	keys := make([]string, 0, len(d.Env))
	for k := range d.Env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := deploymentJSON{
		ID:              d.ID,
		Name:            d.Name,
		Package:         d.Package,
		Status:          d.Status,
		ProgressMessage: nullable(d.ProgressMessage),
		ErrorMessage:    nullable(d.ErrorMessage),
		MachineID:       nullable(d.MachineID),
		Region:          nullable(d.Region),
		EnvKeys:         keys,
		CreatedAt:       d.CreatedAt.UTC(),
		UpdatedAt:       d.UpdatedAt.UTC(),
		StatusChangedAt: d.StatusChangedAt.UTC(),
	}
	if d.DeletedAt != nil {
		t := d.DeletedAt.UTC()
		out.DeletedAt = &t
	}
	return out
}

// eventJSON is one transition of a deployment's history.
type eventJSON struct {
	ID           int64         `json:"id"`
	DeploymentID string        `json:"deployment_id"`
	At           time.Time     `json:"at"`
	From         status.Status `json:"from"`
	To           status.Status `json:"to"`
	Reason       string        `json:"reason"`
	Message      string        `json:"message"`
}

// deploymentPage and eventPage are the list responses; NextCursor is null on
// the last page.
type deploymentPage struct {
	Deployments []deploymentJSON `json:"deployments"`
	NextCursor  *string          `json:"next_cursor"`
}

type eventPage struct {
	Events     []eventJSON `json:"events"`
	NextCursor *string     `json:"next_cursor"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// listDeployments is GET /api/deployments?limit=&cursor=&status=: newest
// first.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	params := store.DeploymentListParams{Limit: limit, Cursor: q.Get("cursor")}
	if v := q.Get("status"); v != "" {
		st, err := status.Parse(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, "status filter: "+err.Error())
			return
		}
		params.Status = st
	}
	list, next, err := s.opts.Store.DeploymentList(r.Context(), params)
	if err != nil {
		s.storeError(w, r, err, "listing deployments")
		return
	}
	page := deploymentPage{Deployments: make([]deploymentJSON, 0, len(list)), NextCursor: nullable(next)}
	for i := range list {
		page.Deployments = append(page.Deployments, newDeploymentJSON(&list[i]))
	}
	writeJSON(w, http.StatusOK, page)
}

// getDeployment is GET /api/deployments/{id}.
func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	d, err := s.opts.Store.DeploymentGet(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err, "getting deployment "+id)
		return
	}
	writeJSON(w, http.StatusOK, newDeploymentJSON(d))
}

// listEvents is GET /api/deployments/{id}/events?limit=&cursor=: the
// transition history, newest first.
func (s *Server) listEvents(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	limit, err := pageLimit(q.Get("limit"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// EventList answers ErrNotFound for an unknown deployment: a 404, not an
	// empty history.
	events, next, err := s.opts.Store.EventList(r.Context(), store.EventListParams{DeploymentID: id, Limit: limit, Cursor: q.Get("cursor")})
	if err != nil {
		s.storeError(w, r, err, "listing events of deployment "+id)
		return
	}
	page := eventPage{Events: make([]eventJSON, 0, len(events)), NextCursor: nullable(next)}
	for _, e := range events {
		page.Events = append(page.Events, eventJSON{
			ID: e.ID, DeploymentID: e.DeploymentID, At: e.At.UTC(),
			From: e.From, To: e.To, Reason: e.Reason, Message: e.Message,
		})
	}
	writeJSON(w, http.StatusOK, page)
}

// createRequest is the body of POST /api/deployments.
type createRequest struct {
	Name    string          `json:"name"`
	Package string          `json:"package"`
	Env     json.RawMessage `json:"env"`
}

// createDeployment is POST /api/deployments: a new pending deployment.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) {
	var req createRequest
	if code, err := decodeBody(w, r, &req); err != nil {
		writeError(w, code, err.Error())
		return
	}
	if strings.TrimSpace(req.Name) == "" {
		writeError(w, http.StatusBadRequest, "name is required")
		return
	}
	if err := ValidatePackageSpec(req.Package); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	env, err := parseEnv(req.Env)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("Creating deployment", "name", req.Name, "package", req.Package, "envKeys", len(env))
	d, err := s.opts.Store.DeploymentCreate(r.Context(), store.DeploymentCreateParams{Name: req.Name, Package: req.Package, Env: env})
	if err != nil {
		s.storeError(w, r, err, "creating deployment")
		return
	}
	w.Header().Set("Location", "/api/deployments/"+d.ID)
	writeJSON(w, http.StatusCreated, newDeploymentJSON(d))
}

// deleteDeployment is DELETE /api/deployments/{id}: marks the deployment
// deleted; the controller destroys its machine and then removes the row, so
// the answer is 202 with the marked deployment. Deleting a deployment that is
// already marked is not an error.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	s.log.Info("Marking deployment deleted", "deployment", id)
	d, err := s.opts.Store.DeploymentMarkDeleted(r.Context(), id)
	if err != nil {
		s.storeError(w, r, err, "marking deployment "+id+" deleted")
		return
	}
	writeJSON(w, http.StatusAccepted, newDeploymentJSON(d))
}

// pathID returns the {id} of the path, lower-cased, or answers 400.
func pathID(w http.ResponseWriter, r *http.Request) (string, bool) {
	id := r.PathValue("id")
	if !uuidPattern.MatchString(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("malformed deployment id %q: want a UUID such as 0b9e5a4c-1f2d-4e8a-9c3b-7d6e5f4a3b2c", truncate(id, 64)))
		return "", false
	}
	return strings.ToLower(id), true
}

// pageLimit parses ?limit=.
func pageLimit(v string) (int, error) {
	if v == "" {
		return DefaultPageLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageLimit {
		return 0, fmt.Errorf("limit must be a whole number from 1 to %d, got %q", MaxPageLimit, truncate(v, 32))
	}
	return n, nil
}

// parseEnv checks that raw is a flat JSON object of strings whose names are
// valid variable names, and returns it. Errors name the variable, never its
// value.
func parseEnv(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	env := map[string]string{}
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return env, nil
	}
	if raw[0] != '{' {
		return nil, errors.New("env must be a JSON object of names to string values, such as {\"LOG_LEVEL\": \"debug\"}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return nil, errors.New("env must be a JSON object of names to string values")
	}
	for k, v := range fields {
		switch {
		case !envKeyPattern.MatchString(k):
			return nil, fmt.Errorf("env name %q is not a valid variable name: use letters, digits and _, not starting with a digit (at most 256 characters)", truncate(k, 64))
		case k == reservedEnvKey:
			return nil, fmt.Errorf("env name %s is reserved: flightdeck sets it from package", reservedEnvKey)
		case len(v) == 0 || v[0] != '"':
			return nil, fmt.Errorf("env %s must be a string: env is a flat map of names to strings (no numbers, booleans, null, objects or arrays)", k)
		}
		var value string
		if err := json.Unmarshal(v, &value); err != nil {
			return nil, fmt.Errorf("env %s is not a valid JSON string", k)
		}
		if strings.ContainsRune(value, 0) {
			return nil, fmt.Errorf("env %s contains a NUL character, which environment variables cannot hold", k)
		}
		env[k] = value
	}
	return env, nil
}

// decodeBody decodes a JSON object body into v, strictly: the content type
// must be JSON, unknown fields and trailing data are refused, and a body over
// MaxBodyBytes is a 413. It returns the status code to answer with.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) (int, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, errors.New("content type must be application/json (send Content-Type: application/json)")
	}
	tooLarge := fmt.Errorf("request body is larger than %d KiB", MaxBodyBytes>>10)
	if r.ContentLength > MaxBodyBytes {
		return http.StatusRequestEntityTooLarge, tooLarge
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		// Anything but white space after the object is an error too.
		if _, extra := dec.Token(); extra != io.EOF {
			var maxErr *http.MaxBytesError
			if errors.As(extra, &maxErr) {
				return http.StatusRequestEntityTooLarge, tooLarge
			}
			return http.StatusBadRequest, errors.New("request body must hold one JSON object and nothing after it")
		}
		return 0, nil
	}
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return http.StatusRequestEntityTooLarge, tooLarge
	case errors.Is(err, io.EOF):
		return http.StatusBadRequest, errors.New("request body is empty: send a JSON object")
	case errors.As(err, &syntaxErr), errors.Is(err, io.ErrUnexpectedEOF):
		return http.StatusBadRequest, errors.New("request body is not valid JSON")
	case errors.As(err, &typeErr):
		if typeErr.Field == "" {
			return http.StatusBadRequest, errors.New("request body must be a JSON object")
		}
		return http.StatusBadRequest, fmt.Errorf("%s must be a %s", typeErr.Field, jsonTypeName(typeErr.Type.Kind().String()))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return http.StatusBadRequest, fmt.Errorf("unknown field %s: the body takes name, package and env", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return http.StatusBadRequest, errors.New("request body is not a valid JSON object")
}

// jsonTypeName names a Go kind the way a JSON user would.
func jsonTypeName(kind string) string {
	switch kind {
	case "slice":
		return "JSON value" // only json.RawMessage fields are slices here
	case "map", "struct":
		return "JSON object"
	}
	return kind
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// storeError answers for an error of the store: 404, 409, 400 for its typed
// errors, and 500 (logged, not shown) for anything else.
func (s *Server) storeError(w http.ResponseWriter, r *http.Request, err error, doing string) {
	var verr *store.ValidationError
	switch {
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, fmt.Sprintf("deployment %s not found", r.PathValue("id")))
	case errors.As(err, &verr):
		writeError(w, http.StatusBadRequest, verr.Error())
	case errors.Is(err, store.ErrConflict):
		writeError(w, http.StatusConflict, "the deployment changed while this request ran: try again")
	case r.Context().Err() != nil:
		// The client went away; nobody reads the answer.
	default:
		s.log.Error(err, "Request failed", "method", r.Method, "path", r.URL.Path, "doing", doing)
		writeError(w, http.StatusInternalServerError, "internal error: see the flightdeck log")
	}
}

// writeJSON answers with v as JSON.
func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := marshalJSON(v)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"error":"internal error: encoding the response failed"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write(append(data, '\n'))
}

// writeError answers with {"error": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}

// marshalJSON encodes v compactly; the stream relies on it holding no newline.
func marshalJSON(v any) ([]byte, error) { return json.Marshal(v) }
