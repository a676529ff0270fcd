"""The main screen's panes and their arrangement: side by side on a wide terminal, one at a time
under a row of tabs on a small one (80x24; the pane table: screens/panes.py). Moving between
panes, keeping track of the focused one, and zoom live here; what the panes do is the screen's."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.dom import DOMNode
from textual.events import DescendantFocus
from textual.widget import AwaitMount, Widget
from textual.widgets import Tab, Tabs

from cloudfn_tui.screens.panes import LIVE, LIVE_TABS, LIVE_WIDGETS, NARROW_HEIGHT, NARROW_WIDTH, PANES
from cloudfn_tui.widgets.editors import CodeEditor, EventEditor
from cloudfn_tui.widgets.function_list import FunctionList
from cloudfn_tui.widgets.live import AlertsPane, HistoryTable, LogsPane, MetricsPane
from cloudfn_tui.widgets.result_view import ResultView
from cloudfn_tui.widgets.tab_bar import TabBar

# Where the focus may be: a pane's own id, or the id of the widget focused in it
_FOCUS_IDS = {w: t for t, _, w in PANES}
_PANE_IDS = ("pane-functions", "pane-code", "pane-event", "pane-logs", "pane-alerts")


class PaneLayout(Vertical):
    """Functions, code, event and result on top; the live panes (logs, metrics, history, alerts)
    under a tab bar below. `pane` is the pane shown (narrow) or focused (wide)."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.narrow = False
        self.pane = "functions"
        # Mounted in their tabs when first shown; fed before that.
        self.metrics_pane = MetricsPane(id="pane-metrics")
        self.history_table = HistoryTable(id="history")
        self.alerts_pane = AlertsPane(id="pane-alerts")
        self._lazy: dict[str, Widget] = {
            "metrics": self.metrics_pane,
            "history-tab": self.history_table,
            "alerts": self.alerts_pane,
        }
        self._mounting: AwaitMount | None = None
        self.pane_tabs: Tabs | None = None  # the narrow layout's tabs, made when first narrow

    def compose(self) -> ComposeResult:
        with Horizontal(id="top"):
            with Vertical(id="pane-functions") as pane:
                pane.border_title = "Functions"  # as every other pane says what it is
                yield FunctionList(id="functions")
            with Vertical(id="work"):
                yield CodeEditor(id="pane-code")
                with Horizontal(id="io"):
                    yield EventEditor(id="pane-event")
                    yield ResultView(id="pane-result")
        with Vertical(id="live"):
            yield TabBar([(LIVE_TABS[p], label) for p, label, _ in PANES if p in LIVE], active="logs", id="live-tabs")
            yield LogsPane(id="pane-logs")

    def apply_layout(self, width: int, height: int) -> AwaitMount | None:
        """Wide or narrow for a terminal of this size. Returns the pane tabs' mount when they are
        made: a pane chosen before their mount ends would be undone by it (Tabs activates its
        first tab when mounted)."""
        self.narrow = width < NARROW_WIDTH or height < NARROW_HEIGHT
        self.set_class(self.narrow, "-narrow")
        mounting = None
        if self.pane_tabs is None and self.narrow:
            # Only small terminals show the pane tabs: made when first needed (14 widgets less
            # to mount and style when a wide console starts).
            self.pane_tabs = Tabs(
                *[Tab(label, id=f"tab-{tab}") for tab, label, _ in PANES], id="pane-tabs", active=f"tab-{self.pane}"
            )
            mounting = self.mount(self.pane_tabs, before="#top")
        if self.pane_tabs is not None:
            self.pane_tabs.display = self.narrow
        self._show_only(self.pane if self.narrow else None)
        return mounting

    def _show_only(self, pane: str | None) -> None:
        """In narrow mode show one pane; None shows the wide layout."""
        wide = pane is None
        in_top = pane in ("functions", "code", "event", "result")
        for ident, shown in (
            ("#top", wide or in_top),
            ("#pane-functions", wide or pane == "functions"),
            ("#work", wide or pane in ("code", "event", "result")),
            ("#pane-code", wide or pane == "code"),
            ("#io", wide or pane in ("event", "result")),
            ("#pane-event", wide or pane == "event"),
            ("#pane-result", wide or pane == "result"),
            ("#live", wide or pane in LIVE),
        ):
            widget = self.query_one(ident)
            if widget.display != shown:  # setting it anyway asks each for a layout
                widget.display = shown
        if pane in LIVE:
            self._activate_live(pane)

    def show_pane(self, pane: str, focus: bool = True) -> None:
        self.pane = pane
        if self.narrow:
            tabs = self.pane_tabs
            if tabs is not None and tabs.active != f"tab-{pane}":
                tabs.active = f"tab-{pane}"
            self._show_only(pane)
        elif pane in LIVE:
            self._activate_live(pane)
        if focus:
            target = next(w for t, _, w in PANES if t == pane)

            async def focus_target() -> None:
                await self.panes_mounted()
                self.query_one(f"#{target}").focus()
                if self.zoomed:  # zoom follows the move, as tmux's does not: reading on is the point
                    self.screen.maximized = self._zoom_target(pane)

            self.call_after_refresh(focus_target)

    def step_pane(self, step: int) -> None:
        names = [p for p, _, _ in PANES]
        self.show_pane(names[(names.index(self.pane) + step) % len(names)])

    # -- zoom: one pane fills the screen (Textual's maximize; esc also restores) ------------------
    @property
    def zoomed(self) -> bool:
        return self.screen.maximized is not None

    def _zoom_target(self, pane: str) -> Widget:
        # the live panes with their tab bar, so the one shown can still be told
        return self.query_one("#live" if pane in LIVE else f"#pane-{pane}")

    def toggle_zoom(self) -> None:
        if self.zoomed:
            self.screen.minimize()
            return
        self.screen.maximized = self._zoom_target(self.pane)
        self.notify("Zoomed. F11 (or z outside an editor, or esc) restores.", timeout=3)

    # -- the live panes ------------------------------------------------------------------------
    async def panes_mounted(self) -> None:
        """Wait until the live pane shown last (mounted when first shown) can be queried."""
        if self._mounting is not None:
            await self._mounting

    def _activate_live(self, pane: str) -> None:
        tab = LIVE_TABS[pane]
        self.query_one("#live-tabs", TabBar).active = tab
        self._show_live(tab)

    def _show_live(self, tab: str) -> None:
        """Show the live pane of `tab` under the tab bar, mounting it the first time it is shown
        (`_mounting` is done once it and its children are mounted); hide the others."""
        pane = self._lazy.pop(tab, None)
        if pane is not None:
            self._mounting = self.query_one("#live").mount(pane)
        for other, ident in LIVE_WIDGETS.items():
            for widget in self.query(f"#{ident}"):
                widget.display = other == tab

    @on(TabBar.Activated, "#live-tabs")
    def _live_tab_activated(self, event: TabBar.Activated) -> None:
        self._show_live(event.tab)

    @on(Tabs.TabActivated, "#pane-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        pane = (event.tab.id or "").removeprefix("tab-")
        if pane != self.pane or self.narrow:
            self.pane = pane
            if self.narrow:
                self._show_only(pane)

    def on_descendant_focus(self, event: DescendantFocus) -> None:
        """Keep `pane` (and the narrow tabs) in step with where the focus is."""
        node: DOMNode | None = event.widget
        while node is not None and node is not self:
            if node.id is not None and (node.id in _FOCUS_IDS or node.id in _PANE_IDS):
                self.pane = _FOCUS_IDS.get(node.id) or node.id.removeprefix("pane-")
                return
            node = node.parent
