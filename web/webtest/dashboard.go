package webtest

import (
	"encoding/json"
	"fmt"
	"time"
)

// Row is one deployment as the dashboard shows it.
type Row struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Package string `json:"package"`
	// Status is the row's data-status; BadgeText is what the badge says.
	Status    string `json:"status"`
	BadgeText string `json:"badgeText"`
	// BadgeBackground and BadgeColor are the computed colours as #rrggbb;
	// BadgeContrast is their WCAG contrast ratio.
	BadgeBackground string  `json:"badgeBackground"`
	BadgeColor      string  `json:"badgeColor"`
	BadgeContrast   float64 `json:"badgeContrast"`
	// HasProgress says whether a progress bar is shown; ProgressPercent is the
	// rendered width of its fill relative to its track (0-100), and
	// ProgressValue its aria-valuenow.
	HasProgress     bool    `json:"hasProgress"`
	ProgressPercent float64 `json:"progressPercent"`
	ProgressValue   int     `json:"progressValue"`
	ProgressMessage string  `json:"progressMessage"`
	ErrorMessage    string  `json:"errorMessage"`
	MachineID       string  `json:"machineID"`
	// LastChange is the relative time shown ("2 min ago").
	LastChange string `json:"lastChange"`
	// Visible says whether the row has a size on screen.
	Visible bool `json:"visible"`
}

// probeScript defines the helpers the probes share, once per document.
const probeScript = `(() => {
  if (window.__fd) return;
  const lum = (rgb) => {
    const [r, g, b] = rgb.match(/[\d.]+/g).slice(0, 3).map(Number).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = (rgb) => '#' + rgb.match(/[\d.]+/g).slice(0, 3).map((v) => Number(v).toString(16).padStart(2, '0')).join('');
  const contrast = (fg, bg) => {
    const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
    return (a + 0.05) / (b + 0.05);
  };
  const text = (root, sel) => { const e = root.querySelector(sel); return e ? e.textContent.trim() : ''; };
  const row = (tr) => {
    const badge = tr.querySelector('.badge');
    const bs = badge ? getComputedStyle(badge) : null;
    const track = tr.querySelector('.progress');
    const fill = tr.querySelector('.progress .bar');
    const rect = tr.getBoundingClientRect();
    return {
      id: tr.dataset.id,
      name: text(tr, 'td.name'),
      package: text(tr, 'td.package'),
      status: tr.dataset.status || '',
      badgeText: badge ? badge.textContent.trim() : '',
      badgeBackground: bs ? hex(bs.backgroundColor) : '',
      badgeColor: bs ? hex(bs.color) : '',
      badgeContrast: bs ? contrast(bs.color, bs.backgroundColor) : 0,
      hasProgress: Boolean(track),
      progressPercent: track && fill ? 100 * fill.getBoundingClientRect().width / track.getBoundingClientRect().width : 0,
      progressValue: track ? Number(track.getAttribute('aria-valuenow')) : 0,
      progressMessage: text(tr, '.progress-message'),
      errorMessage: text(tr, '.error-message'),
      machineID: text(tr, 'td.machine code'),
      lastChange: text(tr, 'td.changed time'),
      visible: rect.width > 0 && rect.height > 0,
    };
  };
  window.__fd = { lum, hex, contrast, row };
})()`

func evalWithProbes[T any](p *Page, expression string) (T, error) {
	return Eval[T](p, probeScript+";\n"+expression)
}

// Rows returns every row of the deployments table, in page order.
func (p *Page) Rows() ([]Row, error) {
	return evalWithProbes[[]Row](p, `[...document.querySelectorAll('#rows tr.deployment')].map(window.__fd.row)`)
}

// Row returns the row of deployment id; ok is false when it is not shown.
func (p *Page) Row(id string) (row Row, ok bool, err error) {
	q, _ := json.Marshal(`#rows tr[data-id="` + id + `"]`)
	r, err := evalWithProbes[*Row](p, fmt.Sprintf(`(() => { const tr = document.querySelector(%s); return tr ? window.__fd.row(tr) : null; })()`, q))
	if err != nil || r == nil {
		return Row{}, false, err
	}
	return *r, true, nil
}

// Banner is the stale-data banner and the connection indicator.
type Banner struct {
	Visible bool   `json:"visible"`
	Text    string `json:"text"`
	// Connection is the indicator's state: connecting, live, polling or
	// offline.
	Connection string `json:"connection"`
	// TokenForm says whether the form that asks for the API token shows.
	TokenForm bool `json:"tokenForm"`
}

// Banner reads the banner.
func (p *Page) Banner() (Banner, error) {
	return Eval[Banner](p, `(() => {
  const b = document.getElementById('banner');
  return { visible: !b.hidden && b.getBoundingClientRect().height > 0, text: b.textContent.trim(),
           connection: document.getElementById('conn').dataset.state,
           tokenForm: document.getElementById('token-form').getBoundingClientRect().height > 0 };
})()`)
}

