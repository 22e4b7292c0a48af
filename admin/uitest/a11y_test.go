package uitest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// axeSource is axe-core, vendored in testdata/axe-core (see its README for version and licence).
func axeSource(t interface{ Fatalf(string, ...any) }) string {
	b, err := os.ReadFile("testdata/axe-core/axe.min.js")
	if err != nil {
		t.Fatalf("read axe-core: %v", err)
	}
	return string(b)
}

// axeViolation is one rule axe-core found broken, with the elements that break it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target  []any  `json:"target"`
		Summary string `json:"failureSummary"`
	} `json:"nodes"`
}

// axe runs axe-core on the page as it is now (WCAG 2.1 A and AA rules and axe's best practices)
// and fails the test listing every serious or critical violation of the screen named screen.
func (b *browser) axe(screen string) {
	b.t.Helper()
	if b.eval(`typeof window.axe === 'object'`) != true {
		b.eval(axeSource(b.t) + ";true")
	}
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	out, err := chromedp.Run(ctx, chromedp.Evaluate[string](`axe.run(document, {
		runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']},
		resultTypes: ['violations'],
	}).then(r => JSON.stringify(r.violations))`, chromedp.EvalAwaitPromise))
	require.NoError(b.t, err, "run axe-core on %s", screen)
	var vs []axeViolation
	require.NoError(b.t, json.Unmarshal([]byte(out), &vs))
	var bad []string
	for _, v := range vs {
		if v.Impact != "serious" && v.Impact != "critical" {
			continue
		}
		for _, n := range v.Nodes {
			bad = append(bad, fmt.Sprintf("%s (%s): %s at %v: %s", v.ID, v.Impact, v.Help, n.Target, strings.ReplaceAll(n.Summary, "\n", " ")))
		}
	}
	if len(bad) > 0 {
		b.failureShot()
	}
	require.Empty(b.t, bad, "axe-core: serious or critical accessibility violations on the %s screen", screen)
}

// interactiveRoles are the accessibility roles of controls: each needs an accessible name.
var interactiveRoles = []string{"button", "link", "textbox", "searchbox", "combobox", "listbox", "checkbox", "switch", "radio", "spinbutton", "slider", "tab", "menuitem"}

// labelled fails the test when a control on the screen has no accessible name, as the browser
// computes it (Chromium's accessibility tree: label, aria-label, aria-labelledby, text, title).
func (b *browser) labelled(screen string) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	tree, err := chromedp.Call(ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	require.NoError(b.t, err, "accessibility tree of %s", screen)
	var nameless []string
	controls := 0
	for _, n := range tree.Nodes {
		if n.Ignored || n.Role == nil || !slices.Contains(interactiveRoles, axString(n.Role)) {
			continue
		}
		controls++
		if strings.TrimSpace(axString(n.Name)) != "" {
			continue
		}
		what := axString(n.Role)
		if n.BackendDOMNodeID != 0 {
			if d, err := chromedp.Call(ctx, dom.DescribeNode, dom.DescribeNodeParams{BackendNodeID: n.BackendDOMNodeID}); err == nil && d.Node != nil {
				what += fmt.Sprintf(" <%s %v>", strings.ToLower(d.Node.NodeName), d.Node.Attributes)
			}
		}
		nameless = append(nameless, what)
	}
	require.NotZero(b.t, controls, "the %s screen has controls", screen)
	require.Empty(b.t, nameless, "controls without an accessible name on the %s screen", screen)
}

func axString(v *accessibility.Value) string {
	if v == nil || len(v.Value) == 0 {
		return ""
	}
	var s string
	if json.Unmarshal(v.Value, &s) != nil {
		return string(v.Value)
	}
	return s
}

// describeFocus is JavaScript naming the focused element (or el) for a readable failure.
const describeJS = `(el) => el ? (el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
	(el.getAttribute('aria-label') ? '[' + el.getAttribute('aria-label') + ']' : '') +
	(!el.id && !el.getAttribute('aria-label') ? '"' + (el.textContent || el.name || '').trim().slice(0, 30) + '"' : '')) : 'none'`

