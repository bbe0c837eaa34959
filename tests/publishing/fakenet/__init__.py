"""FakeNet, the test network, as a platform package: adapter, text rules, kinds and posting times.

It proves the claim that a new network is one package plus one registry line: nothing in
``src/ainfluencer`` knows about it, and a test registers it with
``runtime.platforms = runtime.platforms.with_platforms(*fakenet.PLATFORMS)`` (the built-in networks are
listed the same way in ``platforms/registry.py``).
"""

from ainfluencer.platforms.spec import PlatformSpec

from .rules import BLIND_RULES, LIMITED_RULES, TEXT_RULES

PLATFORM = PlatformSpec(
    name="fakenet",
    display_name="FakeNet",
    adapter="fakenet.adapter:FakeNetAdapter",
    text_rules=TEXT_RULES,
    writer_kinds={"tweet": "post"},
)
LIMITED = PlatformSpec(name="fakenet_limited", display_name="FakeNet", adapter="fakenet.adapter:FakeNetLimitedAdapter",
                       text_rules=LIMITED_RULES)
BLIND = PlatformSpec(name="fakenet_blind", display_name="FakeNet", adapter="fakenet.adapter:FakeNetBlindAdapter",
                     text_rules=BLIND_RULES)
PLATFORMS = (PLATFORM, LIMITED, BLIND)
