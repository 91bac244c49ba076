package config_test

import (
	"bytes"
	"os"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
)

var _ = Describe("the variable table", func() {
	It("is what the package documentation lists, defaults included", func() {
		doc, err := os.ReadFile("doc.go")
		Expect(err).NotTo(HaveOccurred())
		for _, v := range config.Variables() {
			def := v.Default
			if def == "" {
				def = "-"
			}
			Expect(string(doc)).To(MatchRegexp(`(?m)^//\t`+v.Name+` +`+regexp.QuoteMeta(def)+` `), v.Name)
		}
	})

	It("names each flag after its variable and marks the secrets", func() {
		var secrets []string
		for _, v := range config.Variables() {
			Expect(v.Flag).To(Equal(strings.ReplaceAll(strings.ToLower(v.Name), "_", "-")))
			Expect(v.Meaning).NotTo(BeEmpty())
			if v.Secret {
				secrets = append(secrets, v.Name)
			}
		}
		Expect(secrets).To(Equal([]string{"FLY_API_TOKEN", "API_TOKEN"}))
	})

	It("prints as Markdown and as -h help", func() {
		md := config.MarkdownTable()
		Expect(md).To(HavePrefix("| variable | flag | default | meaning |\n|---|---|---|---|\n"))
		Expect(md).To(ContainSubstring("| `CHECK_INTERVAL` | `--check-interval` | `30s` |"))
		Expect(strings.Count(md, "\n")).To(Equal(2 + len(config.Variables())))

		var b bytes.Buffer
		Expect(config.Usage(&b)).To(Succeed())
		Expect(b.String()).To(MatchRegexp(`--probe-url-template +PROBE_URL_TEMPLATE +http://\{machine_id\}`))
		Expect(b.String()).To(MatchRegexp(`--fly-api-token +FLY_API_TOKEN +- `))
	})
})
