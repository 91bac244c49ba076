package config_test

import (
	"errors"
	"net/url"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/flightdeck/flightdeck/config"
)

const machineID = "148e21ef1e6d89"

var _ = Describe("probe URLs", func() {
	It("renders the default template with the machine id and the app", func() {
		cfg := config.Default()
		cfg.FlyAppName = "mcp-servers"
		u, err := cfg.ProbeURL(machineID, "")
		Expect(err).NotTo(HaveOccurred())
		Expect(u).To(Equal("http://148e21ef1e6d89.vm.mcp-servers.internal:8080/status"))
	})

	DescribeTable("puts the private IP in the host, IPv6 in brackets",
		func(ip, wantURL, wantHost string) {
			t, err := config.ParseProbeTemplate("http://{private_ip}:8080/status")
			Expect(err).NotTo(HaveOccurred())
			got, err := t.Render("mcp-servers", machineID, ip)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(wantURL))
			parsed, err := url.Parse(got)
			Expect(err).NotTo(HaveOccurred())
			Expect(parsed.Hostname()).To(Equal(wantHost))
			Expect(parsed.Port()).To(Equal("8080"))
		},
		Entry("a Fly 6PN IPv6 address", "fdaa:0:1:a7b:1::2", "http://[fdaa:0:1:a7b:1::2]:8080/status", "fdaa:0:1:a7b:1::2"),
		Entry("an IPv6 address written long, printed canonically", "FDAA:0000:0001:0000:0000:0000:0000:0002",
			"http://[fdaa:0:1::2]:8080/status", "fdaa:0:1::2"),
		Entry("an IPv4 address", "172.19.0.2", "http://172.19.0.2:8080/status", "172.19.0.2"),
		Entry("an IPv4-mapped IPv6 address as IPv4", "::ffff:172.19.0.2", "http://172.19.0.2:8080/status", "172.19.0.2"),
		Entry("loopback for the simulator", "127.0.0.1", "http://127.0.0.1:8080/status", "127.0.0.1"),
	)

	DescribeTable("refuses a private IP that could change the host",
		func(ip string) {
			t, err := config.ParseProbeTemplate("http://{private_ip}:8080/status")
			Expect(err).NotTo(HaveOccurred())
			got, err := t.Render("mcp-servers", machineID, ip)
			Expect(err).To(MatchError(ContainSubstring("rendering probe URL")))
			Expect(got).To(BeEmpty())
		},
		Entry("empty", ""),
		Entry("a host name", "evil.example.com"),
		Entry("an IPv6 zone", "fe80::1%eth0"),
		Entry("an address with a path", "10.0.0.2/admin"),
		Entry("an address with user info", "user@10.0.0.2"),
		Entry("an address already in brackets", "[fdaa::2]"),
		Entry("an address with a port", "10.0.0.2:9999"),
	)

	DescribeTable("refuses a machine id that is not 14 lowercase hex digits",
		func(id string) {
			cfg := config.Default()
			cfg.FlyAppName = "mcp-servers"
			got, err := cfg.ProbeURL(id, "")
			Expect(errors.Is(err, config.ErrInvalidMachineID)).To(BeTrue(), "got %v", err)
			Expect(got).To(BeEmpty())
			Expect(config.ValidateMachineID(id)).To(MatchError(config.ErrInvalidMachineID))
		},
		Entry("empty", ""),
		Entry("upper case", "148E21EF1E6D89"),
		Entry("13 digits", "148e21ef1e6d8"),
		Entry("15 digits", "148e21ef1e6d890"),
		Entry("a non-hex letter", "148e21ef1e6d8g"),
		Entry("a host injection", "evil.com#1e6d8"),
		Entry("a path injection", "148e21ef1e6/../"),
	)

	It("accepts a valid machine id", func() {
		Expect(config.ValidateMachineID(machineID)).To(Succeed())
	})

	It("refuses an app name that is not a Fly app name", func() {
		cfg := config.Default()
		cfg.FlyAppName = "evil.com/x"
		_, err := cfg.ProbeURL(machineID, "")
		Expect(err).To(MatchError(ContainSubstring(`app name "evil.com/x" is not a Fly app name`)))
	})

	It("ignores values the template does not use", func() {
		t, err := config.ParseProbeTemplate("http://127.0.0.1:4280/machines/{machine_id}/status")
		Expect(err).NotTo(HaveOccurred())
		Expect(t.Uses(config.PlaceholderMachineID)).To(BeTrue())
		Expect(t.Uses(config.PlaceholderPrivateIP)).To(BeFalse())
		got, err := t.Render("", machineID, "not an ip")
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal("http://127.0.0.1:4280/machines/148e21ef1e6d89/status"))
	})

	DescribeTable("refuses a template it cannot render safely, naming the problem",
		func(tmpl, want string) {
			_, err := config.ParseProbeTemplate(tmpl)
			Expect(err).To(MatchError(want))
		},
		Entry("an unknown placeholder", "http://{id}.vm.{app}.internal:8080/status",
			`unknown placeholder {id} in "http://{id}.vm.{app}.internal:8080/status" (known: {machine_id}, {app}, {private_ip})`),
		Entry("two unknown placeholders", "http://{host}:{port}/status",
			`unknown placeholder {host}, {port} in "http://{host}:{port}/status" (known: {machine_id}, {app}, {private_ip})`),
		Entry("a placeholder of the wrong case", "http://{Machine_ID}.vm.{app}.internal/",
			`unknown placeholder {Machine_ID} in "http://{Machine_ID}.vm.{app}.internal/" (known: {machine_id}, {app}, {private_ip})`),
		Entry("a closing brace alone", "http://x}/status", `"http://x}/status" has a '}' without a matching '{'`),
		Entry("the private IP twice", "http://{private_ip}:8080/{private_ip}",
			`"http://{private_ip}:8080/{private_ip}": {private_ip} must be the whole host (http://{private_ip}:8080/status)`),
		Entry("the private IP in the path", "http://127.0.0.1/{private_ip}",
			`"http://127.0.0.1/{private_ip}": {private_ip} must be the whole host (http://{private_ip}:8080/status)`),
		Entry("no scheme", "{machine_id}.vm.{app}.internal:8080/status",
			`"{machine_id}.vm.{app}.internal:8080/status" does not make a URL: first path segment in URL cannot contain colon`),
		Entry("no host", "http:///status", `"http:///status" has no host`),
		Entry("user info", "http://probe:pw@{machine_id}.vm.{app}.internal/", `"http://probe:pw@{machine_id}.vm.{app}.internal/" must not hold user info`),
		Entry("an empty template", "", `"" is not an http(s) URL`),
	)

	It("reports a bad configured template under its variable", func() {
		cfg := config.Default()
		cfg.ProbeURLTemplate = "http://{machine}/"
		_, err := cfg.ProbeURL(machineID, "")
		Expect(err).To(MatchError(HavePrefix("PROBE_URL_TEMPLATE: unknown placeholder {machine}")))
	})
})