// tabOrder presses Tab from the skip link to the end of the page and checks that focus visits
// every control of the page once, in document order (no positive tabindex, nothing skipped,
// nothing hidden reached). It returns the controls in the order visited.
func (b *browser) tabOrder(screen string) []string {
	b.t.Helper()
	want := b.eval(`(() => {
		const d = ` + describeJS + `;
		const sel = 'a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]';
		return [...document.querySelectorAll(sel)].filter((el) => !el.disabled && el.tabIndex >= 0 &&
			!el.closest('[hidden], [inert], dialog:not([open])') && el.getClientRects().length > 0).map(d);
	})()`)
	var expected []string
	for _, v := range want.([]any) {
		expected = append(expected, v.(string))
	}
	require.NotEmpty(b.t, expected, "controls on the %s screen", screen)
	require.True(b.t, strings.HasPrefix(expected[0], "a") && strings.Contains(b.eval(`document.querySelector('.skip-link').textContent`).(string), "Skip"), "the skip link comes first")
	b.eval(`document.querySelector('.skip-link').focus(), true`)
	got := []string{b.eval(`(` + describeJS + `)(document.activeElement)`).(string)}
	// A control with fields of its own (datetime-local: day, month, year, time) takes one Tab
	// per field: focus staying on it counts once.
	for presses := 0; len(got) < len(expected) && presses < 10*len(expected); presses++ {
		b.do("press Tab", chromedp.KeyEvent(kb.Tab))
		if now := b.eval(`(` + describeJS + `)(document.activeElement)`).(string); now != got[len(got)-1] {
			got = append(got, now)
		}
	}
	require.Equal(b.t, expected, got, "Tab visits every control of the %s screen in order", screen)
	return got
}

// press sends keys (kb.Enter, kb.Escape, kb.Tab …) to the focused element.
func (b *browser) press(keys string) {
	b.t.Helper()
	b.do("press "+fmt.Sprintf("%q", keys), chromedp.KeyEvent(keys))
}

// focused is the id of the focused element, or its description when it has none.
func (b *browser) focused() string {
	b.t.Helper()
	return b.eval(`document.activeElement.id || (` + describeJS + `)(document.activeElement)`).(string)
}

// viewport resizes the page's viewport (the window's content area).
func (b *browser) viewport(w, h int64) {
	b.t.Helper()
	b.do(fmt.Sprintf("viewport %dx%d", w, h), chromedp.EmulateViewport(w, h))
	b.until("the new viewport", fmt.Sprintf(`window.innerWidth === %d`, w), 5*time.Second)
}

// reachable checks that every element matching sel (outside a hidden section) is usable at the current viewport: scrolled
// into view it lies inside the viewport horizontally and vertically, and it is the element a tap
// on its centre reaches (nothing covers it). It also checks that the page itself does not
// scroll sideways. It returns how many elements it checked.
func (b *browser) reachable(what, sel string) int {
	b.t.Helper()
	res := b.eval(fmt.Sprintf(`(() => {
		const d = `+describeJS+`;
		const bad = [];
		const els = [...document.querySelectorAll(%q)].filter((el) => !el.closest('[hidden]'));
		for (const el of els) {
			el.scrollIntoView({block: 'center', inline: 'nearest'});
			const r = el.getBoundingClientRect();
			const inside = r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth && r.bottom <= innerHeight;
			const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
			if (!inside) bad.push(d(el) + ' at ' + [r.left, r.top, r.right, r.bottom].map(Math.round).join(',') + ' outside ' + innerWidth + 'x' + innerHeight);
			else if (!hit || !(hit === el || el.contains(hit))) bad.push(d(el) + ' covered by ' + d(hit));
		}
		const wide = document.documentElement.scrollWidth > innerWidth + 1;
		const clipped = [...document.querySelectorAll('.table-wrap')].filter((w) => w.scrollWidth > w.clientWidth + 1).length;
		window.scrollTo(0, 0);
		return {n: els.length, bad, wide, clipped, width: document.documentElement.scrollWidth};
	})()`, sel)).(map[string]any)
	if len(res["bad"].([]any)) > 0 || res["wide"] == true || res["clipped"].(float64) > 0 {
		b.failureShot()
	}
	require.Empty(b.t, res["bad"], "%s: every control inside the viewport and not covered", what)
	require.Equal(b.t, false, res["wide"], "%s: the page does not scroll sideways (%v px wide)", what, res["width"])
	require.Zero(b.t, res["clipped"], "%s: no table is cut off in its scroll box", what)
	n := int(res["n"].(float64))
	require.NotZero(b.t, n, "%s: %s on the page", what, sel)
	return n
}
