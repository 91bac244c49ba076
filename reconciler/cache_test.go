package reconciler_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/reconciler"
	"github.com/flightdeck/flightdeck/store"
	"github.com/flightdeck/flightdeck/store/status"
)

// row builds a cached deployment row for the cache specs.
func row(id string, s status.Status, updated time.Time) store.Deployment {
	return store.Deployment{ID: id, Status: s, Generation: 1, UpdatedAt: updated}
}

var _ = Describe("Cache", func() {
	t0 := time.Date(2026, 11, 27, 6, 0, 0, 0, time.UTC)

	It("keeps the newer version of a row when an older refresh arrives late", func() {
		c := reconciler.NewCache()
		c.Put(row("a", status.Running, t0.Add(time.Second)))
		c.Put(row("a", status.Starting, t0))
		got, ok := c.Get("a")
		Expect(ok).To(BeTrue())
		Expect(got.Status).To(Equal(status.Running))
	})

	It("returns from a resync only the rows that are new, changed or gone", func() {
		c := reconciler.NewCache()
		c.Replace([]store.Deployment{row("same", status.Running, t0), row("moved", status.Running, t0), row("gone", status.Running, t0)})
		changed := c.Replace([]store.Deployment{
			row("same", status.Running, t0),
			row("moved", status.Unhealthy, t0.Add(time.Second)),
			row("new", status.Pending, t0),
		})
		Expect(changed).To(ConsistOf("moved", "gone", "new"))
		_, ok := c.Get("gone")
		Expect(ok).To(BeFalse())
		Expect(c.Len()).To(Equal(3))
	})

	It("counts rows by status, every status present, deleted rows left out", func() {
		c := reconciler.NewCache()
		deleted := row("d", status.Running, t0)
		deleted.DeletedAt = &t0
		c.Replace([]store.Deployment{row("a", status.Running, t0), row("b", status.Running, t0), row("c", status.Stopped, t0), deleted})
		counts := c.CountByStatus()
		Expect(counts).To(HaveLen(len(status.All())))
		Expect(counts[status.Running]).To(Equal(2))
		Expect(counts[status.Stopped]).To(Equal(1))
		Expect(counts[status.Failed]).To(Equal(0))
	})
})
