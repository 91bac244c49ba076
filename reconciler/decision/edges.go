package decision

import (
	"slices"

	"github.com/flightdeck/flightdeck/store/status"
)

// Edges lists the legal status transitions: DESIGN.md's table ("leaves for") plus the edges the controller
// rules add. Staying in the same status (a message-only or no change) is always legal and not listed.
// A test walks every edge: each is produced by at least one table entry, and no entry produces another.
//
//   - pending → installing (DESIGN); → failed when the row names a malformed machine id.
//   - installing → starting when the machine exists; → failed on a permanent Fly refusal, the install
//     deadline, or a malformed machine id.
//   - starting → running on 200; → unhealthy on the startup timeout, a process exit or Fly's failed state;
//     → failed when the machine is gone, Fly refuses an update, or the machine id is malformed.
//   - running, unhealthy → each other by probe; → stopped when Fly stopped the machine on request;
//     → starting when the spec changed and the machine was updated; → failed as for starting.
//   - stopped → running when started again and answering 200; → unhealthy on a crash or when the restarted
//     server does not answer; → starting, → failed as above.
//   - failed → installing (no machine) or starting (machine updated) when the spec changes.
var Edges = map[status.Status][]status.Status{
	status.Pending:    {status.Installing, status.Failed},
	status.Installing: {status.Starting, status.Failed},
	status.Starting:   {status.Running, status.Unhealthy, status.Installing, status.Failed},
	status.Running:    {status.Unhealthy, status.Stopped, status.Starting, status.Installing, status.Failed},
	status.Unhealthy:  {status.Running, status.Stopped, status.Starting, status.Installing, status.Failed},
	status.Stopped:    {status.Running, status.Unhealthy, status.Starting, status.Installing, status.Failed},
	status.Failed:     {status.Installing, status.Starting},
}

// Legal reports whether moving a row from one status to another is an edge of Edges (or no move at all).
func Legal(from, to status.Status) bool {
	return from == to || slices.Contains(Edges[from], to)
}
