// Package web serves flightdeck's status API, its live event stream and the
// dashboard, on the same HTTP server as /healthz, /readyz and /metrics.
//
// # JSON API
//
//	GET    /api/deployments              newest first; ?limit= (1..200, default 50), ?cursor=, ?status=
//	GET    /api/deployments/{id}         one deployment
//	GET    /api/deployments/{id}/events  its status changes, newest first; ?limit=, ?cursor=
//	POST   /api/deployments              {"name", "package", "env"}: a new pending deployment (201)
//	DELETE /api/deployments/{id}         marks it deleted; the controller destroys its machine (202)
//	GET    /api/stream                   Server-Sent Events: "deployment", "deleted", "resync"
//
// A deployment shows the names of its env variables (env_keys) and never their
// values. Every error is JSON {"error": "..."}: 400 for a malformed id, limit,
// cursor, status filter or body (unknown fields, an env that is not a flat map
// of strings, a package that is not an npm registry spec: see
// ValidatePackageSpec), 401 for a missing or wrong token, 403 when the token
// an endpoint needs is not configured, 404 for an unknown id, 405, 413 for a
// body over 64 KiB, 415 for a body that is not application/json.
//
// # Tokens
//
// Writes need "Authorization: Bearer <API_TOKEN>", compared in constant time;
// without API_TOKEN they answer 403 and say how to enable them. Reads need the
// same header when HTTP_ADDR is not a loopback address (Options.ReadsNeedToken).
// The dashboard page is always served (it holds no data); when a read answers
// 401 it asks for the token, keeps it in the tab's sessionStorage and sends it
// in the Authorization header, also for the event stream, which it then reads
// with fetch instead of EventSource. No token ever goes into a URL.
// /healthz, /readyz and /metrics never need the token.
//
// # Live updates
//
// Server.Start reads Options.Notifications (one per NOTIFY on
// flightdeck_status) and sends each open stream the changed deployment: one
// database read per notification whatever the number of clients, none when
// nobody listens, and a burst for one deployment coalesces into one read. A
// notification with Reconnected set becomes a "resync" event (the client
// fetches the list again). A client that falls 64 events behind is dropped
// and reconnects. Idle streams get a ": heartbeat" comment every 15 seconds;
// the first bytes are a "retry:" hint. When the stream is unavailable the
// dashboard polls: every 5 seconds while any deployment is pending, installing
// or starting, otherwise every 30 seconds, and a banner says the data may be
// stale.
//
// # Dashboard
//
// GET / is plain HTML, CSS and JavaScript embedded in the binary (static/),
// with a Content-Security-Policy that allows only its own files. Badge colours
// are the platform's (running #22c55e, unhealthy #ef4444, pending #eab308,
// installing and starting #3b82f6, stopped #6b7280, failed #b91c1c); each
// badge's text colour gives a contrast of at least 4.5:1 (static/style.css
// lists the ratios), and the status is always written out.
package web
