package reconciler

import (
	"sync"

	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// Cache is the informer-style copy of the deployment rows that reconciles
// read from, so that a healthy probe costs no database round trip. It is
// filled by a full list at start and on every resync, refreshed per row when
// a NOTIFY names it, and updated by the controller's own successful writes.
// A stale entry is harmless: every write is a guarded compare-and-set, and a
// conflict refreshes the row from the database.
type Cache struct {
	mu   sync.RWMutex
	rows map[string]store.Deployment
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{rows: make(map[string]store.Deployment)}
}

// Get returns the cached row of deployment id.
func (c *Cache) Get(id string) (store.Deployment, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	d, ok := c.rows[id]
	return d, ok
}

// Put stores d unless the cache already holds a newer version of the row
// (a later updated_at), so that a slow refresh cannot undo a newer write.
func (c *Cache) Put(d store.Deployment) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.rows[d.ID]; ok && old.UpdatedAt.After(d.UpdatedAt) {
		return
	}
	c.rows[d.ID] = d
}

// Delete forgets deployment id.
func (c *Cache) Delete(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.rows, id)
}

// Replace swaps the whole content for a fresh list and returns the ids whose
// rows are new, changed or gone compared with what the cache held: those are
// the rows a resync has to reconcile now; the others keep their schedule.
func (c *Cache) Replace(rows []store.Deployment) (changed []string) {
	fresh := make(map[string]store.Deployment, len(rows))
	for _, d := range rows {
		fresh[d.ID] = d
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, d := range fresh {
		old, ok := c.rows[id]
		if !ok || !SameRow(old, d) {
			changed = append(changed, id)
		}
	}
	for id := range c.rows {
		if _, ok := fresh[id]; !ok {
			changed = append(changed, id)
		}
	}
	c.rows = fresh
	return changed
}

// IDs returns the ids of every cached row.
func (c *Cache) IDs() []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ids := make([]string, 0, len(c.rows))
	for id := range c.rows {
		ids = append(ids, id)
	}
	return ids
}

// CountByStatus counts the cached rows by status (rows marked deleted are
// not counted).
func (c *Cache) CountByStatus() map[status.Status]int {
	counts := make(map[status.Status]int, len(status.All()))
	for _, s := range status.All() {
		counts[s] = 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, d := range c.rows {
		if d.DeletedAt == nil {
			counts[d.Status]++
		}
	}
	return counts
}

// Len is the number of cached rows.
func (c *Cache) Len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.rows)
}

// SameRow reports whether two versions of a row are the same for the
// controller: same spec generation, status, messages, machine and deletion.
func SameRow(a, b store.Deployment) bool {
	return a.Generation == b.Generation &&
		a.ObservedGeneration == b.ObservedGeneration &&
		a.Status == b.Status &&
		a.ProgressMessage == b.ProgressMessage &&
		a.ErrorMessage == b.ErrorMessage &&
		a.MachineID == b.MachineID &&
		a.PrivateIP == b.PrivateIP &&
		(a.DeletedAt == nil) == (b.DeletedAt == nil) &&
		a.UpdatedAt.Equal(b.UpdatedAt)
}
