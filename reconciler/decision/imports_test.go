package decision_test

import (
	"os/exec"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("The decision package", func() {
	It("imports only the standard library and the status enum: no pgx, net/http, flyclient or store", func() {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{.Standard}}", ".").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		const module = "github.com/flightdeck/flightdeck/"
		allowed := map[string]bool{module + "store/status": true, module + "reconciler/decision": true}
		var deps []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			path, standard, _ := strings.Cut(line, " ")
			deps = append(deps, path)
			if standard == "true" {
				Expect(path).NotTo(HavePrefix("net/http"), "the decision must not reach the network")
				continue
			}
			Expect(allowed).To(HaveKey(path), "unexpected dependency %s", path)
		}
		Expect(deps).To(ContainElement(module+"store/status"), "the check must see the package's real dependencies")
		Expect(deps).NotTo(ContainElement(ContainSubstring("pgx")))
		Expect(deps).NotTo(ContainElement(ContainSubstring("flyclient")))
	})
})
