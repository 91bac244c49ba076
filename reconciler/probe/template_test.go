package probe_test

import (
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/reconciler/probe"
)

var _ = Describe("URLTemplate", func() {
	target := probe.Target{MachineID: "1857156b526dd8", App: "mcp-hosting", PrivateIP: "fdaa:0:1:a7b:195:e229:8038:2"}

	DescribeTable("renders a deployment's probe URL",
		func(tpl string, t probe.Target, want string) {
			u, err := probe.MustParseURLTemplate(tpl).URL(t)
			Expect(err).NotTo(HaveOccurred())
			Expect(u).To(Equal(want))
		},
		Entry("the default template uses the machine's 6PN name", probe.DefaultURLTemplate, target,
			"http://1857156b526dd8.vm.mcp-hosting.internal:8080/status"),
		Entry("an IPv6 private IP is bracketed", "http://{private_ip}:8080/status", target,
			"http://[fdaa:0:1:a7b:195:e229:8038:2]:8080/status"),
		Entry("an IPv4 private IP is not", "http://{private_ip}:8080/status",
			probe.Target{PrivateIP: "127.0.0.1"}, "http://127.0.0.1:8080/status"),
		Entry("placeholders may repeat and sit in the path", "https://{app}.example.test/{machine_id}/{machine_id}", target,
			"https://mcp-hosting.example.test/1857156b526dd8/1857156b526dd8"),
		Entry("values the template does not use are not needed", "http://127.0.0.1:9/status", probe.Target{}, "http://127.0.0.1:9/status"),
	)

	DescribeTable("refuses values that are not what their placeholder stands for",
		func(t probe.Target, msg string) {
			_, err := probe.MustParseURLTemplate("http://{machine_id}.vm.{app}.internal:8080/{private_ip}").URL(t)
			Expect(err).To(MatchError(ContainSubstring(msg)))
		},
		Entry("a machine id with a path in it", probe.Target{MachineID: "../../etc/pass", App: "a", PrivateIP: "::1"}, "machine id"),
		Entry("an upper-case machine id", probe.Target{MachineID: "1857156B526DD8", App: "a", PrivateIP: "::1"}, "machine id"),
		Entry("a 15-character machine id", probe.Target{MachineID: "a5c5de9ce64ca12", App: "a", PrivateIP: "::1"}, "machine id"),
		Entry("an app name with a slash", probe.Target{MachineID: "1857156b526dd8", App: "a/b", PrivateIP: "::1"}, "app name"),
		Entry("an app name with a user", probe.Target{MachineID: "1857156b526dd8", App: "x@evil", PrivateIP: "::1"}, "app name"),
		Entry("an upper-case app name", probe.Target{MachineID: "1857156b526dd8", App: "App", PrivateIP: "::1"}, "app name"),
		Entry("a host name as private IP", probe.Target{MachineID: "1857156b526dd8", App: "a", PrivateIP: "evil.example"}, "private IP"),
		Entry("an IPv6 address with a zone", probe.Target{MachineID: "1857156b526dd8", App: "a", PrivateIP: "fe80::1%eth0"}, "private IP"),
		Entry("no private IP", probe.Target{MachineID: "1857156b526dd8", App: "a"}, "no private IP"),
	)

	DescribeTable("refuses templates that could carry anything but the three validated values",
		func(tpl, msg string) {
			_, err := probe.ParseURLTemplate(tpl)
			Expect(err).To(MatchError(ContainSubstring(msg)))
			Expect(err).To(MatchError(ContainSubstring("PROBE_URL_TEMPLATE")))
		},
		Entry("an unknown placeholder", "http://{machine}.internal/status", "unknown placeholder {machine}"),
		Entry("an unclosed brace", "http://{machine_id.internal/status", "without a '}'"),
		Entry("a stray closing brace", "http://x}.internal/status", "without a '{'"),
		Entry("another scheme", "ftp://{machine_id}.internal/status", "http:// or https://"),
		Entry("no scheme", "{machine_id}.vm.{app}.internal:8080/status", "http:// or https://"),
		Entry("no host", "http:///status", "must name a host"),
		Entry("credentials", "http://user:secret@{machine_id}.internal/status", "must not hold credentials"),
		Entry("a bracketed private IP", "http://[{private_ip}]:8080/status", "must not bracket"),
		Entry("spaces", "http://{machine_id}.internal/ status", "spaces"),
	)

	It("says which placeholders it uses", func() {
		t := probe.MustParseURLTemplate(probe.DefaultURLTemplate)
		Expect(t.Uses(probe.PlaceholderMachineID)).To(BeTrue())
		Expect(t.Uses(probe.PlaceholderApp)).To(BeTrue())
		Expect(t.Uses(probe.PlaceholderPrivateIP)).To(BeFalse())
		Expect(t.String()).To(Equal(probe.DefaultURLTemplate))
	})

	It("does not echo credentials of a refused template", func() {
		_, err := probe.ParseURLTemplate("http://user:s3cr3t@{machine_id}.internal/status")
		Expect(err).To(HaveOccurred())
		Expect(err.Error()).NotTo(ContainSubstring("s3cr3t"))
	})
})
