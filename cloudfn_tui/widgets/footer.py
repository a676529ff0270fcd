"""The footer of the screens: Textual's Footer, rebuilt only when the keys it shows change."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.reactive import reactive
from textual.widgets import Footer
from textual.widgets._footer import FooterKey


class _Key(FooterKey):
    # Textual's keys start compact and are then bound to the footer's (never compact here):
    # two restyles of each key per rebuild.
    compact = reactive(False)


class KeyFooter(Footer):
    """Textual's Footer rebuilds all its keys whenever the screen's bindings may have changed:
    at every focus move, and twice while the console starts, which made it the dearest widget
    of the start. Most focus moves leave the shown keys as they were, so this one compares
    first. It shows no binding groups (the console has none) and is never compact."""

    _shown: tuple | None = None

    def _keys(self) -> tuple:
        palette = self.app.COMMAND_PALETTE_BINDING
        return tuple(
            (binding.key, binding.action, binding.description, enabled, tooltip, self.app.get_key_display(binding))
            for key, (_, binding, enabled, tooltip) in self.screen.active_bindings.items()
            if binding.show or key == palette
        )

    def compose(self) -> ComposeResult:
        # Textual's Footer composes empty, then again once the screen says its bindings are
        # ready (after the first paint: a second mount, layout and paint of the footer). The
        # screen's own keys are known as soon as it is composed, so this one shows them at once.
        self._shown = self._keys()
        active = self.screen.active_bindings
        seen: set[str] = set()
        for _, binding, enabled, tooltip in active.values():
            if binding.show and binding.action not in seen:  # one key per action, as Footer does
                seen.add(binding.action)
                yield _Key(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                           disabled=not enabled, tooltip=tooltip)
        if self.show_command_palette and self.app.ENABLE_COMMAND_PALETTE and self.app.COMMAND_PALETTE_BINDING in active:
            _, binding, enabled, tooltip = active[self.app.COMMAND_PALETTE_BINDING]
            yield FooterKey(binding.key, self.app.get_key_display(binding), binding.description, binding.action,
                            classes="-command-palette", disabled=not enabled, tooltip=binding.tooltip or binding.description)

    def bindings_changed(self, screen) -> None:
        if self._shown is not None and self.is_attached and screen is self.screen and self._keys() == self._shown:
            return
        super().bindings_changed(screen)
