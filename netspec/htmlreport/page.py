"""Fill the page templates (assets/*.html, shipped as package data) with escaped text, the page's
JSON and the inlined style sheet and script. The only place report HTML is assembled."""
from __future__ import annotations

import re
from importlib import resources

from ..escape import html_text, script_json

_SLOT = re.compile(r"\{\{(\w+)\}\}")


def asset(name: str) -> str:
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def script(page: str) -> str:
    """common.js and the page's own script (report.js or compare.js) in one strict function scope."""
    return f'"use strict";\n(function () {{\n{asset("common.js")}\n{asset(page)}}})();\n'


def fill(template: str, *, text: dict[str, object], html: dict[str, str], data: dict, js: str) -> str:
    """Every `{{slot}}` of the template: `text` values are escaped here, `html` values are markup this
    package wrote (fixed fragments), `data` goes in as script-safe JSON, `js` names the page's script."""
    values = {k: html_text(v) for k, v in text.items()}
    values.update(html)
    values["data"] = script_json(data)
    values["css"] = asset("report.css")
    values["js"] = script(js)
    for k in ("css", "js"):  # fixed files, but nothing may end their element early
        if re.search(r"</(style|script)", values[k], re.I):
            raise RuntimeError(f"assets: the {k} must not contain a closing tag")

    def slot(m: re.Match) -> str:
        if m.group(1) not in values:
            raise KeyError(f"template slot {{{{{m.group(1)}}}}} has no value")
        return values[m.group(1)]

    return _SLOT.sub(slot, template)


FAMILY_SECTION = """<section id="family">
  <h2>Family of variants</h2>
  <p class="note">Every variant of the spec, as <code>netspec scale</code> lists them; this network is highlighted.
  Predicted latency is plotted where a latency predictor fills the rows' latency slot (none yet).</p>
  <div class="two"><div class="scroll" id="family-table"></div><div id="family-plot"></div></div>
</section>"""

RUN_SECTION = """<section id="run">
  <h2>Training run</h2>
  <p class="note" id="run-dir"></p>
  <div class="two"><div class="charts" id="run-curves"></div><div id="run-final"></div></div>
</section>"""
