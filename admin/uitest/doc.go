// Package uitest drives the admin web page in a real browser (Debian's Chromium, headless,
// through chromedp) against a real `walhook dev` process and a real HTTP receiver: sign-in, the
// Webhooks listing and form, OAuth, History with Resync, Permissions and the read-only view;
// then what a person expects of a finished page: the listing's counts, the active toggle, edit
// then save, every action in reach at 1366×768 and on a 390×844 phone (element boxes inside the
// viewport), keyboard use (tab order, focus into and out of each dialog, Escape, an accessible
// name on every control) and an axe-core check of every screen (testdata/axe-core, vendored).
// Its tests also save a screenshot of each screen (to docs/screens with -screens). It holds
// tests only.
package uitest
