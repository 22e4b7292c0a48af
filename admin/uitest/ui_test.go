package uitest

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/walhook/walhook/relay/webhook"
)

// mask is the API's and the page's stand-in for a stored secret.
const mask = webhook.Mask

// rowID is the JavaScript that finds the data-id of the row of table sel whose name cell is name.
func rowID(sel, name string) string {
	return fmt.Sprintf(`(() => { const r = [...document.querySelectorAll(%q + ' tbody tr')].find(r => r.querySelector('.name-cell strong')?.textContent === %q); return r ? r.dataset.id : null; })()`, sel, name)
}

// TestWebPage walks the product's screens in Chromium against `walhook dev`: sign-in (token form
// and the printed sign-in link), the OAuth empty state and form, a webhook created through the
// form (field errors first) that receives a real delivery when a contact is inserted, History
// with its counts, chart, detail and Resync, Duplicate and Delete, Permissions, and a member
// without Manage Webhooks who sees everything read-only.
func TestWebPage(t *testing.T) {
	requireChromium(t)
	d := startDev(t)
	rc := newReceiver(t)
	base := "http://" + d.addr
	b := newBrowser(t, base)

	// Sign in: the token form refuses a wrong token with a message, then the dev sign-in link works
	// and leaves no token in the address bar.
	b.do("open the page", chromedp.Navigate(base+"/"))
	b.visible("#token")
	b.shot("signin", false)
	b.fill("#token", "whk_not_a_real_token")
	b.click("form button[type=submit]")
	b.until("the sign-in error", `document.getElementById('signin-error').textContent.includes('unknown, revoked or expired')`, 10*time.Second)
	require.Equal(t, "true", b.eval(`document.getElementById('token').getAttribute('aria-invalid')`))

	require.Contains(t, d.link, "/#login=whl_")
	b.do("open the sign-in link", chromedp.Navigate("about:blank"), chromedp.Navigate(d.link))
	b.visible("#add-webhook")
	require.Equal(t, "Webhooks", b.text("main h1"))
	require.NotContains(t, b.eval(`location.href`), "login=", "the code leaves the address bar")
	require.Equal(t, true, b.eval(`sessionStorage.getItem('walhook.token').startsWith('whk_')`))
	// The link is one-time: opened again in a fresh session it is refused with a message.
	require.Equal(t, true, b.eval(`(sessionStorage.clear(), true)`))
	b.do("open the spent link", chromedp.Navigate("about:blank"), chromedp.Navigate(d.link))
	b.until("the spent-link message", `(document.getElementById('signin-error')||{}).textContent?.includes('already used or has expired')`, 10*time.Second)
	b.do("open the page", chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/"))
	b.fill("#token", d.token)
	b.click("form button[type=submit]")
	b.visible("#add-webhook")
	b.visible("#webhooks-empty")

	// OAuth: the empty state has two Add OAuth buttons, one centred in the page, one top right.
	b.click(`nav a[href="#/oauth"]`)
	b.visible("#oauth-empty")
	b.visible("#add-oauth-top")
	b.visible("#add-oauth-center")
	geo := b.eval(`(() => {
		const top = document.getElementById('add-oauth-top').getBoundingClientRect();
		const mid = document.getElementById('add-oauth-center').getBoundingClientRect();
		const card = document.getElementById('oauth-empty').getBoundingClientRect();
		const main = document.querySelector('main').getBoundingClientRect();
		return {topRight: main.right - top.right, topY: top.top, midOff: Math.abs((mid.left + mid.right) / 2 - (card.left + card.right) / 2), midY: mid.top};
	})()`).(map[string]any)
	require.Less(t, geo["topRight"].(float64), 80.0, "one Add OAuth button sits at the top right")
	require.Less(t, geo["topY"].(float64), 140.0, "one Add OAuth button sits at the top right")
	require.Less(t, geo["midOff"].(float64), 4.0, "the other is centred")
	require.Greater(t, geo["midY"].(float64), geo["topY"].(float64)+100, "the other is in the middle of the page")
	b.shot("oauth-empty", false)

	b.click("#add-oauth-center")
	b.visible("#oauth-form")
	b.fillOAuth("CRM OAuth", "https://auth.example.com/oauth/token", "walhook-client", "client-s3cret")
	b.fill(`#oauth-form input[name=code]`, "auth-code-123")
	require.Equal(t, "authorization_code", b.eval(`document.querySelector('#oauth-form select[name=grant_type]').value`))
	b.shot("oauth-form", false)
	b.click("#oauth-save")
	b.visible("#oauth")
	require.Contains(t, b.text("#oauth tbody"), "CRM OAuth")
	require.Contains(t, b.text("#oauth tbody"), mask)
	require.NotContains(t, b.text("#oauth tbody"), "client-s3cret")
	b.absent("#oauth-empty")
	b.visible("#add-oauth-top")
	b.shot("oauth-list", false)
	b.click(`a[aria-label="Edit CRM OAuth"]`)
	b.visible("#oauth-form")
	require.Equal(t, mask, b.eval(`document.querySelector('#oauth-form input[name=client_secret]').value`), "secrets are masked once saved")
	require.Equal(t, mask, b.eval(`document.querySelector('#oauth-form input[name=code]').value`))
	b.shot("oauth-edit", false)
	// A new OAuth URL clears the saved secrets and asks for them again; the old URL brings them back.
	setURL := `(u) => { const i = document.querySelector('#oauth-form input[name=token_url]'); i.value = u; i.dispatchEvent(new Event('input', {bubbles: true})); return true; }`
	b.eval(`(` + setURL + `)('https://evil.example.net/token')`)
	b.visible(`#oauth-form [id$="-secrets-again"]`)
	require.Equal(t, "", b.eval(`document.querySelector('#oauth-form input[name=client_secret]').value`))
	require.Equal(t, "", b.eval(`document.querySelector('#oauth-form input[name=code]').value`))
	b.eval(`(` + setURL + `)('https://auth.example.com/oauth/token')`)
	require.Equal(t, mask, b.eval(`document.querySelector('#oauth-form input[name=client_secret]').value`))
	require.Equal(t, true, b.eval(`document.querySelector('#oauth-form [id$="-secrets-again"]').hidden`))

	// Add Webhook: saving an empty form shows the API's errors next to their fields.
	b.click(`nav a[href="#/webhooks"]`)
	b.click("#add-webhook")
	b.visible("#webhook-form")
	require.Equal(t, false, b.eval(`document.getElementById('f-active').checked`), "the status toggle is off by default")
	require.Equal(t, true, b.eval(`[...document.getElementById('f-oauth').options].some(o => o.textContent === 'CRM OAuth')`), "the OAuth dropdown lists the credential")
	// The OAuth dropdown has a way to create a credential without leaving the form.
	b.click("#new-oauth")
	b.visible("#oauth-dialog #oauth-form")
	b.fill(`#oauth-dialog input[name=name]`, "Backup OAuth")
	b.fill(`#oauth-dialog input[name=token_url]`, "https://auth.example.com/token")
	b.fill(`#oauth-dialog input[name=code]`, "another-code")
	b.click("#oauth-dialog #oauth-save")
	b.until("the new credential selected", `document.getElementById('oauth-dialog') === null && document.getElementById('f-oauth').selectedOptions[0].textContent === 'Backup OAuth'`, 10*time.Second)
	b.choose("#f-oauth", "")
	b.fill("#f-rate-limit", "0")
	b.click("#save")
	b.until("field errors", `document.getElementById('err-name').textContent.includes('is required')`, 10*time.Second)
	require.Contains(t, b.text("#err-url"), "is required")
	require.Contains(t, b.text("#err-rate-limit"), "from 1 to 1000", "the rate limit's error is next to it")
	require.Equal(t, "true", b.eval(`document.getElementById('f-name').getAttribute('aria-invalid')`))
	require.Equal(t, true, b.eval(`document.getElementById('f-name').getAttribute('aria-describedby').includes('err-name')`))
	require.Equal(t, "f-name", b.eval(`document.activeElement.id`), "focus moves to the first invalid field")
	b.shot("webhook-errors", false)

	// Fill every field: a secret header, raw data off with two parameters picked from the sample.
	hook := rc.srv.URL + "/hooks/contacts"
	b.fill("#f-name", "Contacts to CRM")
	b.fill("#f-url", hook)
	b.choose("#f-method", "POST")
	b.visible(`#f-events input[value="contact.created"]:checked`) // a new webhook starts on the first event
	b.click("#add-header")
	b.fill("#h-key-0", "X-Api-Key")
	b.fill("#h-val-0", "k-123")
	b.click("#h-sec-0")
	b.click("#f-raw")
	b.visible("#params-box")
	b.choose("#p-path-0", "data.email")
	require.Equal(t, "email", b.eval(`document.getElementById('p-key-0').value`), "picking a field suggests its key")
	b.click("#add-param")
	b.fill("#p-key-1", "full_name")
	b.choose("#p-path-1", "data.name")
	b.click("#f-active")
	b.fill("#f-rate-limit", "20")
	b.click("#test")
	b.visible("#test-result .result")
	require.Contains(t, b.text("#test-result"), "Test succeeded", "Test shows the response inline")
	require.Contains(t, b.text("#test-result"), "HTTP 200")
	sample := rc.waitFor(t, "ada@example.com", 1, 10*time.Second) // the catalog's sample, through the unsaved form
	require.Equal(t, map[string]any{"email": "ada@example.com", "full_name": "Ada Lovelace"}, jsonBody(t, sample[0].Body))
	b.shot("webhook-form", true)
	b.click("#save")
	b.visible("#webhooks")
	id, ok := b.eval(rowID("#webhooks", "Contacts to CRM")).(string)
	require.True(t, ok, "the new webhook is listed")
	row := fmt.Sprintf(`#webhooks tr[data-id="%s"]`, id)
	require.Contains(t, b.text(row), "contact.created")
	require.Contains(t, b.text(row), hook)
	require.Contains(t, b.text(row), "POST")
	require.Contains(t, b.text(row), "Never")
	require.Equal(t, true, b.eval(`document.getElementById('active-`+id+`').checked`))

	// A contact inserted in the application's table reaches the receiver with the chosen
	// parameters and the secret header.
	d.psql(t, `INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Grace Hopper', 'grace@example.com')`)
	got := rc.waitFor(t, "grace@example.com", 1, 45*time.Second)
	require.Equal(t, "POST", got[0].Method)
	require.Equal(t, "/hooks/contacts", got[0].Path)
	require.Equal(t, map[string]any{"email": "grace@example.com", "full_name": "Grace Hopper"}, jsonBody(t, got[0].Body))
	require.Equal(t, "k-123", got[0].Header.Get("X-Api-Key"))
	require.NotEmpty(t, got[0].Header.Get("Webhook-Signature"))

	// History: counts, chart and the delivery row.
	b.click(`a[aria-label="History of Contacts to CRM"]`)
	b.until("the delivery in History", `document.querySelector('#deliveries tbody tr[data-state="succeeded"]') !== null`, 20*time.Second)
	b.until("the counts", `document.querySelector('[data-count=triggered]').textContent === '1' && document.querySelector('[data-count=succeeded]').textContent === '1'`, 10*time.Second)
	require.Equal(t, "0", b.text("[data-count=failed]"))
	b.until("the chart", `document.querySelectorAll('#chart-svg rect[data-status=succeeded]').length === 1`, 10*time.Second)
	require.Contains(t, b.text("#chart-summary"), "1 succeeded")
	dr := `#deliveries tbody tr[data-state="succeeded"]`
	require.Contains(t, b.text(dr), "contact.created")
	require.Contains(t, b.text(dr), hook)
	require.Equal(t, "1", b.text(dr+" td.num"))
	b.shot("history", true)

	// The delivery's detail: "Sent" (the request as it went out: method, URL, headers with the
	// secret masked, the body of the chosen parameters) beside "Event" (the envelope), and the
	// attempts.
	b.click(dr + ` a[aria-label^="Details of delivery"]`)
	b.visible("#payload")
	require.Contains(t, b.text("#payload"), "grace@example.com")
	require.Contains(t, b.text("#payload"), `"type": "contact.created"`, "Event is the envelope")
	require.Equal(t, "POST "+hook, b.text("#sent-line"))
	require.Equal(t, map[string]any{"email": "grace@example.com", "full_name": "Grace Hopper"}, jsonBody(t, b.text("#sent-body")), "Sent is the body that went out")
	hdrs := b.text("#request-headers")
	require.Contains(t, strings.ToLower(hdrs), "x-api-key")
	require.NotContains(t, hdrs, "k-123", "secret header values are masked in history")
	require.Contains(t, b.text("#attempts"), "#1")
	b.shot("delivery", true)

	// Resync the row: the receiver gets the same event again and the row counts two attempts.
	b.click(`.page-actions a[href$="/history"]`)
	b.visible(dr)
	b.click(dr + ` button[data-action=resync]`)
	again := rc.waitFor(t, "grace@example.com", 2, 30*time.Second)
	require.Equal(t, again[0].Header.Get("Webhook-Id"), again[1].Header.Get("Webhook-Id"), "a resync keeps the event id")
	b.until("two attempts", `[...document.querySelectorAll('#deliveries tbody tr td.num')].some(td => td.textContent === '2')`, 20*time.Second)
	b.visible("#resync-failed")

	// Edit: Test sends the saved secret header while the URL is the saved one (the mask stands
	// for it), and asks for it again when the URL changes: a saved secret never goes to a new
	// address.
	b.click(`nav a[href="#/webhooks"]`)
	b.click(`a[aria-label="Edit Contacts to CRM"]`)
	b.visible("#webhook-form")
	require.Equal(t, mask, b.eval(`document.getElementById('h-val-0').value`))
	require.Equal(t, "20", b.eval(`document.getElementById('f-rate-limit').value`), "the saved rate limit")
	b.fill("#f-name", "Contacts to CRM, edited")
	b.click("#test")
	b.until("the edited test", `(document.querySelector('#test-result .result')||{}).textContent?.includes('Test succeeded')`, 20*time.Second)
	tested := rc.waitFor(t, "grace@example.com", 3, 10*time.Second)
	require.Equal(t, "k-123", tested[2].Header.Get("X-Api-Key"), "the edited test sends the saved secret")
	// Typed as a user would (chromedp's Clear does not empty a type=url field): one input event.
	b.eval(fmt.Sprintf(`(() => { const u = document.getElementById('f-url'); u.value = %q; u.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`, rc.srv.URL+"/hooks/elsewhere"))
	b.visible("#secrets-again")
	require.Equal(t, "", b.eval(`document.getElementById('h-val-0').value`), "the saved value is not kept for a new URL")
	b.click("#test")
	b.until("the field error", `document.getElementById('err-headers-0-value').textContent.includes('URL changed')`, 10*time.Second)
	b.fill("#h-val-0", "k-123")
	b.click("#test")
	b.until("the test to the new URL", `(document.querySelector('#test-result .result')||{}).textContent?.includes('Test succeeded')`, 20*time.Second)
	moved := rc.waitFor(t, "grace@example.com", 4, 10*time.Second)
	require.Equal(t, "/hooks/elsewhere", moved[3].Path)
	require.Equal(t, "k-123", moved[3].Header.Get("X-Api-Key"))
	b.click(`#webhook-form a[href="#/webhooks"]`)

	// Listing with last sent time and status; Duplicate, then Delete with a confirmation.
	b.click(`nav a[href="#/webhooks"]`)
	b.visible(row)
	require.Contains(t, b.text(row), "Succeeded")
	require.NotContains(t, b.text(row), "Never")
	b.click(`button[aria-label="Duplicate Contacts to CRM"]`)
	b.until("the copy", rowID("#webhooks", "Copy of Contacts to CRM")+` !== null`, 10*time.Second)
	copyID := b.eval(rowID("#webhooks", "Copy of Contacts to CRM")).(string)
	require.Equal(t, false, b.eval(`document.getElementById('active-`+copyID+`').checked`), "a copy starts inactive")
	b.shot("webhooks", false)
	b.click(`button[aria-label="Delete Copy of Contacts to CRM"]`)
	b.visible("#confirm-dialog")
	b.shot("delete-confirm", false)
	b.click("#confirm-ok")
	b.until("the copy is gone", rowID("#webhooks", "Copy of Contacts to CRM")+` === null`, 10*time.Second)
	b.visible(row)

	// Several trigger events: a webhook on contact.created and contact.deleted. The parameter
	// picker offers the fields every chosen event has, the listing shows both, edit keeps them and
	// Duplicate copies them.
	b.click("#add-webhook")
	b.visible("#webhook-form")
	b.fill("#f-name", "Contacts in and out")
	b.fill("#f-url", rc.srv.URL+"/hooks/in-out")
	b.click(`#f-events input[value="contact.deleted"]`)
	b.click("#f-raw")
	b.visible("#params-box")
	offers := func(path string) string {
		return fmt.Sprintf(`[...document.getElementById('p-path-0').options].some(o => o.value === %q)`, path)
	}
	b.until("the fields of both events", offers("data.email"), 10*time.Second)
	// contact.note_added's data has no email: with it chosen too, the picker stops offering it.
	b.click(`#f-events input[value="contact.note_added"]`)
	b.until("only the common fields", "!"+offers("data.email")+" && "+offers("occurred_at"), 10*time.Second)
	b.click(`#f-events input[value="contact.note_added"]`)
	b.until("the fields of both events again", offers("data.email"), 10*time.Second)
	b.choose("#p-path-0", "data.email")
	b.click("#save")
	b.until("the webhook of two events", rowID("#webhooks", "Contacts in and out")+` !== null`, 10*time.Second)
	multiRow := fmt.Sprintf(`#webhooks tr[data-id="%s"]`, b.eval(rowID("#webhooks", "Contacts in and out")).(string))
	require.Contains(t, b.text(multiRow), "contact.created")
	require.Contains(t, b.text(multiRow), "contact.deleted")
	b.click(`a[aria-label="Edit Contacts in and out"]`)
	b.visible("#webhook-form")
	b.until("both events checked", `[...document.querySelectorAll('#f-events input:checked')].map(i => i.value).join() === 'contact.created,contact.deleted'`, 10*time.Second)
	// Typed as one input event (chromedp's Clear leaves a value the page set).
	b.eval(`(() => { const n = document.getElementById('f-name'); n.value = 'Contacts in and out 2'; n.dispatchEvent(new Event('input', {bubbles: true})); return true; })()`)
	b.click("#save")
	b.until("the edited webhook", rowID("#webhooks", "Contacts in and out 2")+` !== null`, 10*time.Second)
	require.Contains(t, b.text(multiRow), "contact.deleted", "edit keeps the events")
	b.click(`button[aria-label="Duplicate Contacts in and out 2"]`)
	b.until("the copy of two events", rowID("#webhooks", "Copy of Contacts in and out 2")+` !== null`, 10*time.Second)
	copyRow := fmt.Sprintf(`#webhooks tr[data-id="%s"]`, b.eval(rowID("#webhooks", "Copy of Contacts in and out 2")).(string))
	require.Contains(t, b.text(copyRow), "contact.created")
	require.Contains(t, b.text(copyRow), "contact.deleted")

	// Permissions: the owner adds roles and gives a member one without Manage Webhooks.
	d.cli(t, "member", "add", "--company", "1", "--email", "sam@acme.test", "--name", "Sam Support")
	samToken := d.cli(t, "token", "create", "--company", "1", "--email", "sam@acme.test", "--name", "ui test")
	require.True(t, strings.HasPrefix(samToken, "whk_"), samToken)
	b.click(`nav a[href="#/permissions"]`)
	b.visible("#role-form")
	b.fill("#new-role-name", "Developers")
	b.click("#new-role-manage")
	b.click("#add-role")
	b.until("role Developers", rowID("#roles", "Developers")+` !== null`, 10*time.Second)
	b.fill("#new-role-name", "Support")
	b.click("#add-role")
	b.until("role Support", rowID("#roles", "Support")+` !== null`, 10*time.Second)
	supportID := b.eval(rowID("#roles", "Support")).(string)
	require.Equal(t, false, b.eval(`document.getElementById('perm-`+supportID+`').checked`))
	devID := b.eval(rowID("#roles", "Developers")).(string)
	require.Equal(t, true, b.eval(`document.getElementById('perm-`+devID+`').checked`))
	b.choose(`select[aria-label="Role of Sam Support"]`, supportID)
	b.until("the role change", `document.getElementById('toast').textContent.includes('Sam Support now has the role Support')`, 10*time.Second)
	b.shot("permissions", false)

	// Sign out; Sam signs in with a token and sees every screen read-only.
	b.click("#signout")
	b.visible("#token")
	require.Equal(t, nil, b.eval(`sessionStorage.getItem('walhook.token')`))
	// Sign-out revoked the token on the server (POST /v1/logout): it no longer works.
	status, _ := d.request(t, http.MethodGet, "/me", nil)
	require.Equal(t, http.StatusUnauthorized, status, "the signed-out token is revoked")
	b.fill("#token", samToken+"\r") // Enter submits: the form works from the keyboard
	b.visible("#readonly-notice")
	b.visible(row)
	b.absent("#add-webhook")
	b.absent(`button[data-action=delete]`)
	b.absent(`button[data-action=duplicate]`)
	b.absent(`nav a[href="#/permissions"]`)
	require.Equal(t, true, b.eval(`document.getElementById('active-`+id+`').disabled`), "the active toggle is read-only")
	require.Contains(t, b.text(row), "View")
	b.shot("readonly", false)
	b.click(`a[aria-label="View Contacts to CRM"]`)
	b.visible("#webhook-form")
	require.Equal(t, true, b.eval(`document.getElementById('f-name').disabled && document.getElementById('f-url').disabled`))
	b.absent("#save")
	b.absent("#test")
	b.open("#/webhooks/" + id + "/history")
	b.visible(dr)
	b.absent("#resync-failed")
	b.absent(`button[data-action=resync]`)
	b.click(`nav a[href="#/oauth"]`)
	b.visible("#oauth")
	b.absent("#add-oauth-top")
}
