// Package uitest drives the admin web page in a real browser (Debian's Chromium, headless,
// through chromedp) against a real `walhook dev` process and a real HTTP receiver: sign-in, the
// Webhooks listing and form, OAuth, History with Resync, Permissions and the read-only view.
// Its tests also save a screenshot of each screen (to docs/screens with -screens). It holds
// tests only.
package uitest
