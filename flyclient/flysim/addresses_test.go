package flysim_test

import (
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strconv"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
)

// randomBlock returns a random 127.N.T.0 prefix, so that copies of this suite
// running at once in other processes rarely meet.
func randomBlock() string {
	return fmt.Sprintf("127.%d.%d.", 1+rand.IntN(254), rand.IntN(200))
}

var _ = Describe("Private addresses", func() {
	// squat listens on addr:port as another process's server would.
	squat := func(addr string, port int) net.Listener {
		GinkgoHelper()
		ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port)))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(ln.Close)
		return ln
	}

	It("hands out addresses from IPBase on, skipping one another process listens on", func() {
		block := randomBlock()
		taken := squat(block+"10", 0)
		port := taken.Addr().(*net.TCPAddr).Port
		e := startSim(func(o *flysim.Options) {
			o.IPBase = netip.MustParseAddr(block + "10")
			o.StatusPort = port
		})
		Expect(e.sim.StatusPort()).To(Equal(port))
		m := e.started("pkg")
		Expect(m.PrivateIP).To(Equal(block + "11"))
		Eventually(e.probeResult(m.PrivateIP)).Should(Equal("200"))
		Expect(e.create(machineBody("pkg")).PrivateIP).To(Equal(block + "12"))
	})

	It("moves a machine to a fresh address when its own was taken before its server listens", func() {
		e := startSim(func(o *flysim.Options) { o.IPBase = netip.MustParseAddr(randomBlock() + "1") })
		body := machineBody("pkg")
		body["skip_launch"] = true
		m := e.create(body)
		squat(m.PrivateIP, e.sim.StatusPort())

		Expect(e.api("POST", "/"+m.ID+"/start", nil).code).To(Equal(http.StatusOK))
		Eventually(func() string { return e.get(m.ID).PrivateIP }).ShouldNot(Equal(m.PrivateIP))
		moved := e.get(m.ID)
		Eventually(e.probeResult(moved.PrivateIP)).Should(Equal("200"))
		Expect(moved.State).To(Equal("started"))
		Expect(e.exits(m.ID)).To(BeEmpty(), "the process did not crash")
	})

	It("refuses an API address that is not loopback", func() {
		_, err := flysim.Start(flysim.Options{Token: "t", Addr: "0.0.0.0:0"})
		Expect(err).To(MatchError(ContainSubstring("not a loopback address")))
		_, err = flysim.Start(flysim.Options{Addr: "127.0.0.1:0"})
		Expect(err).To(MatchError(ContainSubstring("Token is required")))
	})
})
