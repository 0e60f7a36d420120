// Package browser drives a headless Chromium for the tests that look at the
// exporter's pages as a person does: open a page, wait until it shows
// something, read a table, type into a box, take a screenshot. It starts
// Debian's chromium (apt-get install chromium) as root without a sandbox,
// with a private profile, and stops it when the test ends.
package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/docker-exporter/docker_exporter/internal/logbuf"
	"github.com/docker-exporter/docker_exporter/internal/testdaemon"
	"github.com/docker-exporter/docker_exporter/internal/wait"
)

// closeTimeout bounds the browser's graceful close at the end of a test.
const closeTimeout = 15 * time.Second

// Page is one tab of a browser of its own.
type Page struct {
	ctx context.Context // the chromedp context of the tab
	// Log holds what chromium printed and what chromedp reported.
	Log *logbuf.Buffer
	url string // the page last opened, for failure messages
}

type config struct{ noScript bool }

// Option changes how Start starts the browser.
type Option func(*config)

// WithoutJavaScript starts a browser whose pages run no script, so a page
// shows what the server rendered. The DevTools protocol still reads the DOM.
func WithoutJavaScript(c *config) { c.noScript = true }

// Start starts chromium headless with an empty tab, and registers a cleanup
// that closes it and waits until it has exited and every goroutine of
// chromedp has ended. Without chromium (or when it won't start) the test is
// skipped, or fails when testdaemon.EnvRequire is "1".
func Start(tb testing.TB, opts ...Option) *Page {
	tb.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		unavailable(tb, "%v (apt-get install chromium)", err)
	}
	log := &logbuf.Buffer{}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", "new"),
		// Root, and no container to sandbox in.
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		// /dev/shm is small where tests often run.
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(filepath.Join(tb.TempDir(), "profile")),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(log),
	}
	if cfg.noScript {
		flags = append(flags, chromedp.Flag("blink-settings", "scriptEnabled=false"))
	}
	// The defaults (no first-run page, no background networking, no
	// throttling of background timers, ...) before ours, which win.
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		append(chromedp.DefaultExecAllocatorOptions[:], flags...)...)
	logf := func(format string, args ...any) { fmt.Fprintf(log, "chromedp: "+format+"\n", args...) }
	ctx, cancelCtx := chromedp.NewContext(allocCtx, chromedp.WithLogf(logf), chromedp.WithErrorf(logf))
	p := &Page{ctx: ctx, Log: log}
	tb.Cleanup(func() {
		tctx, cancel := context.WithTimeout(ctx, closeTimeout)
		err := chromedp.Cancel(tctx)
		cancel()
		cancelCtx()
		cancelAlloc() // waits for the process and chromedp's goroutines
		if err != nil && !errors.Is(err, context.Canceled) {
			tb.Errorf("browser: close chromium: %v\n%s", err, tail(log))
		}
	})
	// The first Run starts the browser; it must have no deadline, which
	// would end the browser with it.
	if err := chromedp.Do(ctx); err != nil {
		unavailable(tb, "start %s: %v\n%s", path, err, tail(log))
	}
	return p
}

// tail is the end of a browser's log, for failure messages, without the
// lines of chromium's complaints that the machine has no D-Bus.
func tail(log *logbuf.Buffer) string {
	var lines []string
	for l := range strings.Lines(log.String()) {
		if !strings.Contains(l, ":ERROR:dbus/") {
			lines = append(lines, strings.TrimRight(l, "\n"))
		}
	}
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

func unavailable(tb testing.TB, format string, args ...any) {
	tb.Helper()
	msg := "browser: " + fmt.Sprintf(format, args...)
	if os.Getenv(testdaemon.EnvRequire) == "1" {
		tb.Fatal(msg)
	}
	tb.Skip(msg + " (set " + testdaemon.EnvRequire + "=1 to fail instead)")
}

// run runs a on the tab within wait.Timeout; an error fails the test.
func run[T any](tb testing.TB, p *Page, what string, a chromedp.Action[T]) T {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, wait.Timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		tb.Fatalf("browser: %s on %s: %v\nbrowser log (tail):\n%s", what, p.url, err, tail(p.Log))
	}
	return v
}

