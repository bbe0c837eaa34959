"""Characters: personas, templates and the disclosure every public profile carries."""

from ainfluencer.characters.persona import (
    CURRENT_SCHEMA_VERSION,
    DISCLOSURE_LINE,
    TRAIT_NAMES,
    HashtagHabit,
    Persona,
    Traits,
    bio_with_disclosure,
    export_persona_json,
    import_persona_json,
    persona_system_prompt,
    validate_persona,
)

__all__ = [
    "CURRENT_SCHEMA_VERSION",
    "DISCLOSURE_LINE",
    "TRAIT_NAMES",
    "HashtagHabit",
    "Persona",
    "Traits",
    "bio_with_disclosure",
    "export_persona_json",
    "import_persona_json",
    "persona_system_prompt",
    "validate_persona",
]
