"""HTML tables of the report: pandas' Styler, compact, escaped, with wrapping columns."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler


def as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Categorical columns as plain text, so small frames can be concatenated and edited."""
    cats = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    return frame.astype(dict.fromkeys(cats, "string")) if cats else frame


def styled(frame: pd.DataFrame, uuid: str, formats: dict[str, Any] | None = None,
           classes: pd.DataFrame | None = None, table_class: str = "data") -> str:
    """A compact Styler table: no index, no per-cell ids, HTML-escaped text."""
    styler = Styler(frame, cell_ids=False, uuid=uuid, escape="html", na_rep="–")
    styler = styler.hide(axis="index")
    if formats:
        styler = styler.format(formats)
    if classes is not None:
        styler = styler.set_td_classes(classes)
    return styler.to_html(table_attributes=f'class="{table_class}"')


def wrapping(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Cell classes that let the long text ``columns`` of a table wrap (CSS ``td.wrap``)."""
    classes = pd.DataFrame("", index=frame.index, columns=frame.columns)
    for column in columns:
        if column in classes:
            classes[column] = "wrap"
    return classes
