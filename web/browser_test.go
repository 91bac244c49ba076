package web_test

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chromedp/chromedp/kb"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gtypes "github.com/onsi/gomega/types"

	"github.com/flightdeck/flightdeck/store/status"
	"github.com/flightdeck/flightdeck/web/webtest"
)

// The plan's badge colours.
const (
	green  = "#22c55e"
	red    = "#ef4444"
	yellow = "#eab308"
	blue   = "#3b82f6"
	grey   = "#6b7280"
	// failed is a darker red than unhealthy, as the plan allows.
	darkRed = "#b91c1c"
)

var _ = Describe("the dashboard in a real browser", Ordered, Label("browser"), func() {
	var browser *webtest.Browser

	BeforeAll(func(ctx SpecContext) {
		var err error
		browser, err = webtest.Start(ctx)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(browser.Close)
	}, NodeTimeout(time.Minute))

	BeforeEach(truncate)

	// open opens the dashboard of h in a new tab and waits until it is live.
	open := func(h *harness) *webtest.Page {
		GinkgoHelper()
		p, err := browser.NewPage()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(p.Close)
		Expect(p.Navigate(h.URL + "/")).To(Succeed())
		return p
	}
	rowOf := func(p *webtest.Page, id string) func() (webtest.Row, error) {
		return func() (webtest.Row, error) {
			r, ok, err := p.Row(id)
			if err == nil && !ok {
				return r, errNotShown
			}
			return r, err
		}
	}
	connection := func(p *webtest.Page) func() (string, error) {
		return func() (string, error) {
			b, err := p.Banner()
			return b.Connection, err
		}
	}
	badge := func(st status.Status, background, color string) gtypes.GomegaMatcher {
		return And(
			HaveField("Status", string(st)),
			HaveField("BadgeText", string(st)),
			HaveField("BadgeBackground", background),
			HaveField("BadgeColor", color),
			HaveField("BadgeContrast", BeNumerically(">=", 4.5)),
		)
	}
	progress := func(percent float64, message string) gtypes.GomegaMatcher {
		return And(
			HaveField("HasProgress", true),
			HaveField("ProgressValue", int(percent)),
			HaveField("ProgressPercent", BeNumerically("~", percent, 1.5)),
			HaveField("ProgressMessage", message),
		)
	}

	It("shows a deployment inserted into the database and follows it live from pending to running", func() {
		h, _ := startServer()
		p := open(h)
		Eventually(connection(p)).Should(Equal("live"))
		Expect(p.Banner()).To(And(HaveField("Visible", false), HaveField("TokenForm", false)))

		id := deployment("weather-mcp", withPackage("@acme/weather-mcp@1.2.0"))
		Eventually(rowOf(p, id)).Should(And(
			HaveField("Name", "weather-mcp"),
			HaveField("Package", "@acme/weather-mcp@1.2.0"),
			HaveField("Visible", true),
			badge(status.Pending, yellow, "#000000"),
			progress(0, ""),
		))

		setStatus(id, status.Installing, "Creating Fly machine...", "")
		Eventually(rowOf(p, id)).Should(And(badge(status.Installing, blue, "#000000"), progress(33, "Creating Fly machine...")))

		_, err := pool.Exec(context.Background(), `UPDATE deployments SET machine_id = '0123456789abcd', region = 'ams' WHERE id = $1`, id)
		Expect(err).NotTo(HaveOccurred())
		setStatus(id, status.Starting, "Installing packages and starting server...", "")
		Eventually(rowOf(p, id)).Should(And(
			badge(status.Starting, blue, "#000000"),
			progress(66, "Installing packages and starting server..."),
			HaveField("MachineID", "0123456789abcd"),
		))

		setStatus(id, status.Running, "", "")
		Eventually(rowOf(p, id)).Should(And(badge(status.Running, green, "#000000"), progress(100, ""), HaveField("LastChange", "just now")))
		Expect(p.ConsoleErrors()).To(BeEmpty())
	})

	It("shows a stopped deployment with a grey badge and no error", func() {
		h, _ := startServer()
		p := open(h)
		Eventually(connection(p)).Should(Equal("live"))
		id := deployment("autostopped", withStatus(status.Running), withMachine("0123456789abcd", "ams"))
		Eventually(rowOf(p, id)).Should(badge(status.Running, green, "#000000"))
		setStatus(id, status.Stopped, "", "")
		Eventually(rowOf(p, id)).Should(And(
			badge(status.Stopped, grey, "#ffffff"),
			HaveField("HasProgress", false),
			HaveField("ErrorMessage", ""),
		))
	})

	It("shows the error of broken deployments in red badges, and when the status last changed", func() {
		unhealthy := deployment("broken", withStatus(status.Unhealthy), withMachine("0123456789abcd", "ams"),
			withMessages("", "Server failed to start within 60 seconds"))
		failed := deployment("refused", withStatus(status.Failed), withMessages("", "Fly refused the machine: image not found"))
		_, err := pool.Exec(context.Background(), `UPDATE deployments SET status_changed_at = now() - interval '2 minutes 10 seconds' WHERE id = $1`, unhealthy)
		Expect(err).NotTo(HaveOccurred())
		h, _ := startServer()
		p := open(h)
		Eventually(rowOf(p, unhealthy)).Should(And(
			badge(status.Unhealthy, red, "#000000"),
			HaveField("HasProgress", false),
			HaveField("ErrorMessage", "Server failed to start within 60 seconds"),
			HaveField("LastChange", "2 min ago"),
		))
		Eventually(rowOf(p, failed)).Should(And(
			badge(status.Failed, darkRed, "#ffffff"),
			HaveField("ErrorMessage", "Fly refused the machine: image not found"),
		))
	})

	It("opens a deployment's event history by clicking its row, and by keyboard from its button", func() {
		id := deployment("with-history")
		setStatus(id, status.Installing, "Creating Fly machine...", "")
		setStatus(id, status.Starting, "Installing packages and starting server...", "")
		h, _ := startServer()
		p := open(h)
		Eventually(rowOf(p, id)).Should(HaveField("Status", "starting"))

		Expect(p.Click(`#rows tr[data-id="` + id + `"] td.package`)).To(Succeed())
		Eventually(p.History).Should(And(
			HaveField("Open", true),
			HaveField("Title", "Event history of with-history"),
			HaveField("Events", HaveLen(2)),
		))
		hist, err := p.History()
		Expect(err).NotTo(HaveOccurred())
		Expect(hist.Events[0]).To(And(
			HaveField("Change", "installing → starting"),
			HaveField("Reason", "MachineCreated"),
			HaveField("Message", "Installing packages and starting server..."),
			HaveField("Time", ContainSubstring("just now")),
		))
		Expect(hist.Events[1]).To(HaveField("Change", "pending → installing"))

		// The history follows live changes while it is open.
		setStatus(id, status.Running, "", "")
		Eventually(p.History).Should(HaveField("Events", HaveLen(3)))

		Expect(p.Press(kb.Escape)).To(Succeed())
		Eventually(p.History).Should(HaveField("Open", false))

		Expect(p.FocusAndPress(`#rows tr[data-id="`+id+`"] button.history-button`, kb.Enter)).To(Succeed())
		Eventually(p.History).Should(And(HaveField("Open", true), HaveField("Events", HaveLen(3))))
		Expect(p.Click("#history-close")).To(Succeed())
		Eventually(p.History).Should(HaveField("Open", false))
	})

	It("works at phone width", func() {
		id := deployment("phone-sized-deployment-with-a-long-name", withStatus(status.Starting),
			withPackage("@modelcontextprotocol/server-everything@2025.1.14"), withMachine("0123456789abcd", "ams"),
			withMessages("Installing packages and starting server...", ""))
		h, _ := startServer()
		p := open(h)
		Expect(p.SetViewport(390, 844, true)).To(Succeed())
		Eventually(rowOf(p, id)).Should(And(HaveField("Visible", true), badge(status.Starting, blue, "#000000"), progress(66, "Installing packages and starting server...")))
		report, err := p.A11y()
		Expect(err).NotTo(HaveOccurred())
		Expect(report.HorizontalOverflow).To(BeFalse(), "the page fits the phone's width")
		screenshot(p, "dashboard-phone.png")
	})

	It("passes an accessibility smoke check", func() {
		for _, st := range status.All() {
			deployment("a11y-"+string(st), withStatus(st))
		}
		h, _ := startServer()
		p := open(h)
		Eventually(p.Rows).Should(HaveLen(7))
		report, err := p.A11y()
		Expect(err).NotTo(HaveOccurred())
		Expect(report.Lang).To(Equal("en"))
		Expect(report.Badges).To(Equal(7))
		Expect(report.BadgesWithoutText).To(BeZero())
		Expect(report.LowContrastBadges).To(BeEmpty())
		Expect(report.MinBadgeContrast).To(BeNumerically(">=", 4.5))
		Expect(report.UnlabelledControls).To(BeEmpty())
		Expect(report.TablesWithoutCaption).To(BeZero())
		Expect(report.HeadersWithoutScope).To(BeZero())
		Expect(report.LiveRegions).To(BeNumerically(">=", 1))
		Expect(report.UnfocusableRowActions).To(BeZero())
		Expect(report.HorizontalOverflow).To(BeFalse())
	})

	It("filters by status, and follows a deployment in or out of the filter live", func() {
		running := deployment("up", withStatus(status.Running))
		pending := deployment("down", withStatus(status.Pending))
		h, _ := startServer()
		p := open(h)
		Eventually(p.Rows).Should(HaveLen(2))
		Eventually(connection(p)).Should(Equal("live"))
		Expect(p.Filter("running")).To(Succeed())
		Eventually(p.Rows).Should(ConsistOf(HaveField("ID", running)))
		setStatus(pending, status.Running, "", "")
		Eventually(p.Rows).Should(HaveLen(2))
		setStatus(running, status.Unhealthy, "", "Health check failed: 500")
		Eventually(p.Rows).Should(ConsistOf(HaveField("ID", pending)))
		Expect(p.Filter("")).To(Succeed())
		Eventually(p.Rows).Should(HaveLen(2))
	})

	It("falls back to polling and says the data may be stale when the stream is unavailable", func() {
		id := deployment("polled")
		h, stopStream := startServer()
		p := open(h)
		Eventually(connection(p)).Should(Equal("live"))
		Expect(p.SetPollIntervals(200*time.Millisecond, 200*time.Millisecond)).To(Succeed())
		Eventually(p.Banner).Should(HaveField("Visible", false))

		stopStream()
		Eventually(p.Banner).Should(And(
			HaveField("Visible", true),
			HaveField("Text", ContainSubstring("stale")),
			HaveField("Connection", "polling"),
		))
		setStatus(id, status.Installing, "Creating Fly machine...", "")
		Eventually(rowOf(p, id)).Should(And(badge(status.Installing, blue, "#000000"), progress(33, "Creating Fly machine...")))
	})

	It("asks for the token when reads need one, keeps it out of URLs, and goes live with it", func() {
		id := deployment("guarded")
		h, _ := startServer(withToken(token), withReadsNeedToken())
		p := open(h)
		Eventually(p.Banner).Should(And(HaveField("Text", ContainSubstring("needs the API token")), HaveField("TokenForm", true)))
		Consistently(p.Rows, 200*time.Millisecond).Should(BeEmpty())

		Expect(p.Type("#token", token)).To(Succeed())
		Expect(p.Press(kb.Enter)).To(Succeed())
		Eventually(rowOf(p, id)).Should(badge(status.Pending, yellow, "#000000"))
		Eventually(connection(p)).Should(Equal("live"))

		setStatus(id, status.Installing, "Creating Fly machine...", "")
		Eventually(rowOf(p, id)).Should(progress(33, "Creating Fly machine..."))
		stored, err := webtest.Eval[string](p, `sessionStorage.getItem('flightdeck.apiToken')`)
		Expect(err).NotTo(HaveOccurred())
		Expect(stored).To(Equal(token))
		requests := h.Requests()
		Expect(requests).To(ContainElement("GET /api/stream authorized"))
		for _, r := range requests {
			Expect(r).NotTo(ContainSubstring(token))
			if strings.Contains(r, "/api/") && !strings.HasSuffix(r, " authorized") {
				Expect(r).To(HavePrefix("GET /api/deployments"), "only the reads before the token was given went without it")
			}
		}
	})

	It("shows no env value anywhere in the page", func() {
		id := deployment("secretive", withEnv(map[string]string{"API_KEY": secretValue}), withStatus(status.Running))
		h, _ := startServer()
		p := open(h)
		Eventually(rowOf(p, id)).Should(HaveField("Status", "running"))
		Expect(p.Click(`#rows tr[data-id="` + id + `"] button.history-button`)).To(Succeed())
		Eventually(p.History).Should(HaveField("Open", true))
		html, err := webtest.Eval[string](p, `document.documentElement.outerHTML`)
		Expect(err).NotTo(HaveOccurred())
		Expect(html).To(ContainSubstring("secretive"))
		Expect(html).NotTo(ContainSubstring(secretValue))
	})

	It("looks right: a screenshot of the dashboard", func() {
		base := time.Now().Add(-time.Hour)
		deployment("github-tools", withStatus(status.Running), withMachine("3d8d9e1b2c4a70", "ams"),
			withPackage("@modelcontextprotocol/server-github@2025.4.8"), withCreatedAt(base))
		deployment("filesystem", withStatus(status.Stopped), withMachine("91852e4a6b3c01", "fra"),
			withPackage("@modelcontextprotocol/server-filesystem"), withCreatedAt(base.Add(time.Minute)))
		deployment("weather", withStatus(status.Unhealthy), withMachine("e784079b449d48", "ord"),
			withPackage("@acme/weather-mcp@^1.2.0"), withMessages("", "Health check failed: 500"), withCreatedAt(base.Add(2*time.Minute)))
		deployment("broken-image", withStatus(status.Failed), withPackage("@acme/imaginary@0.0.1"),
			withMessages("", "Fly refused the machine: image not found"), withCreatedAt(base.Add(3*time.Minute)))
		deployment("everything", withStatus(status.Starting), withMachine("148e21ea35e789", "ams"),
			withPackage("@modelcontextprotocol/server-everything"), withMessages("Installing packages and starting server...", ""),
			withCreatedAt(base.Add(4*time.Minute)))
		deployment("memory", withStatus(status.Installing), withPackage("@modelcontextprotocol/server-memory@latest"),
			withMessages("Creating Fly machine...", ""), withCreatedAt(base.Add(5*time.Minute)))
		deployment("fresh", withPackage("left-pad"), withCreatedAt(base.Add(6*time.Minute)))
		_, err := pool.Exec(context.Background(), `UPDATE deployments SET status_changed_at = now() - (random() * interval '50 minutes')`)
		Expect(err).NotTo(HaveOccurred())

		h, _ := startServer()
		p := open(h)
		Eventually(p.Rows).Should(HaveLen(7))
		Eventually(connection(p)).Should(Equal("live"))
		path := screenshot(p, "dashboard.png")
		f, err := os.Open(path)
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		img, err := png.Decode(f)
		Expect(err).NotTo(HaveOccurred())
		Expect(img.Bounds().Dx()).To(BeNumerically(">=", 1000))
	})
})

// errNotShown makes Eventually keep waiting for a row that is not there yet.
var errNotShown = errorString("the row is not shown")

type errorString string

func (e errorString) Error() string { return string(e) }

// screenshot writes a PNG of the page to _output/screenshots and returns its
// path.
func screenshot(p *webtest.Page, name string) string {
	GinkgoHelper()
	dir, err := webtest.OutputDir()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, "screenshots", name)
	Expect(p.Screenshot(path)).To(Succeed())
	GinkgoWriter.Printf("screenshot: %s\n", path)
	return path
}