// Open loads url in the tab and waits for its load event.
func (p *Page) Open(tb testing.TB, url string) {
	tb.Helper()
	p.url = url
	run(tb, p, "open", chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression in the page and decodes its value
// into T (as JSON). With WithoutJavaScript it still runs: the page's own
// scripts are off, not DevTools'.
func Eval[T any](tb testing.TB, p *Page, expr string) T {
	tb.Helper()
	return run(tb, p, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// WaitFor waits until the JavaScript expression cond is truthy in the page,
// trying it every 10ms, for at most wait.Timeout. At the deadline it fails
// the test with what, and with what show says of the page then (if show is
// not nil).
func (p *Page) WaitFor(tb testing.TB, what, cond string, show func() string) {
	tb.Helper()
	p.WaitWithin(tb, wait.Timeout, what, cond, show)
}

// WaitWithin is WaitFor with a deadline of d.
func (p *Page) WaitWithin(tb testing.TB, d time.Duration, what, cond string, show func() string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void]("!!("+cond+")",
		chromedp.WithPollingInterval(10*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err == nil {
		return
	}
	msg := fmt.Sprintf("browser: waited %v on %s for %s: %v", d, p.url, what, err)
	if show != nil {
		msg += "\nthe page shows:\n" + show()
	}
	tb.Fatal(msg + "\nbrowser log (tail):\n" + tail(p.Log))
}

// Text is the trimmed text content of the first element that selector
// matches, or "(no element)" when none does.
func (p *Page) Text(tb testing.TB, selector string) string {
	tb.Helper()
	return Eval[string](tb, p, fmt.Sprintf(`document.querySelector(%s)?.textContent.trim() ?? "(no element)"`, jsString(selector)))
}

// Row is a container row of a table: its data-id, data-name and data-state
// attributes, the text of its cell of class "state", and whether it shows.
type Row struct {
	ID, Name, State string
	StateCell       string // "" when the row has no cell of class state
	Visible         bool
}

func (r Row) String() string {
	v := ""
	if !r.Visible {
		v = " (hidden)"
	}
	return fmt.Sprintf("%s=%s [cell %q]%s", r.Name, r.State, r.StateCell, v)
}

// Rows reads the rows that selector matches, in page order.
func (p *Page) Rows(tb testing.TB, selector string) []Row {
	tb.Helper()
	return Eval[[]Row](tb, p, fmt.Sprintf(`Array.from(document.querySelectorAll(%s), r => ({
		ID: r.dataset.id ?? "", Name: r.dataset.name ?? "", State: r.dataset.state ?? "",
		StateCell: r.querySelector(".state")?.textContent.trim() ?? "",
		Visible: r.checkVisibility(),
	}))`, jsString(selector)))
}

// RowsAre is a condition for WaitFor: the rows that selector matches are
// exactly one per name of want, with data-state and the state cell equal to
// its state.
func RowsAre(selector string, want map[string]string) string {
	return fmt.Sprintf(`((want) => {
		const rows = Array.from(document.querySelectorAll(%s));
		return rows.length === Object.keys(want).length && rows.every(r =>
			Object.hasOwn(want, r.dataset.name) && r.dataset.state === want[r.dataset.name] &&
			r.querySelector(".state")?.textContent.trim() === r.dataset.state);
	})(%s)`, jsString(selector), jsValue(want))
}

// VisibleRowsAre is a condition for WaitFor: of the rows that selector
// matches, those that show are exactly the ones named (by data-name).
func VisibleRowsAre(selector string, names ...string) string {
	return fmt.Sprintf(`((names) => {
		const shown = Array.from(document.querySelectorAll(%s)).filter(r => r.checkVisibility()).map(r => r.dataset.name);
		return shown.length === names.length && names.every(n => shown.includes(n));
	})(%s)`, jsString(selector), jsValue(names))
}

// Type focuses the element that selector matches and types text into it,
// key by key, as a person would.
func (p *Page) Type(tb testing.TB, selector, text string) {
	tb.Helper()
	run(tb, p, "type into "+selector, chromedp.SendKeys(chromedp.CSS(selector), text))
}

// Erase empties the text box that selector matches with the keys a person
// would press: End, then Backspace once per character.
func (p *Page) Erase(tb testing.TB, selector string) {
	tb.Helper()
	n := Eval[int](tb, p, fmt.Sprintf(`document.querySelector(%s).value.length`, jsString(selector)))
	run(tb, p, "erase "+selector, chromedp.SendKeys(chromedp.CSS(selector), kb.End+strings.Repeat(kb.Backspace, n)))
}

// Mark sets a token on the page's window object; Reloaded says whether it
// is gone, which a reload or a navigation does.
func (p *Page) Mark(tb testing.TB) {
	tb.Helper()
	Eval[chromedp.Void](tb, p, `window.__browserMark = "kept"`)
}

// Reloaded says whether the page was loaded again since Mark.
func (p *Page) Reloaded(tb testing.TB) bool {
	tb.Helper()
	return Eval[string](tb, p, `window.__browserMark ?? "gone"`) != "kept"
}

// Screenshot writes a PNG of the whole page, beyond the window, to path.
func (p *Page) Screenshot(tb testing.TB, path string) {
	tb.Helper()
	png := run(tb, p, "screenshot", chromedp.FullScreenshot(100))
	if err := os.WriteFile(path, png, 0o644); err != nil {
		tb.Fatalf("browser: %v", err)
	}
}

// jsString is s as a JavaScript string literal.
func jsString(s string) string { return jsValue(s) }

// jsValue is v as a JavaScript literal (JSON is one).
func jsValue(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}
