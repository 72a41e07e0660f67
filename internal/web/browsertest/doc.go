// Package browsertest holds the web UI's tests in a real browser: Go tests
// that drive Debian's headless Chromium with chromedp through the main flows
// of the operator and of an account's portal, fail on any console error or
// uncaught exception, and run axe-core (vendored in testdata, MPL-2.0) in
// every page they open. They skip when no Chromium is installed, unless CI
// is set: then they fail.
//
// TestScreenshots also writes the screenshots of the README when run with
// -screenshots DIR (make screenshots).
package browsertest
