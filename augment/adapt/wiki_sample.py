"""Make the default MLM's corpus: plain English sentences from a Wikipedia article sample.

The sample is the shortened English Wikipedia dump that gensim ships in its test data (about
100 articles, CC BY-SA). Run once to (re)generate the packaged file:

    python -m augment.adapt.wiki_sample augment/data/enwiki-sample-sentences.txt.gz
"""

from __future__ import annotations

import bz2
import gzip
import re
import sys
from pathlib import Path

DUMP = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
SENTENCE_END = re.compile(r'(?<=[.!?])\s+(?=[A-Z"])')
MARKUP_LEFT = re.compile(r"[\[\]{}|<>=_\\*#]|https?:|''")


def clean_sentences(plain: str) -> list[str]:
    """Prose sentences of 6-50 words from markup-free article text; lists, tables, headings and
    sentences with leftover markup or mostly non-ASCII text are dropped."""
    out = []
    for line in plain.splitlines():
        line = line.strip()
        if len(line.split()) < 8 or line[0] in "=*|{!:;#":
            continue
        for sent in SENTENCE_END.split(line):
            sent = re.sub(r"\s+", " ", sent).strip()
            if not 6 <= len(sent.split()) <= 50 or sent[-1] not in ".!?" or not sent[0].isupper():
                continue
            if MARKUP_LEFT.search(sent) or "( " in sent or "()" in sent or " ," in sent:
                continue
            if sum(c.isascii() for c in sent) >= 0.97 * len(sent):
                out.append(sent)
    return out


def wiki_sentences() -> list[str]:
    """Deduplicated sentences of every article (not redirects) of gensim's Wikipedia sample."""
    from gensim.corpora.wikicorpus import extract_pages, filter_wiki
    from gensim.test.utils import datapath

    seen: dict[str, None] = {}
    with bz2.open(datapath(DUMP)) as f:
        for _title, text, _pageid in extract_pages(f, filter_namespaces=("0",)):
            if not text.lstrip().lower().startswith("#redirect"):
                seen.update(dict.fromkeys(clean_sentences(filter_wiki(text))))
    return list(seen)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    sentences = wiki_sentences()
    # No name and mtime 0 in the gzip header: rebuilding gives the same bytes.
    with Path(argv[0]).open("wb") as raw, gzip.GzipFile("", "wb", 9, raw, mtime=0) as f:
        f.write(("\n".join(sentences) + "\n").encode("utf-8"))
    print(f"{len(sentences)} sentences -> {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
