package reconciler

// Request is the workqueue key: one deployment, by id. It is comparable, as
// controller-runtime's typed controller requires, and the queue never hands
// the same key to two workers at once.
type Request struct {
	ID string
}

// String returns the deployment id (controller-runtime logs requests).
func (r Request) String() string { return r.ID }
