// Package browser holds the web UI's browser tests: real headless
// Chromium (Debian's chromium package), driven from Go with chromedp,
// against `stepflow server` serving the embedded, built UI, on a local
// kube-apiserver with the controller running as a process of its own (the
// e2e/framework installation). Each spec opens a tab of its own, signed in
// as a user of its own namespace, and does what an operator does: watch
// the run list, open a run's graph, open a step, act on a run, launch one.
//
// The binary must embed the real UI: the suite fails at once with "run
// make ui first" when web/dist was not built (`make test` builds it). The
// browser is $STEPFLOW_CHROMIUM, else what hack/chromium.sh prints (it
// installs Debian's chromium when /usr/bin/chromium is missing).
//
// A failed spec saves a screenshot (PNG) and the page's HTML under
// $STEPFLOW_E2E_ARTIFACTS, else under a temporary directory, and names
// them in its failure message. STEPFLOW_UPDATE_SCREENSHOT=1 makes the graph
// spec write the README's screenshot, docs/img/run-graph.png.
package browser
