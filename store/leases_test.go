package store_test

import (
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store"
)

var _ = Describe("the leader lease", func() {
	It("is a compare-and-set register", func(ctx SpecContext) {
		const name = "cas-lease"
		_, _, err := st.LeaseGet(ctx, name)
		Expect(err).To(MatchError(store.ErrNotFound))
		_, err = st.LeaseUpdate(ctx, name, []byte(`{}`), 1)
		Expect(err).To(MatchError(store.ErrNotFound))

		version, err := st.LeaseCreate(ctx, name, []byte(`{"holderIdentity":"a"}`))
		Expect(err).NotTo(HaveOccurred())
		Expect(version).To(Equal(int64(1)))
		_, err = st.LeaseCreate(ctx, name, []byte(`{"holderIdentity":"b"}`))
		Expect(err).To(MatchError(store.ErrConflict))

		version, err = st.LeaseUpdate(ctx, name, []byte(`{"holderIdentity":"a", "renewTime":"x"}`), 1)
		Expect(err).NotTo(HaveOccurred())
		Expect(version).To(Equal(int64(2)))
		_, err = st.LeaseUpdate(ctx, name, []byte(`{"holderIdentity":"b"}`), 1)
		Expect(err).To(MatchError(store.ErrConflict))

		record, version, err := st.LeaseGet(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(version).To(Equal(int64(2)))
		Expect(string(record)).To(Equal(`{"holderIdentity":"a", "renewTime":"x"}`))
	})

	It("lets exactly one of two racing updaters win", func(ctx SpecContext) {
		const name = "raced-lease"
		_, err := st.LeaseCreate(ctx, name, []byte("initial"))
		Expect(err).NotTo(HaveOccurred())

		var wg sync.WaitGroup
		errs := make([]error, 8)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = st.LeaseUpdate(ctx, name, []byte{byte('a' + i)}, 1)
			}()
		}
		wg.Wait()

		Expect(errs).To(ContainElement(Not(HaveOccurred())))
		Expect(errs).To(HaveEach(Or(Not(HaveOccurred()), MatchError(store.ErrConflict))))
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
			}
		}
		Expect(won).To(Equal(1))
		_, version, err := st.LeaseGet(ctx, name)
		Expect(err).NotTo(HaveOccurred())
		Expect(version).To(Equal(int64(2)))
	})
})