// HistoryEvent is one row of the event history dialog.
type HistoryEvent struct {
	Time    string `json:"time"`
	Change  string `json:"change"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// History is the event history dialog.
type History struct {
	Open  bool   `json:"open"`
	Title string `json:"title"`
	// Status is the line under the title: a count, "Loading…" or an error.
	Status string         `json:"status"`
	Events []HistoryEvent `json:"events"`
}

// History reads the event history dialog.
func (p *Page) History() (History, error) {
	return Eval[History](p, `(() => {
  const d = document.getElementById('history');
  return { open: d.open, title: document.getElementById('history-title').textContent.trim(),
    status: document.getElementById('history-status').textContent.trim(),
    events: [...document.querySelectorAll('#history-rows tr')].map((tr) => ({
      time: tr.cells[0].textContent.trim(), change: tr.cells[1].textContent.trim(),
      reason: tr.cells[2].textContent.trim(), message: tr.cells[3].textContent.trim() })) };
})()`)
}

// Filter shows only the deployments of one status ("" for all), as a
// person choosing it in the "Show" list would.
func (p *Page) Filter(status string) error {
	q, _ := json.Marshal(status)
	_, err := Eval[bool](p, fmt.Sprintf(`(() => { const s = document.getElementById('status-filter'); s.value = %s;
  s.dispatchEvent(new Event('change', { bubbles: true })); return true; })()`, q))
	return err
}

// SetPollIntervals changes the dashboard's fallback poll intervals (5s and
// 30s by default), so that a test of the fallback does not wait long. They
// apply from the next scheduled poll.
func (p *Page) SetPollIntervals(active, idle time.Duration) error {
	_, err := Eval[bool](p, fmt.Sprintf(`(() => { document.body.dataset.pollActiveMs = '%d'; document.body.dataset.pollIdleMs = '%d'; return true; })()`,
		active.Milliseconds(), idle.Milliseconds()))
	return err
}

// A11yReport is the result of an accessibility smoke check of the page.
type A11yReport struct {
	// Lang is the document's language.
	Lang string `json:"lang"`
	// Badges counts the status badges; BadgesWithoutText those whose status
	// is not written out.
	Badges            int `json:"badges"`
	BadgesWithoutText int `json:"badgesWithoutText"`
	// LowContrastBadges lists badges below 4.5:1 as "text on #bg: ratio".
	LowContrastBadges []string `json:"lowContrastBadges"`
	// MinBadgeContrast is the lowest contrast of any badge.
	MinBadgeContrast float64 `json:"minBadgeContrast"`
	// UnlabelledControls lists visible inputs, selects and textareas without
	// a label, and buttons without an accessible name.
	UnlabelledControls []string `json:"unlabelledControls"`
	// TablesWithoutCaption and HeadersWithoutScope count structural gaps of
	// the data tables.
	TablesWithoutCaption int `json:"tablesWithoutCaption"`
	HeadersWithoutScope  int `json:"headersWithoutScope"`
	// LiveRegions counts aria-live regions (updates are announced).
	LiveRegions int `json:"liveRegions"`
	// UnfocusableRowActions counts history buttons that cannot take focus.
	UnfocusableRowActions int `json:"unfocusableRowActions"`
	// HorizontalOverflow says the page is wider than the viewport.
	HorizontalOverflow bool `json:"horizontalOverflow"`
}

// A11y runs the accessibility smoke check.
func (p *Page) A11y() (A11yReport, error) {
	return evalWithProbes[A11yReport](p, `(() => {
  const fd = window.__fd;
  const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
  const badges = [...document.querySelectorAll('.badge')];
  const ratios = badges.map((b) => { const s = getComputedStyle(b); return { b, s, c: fd.contrast(s.color, s.backgroundColor) }; });
  const name = (e) => (e.getAttribute('aria-label') || '').trim() ||
    (e.getAttribute('aria-labelledby') || '').split(/\s+/).map((id) => { const l = document.getElementById(id); return l ? l.textContent.trim() : ''; }).join('') ||
    (e.labels ? [...e.labels].map((l) => l.textContent.trim()).join('') : '');
  const unlabelled = [];
  for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    if (visible(e) && !name(e)) unlabelled.push(e.outerHTML.slice(0, 80));
  }
  for (const e of document.querySelectorAll('button')) {
    if (visible(e) && !(name(e) || e.textContent.trim())) unlabelled.push(e.outerHTML.slice(0, 80));
  }
  const tables = [...document.querySelectorAll('table')];
  return {
    lang: document.documentElement.lang,
    badges: badges.length,
    badgesWithoutText: badges.filter((b) => !b.textContent.trim()).length,
    lowContrastBadges: ratios.filter((r) => r.c < 4.5).map((r) => r.b.textContent.trim() + ' on ' + fd.hex(r.s.backgroundColor) + ': ' + r.c.toFixed(2)),
    minBadgeContrast: ratios.length ? Math.min(...ratios.map((r) => r.c)) : 0,
    unlabelledControls: unlabelled,
    tablesWithoutCaption: tables.filter((t) => !t.caption || !t.caption.textContent.trim()).length,
    headersWithoutScope: [...document.querySelectorAll('thead th')].filter((th) => !th.getAttribute('scope')).length,
    liveRegions: document.querySelectorAll('[aria-live]').length,
    unfocusableRowActions: [...document.querySelectorAll('#rows button')].filter((b) => b.tabIndex < 0 || b.disabled).length,
    horizontalOverflow: document.documentElement.scrollWidth > window.innerWidth + 1,
  };
})()`)
}
