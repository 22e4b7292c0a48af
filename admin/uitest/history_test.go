package uitest

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
)

// psqlValue runs a query on the dev database and returns its one value as text.
func (d *dev) psqlValue(t *testing.T, sql string) string {
	t.Helper()
	out, err := exec.Command(d.psqlPath(t), "-X", "-At", "-v", "ON_ERROR_STOP=1", "-d", d.dbURL, "-c", sql).CombinedOutput()
	require.NoError(t, err, "psql: %s", out)
	return strings.TrimSpace(string(out))
}

// setInput sets a text control's value as one input event (chromedp's Clear leaves the old text).
func setInput(b *browser, sel, v string) {
	b.t.Helper()
	b.visible(sel)
	b.eval(fmt.Sprintf(`(() => { const c = document.querySelector(%q); c.value = %q; c.dispatchEvent(new Event('input', {bubbles: true})); })()`, sel, v))
}

// TestHistorySearchAndReplay drives History's filter bar (text, HTTP status, event id, event, a
// refused value named, the empty result, Clear) and the Replay dialog (the count shown before
// the confirm button, events from before the webhook existed sent, focus back on Replay, a second
// replay with nothing left to send) in Chromium against `walhook dev` and a real receiver.
func TestHistorySearchAndReplay(t *testing.T) {
	requireChromium(t)
	d := startDev(t)
	rc := newReceiver(t)
	b := newBrowser(t, "http://"+d.addr)

	// Two contacts before the webhook exists: captured, delivered to no one.
	d.psql(t, `INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Early One', 'early1@example.com'), ('1', 'Early Two', 'early2@example.com')`)
	require.Eventually(t, func() bool {
		return d.psqlValue(t, `SELECT count(*) FROM walhook.event WHERE payload::text LIKE '%early%@example.com%'`) == "2"
	}, 45*time.Second, 200*time.Millisecond, "the early contacts are captured")
	w := d.api(t, "POST", "/webhooks", map[string]any{"name": "Search me", "url": rc.srv.URL + "/hooks/search", "method": "POST",
		"event": "contact.created", "active": true})
	id := fmt.Sprint(w["id"])
	d.psql(t, `INSERT INTO contacts (company_id, name, email) VALUES ('1', 'Ada', 'ada@example.com'), ('1', 'Grace', 'grace@example.com'), ('1', 'Alan', 'alan@example.com')`)
	rc.waitFor(t, "@example.com", 3, 45*time.Second)
	require.Len(t, rc.waitFor(t, "early", 0, time.Second), 0, "nothing was sent for the early contacts")

	b.do("open the sign-in link", chromedp.Navigate(d.link))
	b.visible("#add-webhook")
	b.open("#/webhooks/" + id + "/history")
	rows := `document.querySelectorAll('#deliveries tbody tr').length`
	b.until("three deliveries", rows+` === 3`, 30*time.Second)
	require.Equal(t, true, b.eval(`[...document.querySelectorAll('#history-filters input, #history-filters select')].every(c => c.labels.length > 0)`),
		"every filter control has a label")

	// Text in the payload.
	setInput(b, "#filter-q", "grace")
	b.click("#filter-apply")
	b.until("the text search", rows+` === 1 && !document.getElementById('deliveries').hidden`, 10*time.Second)
	require.Contains(t, b.text("#deliveries tbody tr"), "contact.created")
	b.shot("history-search", true)

	// HTTP status: every delivery got 200, so 5xx finds none and the page says so.
	setInput(b, "#filter-q", "")
	setInput(b, "#filter-http-status", "5xx")
	b.click("#filter-apply")
	b.until("the empty result", `!document.getElementById('history-empty').hidden`, 10*time.Second)
	require.Equal(t, "No deliveries match these filters.", b.text("#history-empty"))
	setInput(b, "#filter-http-status", "2xx")
	b.click("#filter-apply")
	b.until("2xx", rows+` === 3 && document.getElementById('history-empty').hidden`, 10*time.Second)

	// A refused value is named under the bar, on its control; the list keeps the last good filters.
	setInput(b, "#filter-http-status", "abc")
	b.click("#filter-apply")
	b.until("the filter error", `document.getElementById('filter-error').textContent.startsWith('HTTP status:')`, 10*time.Second)
	require.Equal(t, "true", b.eval(`document.getElementById('filter-http-status').getAttribute('aria-invalid')`))
	require.Equal(t, 3.0, b.eval(rows))

	// Event id (from the API), the event select, and Clear.
	page := d.api(t, "GET", "/webhooks/"+id+"/deliveries?q=alan", nil)
	items := page["items"].([]any)
	require.Len(t, items, 1)
	evt := items[0].(map[string]any)["event_id"].(string)
	setInput(b, "#filter-http-status", "")
	setInput(b, "#filter-event-id", evt)
	b.choose("#filter-event", "contact.created")
	b.click("#filter-apply")
	b.until("the event id", rows+` === 1 && document.getElementById('filter-error').textContent === ''`, 10*time.Second)
	require.Equal(t, items[0].(map[string]any)["id"], b.eval(`document.querySelector('#deliveries tbody tr').dataset.id`))
	b.click("#filter-clear")
	b.until("cleared", rows+` === 3`, 10*time.Second)
	require.Equal(t, "", b.eval(`document.getElementById('filter-event-id').value`))

	// Replay the last hour, never sent: the count (the two early contacts) comes before the
	// confirm button does anything; confirmed, the receiver gets them and focus is back on Replay.
	b.click("#replay")
	b.visible("#replay-dialog")
	require.Equal(t, "replay-since", b.eval(`document.activeElement.id`))
	b.until("the first count", `document.getElementById('replay-count').dataset.count !== undefined`, 10*time.Second)
	b.eval(`(() => { const f = document.getElementById('replay-since'); const d = new Date(Date.now() - 3600e3);
		f.value = new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
		f.dispatchEvent(new Event('change', {bubbles: true})); })()`)
	b.click("#replay-mode-never_sent")
	b.until("the count", `document.getElementById('replay-count').dataset.count === '2'`, 10*time.Second)
	require.Equal(t, "2 events will be sent again.", b.text("#replay-count"))
	require.Equal(t, "Replay 2", b.text("#replay-confirm"))
	b.shot("replay", false)
	b.click("#replay-confirm")
	b.until("the dialog closes", `document.getElementById('replay-dialog') === null`, 10*time.Second)
	require.Equal(t, "replay", b.eval(`document.activeElement.id`), "focus goes back to Replay")
	require.Len(t, rc.waitFor(t, "early", 2, 45*time.Second), 2)
	b.until("five deliveries", rows+` === 5`, 30*time.Second)

	// Again: nothing left to send, so the confirm button stays off; Escape closes.
	b.click("#replay")
	b.eval(`(() => { const f = document.getElementById('replay-since'); const d = new Date(Date.now() - 3600e3);
		f.value = new Date(d.getTime() - d.getTimezoneOffset() * 60e3).toISOString().slice(0, 19);
		f.dispatchEvent(new Event('change', {bubbles: true})); })()`)
	b.click("#replay-mode-never_sent")
	b.until("nothing left", `document.getElementById('replay-count').dataset.count === '0'`, 10*time.Second)
	require.Equal(t, true, b.eval(`document.getElementById('replay-confirm').disabled`))
	b.click("#replay-cancel")
	b.until("closed", `document.getElementById('replay-dialog') === null && document.activeElement.id === 'replay'`, 10*time.Second)
}
