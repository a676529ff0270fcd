"""A widget's rich_style, worked out once until its styles change: views that draw line by line
asked for it on every line, at about 30 us each."""

from __future__ import annotations

from rich.style import Style


class CachedBaseStyle:
    """Mixed into a Widget (before it in the bases)."""

    _base: Style | None = None

    def notify_style_update(self) -> None:
        self._base = None
        super().notify_style_update()  # type: ignore[misc]

    @property
    def _base_style(self) -> Style:
        if self._base is None:
            self._base = self.rich_style  # type: ignore[attr-defined]
        return self._base
