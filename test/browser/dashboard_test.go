package browser_test

import (
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	gtypes "github.com/onsi/gomega/types"

	"github.com/flightdeck/flightdeck/flyclient/flysim"
	"github.com/flightdeck/flightdeck/store/status"
	"github.com/flightdeck/flightdeck/web/webtest"
)

// The plan's badge colours.
const (
	blue  = "#3b82f6" // installing, starting
	green = "#22c55e"
	grey  = "#6b7280"
)

// The progress messages the controller writes (DESIGN.md, the state
// machine).
const (
	creatingMessage = "Creating Fly machine..."
	startingMessage = "Installing packages and starting server..."
)

var _ = Describe("the dashboard of a running flightdeck", Label("browser", "e2e"), func() {
	It("shows a deployment inserted into the database go installing → starting → running with the progress bar and message changing, then a grey stopped badge when Fly autostops it", func(ctx SpecContext) {
		page, err := system.browser.NewPage()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(page.Close)
		Expect(page.Navigate(system.url + "/")).To(Succeed())
		// Live over the event stream, not polling: every change the
		// browser sees below was pushed to it.
		Eventually(ctx, connection(page)).Should(Equal("live"))

		// A real Fly create takes seconds; the simulator's takes
		// milliseconds, and installing would flash by unseen.
		Expect(system.fly.Control.SetFaults(ctx, flysim.Faults{Latency: createLatency})).To(Succeed())
		DeferCleanup(func(ctx SpecContext) { Expect(system.fly.Control.SetFaults(ctx, flysim.Faults{})).To(Succeed()) })

		var id string
		Expect(system.db.QueryRow(ctx,
			`INSERT INTO deployments (name, package) VALUES ('browser-demo', '@modelcontextprotocol/server-everything') RETURNING id::text`,
		).Scan(&id)).To(Succeed())
		inserted := time.Now()
		w := &watcher{page: page, id: id}

		By("the row appears")
		Eventually(ctx, w.poll).Should(And(
			HaveField("Name", "browser-demo"),
			HaveField("Package", "@modelcontextprotocol/server-everything"),
			HaveField("Visible", true),
		))

		By("installing: blue, a third of the bar, creating the machine")
		Eventually(ctx, w.until(status.Installing)).Should(And(
			badge(status.Installing, blue),
			progress(33, creatingMessage),
		))
		screenshot(page, "1-installing.png")

		By("starting: blue, two thirds of the bar, installing the package, the machine shown")
		Eventually(ctx, w.until(status.Starting)).Should(And(
			badge(status.Starting, blue),
			progress(66, startingMessage),
			HaveField("MachineID", MatchRegexp(`^[0-9a-f]{14}$`)),
		))
		Expect(system.fly.Control.SetFaults(ctx, flysim.Faults{})).To(Succeed())
		screenshot(page, "2-starting.png")

		By("running: green, a full bar, no message")
		Eventually(ctx, w.until(status.Running)).Should(And(
			badge(status.Running, green),
			progress(100, ""),
			HaveField("ErrorMessage", ""),
		))
		row := w.last()
		Expect(row.MachineID).To(MatchRegexp(`^[0-9a-f]{14}$`))
		screenshot(page, "3-running.png")

		By("the Fly proxy autostops the machine")
		Expect(system.fly.Control.Autostop(ctx, row.MachineID)).To(Succeed())
		autostopped := time.Now()

		By("stopped: grey, no progress bar, no error, never unhealthy on the way")
		Eventually(ctx, w.until(status.Stopped)).Should(And(
			badge(status.Stopped, grey),
			HaveField("HasProgress", false),
			HaveField("ErrorMessage", ""),
			HaveField("MachineID", row.MachineID),
		))
		path := screenshot(page, "4-stopped.png")
		m, err := system.fly.API.GetMachine(ctx, row.MachineID)
		Expect(err).NotTo(HaveOccurred())
		Expect(m.State).To(Equal("stopped"))

		By("the browser saw every stage, in order, and nothing else")
		seen := w.statuses()
		Expect(seen).To(Or(
			Equal([]status.Status{status.Installing, status.Starting, status.Running, status.Stopped}),
			Equal([]status.Status{status.Pending, status.Installing, status.Starting, status.Running, status.Stopped}),
		), "the badges the browser showed, in order")
		Expect(transitions(ctx, id)).To(Equal([]string{
			"pending→installing", "installing→starting", "starting→running", "running→stopped",
		}), "the deployment's event history")
		Expect(page.ConsoleErrors()).To(BeEmpty())

		f, err := os.Open(path)
		Expect(err).NotTo(HaveOccurred())
		defer f.Close()
		img, err := png.Decode(f)
		Expect(err).NotTo(HaveOccurred())
		Expect(img.Bounds().Dx()).To(BeNumerically(">=", 1000))

		report := w.stages(inserted, autostopped)
		AddReportEntry("stages as the browser saw them", report)
		GinkgoWriter.Println(report)
	}, SpecTimeout(time.Minute))
})

// ----- what the browser shows -----

// errNotShown makes Eventually keep waiting for a row that is not there yet.
var errNotShown = errors.New("the row is not shown")

// sighting is the deployment's row as the browser showed it at one moment.
type sighting struct {
	at  time.Time
	row webtest.Row
}

// watcher reads one deployment's row from the page and keeps every reading,
// so that the spec can assert the whole sequence of badges the browser
// showed, not only the ones it waited for.
type watcher struct {
	page      *webtest.Page
	id        string
	sightings []sighting
}

