package status_test

import (
	"errors"
	"testing"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/store/status"
)

func TestStatus(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "Status Suite")
}

var _ = Describe("Status", func() {
	It("lists exactly the seven statuses in the order of the database enum", func() {
		Expect(status.All()).To(Equal([]status.Status{
			"pending", "installing", "starting", "running", "unhealthy", "stopped", "failed",
		}))
	})

	It("parses every status it lists", func() {
		for _, s := range status.All() {
			Expect(status.Parse(string(s))).To(Equal(s))
		}
	})

	It("refuses an unknown status with an error naming the value and the valid ones", func() {
		_, err := status.Parse("deploying")
		var unknown *status.UnknownError
		Expect(errors.As(err, &unknown)).To(BeTrue())
		Expect(err).To(MatchError(ContainSubstring(`"deploying"`)))
		Expect(err).To(MatchError(ContainSubstring("pending, installing, starting, running, unhealthy, stopped, failed")))
	})

	It("calls only the statuses on the way up active", func() {
		var active []status.Status
		for _, s := range status.All() {
			if s.Active() {
				active = append(active, s)
			}
		}
		Expect(active).To(Equal([]status.Status{status.Pending, status.Installing, status.Starting}))
	})
})
