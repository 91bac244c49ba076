// Package status defines the deployment status enum: the seven values of the
// deployment_status PostgreSQL enum and what moves a deployment into and out
// of each. It has no dependencies so that the pure decision code, the store
// and the web layer can all share it.
package status

import "fmt"

// Status is the observed state of a deployment, as written by the controller
// into deployments.status.
type Status string

const (
	// Pending: the API wrote the record and no machine exists yet. Leaves for
	// Installing at once.
	Pending Status = "pending"
	// Installing: the controller is creating the Fly machine. Leaves for
	// Starting when the machine exists, or Failed on a permanent refusal.
	Installing Status = "installing"
	// Starting: the machine exists and its server does not answer yet. Leaves
	// for Running on a 200 from /status, or Unhealthy when the startup timeout
	// passes or the process exits.
	Starting Status = "starting"
	// Running: /status answers 200. Leaves for Unhealthy on a failed probe
	// (confirmed once) and for Stopped when Fly stopped the machine on purpose.
	Running Status = "running"
	// Unhealthy: the server should answer and does not. Leaves for Running on
	// a 200 and for Stopped when Fly stopped the machine on purpose.
	Unhealthy Status = "unhealthy"
	// Stopped: Fly stopped the machine on purpose (autostop or a user). Not an
	// error. Leaves for Running once the machine is started and answers 200.
	Stopped Status = "stopped"
	// Failed: cannot work without a change to the record. Leaves only when
	// the record's spec changes.
	Failed Status = "failed"
)

// All lists every status in the order of the PostgreSQL enum.
func All() []Status {
	return []Status{Pending, Installing, Starting, Running, Unhealthy, Stopped, Failed}
}

// Valid reports whether s is one of the seven statuses.
func (s Status) Valid() bool {
	switch s {
	case Pending, Installing, Starting, Running, Unhealthy, Stopped, Failed:
		return true
	}
	return false
}

// Active reports whether s is one of the statuses of a deployment that is on
// its way up (pending, installing, starting).
func (s Status) Active() bool {
	return s == Pending || s == Installing || s == Starting
}

// UnknownError is returned by Parse for a value that is not a status.
type UnknownError struct{ Value string }

func (e *UnknownError) Error() string {
	return fmt.Sprintf("unknown deployment status %q (want one of pending, installing, starting, running, unhealthy, stopped, failed)", e.Value)
}

// Parse returns the Status named by s, or an *UnknownError.
func Parse(s string) (Status, error) {
	st := Status(s)
	if !st.Valid() {
		return "", &UnknownError{Value: s}
	}
	return st, nil
}
