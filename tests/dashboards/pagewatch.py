"""A browser page that records console errors, uncaught exceptions and dialogs,
and reads the Bokeh plots it draws."""

from __future__ import annotations

# Per plot in the page's Bokeh documents: its title, glyph types and legend labels.
PLOTS_JS = """
() => {
  const plots = [];
  for (const doc of window.Bokeh.documents) {
    for (const m of doc.all_models) {
      if (!m.renderers || !m.title || m.title.text === undefined) continue;
      const glyphs = m.renderers.filter(r => r.type === 'GlyphRenderer').map(r => r.glyph.type);
      const labels = [];
      for (const l of [...m.center, ...m.right].filter(x => x.type === 'Legend'))
        for (const item of l.items) labels.push(item.label && item.label.value);
      plots.push({title: m.title.text, glyphs: glyphs, labels: labels.sort(),
                  lines: glyphs.filter(g => g === 'Line').length});
    }
  }
  return plots;
}
"""


class PageWatch:
    def __init__(self, browser, height: int = 1000):
        self.context = browser.new_context(viewport={"width": 1400, "height": height},
                                           accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("requestfailed", self._request_failed)

        def on_dialog(dialog):
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def _request_failed(self, request) -> None:
        # Chromium cancels a page's pending requests when it navigates away
        # (net::ERR_ABORTED): under load a stylesheet still loading when a test
        # moves on is cancelled, which is not a fault of the page. Any other
        # failure (refused, reset, timed out) is one.
        failure = request.failure or ""
        if "ERR_ABORTED" in failure:
            return
        self.errors.append(f"request failed: {request.url} ({failure})")

    def open(self, url: str) -> None:
        self.page.goto(url, wait_until="networkidle")

    def plots(self, min_count: int = 1, timeout: int = 30_000) -> dict[str, dict]:
        """Wait for the page's plots to render; title -> plot."""
        self.page.wait_for_function(
            "n => window.Bokeh && [...window.Bokeh.documents].some(d => "
            "[...d.all_models].filter(m => m.renderers && m.title).length >= n)",
            arg=min_count, timeout=timeout)
        self.page.locator("canvas").first.wait_for(timeout=timeout)
        self.page.wait_for_timeout(500)
        return {p["title"]: p for p in self.page.evaluate(PLOTS_JS)}

    def plots_with(self, prefix: str, timeout: int = 30_000) -> dict[str, dict]:
        """Wait for a plot whose title starts with ``prefix`` (a tab opened); title -> plot."""
        self.page.wait_for_function(
            "p => window.Bokeh && [...window.Bokeh.documents].some(d => [...d.all_models]"
            ".some(m => m.renderers && m.title && String(m.title.text).startsWith(p)))",
            arg=prefix, timeout=timeout)
        self.page.wait_for_timeout(300)
        return {p["title"]: p for p in self.page.evaluate(PLOTS_JS)}

    def close(self) -> None:
        self.context.close()
