import re
from collections import Counter


def analyze_text(event, context):
    text = str(event.get("text", ""))
    top = int(event.get("top", 5))

    words = re.findall(r"[\w']+", text.lower())
    sentences = [s for s in re.split(r"[.!?]+", text) if s.strip()]
    counts = Counter(words)

    return {
        "characters": len(text),
        "characters_no_spaces": len(re.sub(r"\s", "", text)),
        "words": len(words),
        "unique_words": len(counts),
        "sentences": len(sentences),
        "average_word_length": round(sum(map(len, words)) / len(words), 2) if words else 0,
        "top_words": [{"word": w, "count": c} for w, c in counts.most_common(top)],
    }
