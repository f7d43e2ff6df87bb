"""Text processing in Python: the same generated document, cleaning, word
counts, ranking (a stable sort over the sorted words, by count), report and
checksum as text_processing.harn, with str methods and a dict."""

from __future__ import annotations

VOCABULARY = [
    "The", "quick", "brown", "fox,", "jumps", "over", "the", "lazy", "dog.", "Harn",
    "pipelines", "run", "agents;", "tools", "call", "models", "and", "return", "values.", "Every",
    "token", "counts,", "so", "write", "clearly.", "alpha", "Beta", "gamma", "delta", "omega.",
]


def make_document(lines: int, seed: int) -> str:
    out = []
    for _ in range(lines):
        words = []
        for _ in range(8 + seed % 7):
            seed = (seed * 1103515245 + 12345) % 2147483648
            words.append(VOCABULARY[seed // 65536 % len(VOCABULARY)])
        out.append(" ".join(words))
    return "\n".join(out)


def run(n: int) -> int:
    text = make_document(n, 42)
    counts: dict[str, int] = {}
    total_chars = 0
    long_lines = 0
    for line in text.split("\n"):
        clean = line.lower().replace(",", "").replace(".", "").replace(";", "")
        if len(clean) > 60:
            long_lines += 1
        for word in clean.split(" "):
            counts[word] = counts.get(word, 0) + 1
            total_chars += len(word)
    ranked = sorted(sorted(counts), key=lambda word: -counts[word])
    report = "\n".join(f"{word.upper()}: {counts[word]}" for word in ranked[:10])
    shouted = text.replace("the", "THE").split("THE")
    titled = [" ".join(w[:1].upper() + w[1:] for w in line.split(" ")) for line in text.split("\n")]
    title_chars = sum(len(line.strip()) for line in titled)
    return (len(report) * 1000003 + total_chars * 31 + len(counts) * 7 + long_lines + len(shouted) * 13 + title_chars) % 1000000007
