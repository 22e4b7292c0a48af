package uitest

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// TestWebPageComplete checks what a person expects of the page beyond its happy path: the
// listing's delivery counts, every action in reach at 1366×768 and on a 390×844 phone, the active
// toggle (it persists, the API agrees), edit then save (and reload), Test on an edited webhook
// with a secret header, the OAuth form's extra parameters, keyboard use (tab order, focus into
// and out of each dialog, Escape, a name on every control), an axe-core check of each screen, and
// the empty state once the last webhook is deleted.
func TestWebPageComplete(t *testing.T) {
	t.Parallel()
	requireChromium(t)
	d := startDev(t)
	rc := newReceiver(t)
	base := "http://" + d.addr

	// Two webhooks made through the API: one active with a secret header, one inactive.
	hook := rc.srv.URL + "/hooks/orders"
	code, w1 := d.request(t, http.MethodPost, "/webhooks", map[string]any{
		"name": "Orders sync", "url": hook, "method": "POST", "event": "contact.created", "raw_data": true, "active": true,
		"headers": []map[string]any{{"key": "X-Api-Key", "value": "k-orders", "secret": true}},
	})
	require.Equal(t, http.StatusCreated, code, "%v", w1)
	id1 := strconv.FormatInt(int64(w1["id"].(float64)), 10)
	code, w2 := d.request(t, http.MethodPost, "/webhooks", map[string]any{
		"name": "Backup with a rather long name for the listing", "url": rc.srv.URL + "/hooks/backup/with/a/long/path/that/does/not/fit?and=a&query=string",
		"method": "PATCH", "event": "contact.created", "raw_data": true, "active": false,
	})
	require.Equal(t, http.StatusCreated, code, "%v", w2)
	id2 := strconv.FormatInt(int64(w2["id"].(float64)), 10)

	// One delivery, so the listing has counts to show.
	d.psql(t, `INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada Count', 'count@example.com')`)
	rc.waitFor(t, "count@example.com", 1, 45*time.Second)
	require.Eventually(t, func() bool {
		_, w := d.request(t, http.MethodGet, "/webhooks?limit=50", nil)
		for _, it := range w["items"].([]any) {
			m := it.(map[string]any)
			if m["name"] == "Orders sync" {
				c := m["counts"].(map[string]any)
				return c["triggered"] == 1.0 && c["succeeded"] == 1.0
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, "the API counts the delivery")

	// Sign in from the keyboard; the sign-in screen passes axe and has every control named.
	b := newBrowser(t, base)
	b.do("open the page", chromedp.Navigate(base+"/"))
	b.visible("#token")
	require.Equal(t, "token", b.focused(), "focus starts in the token field")
	b.axe("sign-in")
	b.labelled("sign-in")
	require.Equal(t, []string{"a\"Skip to content\"", "input#token", "button\"Sign in\""}, b.tabOrder("sign-in"))
	b.do("Shift+Tab back to the token field", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	require.Equal(t, "token", b.focused())
	b.do("type the token", chromedp.KeyEvent(d.token+kb.Enter))
	b.visible("#add-webhook")

	// The listing: counts, last sent, the endpoint with its method.
	row1 := fmt.Sprintf(`#webhooks tr[data-id="%s"]`, id1)
	row2 := fmt.Sprintf(`#webhooks tr[data-id="%s"]`, id2)
	b.visible(row1)
	require.Equal(t, "1", b.text(row1+` [data-count=triggered] .count-n`))
	require.Equal(t, "1", b.text(row1+` [data-count=succeeded] .count-n`))
	require.Equal(t, "0", b.text(row1+` [data-count=failed] .count-n`))
	require.Contains(t, b.text(row1+" td.counts"), "triggered")
	require.Equal(t, "0", b.text(row2+` [data-count=triggered] .count-n`))
	require.Contains(t, b.text(row1), "Succeeded")
	require.Contains(t, b.text(row1), "POST")
	require.Contains(t, b.text(row2), "Never")
	b.axe("webhooks")
	b.labelled("webhooks")

	// 1366×768: every action of every row is inside the page, none cut off.
	actions := `#webhooks td.actions a, #webhooks td.actions button, #webhooks input[role=switch], #add-webhook`
	require.Equal(t, 2*5+1, b.reachable("listing at 1366×768", actions))

	// Keyboard: Tab walks every control in order on the listing.
	order := b.tabOrder("webhooks")
	require.Contains(t, order, "a#add-webhook")
	require.Contains(t, order, "button[Delete Orders sync]")

	// The active toggle: on, persisted, the API agrees, still on after a reload; then off again.
	require.Equal(t, false, b.eval(`document.getElementById('active-`+id2+`').checked`))
	b.click("#active-" + id2)
	b.until("the toggle saved", `document.getElementById('toast').textContent.includes('is active')`, 10*time.Second)
	_, got := d.request(t, http.MethodGet, "/webhooks/"+id2, nil)
	require.Equal(t, true, got["active"], "the API agrees with the toggle")
	b.do("reload", chromedp.Reload())
	b.visible(row2)
	require.Equal(t, true, b.eval(`document.getElementById('active-`+id2+`').checked`), "the toggle persists across a reload")
	b.eval(`document.getElementById('active-` + id2 + `').focus(), true`)
	b.press(" ") // Space toggles a switch from the keyboard
	b.until("the toggle saved", `document.getElementById('toast').textContent.includes('is inactive')`, 10*time.Second)
	_, got = d.request(t, http.MethodGet, "/webhooks/"+id2, nil)
	require.Equal(t, false, got["active"], "the API agrees with the toggle")

	// A dialog takes focus when it opens, Escape closes it, and focus goes back to its opener.
	b.eval(`document.querySelector('button[aria-label="Delete Orders sync"]').focus(), true`)
	b.press(kb.Enter)
	b.visible("#confirm-dialog")
	require.Equal(t, "confirm-cancel", b.focused(), "focus moves into the dialog")
	require.Contains(t, b.eval(`document.getElementById(document.getElementById('confirm-dialog').getAttribute('aria-describedby')).textContent`), "“Orders sync” and its history will be deleted", "the dialog is described by its message")
	b.axe("delete confirmation")
	b.press(kb.Escape)
	b.until("the dialog closed", `document.getElementById('confirm-dialog') === null`, 5*time.Second)
	require.Equal(t, "button[Delete Orders sync]", b.focused(), "focus goes back to the button that opened the dialog")
	b.visible(row1)

	// Edit then save: the listing and a reload show the change, and so does the API.
	b.click(`a[aria-label="Edit Orders sync"]`)
	b.visible("#webhook-form")
	b.axe("webhook form")
	b.labelled("webhook form")
	b.tabOrder("webhook form")
	// The OAuth dialog of the form: focus in, Escape out, focus back on "+ New".
	b.eval(`document.getElementById('new-oauth').focus(), true`)
	b.press(kb.Enter)
	b.visible("#oauth-dialog")
	require.Equal(t, true, b.eval(`document.getElementById('oauth-dialog').contains(document.activeElement)`), "focus moves into the OAuth dialog")
	b.axe("OAuth dialog")
	b.press(kb.Escape)
	b.until("the dialog closed", `document.getElementById('oauth-dialog') === null`, 5*time.Second)
	require.Equal(t, "new-oauth", b.focused(), "focus goes back to + New")

	// Test on the edited webhook: the form now differs from the saved one (the mask stands for
	// the saved secret header), and the receiver gets the saved value.
	require.Equal(t, mask, b.eval(`document.getElementById('h-val-0').value`))
	b.fill("#f-name", "Orders sync, edited")
	b.choose("#f-method", "PUT")
	b.click("#test")
	b.until("the test of the edited webhook", `(document.querySelector('#test-result .result')||{}).textContent?.includes('Test succeeded')`, 20*time.Second)
	tested := rc.waitFor(t, "contact.created", 2, 10*time.Second)
	require.Equal(t, http.MethodPut, tested[1].Method, "Test sends the form as it is now")
	require.Equal(t, "k-orders", tested[1].Header.Get("X-Api-Key"), "Test sends the saved secret")
	b.click("#save")
	b.visible(row1)
	require.Contains(t, b.text(row1+" .name-cell"), "Orders sync, edited")
	require.Contains(t, b.text(row1+" td.endpoint"), "PUT")
	b.do("reload", chromedp.Reload())
	b.visible(row1)
	require.Contains(t, b.text(row1+" .name-cell"), "Orders sync, edited", "the edit persists across a reload")
	_, got = d.request(t, http.MethodGet, "/webhooks/"+id1, nil)
	require.Equal(t, "Orders sync, edited", got["name"])
	require.Equal(t, "PUT", got["method"])

	// History and a delivery: axe, names, tab order, every action in reach.
	b.click(`a[aria-label="History of Orders sync, edited"]`)
	dr := `#deliveries tbody tr[data-state="succeeded"]`
	b.visible(dr)
	b.axe("history")
	b.labelled("history")
	b.tabOrder("history")
	b.reachable("history at 1366×768", `#deliveries td.actions a, #deliveries td.actions button, .page-actions a, .page-actions button`)
	b.click(dr + ` a[aria-label^="Details of delivery"]`)
	b.visible("#payload")
	b.axe("delivery")
	b.labelled("delivery")
	b.tabOrder("delivery")

	// OAuth: the list, the form with extra parameters (add, remove, saved, shown again).
	b.click(`nav a[href="#/oauth"]`)
	b.visible("#oauth-empty")
	b.axe("OAuth (empty)")
	b.click("#add-oauth-top")
	b.visible("#oauth-form")
	b.fillOAuth("Partner OAuth", "https://auth.example.com/oauth/token", "partner", "partner-s3cret")
	b.choose(`#oauth-form select[name=grant_type]`, "client_credentials")
	b.click("#o-new-add-extra")
	require.Equal(t, "o-new-x-key-0", b.focused(), "a new row takes focus")
	b.fill("#o-new-x-key-0", "audience")
	b.fill("#o-new-x-val-0", "https://api.partner.example")
	b.click("#o-new-add-extra")
	b.fill("#o-new-x-key-1", "resource")
	b.fill("#o-new-x-val-1", "orders")
	b.click("#o-new-add-extra")
	b.fill("#o-new-x-key-2", "client_id")
	b.fill("#o-new-x-val-2", "twice")
	b.axe("OAuth form")
	b.labelled("OAuth form")
	b.tabOrder("OAuth form")
	b.click("#oauth-save")
	b.until("the field error", `document.getElementById('err-extra-params-2-key').textContent.includes('own field')`, 10*time.Second)
	require.Equal(t, "o-new-x-key-2", b.focused(), "focus moves to the invalid parameter")
	b.axe("OAuth form with a field error")
	b.click(`button[aria-label="Remove extra parameter 3"]`)
	b.absent("#o-new-x-key-2")
	// A parameter marked secret with its labelled checkbox: a password input, masked once saved.
	b.click("#o-new-add-extra")
	b.fill("#o-new-x-key-2", "tenant")
	b.fill("#o-new-x-val-2", "tenant-s3cret")
	b.click(`label[for="o-new-x-sec-2"]`)
	require.Equal(t, true, b.eval(`document.getElementById('o-new-x-sec-2').checked`))
	require.Equal(t, "password", b.eval(`document.getElementById('o-new-x-val-2').type`))
	b.labelled("OAuth form with a secret parameter")
	b.click("#oauth-save")
	b.visible("#oauth")
	cid := b.eval(rowID("#oauth", "Partner OAuth")).(string)
	_, cred := d.request(t, http.MethodGet, "/oauth/"+cid, nil)
	require.Equal(t, []any{
		map[string]any{"key": "audience", "value": "https://api.partner.example"},
		map[string]any{"key": "resource", "value": "orders"},
		map[string]any{"key": "tenant", "value": mask, "secret": true},
	}, cred["extra_params"], "the API stores the extra parameters, the secret one masked")
	require.Equal(t, mask, cred["client_secret"])
	raw := d.psqlValue(t, "SELECT extra_params::text || coalesce(encode(extra_params_enc, 'escape'), '') FROM walhook.oauth_credential WHERE id = "+cid)
	require.NotContains(t, raw, "tenant-s3cret", "the secret parameter is sealed at rest")
	b.axe("OAuth list")
	b.labelled("OAuth list")
	b.tabOrder("OAuth list")
	b.reachable("OAuth list at 1366×768", `#oauth td.actions a, #oauth td.actions button, #add-oauth-top`)
	b.click(`a[aria-label="Edit Partner OAuth"]`)
	b.visible("#oauth-form")
	p := "#o-" + cid
	require.Equal(t, "audience", b.eval(`document.querySelector('`+p+`-x-key-0').value`))
	require.Equal(t, "orders", b.eval(`document.querySelector('`+p+`-x-val-1').value`))
	require.Equal(t, mask, b.eval(`document.querySelector('#oauth-form input[name=client_secret]').value`), "secrets stay masked")
	require.Equal(t, mask, b.eval(`document.querySelector('`+p+`-x-val-2').value`), "the secret parameter shows as the mask")
	require.Equal(t, "password", b.eval(`document.querySelector('`+p+`-x-val-2').type`))
	require.Equal(t, true, b.eval(`document.querySelector('`+p+`-x-sec-2').checked`), "its secret box stays checked")
	b.click(`button[aria-label="Remove extra parameter 1"]`)
	b.click("#oauth-save")
	b.visible("#oauth")
	_, cred = d.request(t, http.MethodGet, "/oauth/"+cid, nil)
	require.Equal(t, []any{map[string]any{"key": "resource", "value": "orders"}, map[string]any{"key": "tenant", "value": mask, "secret": true}},
		cred["extra_params"], "a removed parameter is gone; the mask sent back kept the secret one")

	// Permissions.
	b.click(`nav a[href="#/permissions"]`)
	b.visible("#role-form")
	b.axe("permissions")
	b.labelled("permissions")
	b.tabOrder("permissions")

	// A phone, 390×844: one column, the listing as cards, every action and control in reach.
	b.viewport(390, 844)
	b.click(`nav a[href="#/webhooks"]`)
	b.visible(row1)
	require.Equal(t, 2*5+1, b.reachable("listing at 390×844", actions))
	b.reachable("navigation at 390×844", `nav a, #signout`)
	b.axe("webhooks on a phone")
	b.shot("webhooks-mobile", true)
	b.click(`a[aria-label="Edit Orders sync, edited"]`)
	b.visible("#webhook-form")
	b.reachable("form at 390×844", `#webhook-form input:not([type=hidden]):not([readonly]), #webhook-form select, #webhook-form button, #webhook-form a`)
	b.shot("webhook-form-mobile", true)
	b.open("#/webhooks/" + id1 + "/history")
	b.visible(dr)
	b.reachable("history at 390×844", `#deliveries td.actions a, #deliveries td.actions button, .page-actions a, .page-actions button, #range, #status-filter`)
	b.open("#/oauth")
	b.visible("#oauth")
	b.reachable("OAuth list at 390×844", `#oauth td.actions a, #oauth td.actions button`)
	b.open("#/oauth/" + cid)
	b.visible("#oauth-form")
	b.reachable("OAuth form at 390×844", `#oauth-form input, #oauth-form select, #oauth-form button`)
	b.open("#/permissions")
	b.visible("#role-form")
	b.reachable("permissions at 390×844", `main input, main select, main button`)
	b.open("#/webhooks/" + id1 + "/history")
	b.click(dr + ` a[aria-label^="Details of delivery"]`)
	b.visible("#payload")
	b.reachable("delivery at 390×844", `.page-actions a, .page-actions button, #attempts summary`)
	b.viewport(1366, 768)

	// Deleting the last webhook leaves the empty state: a clear message and the Add button.
	b.click(`nav a[href="#/webhooks"]`)
	for _, name := range []string{"Orders sync, edited", "Backup with a rather long name for the listing"} {
		b.click(`button[aria-label="Delete ` + name + `"]`)
		b.visible("#confirm-dialog")
		b.click("#confirm-ok")
		b.until("the row gone", `![...document.querySelectorAll('#webhooks .name-cell strong')].some(s => s.textContent === `+strconv.Quote(name)+`)`, 10*time.Second)
	}
	b.visible("#webhooks-empty")
	require.Contains(t, b.text("#webhooks-empty"), "No webhooks yet")
	b.visible(`#webhooks-empty a[href="#/webhooks/new"]`)
	b.absent("#webhooks")
	require.Equal(t, "H1", b.eval(`document.activeElement.tagName`), "focus is on the page's heading, not lost")
	b.axe("webhooks (empty)")
	b.shot("webhooks-empty", false)
	b.click(`#webhooks-empty a[href="#/webhooks/new"]`)
	b.visible("#webhook-form")
}
