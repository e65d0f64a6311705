package browser

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/chromedp/chromedp"
	. "github.com/onsi/ginkgo/v2"
)

// waitTimeout bounds how long a tab waits for the page to show something.
const waitTimeout = 45 * time.Second

// tokenKey is where the app keeps the bearer token a user pasted
// (web/src/state/token.ts: sessionStorage, this tab only).
const tokenKey = "stepflow.token"

// Tab is one browser tab on the server's UI, in a browser context of its
// own (its own storage), signed in with one user's token.
type Tab struct {
	ctx context.Context
}

// openTab opens a tab whose requests carry token, and closes it when the
// spec ends. Its failures come with a screenshot (failWithArtifacts).
func openTab(token string) *Tab {
	GinkgoHelper()
	ctx, stop := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	// The first action on a tab's context opens the tab for the life of
	// the context it is given: give it the tab's own, never one with a
	// timeout, or the tab stops answering once that ends.
	if err := chromedp.Do(ctx); err != nil {
		stop()
		failWithArtifacts(fmt.Sprintf("opening a tab: %v", err))
	}
	t := &Tab{ctx: ctx}
	current = t
	DeferCleanup(func() {
		current = nil
		stop()
	})
	// The token goes where the app's token form puts it, on the app's
	// origin, before the app first loads.
	t.do("signing in", chromedp.Navigate(srv.URL+"/healthz"),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("sessionStorage.setItem(%s, %s)", jsString(tokenKey), jsString(token))))
	return t
}

// do runs actions in the tab, failing the spec with what it was doing.
func (t *Tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		failWithArtifacts(fmt.Sprintf("%s: %v\n\nthe page shows:\n%s", what, err, t.text()))
	}
}

// open loads path (with its query) of the UI, as typing it into the
// address bar does.
func (t *Tab) open(path string) {
	GinkgoHelper()
	t.do("opening "+path, chromedp.Navigate(srv.URL+path))
}

// waitFor waits until the JavaScript expression js is truthy in the page
// (a run event may take a while on the busy machine), failing with what
// it waited for and the page's text.
func (t *Tab) waitFor(what, js string) {
	GinkgoHelper()
	t.waitForWithin(waitTimeout, what, js)
}

func (t *Tab) waitForWithin(timeout time.Duration, what, js string) {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, timeout+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](js,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if errors.Is(err, chromedp.ErrPollingTimeout) {
		err = fmt.Errorf("not within %s", timeout)
	}
	if err != nil {
		failWithArtifacts(fmt.Sprintf("waiting for %s (%s): %v\n\nthe page (%s) shows:\n%s", what, js, err, t.location(), t.text()))
	}
}

// eval returns the value of the JavaScript expression js in the page.
func eval[T any](t *Tab, js string) T {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(t.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		failWithArtifacts(fmt.Sprintf("evaluating %s: %v", js, err))
	}
	return v
}

// click clicks (with the mouse) the first element css selects, once it is
// visible.
func (t *Tab) click(css string) {
	GinkgoHelper()
	t.do("clicking "+css, chromedp.Click(chromedp.CSS(css)))
}

// fill types value into the input or textarea css selects, replacing what
// it holds, as a user does (the app hears input events).
func (t *Tab) fill(css, value string) {
	GinkgoHelper()
	t.do("filling "+css,
		chromedp.WaitVisible(chromedp.CSS(css)),
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf("document.querySelector(%s).select()", jsString(css))),
		chromedp.SendKeys(chromedp.CSS(css), value))
}

// markPage tags the page now shown; samePage says whether it is still
// the page shown, i.e. nothing reloaded it since.
func (t *Tab) markPage() {
	GinkgoHelper()
	eval[chromedp.Void](t, "window.__stepflowTestPage = 'not reloaded'")
}

func (t *Tab) samePage() bool {
	GinkgoHelper()
	return eval[bool](t, "window.__stepflowTestPage === 'not reloaded'")
}

// text is the page's visible text, shortened, for failure messages.
func (t *Tab) text() string {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.body ? document.body.innerText : ''"))
	if err != nil {
		return fmt.Sprintf("(cannot read the page: %v)", err)
	}
	if len(s) > 3000 {
		s = s[:3000] + "…"
	}
	return s
}

func (t *Tab) location() string {
	ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return fmt.Sprintf("unknown: %v", err)
	}
	return s
}

// screenshot is a PNG of the whole page.
func (t *Tab) screenshot() ([]byte, error) {
	ctx, cancel := context.WithTimeout(t.ctx, 15*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.FullScreenshot(100))
}

// artifacts is where failed specs leave their screenshots: one directory
// for the suite's run.
var artifacts string

// saveArtifacts writes a screenshot and the HTML of the page as it is now
// under $STEPFLOW_E2E_ARTIFACTS (else a temporary directory), named after
// the spec, and says where.
func (t *Tab) saveArtifacts(spec string) string {
	if artifacts == "" {
		artifacts = os.Getenv("STEPFLOW_E2E_ARTIFACTS")
		if artifacts == "" {
			var err error
			if artifacts, err = os.MkdirTemp("", "stepflow-browser-artifacts-"); err != nil {
				return fmt.Sprintf("(no screenshot: %v)", err)
			}
		}
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		return fmt.Sprintf("(no screenshot: %v)", err)
	}
	base := filepath.Join(artifacts, fileName(spec))
	ctx, cancel := context.WithTimeout(t.ctx, 15*time.Second)
	defer cancel()
	var said []string
	if png, err := t.screenshot(); err != nil {
		said = append(said, fmt.Sprintf("(no screenshot: %v)", err))
	} else if err := os.WriteFile(base+".png", png, 0o644); err != nil {
		said = append(said, fmt.Sprintf("(no screenshot: %v)", err))
	} else {
		said = append(said, "screenshot: "+base+".png")
	}
	if html, err := chromedp.Run(ctx, chromedp.Evaluate[string]("document.documentElement.outerHTML")); err != nil {
		said = append(said, fmt.Sprintf("(no HTML: %v)", err))
	} else if err := os.WriteFile(base+".html", []byte(html), 0o644); err != nil {
		said = append(said, fmt.Sprintf("(no HTML: %v)", err))
	} else {
		said = append(said, "the page's HTML: "+base+".html")
	}
	return strings.Join(said, "\n")
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// fileName turns a spec's text into a file name.
func fileName(spec string) string {
	s := strings.Trim(unsafeName.ReplaceAllString(spec, "-"), "-")
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}
