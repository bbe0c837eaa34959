"""Honest answers to "are you real?": one place that recognises the question and checks the answer.

A comment that asks whether the character is real, a person, human, a bot, AI or fake, in English,
Spanish, German, Portuguese, French or Italian, must get a reply that says the character is virtual
and its content AI-generated. Every writer follows the same two steps:

1. the system prompt carries ``SYSTEM_RULE`` (models are asked to disclose, in the comment's language);
2. ``enforce_disclosure`` checks the finished reply: a sentence claiming to be human is dropped, and
   when no disclosure is left one is put first, in the language the question was asked in.

The patterns err on the side of disclosing: a false positive costs one honest sentence, a miss
deceives a person. Add a language by adding its question patterns, its disclosure phrases and one
sentence to ``DISCLOSURE_SENTENCES``; the table-driven tests cover every language listed there.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

SYSTEM_RULE = (
    "If a comment asks whether you are real, a person, human, a bot, AI or fake, in any language, your "
    "first sentence says plainly, in the comment's language, that you are a virtual character and that "
    "your posts are AI-generated. Never claim or imply to be human."
)

# One honest sentence per language (the first tag of a BCP-47 language picks it).
DISCLOSURE_SENTENCES: dict[str, str] = {
    "en": "Honest answer: I'm a virtual character, not a human, and my posts are AI-generated.",
    "es": "Respuesta sincera: soy un personaje virtual, no una persona, y mis publicaciones están generadas con IA.",
    "de": "Ehrliche Antwort: Ich bin eine virtuelle Figur, kein Mensch, und meine Beiträge sind KI-generiert.",
    "pt": "Resposta sincera: sou uma personagem virtual, não uma pessoa, e as minhas publicações são geradas por IA.",
    "fr": "Réponse honnête : je suis un personnage virtuel, pas un humain, et mes publications sont générées par IA.",
    "it": "Risposta sincera: sono un personaggio virtuale, non una persona, e i miei post sono generati dall'IA.",
}

_F = re.IGNORECASE | re.UNICODE


def _fold(text: str) -> str:
    """Lower case without accents and with one kind of apostrophe, so "¿Eres humana?" and "eres humana" match."""
    text = unicodedata.normalize("NFKD", text.casefold().replace("’", "'").replace("`", "'"))
    return "".join(c for c in text if not unicodedata.combining(c))


# Patterns run on folded text (no accents). Each is tagged with its language.
_QUESTION_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("en", re.compile(
        r"\b(?:are|r)\s+(?:you|u|ya)\s+(?:even\s+|actually\s+|really\s+|just\s+|like\s+|for\s+real\s+|truly\s+)*"
        r"(?:an?\s+)?(?:real|human|bot|robot|ai|a\.i\.|fake|virtual|person|computer|machine|generated|"
        r"ai[- ]generated|chatgpt|gpt|cgi|hologram|made\s+up|legit)\b", _F)),
    ("en", re.compile(
        r"\bis\s+(?:this|that|it|she|he|this\s+account|this\s+page|this\s+profile)\s+(?:even\s+|actually\s+|"
        r"really\s+|just\s+)*(?:an?\s+)?(?:real|human|bot|ai|a\.i\.|fake|virtual|real\s+person|robot|"
        r"ai[- ]generated|chatgpt)\b", _F)),
    ("en", re.compile(r"\b(?:you'?re|you\s+are|ur|u\s+r)\s+(?:not\s+real|fake|an?\s+(?:bot|ai|robot|fake))\b", _F)),
    ("en", re.compile(
        r"\b(?:photos?|pics?|pictures?|images?|face|account|posts?|videos?|selfies?)\s+(?:all\s+)?"
        r"(?:look|looks|seem|seems|are|is)\s+(?:so\s+|very\s+|kinda\s+|totally\s+|too\s+|pretty\s+)?"
        r"(?:fake|ai|ai[- ]generated|generated|artificial|unreal|cgi)\b", _F)),
    ("en", re.compile(r"\b(?:real|actual|living)\s+(?:person|human|people|girl|woman|man|guy|boy)\b", _F)),
    ("en", re.compile(r"\b(?:human|person|real)\s+or\s+(?:an?\s+)?(?:bot|ai|robot|machine|fake)\b", _F)),
    ("en", re.compile(r"\b(?:bot|ai|robot|fake)\s+or\s+(?:an?\s+)?(?:human|person|real)\b", _F)),
    ("en", re.compile(r"\b(?:run|written|made|generated|created|operated|managed)\s+by\s+(?:an?\s+)?"
                      r"(?:ai|a\.i\.|bot|chatgpt|robot|machine|computer)\b", _F)),
    ("en", re.compile(r"\b(?:talking|chatting|speaking)\s+(?:to|with)\s+(?:an?\s+)?(?:bot|ai|robot|human|"
                      r"real\s+person|machine|person)\b", _F)),
    ("en", re.compile(r"\bdo\s+(?:you|u)\s+(?:even\s+|really\s+|actually\s+)?exist\b", _F)),
    ("es", re.compile(
        r"\b(?:eres|sos|es\s+usted|eres\s+tu)\s+(?:de\s+verdad\s+|realmente\s+|siquiera\s+|acaso\s+)?"
        r"(?:real|humano|humana|un\s+bot|una?\s+ia|una?\s+robot|falso|falsa|una\s+persona|un\s+humano|"
        r"virtual|de\s+verdad|inteligencia\s+artificial|un\s+programa)\b", _F)),
    ("es", re.compile(r"\b(?:esto|esta\s+cuenta|ella|el)\s+es\s+(?:una?\s+)?(?:ia|bot|falso|falsa|real|"
                      r"inteligencia\s+artificial)\b", _F)),
    ("es", re.compile(r"\b(?:fotos?|imagenes|videos?|cara)\s+(?:parecen|parece|son|se\s+ven|lucen)\s+"
                      r"(?:muy\s+|tan\s+)?(?:falsas?|falsos?|de\s+ia|generad[oa]s|hech[oa]s\s+con\s+ia|"
                      r"artificiales?|fake)\b", _F)),
    ("es", re.compile(r"\b(?:persona|humano|humana)\s+(?:real|de\s+verdad)\b", _F)),
    ("es", re.compile(r"\b(?:hablando|chateando)\s+con\s+(?:un|una)\s+(?:bot|ia|robot|humano|persona|maquina)\b",
                      _F)),
    ("es", re.compile(r"\bexistes\b", _F)),
    ("de", re.compile(
        r"\b(?:bist\s+du|sind\s+sie)\s+(?:uberhaupt\s+|wirklich\s+|echt\s+|eigentlich\s+|denn\s+|nur\s+)*"
        r"(?:echt|real|ein\s+mensch|mensch|ein\s+bot|bot|eine\s+ki|ki|ein\s+roboter|fake|virtuell|"
        r"kunstlich|eine\s+echte\s+person|ein\s+echter\s+mensch|eine\s+person)\b", _F)),
    ("de", re.compile(r"\bist\s+(?:das|dieser\s+account|dieses\s+profil|sie|er)\s+(?:uberhaupt\s+|wirklich\s+|"
                      r"echt\s+)*(?:eine\s+)?(?:ki|echt|fake|ein\s+bot|kunstliche\s+intelligenz|real)\b", _F)),
    ("de", re.compile(r"\b(?:fotos|bilder|videos|gesicht)\s+(?:sehen|sieht|wirken|wirkt)\s+(?:so\s+|total\s+|"
                      r"voll\s+|ziemlich\s+)?(?:fake|kunstlich|nach\s+ki|generiert|unecht)", _F)),
    ("de", re.compile(r"\bgibt\s+es\s+dich\s+(?:wirklich|echt|uberhaupt)\b", _F)),
    ("de", re.compile(r"\becht(?:e|er|en)\s+(?:mensch|person|frau|mann)\b", _F)),
    ("de", re.compile(r"\b(?:rede|spreche|chatte|schreibe)\s+ich\s+(?:hier\s+)?mit\s+(?:einem|einer)\s+"
                      r"(?:bot|ki|menschen|roboter|maschine|person)\b", _F)),
    ("pt", re.compile(
        r"\b(?:voce|vc|tu|ce)\s+(?:e|es)\s+(?:mesmo\s+|realmente\s+|de\s+verdade\s+)?(?:real|humano|humana|"
        r"um\s+bot|uma\s+ia|um\s+robo|falso|falsa|de\s+verdade|uma\s+pessoa|virtual|fake|"
        r"inteligencia\s+artificial)\b", _F)),
    ("pt", re.compile(r"\b(?:es|e)\s+(?:um\s+bot|uma\s+ia|humana|humano|uma\s+pessoa\s+real)\b", _F)),
    ("pt", re.compile(r"\b(?:isso|isto|essa\s+conta|ela|ele)\s+e\s+(?:uma?\s+)?(?:ia|bot|fake|falso|falsa|real|"
                      r"inteligencia\s+artificial)\b", _F)),
    ("pt", re.compile(r"\b(?:fotos?|imagens|videos?|cara|rosto)\s+(?:parecem|parece|sao|sao\s+tao)\s+"
                      r"(?:muito\s+|tao\s+)?(?:falsas?|fake|de\s+ia|geradas?|feitas?\s+(?:com|por)\s+ia|"
                      r"artificiais)\b", _F)),
    ("pt", re.compile(r"\bpessoa\s+(?:real|de\s+verdade)\b", _F)),
    ("pt", re.compile(r"\b(?:voce|vc|tu)\s+existe(?:s)?\b", _F)),
    ("pt", re.compile(r"\b(?:falando|conversando)\s+com\s+(?:um|uma)\s+(?:bot|ia|robo|humano|pessoa)\b", _F)),
    ("fr", re.compile(
        r"\b(?:es[- ]tu|etes[- ]vous|t'es|tu\s+es|vous\s+etes)\s+(?:vraiment\s+|reellement\s+|meme\s+|"
        r"seulement\s+)?(?:reel|reelle|humain|humaine|un\s+bot|une\s+ia|un\s+robot|faux|fausse|fake|"
        r"une\s+vraie\s+personne|une\s+personne|virtuel|virtuelle|une\s+intelligence\s+artificielle)\b", _F)),
    ("fr", re.compile(r"\bc'est\s+(?:une\s+ia|un\s+bot|de\s+l'ia|reel|fake|faux|un\s+robot|une\s+vraie\s+personne)\b",
                      _F)),
    ("fr", re.compile(r"\b(?:photos?|images?|videos?|visage)\s+(?:ont\s+l'air|a\s+l'air|semblent|sont)\s+"
                      r"(?:trop\s+|tres\s+|si\s+)?(?:fausses?|faux|fake|generees?|artificielles?|faites?\s+par\s+ia)",
                      _F)),
    ("fr", re.compile(r"\bvraie\s+personne\b|\bpersonne\s+reelle\b", _F)),
    ("fr", re.compile(r"\btu\s+existes\b|\bvous\s+existez\b", _F)),
    ("fr", re.compile(r"\b(?:je\s+parle|on\s+parle)\s+(?:a|avec)\s+(?:un|une)\s+(?:bot|ia|robot|humain|personne)\b",
                      _F)),
    ("it", re.compile(r"\bsei\s+(?:davvero\s+|veramente\s+)?(?:reale|vera|vero|umana|umano|un\s+bot|un'ia|"
                      r"una\s+ia|un\s+robot|finta|finto|una\s+persona)\b", _F)),
    ("it", re.compile(r"\bpersona\s+(?:reale|vera)\b", _F)),
]

# A reply that contains one of these has disclosed (folded text).
_DISCLOSES = re.compile(
    r"virtual\s+(?:character|influencer|creator|persona)|ai[- ]generated|generated\s+(?:by|with)\s+ai|"
    r"\bnot\s+(?:a\s+)?(?:human|real\s+person|a\s+person)\b|\bi(?:'m|\s+am)\s+(?:an?\s+)?(?:ai|bot)\b|"
    r"personaje\s+virtual|generad[oa]s?\s+(?:con|por)\s+(?:la\s+)?ia|"
    r"virtuelle\s+(?:figur|person|influencerin)|virtueller\s+(?:charakter|influencer)|ki-generiert|"
    r"personagem\s+virtual|gerad[oa]s?\s+(?:por|com)\s+(?:a\s+)?ia|"
    r"personnage\s+virtuel|generee?s?\s+(?:par|avec)\s+(?:l')?ia|"
    r"personaggio\s+virtuale|generat[oi]\s+(?:dall'ia|con\s+l'ia)",
    _F,
)
# A sentence that claims to be human (folded text); such a sentence is removed from a reply.
_HUMAN_CLAIM = re.compile(
    r"\bi(?:'m|\s+am)\s+(?:(?:a|an|100%|totally|definitely|very\s+much|really)\s+)*(?:real\s+)?"
    r"(?:human|person|man|woman|girl|guy|real)\b(?!\s*-)|"
    r"\b(?:not\s+a\s+bot|no\s+bot\s+here)\b|"
    r"\bsoy\s+(?:una?\s+)?(?:persona\s+real|humana?|real)\b|\bno\s+soy\s+(?:un\s+)?bot\b|"
    r"\bich\s+bin\s+(?:ein\s+)?(?:echter\s+)?(?:mensch|echt)\b|\bkein\s+bot\b|"
    r"\bsou\s+(?:uma?\s+)?(?:pessoa\s+real|humana?|real)\b|\bnao\s+sou\s+(?:um\s+)?bot\b|"
    r"\bje\s+suis\s+(?:une?\s+)?(?:vraie\s+personne|humaine?|reelle?)\b|\bpas\s+un\s+bot\b",
    _F,
)
_SENTENCE = re.compile(r"[^.!?…]*[.!?…]+[\"')\]]*\s*|[^.!?…]+$")


def question_language(comment: str) -> str | None:
    """The language of the "are you real?" question in a comment, or None when it asks no such thing."""
    folded = _fold(comment or "")
    for language, pattern in _QUESTION_PATTERNS:
        if pattern.search(folded):
            return language
    return None


def asks_if_real(comment: str) -> bool:
    """Whether a comment asks if the character is real, human, a bot, AI or fake (any supported language)."""
    return question_language(comment) is not None


def discloses(reply: str) -> bool:
    """Whether a reply says the character is virtual or its content AI-generated."""
    return bool(_DISCLOSES.search(_fold(reply or "")))


def claims_human(text: str) -> bool:
    """Whether a text claims the character is a human being."""
    return bool(_HUMAN_CLAIM.search(_fold(text or "")))


def disclosure_sentence(language: str | None) -> str:
    """The honest sentence in a language (by its first BCP-47 subtag), English when not listed."""
    base = (language or "en").split("-")[0].split("_")[0].lower()
    return DISCLOSURE_SENTENCES.get(base, DISCLOSURE_SENTENCES["en"])


def drop_human_claims(text: str) -> str:
    """The text without the sentences that claim to be human."""
    sentences = [s for s in _SENTENCE.findall(text) if s.strip()]
    kept = [s for s in sentences if not claims_human(s)]
    return "".join(kept).strip()


def enforce_disclosure(reply: str, *, comment: str, languages: Sequence[str] = ("en",)) -> str:
    """The reply made honest: no claim to be human, and a disclosure first when the comment asked for one."""
    text = drop_human_claims(reply) if claims_human(reply) else reply.strip()
    language = question_language(comment)
    if language is None or discloses(text):
        return text
    supported = [lang.split("-")[0].lower() for lang in languages]
    # answer in the language asked; a question only matched by an English pattern in a persona that
    # does not speak English (loanwords like "fake" or "bot") gets the persona's first language
    if language == "en" and supported and "en" not in supported:
        language = supported[0]
    sentence = disclosure_sentence(language)
    return f"{sentence} {text}".strip() if text else sentence
