package web_test

import (
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/web"
)

var _ = Describe("ValidatePackageSpec", func() {
	DescribeTable("accepts an npm registry spec",
		func(spec string) {
			Expect(web.ValidatePackageSpec(spec)).To(Succeed())
		},
		Entry("a plain name", "left-pad"),
		Entry("a name with dots and underscores", "lodash.merge_x"),
		Entry("a scoped name", "@modelcontextprotocol/server-everything"),
		Entry("an exact version", "left-pad@1.3.0"),
		Entry("a scoped name with a version", "@modelcontextprotocol/server-filesystem@2025.1.14"),
		Entry("a prerelease with build metadata", "pkg@1.0.0-beta.2+build.7"),
		Entry("a caret range", "pkg@^1.2.0"),
		Entry("a tilde range", "pkg@~1.2"),
		Entry("an x-range", "pkg@1.x"),
		Entry("a star", "pkg@*"),
		Entry("comparators", "pkg@>=1.0.0 <2.0.0"),
		Entry("a hyphen range", "pkg@1.0.0 - 2.0.0"),
		Entry("alternatives", "pkg@^1.0.0 || ^2.0.0"),
		Entry("a dist-tag", "pkg@latest"),
		Entry("a dist-tag with a dash and digits", "@scope/pkg@beta-2"),
		Entry("a name of 214 characters", strings.Repeat("a", 214)),
	)

	DescribeTable("refuses anything else, saying why",
		func(spec, why string) {
			err := web.ValidatePackageSpec(spec)
			Expect(err).To(HaveOccurred())
			Expect(err.Error()).To(ContainSubstring(why))
		},
		Entry("an empty spec", "", "package is required"),
		Entry("a name over 214 characters", strings.Repeat("a", 215), "longer than 214"),
		Entry("a spec over 256 characters", "pkg@"+strings.Repeat("1", 253), "longer than 256"),
		Entry("leading space", " pkg", "leading or trailing spaces"),
		Entry("capital letters", "LeftPad", "lower case"),
		Entry("a leading dot", ".pkg", "path"),
		Entry("a leading underscore", "_pkg", "cannot start with"),
		Entry("special characters", "pkg!", "special characters"),
		Entry("a space inside the name", "left pad", `contains ' '`),
		Entry("non-ASCII letters", "pâté", "may hold only"),
		Entry("node_modules", "node_modules", "not allowed"),
		Entry("a scope without a name", "@scope", "@scope/name"),
		Entry("a scope with two slashes", "@scope/a/b", "@scope/name"),
		Entry("an empty scope", "@/pkg", "@scope/name"),
		Entry("a GitHub shorthand", "acme/weather", "GitHub shorthand"),
		Entry("a github: spec", "github:acme/weather", "github spec"),
		Entry("a git+https URL", "git+https://github.com/acme/weather.git", "git+ spec"),
		Entry("a git+ssh URL", "git+ssh://git@github.com/acme/weather.git", "git+ spec"),
		Entry("a tarball URL", "https://registry.example.com/weather-1.0.0.tgz", "https spec"),
		Entry("a local tarball", "weather-1.0.0.tgz", "tarball"),
		Entry("a relative path", "../weather", "path"),
		Entry("an absolute path", "/opt/weather", "path"),
		Entry("a home path", "~/weather", "path"),
		Entry("a file: spec", "file:../weather", "file spec"),
		Entry("an alias", "npm:left-pad@1.0.0", "npm spec"),
		Entry("an empty version", "pkg@", `ends with "@"`),
		Entry("four version numbers", "pkg@1.2.3.4", "neither a semver"),
		Entry("a leading zero", "pkg@01.2.3", "neither a semver"),
		Entry("a prerelease on a partial version", "pkg@1.2-beta", "neither a semver"),
		Entry("an empty alternative", "pkg@1.0.0 ||", "neither a semver"),
		Entry("a tag starting with a digit", "pkg@2beta", "neither a semver"),
		Entry("shell characters in the version", "pkg@1.0.0;rm", "neither a semver"),
		Entry("a command substitution", "pkg@$(reboot)", "neither a semver"),
		Entry("a second @", "pkg@1.0.0@2", "neither a semver"),
	)
})