// poll reads the row once; it is for Eventually.
func (w *watcher) poll() (webtest.Row, error) {
	r, ok, err := w.page.Row(w.id)
	if err != nil {
		return r, err
	}
	if !ok {
		return r, errNotShown
	}
	w.sightings = append(w.sightings, sighting{at: time.Now(), row: r})
	return r, nil
}

// stageOrder is the order in which the badge may change in this story.
var stageOrder = []status.Status{status.Pending, status.Installing, status.Starting, status.Running, status.Stopped}

// until polls the row, and gives up at once (StopTrying) when the badge
// shows a status past want, or one outside the story (unhealthy, failed):
// the browser then missed want, or the deployment went wrong.
func (w *watcher) until(want status.Status) func() (webtest.Row, error) {
	wantRank := slices.Index(stageOrder, want)
	return func() (webtest.Row, error) {
		r, err := w.poll()
		if err != nil {
			return r, err
		}
		rank := slices.Index(stageOrder, status.Status(r.Status))
		if rank < 0 || rank > wantRank {
			return r, StopTrying(fmt.Sprintf("the badge shows %q (error %q) while waiting for %s; seen so far: %v",
				r.Status, r.ErrorMessage, want, w.statuses()))
		}
		return r, nil
	}
}

// last is the latest reading.
func (w *watcher) last() webtest.Row {
	GinkgoHelper()
	Expect(w.sightings).NotTo(BeEmpty())
	return w.sightings[len(w.sightings)-1].row
}

// statuses lists the distinct statuses the browser showed, in order.
func (w *watcher) statuses() []status.Status {
	var out []status.Status
	for _, s := range w.sightings {
		st := status.Status(s.row.Status)
		if len(out) == 0 || out[len(out)-1] != st {
			out = append(out, st)
		}
	}
	return out
}

// stages renders what the browser showed of each stage: when it first
// showed it (after the insert), how long it showed it, the bar and the
// message, and how long the autostop took to show.
func (w *watcher) stages(inserted, autostopped time.Time) string {
	type stage struct {
		status      status.Status
		first, last time.Time
		row         webtest.Row
	}
	var stages []stage
	for _, s := range w.sightings {
		st := status.Status(s.row.Status)
		if len(stages) == 0 || stages[len(stages)-1].status != st {
			stages = append(stages, stage{status: st, first: s.at})
		}
		stages[len(stages)-1].last, stages[len(stages)-1].row = s.at, s.row
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d readings of the row\n", len(w.sightings))
	for i, s := range stages {
		shown := "until the end"
		if i+1 < len(stages) {
			shown = fmt.Sprintf("for %5.2fs", stages[i+1].first.Sub(s.first).Seconds())
		}
		bar := "no bar"
		if s.row.HasProgress {
			bar = fmt.Sprintf("bar %3.0f%% (aria %d)", s.row.ProgressPercent, s.row.ProgressValue)
		}
		fmt.Fprintf(&b, "%-10s first seen at +%5.2fs, shown %-13s badge %s %q, %s, message %q\n",
			s.status, s.first.Sub(inserted).Seconds(), shown, s.row.BadgeBackground, s.row.BadgeText, bar, s.row.ProgressMessage)
	}
	if n := len(stages); n > 0 && stages[n-1].status == status.Stopped {
		fmt.Fprintf(&b, "autostop to grey badge: %.2fs\n", stages[n-1].first.Sub(autostopped).Seconds())
	}
	return b.String()
}

func connection(p *webtest.Page) func() (string, error) {
	return func() (string, error) {
		b, err := p.Banner()
		return b.Connection, err
	}
}

// badge matches a row whose badge says st on background, readable (WCAG AA).
func badge(st status.Status, background string) gtypes.GomegaMatcher {
	return And(
		HaveField("Status", string(st)),
		HaveField("BadgeText", string(st)),
		HaveField("BadgeBackground", background),
		HaveField("BadgeContrast", BeNumerically(">=", 4.5)),
	)
}

// progress matches a row whose progress bar is filled to percent, drawn and
// announced, with message under it.
func progress(percent float64, message string) gtypes.GomegaMatcher {
	return And(
		HaveField("HasProgress", true),
		HaveField("ProgressValue", int(percent)),
		HaveField("ProgressPercent", BeNumerically("~", percent, 1.5)),
		HaveField("ProgressMessage", message),
	)
}

// screenshot writes a PNG of the page to the suite's output folder and
// returns its path.
func screenshot(p *webtest.Page, name string) string {
	GinkgoHelper()
	dir, err := webtest.OutputDir()
	Expect(err).NotTo(HaveOccurred())
	path := filepath.Join(dir, "browser", name)
	Expect(p.Screenshot(path)).To(Succeed())
	GinkgoWriter.Printf("screenshot: %s\n", path)
	return path
}

// ----- what the database recorded -----

// transitions is the deployment's event history, oldest first, as
// "from→to".
func transitions(ctx SpecContext, id string) []string {
	GinkgoHelper()
	rows, err := system.db.Query(ctx, `
		SELECT from_status::text || '→' || to_status::text FROM deployment_events
		 WHERE deployment_id = $1 ORDER BY created_at, id`, id)
	Expect(err).NotTo(HaveOccurred())
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	Expect(err).NotTo(HaveOccurred())
	return out
}
