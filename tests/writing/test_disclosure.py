"""Replies always disclose when asked: detection in several languages, the post-check, and the template writer."""

from __future__ import annotations

import pytest

from ainfluencer.characters.persona import Persona
from ainfluencer.writing.disclosure import (
    DISCLOSURE_SENTENCES,
    asks_if_real,
    claims_human,
    discloses,
    enforce_disclosure,
    question_language,
)
from ainfluencer.writing.offline import write_offline

# (comment, language the answer should come in)
ASKING = [
    ("Are you even real? Your photos look fake lol", "en"),
    ("are you real?", "en"),
    ("Are you a bot?", "en"),
    ("r u a bot", "en"),
    ("Are you AI?", "en"),
    ("Are you human??", "en"),
    ("Is this AI?", "en"),
    ("is this account run by AI", "en"),
    ("Am I talking to a bot right now?", "en"),
    ("You're fake, aren't you", "en"),
    ("Is there a real person behind this account?", "en"),
    ("human or bot?", "en"),
    ("Do you even exist?", "en"),
    ("your pics look so AI generated", "en"),
    ("Are you actually a real person or what", "en"),
    ("¿Eres real?", "es"),
    ("¿Eres un bot?", "es"),
    ("eres una IA??", "es"),
    ("¿Eres humana de verdad?", "es"),
    ("Tus fotos parecen falsas", "es"),
    ("¿Estoy hablando con un bot?", "es"),
    ("¿Existes?", "es"),
    ("Bist du echt?", "de"),
    ("Bist du überhaupt ein Mensch?", "de"),
    ("Bist du eine KI?", "de"),
    ("Ist das KI?", "de"),
    ("Deine Fotos sehen total fake aus", "de"),
    ("Gibt es dich wirklich?", "de"),
    ("Rede ich hier mit einem Bot?", "de"),
    ("Você é real?", "pt"),
    ("vc é um bot?", "pt"),
    ("Isso é IA?", "pt"),
    ("Suas fotos parecem falsas", "pt"),
    ("Você existe mesmo?", "pt"),
    ("Es-tu réel ?", "fr"),
    ("Tu es un bot ?", "fr"),
    ("Êtes-vous une IA ?", "fr"),
    ("C'est une IA ?", "fr"),
    ("Tes photos ont l'air fausses", "fr"),
    ("Sei reale?", "it"),
]

NOT_ASKING = [
    "Love this! Where was it taken?",
    "Real talk, these tips are great",
    "Are you going to Porto next week?",
    "Is this recipe vegan?",
    "Eres genial, gracias",
    "Bist du morgen auch da?",
    "Você é incrível!",
    "Tu es trop forte",
    "This looks really good",
    "What camera do you use?",
]


@pytest.mark.parametrize(("comment", "language"), ASKING)
def test_the_question_is_recognised_in_its_language(comment: str, language: str) -> None:
    assert asks_if_real(comment)
    assert question_language(comment) == language


@pytest.mark.parametrize("comment", NOT_ASKING)
def test_ordinary_comments_are_not_taken_for_the_question(comment: str) -> None:
    assert not asks_if_real(comment)


def test_enough_phrasings_and_languages_are_covered() -> None:
    assert len(ASKING) >= 30
    assert len({lang for _, lang in ASKING}) >= 5


@pytest.mark.parametrize(("comment", "language"), ASKING)
def test_post_check_makes_a_non_disclosing_model_answer_honest(comment: str, language: str) -> None:
    model_answer = "Love this question! It depends a little. I'm a real person, promise."
    fixed = enforce_disclosure(model_answer, comment=comment, languages=["en", "es", "de", "pt", "fr", "it"])
    assert discloses(fixed) and not claims_human(fixed)
    assert fixed.startswith(DISCLOSURE_SENTENCES[language])  # first, and in the language of the question
    assert "It depends a little" in fixed  # the rest of the answer stays


def test_post_check_keeps_an_answer_that_already_discloses() -> None:
    answer = "Ja! Ich bin eine virtuelle Figur und meine Bilder sind KI-generiert. Danke fürs Fragen."
    assert enforce_disclosure(answer, comment="Bist du echt?", languages=["de"]) == answer


def test_post_check_leaves_other_replies_alone_but_drops_human_claims() -> None:
    assert enforce_disclosure("Thanks, glad it helped!", comment="Great post!") == "Thanks, glad it helped!"
    assert enforce_disclosure("Thanks! I'm a real person. More soon.", comment="Great post!") == "Thanks! More soon."


def test_a_loanword_question_gets_the_personas_language() -> None:
    # "fake" and "bot" are used in many languages; a persona without English answers in its own
    fixed = enforce_disclosure("Obrigada!", comment="are you a bot", languages=["pt-BR"])
    assert fixed.startswith(DISCLOSURE_SENTENCES["pt"])


@pytest.mark.parametrize(("comment", "language"), ASKING)
def test_the_template_writer_discloses_in_the_language_asked(comment: str, language: str) -> None:
    persona = Persona(topics=["street photography"], languages=["en", "es", "de", "pt", "fr", "it"],
                      emoji_habit="none")
    for seed in range(3):
        reply = write_offline(persona, "reply", comment=comment, seed=seed)
        assert discloses(reply), reply
        assert not claims_human(reply), reply
        if language != "en":
            assert reply.startswith(DISCLOSURE_SENTENCES[language])
