// Package webtest drives flightdeck's dashboard in a real headless Chromium,
// for tests: it starts the browser, opens pages, and reads what a person
// would see (rows, badges and their colours, progress bars, the stale-data
// banner, the event history) through small JavaScript probes.
//
// It is imported only by tests: web's own suite (against the web handler and
// a real store) and the end-to-end suite (against `flightdeck run` and the
// Fly simulator).
//
//	b, err := webtest.Start(ctx)
//	defer b.Close()
//	p, err := b.NewPage()
//	err = p.Navigate(baseURL + "/")
//	row, err := p.Row(id) // row.Status, row.BadgeBackground, row.ProgressPercent, ...
package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/chromedp/chromedp"
)

// ActionTimeout bounds each browser action of a Page.
const ActionTimeout = 15 * time.Second

// ChromiumPath returns the browser to run: $CHROMIUM when set, else chromium
// on PATH, else /usr/bin/chromium (Debian's package, which the project's
// prerequisites script installs).
func ChromiumPath() (string, error) {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p, nil
	}
	const debian = "/usr/bin/chromium"
	if _, err := os.Stat(debian); err != nil {
		return "", fmt.Errorf("chromium not found (set CHROMIUM, or run hack/install-prereqs.sh): %w", err)
	}
	return debian, nil
}

// Browser is one headless Chromium with a fresh profile.
type Browser struct {
	ctx         context.Context // the browser's first tab; pages are new tabs beside it
	cancel      context.CancelFunc
	allocCancel context.CancelFunc
	profileDir  string
}

// Start launches Chromium headless, without sandbox, GPU, QUIC or any
// background networking, with a fresh user data directory. Close stops it.
// ctx bounds the start only.
func Start(ctx context.Context) (*Browser, error) {
	path, err := ChromiumPath()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "flightdeck-chromium-")
	if err != nil {
		return nil, fmt.Errorf("creating chromium profile directory: %w", err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(1280, 900),
	)
	// The browser outlives ctx, which only bounds the start.
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.WithoutCancel(ctx), opts...)
	bctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{ctx: bctx, cancel: cancel, allocCancel: allocCancel, profileDir: dir}

	started := make(chan error, 1)
	go func() { started <- chromedp.Do(bctx) }()
	select {
	case err = <-started:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = b.Close()
		return nil, fmt.Errorf("starting chromium %s: %w", path, err)
	}
	return b, nil
}

// Close stops the browser and removes its profile.
func (b *Browser) Close() error {
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	err := chromedp.Cancel(ctx)
	if errors.Is(err, context.Canceled) || errors.Is(err, chromedp.ErrInvalidContext) {
		err = nil
	}
	b.cancel()
	b.allocCancel() // waits for the process to exit
	if rmErr := os.RemoveAll(b.profileDir); rmErr != nil && err == nil {
		err = fmt.Errorf("removing chromium profile: %w", rmErr)
	}
	return err
}

// NewPage opens a new tab (in a window of its own, so it gets animation
// frames).
func (b *Browser) NewPage() (*Page, error) {
	ctx, cancel := chromedp.NewContext(b.ctx)
	p := &Page{ctx: ctx, cancel: cancel}
	// The first run binds the tab's event loop to its context, so it must
	// be the tab's own context, not one with a timeout.
	opened := make(chan error, 1)
	go func() { opened <- chromedp.Do(ctx) }()
	timer := time.NewTimer(ActionTimeout)
	defer timer.Stop()
	var err error
	select {
	case err = <-opened:
	case <-timer.C:
		err = errors.New("timed out")
	}
	if err != nil {
		cancel()
		return nil, fmt.Errorf("opening a tab: %w", err)
	}
	p.consoleDone = make(chan struct{})
	go p.collectConsole()
	return p, nil
}

// Page is one browser tab.
type Page struct {
	ctx         context.Context
	cancel      context.CancelFunc
	consoleDone chan struct{}

	mu      sync.Mutex
	console []string
}

// Close closes the tab.
func (p *Page) Close() {
	p.cancel()
	if p.consoleDone != nil {
		<-p.consoleDone
	}
}

// collectConsole keeps the page's console errors and uncaught exceptions
// until the tab closes.
func (p *Page) collectConsole() {
	defer close(p.consoleDone)
	for msg, err := range chromedp.Console(p.ctx) {
		if err != nil {
			return
		}
		if msg.Type == chromedp.ConsoleError || msg.Type == chromedp.ConsoleException {
			p.mu.Lock()
			p.console = append(p.console, string(msg.Type)+": "+msg.Text)
			p.mu.Unlock()
		}
	}
}

// ConsoleErrors returns the console errors and uncaught exceptions so far.
// A failed network request (say a 503 from the event stream while the test
// stopped it) is logged by the browser as an error too.
func (p *Page) ConsoleErrors() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.console...)
}

func (p *Page) do(steps ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	return chromedp.Do(ctx, steps...)
}

// Navigate loads url and waits for the dashboard's table.
func (p *Page) Navigate(url string) error {
	return p.do(chromedp.Navigate(url), chromedp.WaitReady(chromedp.CSS("#rows")))
}

// SetViewport sets the viewport size; mobile also emulates a phone (touch,
// mobile layout).
func (p *Page) SetViewport(width, height int, mobile bool) error {
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
	}
	return p.do(chromedp.EmulateViewport(int64(width), int64(height), opts...))
}

// Click clicks the first element matching the CSS selector.
func (p *Page) Click(css string) error {
	return p.do(chromedp.Click(chromedp.CSS(css), chromedp.NodeVisible))
}

// Type focuses the first element matching the CSS selector and types text
// into it, key by key.
func (p *Page) Type(css, text string) error {
	return p.do(chromedp.SendKeys(chromedp.CSS(css), text, chromedp.NodeVisible))
}

// FocusAndPress focuses the first element matching the CSS selector, as Tab
// would, and presses a key on it: kb.Enter, kb.Escape, " " and so on.
func (p *Page) FocusAndPress(css, key string) error {
	return p.do(chromedp.Focus(chromedp.CSS(css), chromedp.NodeVisible), chromedp.KeyEvent(key))
}

// Press presses a key on whatever has the focus.
func (p *Page) Press(key string) error {
	return p.do(chromedp.KeyEvent(key))
}

// Eval evaluates a JavaScript expression in the page and decodes its JSON
// value into T. Promises are awaited.
func Eval[T any](p *Page, expression string) (T, error) {
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](expression, chromedp.EvalAwaitPromise))
	var out T
	if err != nil {
		return out, fmt.Errorf("evaluating in the page: %w", err)
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("decoding the page's answer: %w", err)
	}
	return out, nil
}

// Screenshot writes a PNG of the whole page to path, creating its folder.
func (p *Page) Screenshot(path string) error {
	ctx, cancel := context.WithTimeout(p.ctx, ActionTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		return fmt.Errorf("taking screenshot: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("creating screenshot folder: %w", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("writing screenshot: %w", err)
	}
	return nil
}

// OutputDir returns the folder for test output such as screenshots:
// $FLIGHTDECK_OUTPUT_DIR when set, else _output under the module root (the
// nearest folder upwards with a go.mod), which git ignores.
func OutputDir() (string, error) {
	if d := os.Getenv("FLIGHTDECK_OUTPUT_DIR"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "_output"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("finding the module root: no go.mod above the working directory")
		}
		dir = parent
	}
}
