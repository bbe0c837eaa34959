"""The offline template writer: a fallback grammar that speaks in a persona's voice without any model.

It is labelled as the template writer wherever it shows, and it writes only when the character names
it or a person chose it for a text; a configured model that is down is reported, never replaced.

Each text is assembled from sentence pools (openers, hooks, details, asides, tips, questions, calls to
action, closers) filled with the persona's topics and interests and the brief, then shaped by the
traits:

    warmth       warm openers and sign-offs, encouragement
    humour       light self-aware asides
    formality    >= 0.6: no contractions and no casual-only phrases; < 0.6: contractions;
                 < 0.3: slang interjections as well
    energy       the share of statements that end in "!" (3 % at 0.0, 88 % at 1.0) and lively openers
    curiosity    questions to the audience ("I wonder…")
    confidence   assertive recommendations when high, gentle hedges when low
    playfulness  playful interjections and more emoji (within the persona's emoji habit)

The emoji habit is a hard bound: ``none`` never adds emoji; ``light`` adds at most one to a short
text and two to a long one; ``heavy`` adds two to four to a short text and up to six to a long one.
Output is English; the persona's other languages are for model backends. The same ``seed`` gives the
same text; different seeds vary the whole structure. Replies never claim to be human, and a comment
asking whether the character is real gets an honest answer (``writing/disclosure.py``), in the
language it was asked in. With a brief, the text is about the brief: its words become the hashtags,
and the persona's advice lines, anecdotes and tips stay out. Nothing is presented as a fact, a result
or something the audience said.
"""

from __future__ import annotations

import random
import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from ainfluencer.characters.persona import DISCLOSURE_LINE, Persona
from ainfluencer.writing.disclosure import disclosure_sentence, enforce_disclosure, question_language
from ainfluencer.writing.platform_rules import apply_hashtags, fit_text, fit_within, rules_for, text_length
from ainfluencer.writing.uniqueness import DuplicateCheck, UniquenessIndex

Kind = Literal["caption", "tweet", "thread", "youtube_title", "youtube_description", "telegram_post", "reply"]
Style = Literal["casual", "professional", "promotional", "storytelling", "question"]
KINDS: tuple[str, ...] = get_args(Kind)
STYLES: tuple[str, ...] = get_args(Style)

# where each kind is published when the request names no platform: (platform, platform kind)
DEFAULT_TARGET: dict[str, tuple[str, str | None]] = {
    "caption": ("instagram", "caption"),
    "tweet": ("x", "post"),
    "thread": ("x", "thread"),
    "youtube_title": ("youtube", "title"),
    "youtube_description": ("youtube", "description"),
    "telegram_post": ("telegram", "text"),
    "reply": ("mastodon", "post"),
}


@dataclass(frozen=True)
class WritingRequest:
    """What to write: the kind of text, its style, the brief, and for replies the comment."""

    kind: Kind = "caption"
    style: Style = "casual"
    brief: str = ""
    platform: str | None = None
    comment: str | None = None

    def to_prompt(self) -> str:
        """The request as the user turn for any backend (models read it; the offline backend parses it)."""
        lines = [
            f"Write one {self.kind.replace('_', ' ')} in a {self.style} style.",
            f"Kind: {self.kind}",
            f"Style: {self.style}",
        ]
        if self.platform:
            lines.append(f"Platform: {self.platform}")
        if self.brief:
            lines.append(f"Brief: {self.brief}")
        if self.comment:
            lines.append(f"Comment: {self.comment}")
        lines.append("Answer with the text only.")
        return "\n".join(lines)

    @classmethod
    def from_prompt(cls, text: str) -> WritingRequest:
        """Read a request back from ``to_prompt`` output; free text becomes the brief of a caption."""
        fields: dict[str, str] = {}
        for line in text.splitlines():
            m = re.match(r"\s*(kind|style|platform|brief|comment)\s*:\s*(.*)$", line, re.IGNORECASE)
            if m:
                fields[m.group(1).lower()] = m.group(2).strip()
        kind = fields.get("kind", "caption")
        style = fields.get("style", "casual")
        brief = fields.get("brief", "" if fields else " ".join(text.split())[:200])
        return cls(
            kind=kind if kind in KINDS else "caption",  # type: ignore[arg-type]
            style=style if style in STYLES else "casual",  # type: ignore[arg-type]
            brief=brief,
            platform=fields.get("platform") or None,
            comment=fields.get("comment") or None,
        )


# --- vocabulary ---------------------------------------------------------------------------------------
# Templates are written in full forms ("I am", "do not"); informal voices contract them afterwards.
# A leading "~" marks casual-only entries, dropped for formal voices.

TIMES = [
    "this morning",
    "today",
    "this week",
    "on Sunday",
    "after a long day",
    "before breakfast",
    "tonight",
    "this weekend",
    "over the last month",
    "lately",
    "yesterday afternoon",
    "on my lunch break",
    "earlier today",
    "last night",
    "on a rainy afternoon",
    "over the holidays",
    "first thing today",
    "at the end of a busy week",
    "on Monday",
    "late on Friday",
]
SPANS = ["a busy week", "a whole month", "thirty days", "two weeks", "a long season", "a few quiet evenings"]
DAY_WORDS = ["day", "morning", "week", "evening", "afternoon", "weekend"]
ADJS = [
    "simple",
    "surprisingly fun",
    "underrated",
    "worth the effort",
    "calming",
    "rewarding",
    "satisfying",
    "doable",
    "refreshing",
    "beginner-friendly",
    "quietly powerful",
    "easier than it looks",
]
ADDRESS_WARM = ["friends", "lovely people", "everyone", "you wonderful lot", "my favourite people"]
ADDRESS_FORMAL = ["everyone", "all", "colleagues and friends"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NUMBERS = ["3", "4", "5", "7"]
FALLBACK_TOPICS = ["small daily routines", "new ideas", "today's project", "learning something new"]

OPENERS = {
    "warm": [
        "Hello, {address}",
        "Hi {address}",
        "Good {day_word}, {address}",
        "~Hey, you",
        "Welcome back, {address}",
        "So happy you are here",
        "A little encouragement for your {day_word}",
        "Hi there, {address}",
    ],
    "energetic": [
        "~Let us go",
        "Big {day_word}",
        "~Okay, this is exciting",
        "Guess what",
        "Here we go",
        "~Buckle up",
        "Happy {weekday}",
        "~Woohoo",
        "New {day_word}, new energy",
    ],
    "formal": [
        "Good {day_word}",
        "Welcome",
        "A brief update",
        "Greetings, {address}",
        "Here is today's note",
        "A short reflection for today",
    ],
    "calm": [
        "Quick one",
        "A small update",
        "A quiet {day_word} update",
        "Just a note",
        "Hi",
        "Slow {day_word} thoughts",
    ],
    "playful": [
        "~Psst",
        "Breaking news from my desk",
        "~Attention, please",
        "~Knock knock, it is {topic} time",
        "Small announcement",
        "~Plot update",
    ],
    "curious": ["I have been wondering about something", "Question of the {day_word}", "Here is a thought"],
}
HOOKS = [
    "Let us talk about {topic}",
    "{time}, I made some real progress with {topic}",
    "Here is what {topic} taught me {time}",
    "A quick note on {topic}",
    "Small update from the world of {topic}",
    "I finally made time for {topic} {time}",
    "Nobody told me {topic} could feel this {adj}",
    "My honest take on {topic}",
    "Today's focus: {topic}",
    "If you have been putting off {topic}, this one is for you",
    "Some thoughts on {topic} after {span}",
    "{topic} will always find a way to surprise you",
    "This is your sign to give {topic} another try",
    "I have been rethinking how I approach {topic}",
    "Things I wish I had known sooner about {topic}",
    "One thing about {topic} that rarely gets said",
    "Back with another round of {topic}",
    "I cannot stop thinking about {topic}",
    "A little {topic} appreciation post",
    "We need to talk about {topic}",
    "Quick {topic} reminder for anyone who needs it",
    "It is a {topic} kind of {day_word}",
    "Today I went back to basics with {topic}",
    "Zooming in on {topic} for a moment",
    "Let me share a small {topic} win",
    "Here is a gentle nudge toward {topic}",
    "{topic} kept me busy {time}",
    "I spent {time} experimenting with {topic}",
    "My {day_word} started with {topic}",
    "Fresh notes on {topic}, straight from my notebook",
]
DETAILS = [
    "It started as a small experiment and turned into my favourite part of the {day_word}",
    "The trick was slowing down and paying attention to the basics",
    "I brought {interest} into it too, and the two work surprisingly well together",
    "Turns out the simple version works better than the fancy one",
    "What surprised me most was how much easier it got after the third try",
    "I kept notes the whole time, and the pattern was clear",
    "The first attempt was a mess, the second was better, and the third finally clicked",
    "There is something calming about doing one thing properly",
    "I used to overthink it, but these days I just start",
    "Consistency beat intensity, again",
    "It connects nicely with {topic2}, which I will cover soon",
    "Most of the progress came from tiny adjustments",
    "I tried a new approach this time, and it paid off",
    "The details matter more than the gear",
    "Going in with a clear plan made all the difference",
    "Even fifteen minutes was enough to feel the difference",
    "I went in with low expectations and came out with a new favourite",
    "Every round teaches me something new",
    "This is the version I would show a friend who is just starting",
    "My {interest} obsession snuck in here too, of course",
    "Half the fun was figuring out what not to do",
    "The result is not perfect, but it is honest",
    "It took longer than planned, and I do not mind one bit",
    "It reminded me why I fell for {topic} in the first place",
    "Next up, I want to combine it with {topic2}",
    "The best part was sharing it with this community",
    "Small steps, repeated often, still win",
    "I learned more from the mistakes than from the wins",
    "Simple tools, clear steps and a steady pace carried the whole thing",
    "There was a moment halfway through when everything made sense",
    "My notebook is already full of ideas for the next round",
    "A fresh pair of eyes changed more than I expected",
    "Changing one thing at a time made it easy to see what worked",
    "Good light, a quiet hour and a clear goal were the whole recipe",
    "Some days it flows, some days it does not, and both count",
    "I did not expect {topic2} to help with this, but it did",
    "Writing down each step turned a vague idea into a plan",
    "The hardest part was the first five minutes",
    "Keeping it {adj} was the whole point",
    "I finally understand why people rave about {topic}",
    "Trying it {time} instead of late at night was a small but real upgrade",
    "Looking back at my first attempts, the change is obvious",
    "It is not fancy, and that is the point",
    "I am keeping this one simple on purpose",
]
ASIDES = [
    "My coffee has strong opinions about this",
    "Plot twist: the hardest part was starting",
    "Ten out of ten, would overthink again",
    "My to-do list is judging me, but that is fine",
    "In my defence, the snacks were excellent",
    "Yes, I took far too many notes",
    "The only thing I dropped this week was my expectations",
    "Somewhere, my past self is laughing",
    "It went great, unless you count the three do-overs",
    "Warning: side effects include wanting to do it again",
    "I regret nothing, except maybe the first attempt",
    "Current status: proud and slightly chaotic",
    "Technically, this now counts as a hobby and a personality",
    "My inner critic took the day off, finally",
    "It looked nothing like this an hour earlier",
    "No keyboards were harmed in the process, mostly",
    "I would like to thank my patience for showing up, eventually",
    "Being virtual does not stop me from procrastinating",
]
# no "Fun fact": nothing this writer says is one
INTERJECTIONS = ["Tiny confession", "Spoiler", "Hot take", "Real talk", "Side note"]
SLANG = ["Honestly", "Lowkey", "Ngl", "Not gonna lie", "For real", "Tbh"]
CONFIDENT = [
    "Here is the rule: start small and stay consistent",
    "Do this once and you will see why it works",
    "Trust the process; it works",
    "Make {topic} a habit, not a project",
    "Skip the shortcuts and nail the basics",
    "Commit to one week, then judge the results",
    "Stop waiting for the perfect moment and start today",
    "Focus on one thing and do it well",
    "Pick one step from this post and do it today",
    "Master the basics first; everything else follows",
    "This is the approach I recommend to everyone",
    "Your future self will thank you for starting now",
    "Keep it simple and keep showing up",
    "It is simpler than it looks, so give it a go",
    "Take this one seriously, because it pays off",
]
HEDGES = [
    "I think this might work for you too",
    "I am still learning, but this seems to help",
    "Maybe it is just me, but this felt like progress",
    "I could be wrong, but it is worth a try",
    "It may not be the perfect method, but it worked for me",
    "Take it with a grain of salt; it is only my experience",
    "It might not suit everyone, and that is okay",
    "I am no expert, just sharing what I noticed",
    "Perhaps the real lesson here is patience",
    "I am still figuring it out, one step at a time",
    "This is just one way to do it",
    "It seems to help, at least for me",
]
QUESTIONS = [
    "What is your go-to approach to {topic}",
    "Have you tried this yet",
    "How do you fit {topic} into a busy week",
    "What should I try next",
    "Which part would you like me to explain in detail",
    "Are you team {topic} or team {topic2}",
    "What is one thing you would change",
    "What got you into {topic}",
    "Do you have a favourite trick for {topic}",
    "What would you add to this",
    "Who else is working on {topic} right now",
    "How long did it take you to get the hang of {topic}",
    "What is the best advice you ever got about {topic}",
    "If you could ask me one thing about {topic}, what would it be",
    "Would you try this version",
    "What does your {topic} routine look like",
    "Any tips I should borrow",
    "Which would you pick: {topic} or {topic2}",
    "What is holding you back from trying {topic}",
    "I wonder: does this work the same for everyone",
    "What is your biggest {topic} question right now",
    "How would you do it differently",
    "What surprised you most when you started",
    "Should I make this a series",
    "Would a step-by-step guide help",
]
CTAS = [
    "Save this post for your next {topic} session",
    "Share it with a friend who needs it",
    "Follow along for more {topic} ideas",
    "The full guide is linked in my profile",
    "Drop a comment if you want the step-by-step version",
    "Turn on notifications so you do not miss the next one",
    "Bookmark this for later",
    "Join me for the next round this week",
    "Check the link in my bio for the details",
    "Tag someone who would love this",
    "Try it this week and tell me how it went",
    "New {topic} posts land every week, so come along",
    "Grab the checklist from my profile and get started",
]
PROMO_HOOKS = [
    "Introducing {topic}",
    "Something new is here: {topic}",
    "You asked, and here it is: {topic}",
    "Big news for everyone into {topic2}: {topic}",
    "Meet {topic}, my new favourite",
    "It is finally here: {topic}",
    "I have been keeping a secret, and it is {topic}",
    "Say hello to {topic}",
]
STORY_OPENERS = [
    "Picture this: {time}, I was knee-deep in {topic}",
    "Story time, and it is about {topic}",
    "It all started {time}, with a simple idea about {topic}",
    "Not long ago, {topic} felt impossible to me",
    "Let me tell you how {topic} surprised me {time}",
    "Once upon a quiet {day_word}, I decided to try {topic}",
    "This is the story of me versus {topic}",
]
STORY_MIDDLES = [
    "At first, nothing went to plan",
    "Halfway through, I almost gave up",
    "Then something clicked",
    "The turning point was embarrassingly small",
    "I switched one habit, and the rest followed",
    "By the third day, the pieces started to fit",
    "I stopped chasing perfect and started chasing done",
]
STORY_ENDINGS = [
    "And that is how {topic} became part of my routine",
    "The moral of the story: start before you feel ready",
    "Now it is the part of my {day_word} I look forward to most",
    "I would do it all again, mistakes included",
    "Looking back, the struggle was the best part",
    "So here I am, still learning and loving it",
]
PRO_HOOKS = [
    "Today's insight on {topic}",
    "Key takeaway on {topic}",
    "A practical framework for {topic}",
    "Three principles I rely on for {topic}",
    "A structured look at {topic}",
    "Lessons learned from {span} of {topic}",
]
CLOSERS_WARM = [
    "Take care of yourselves",
    "Proud of you for being here",
    "Have a gentle {day_word}",
    "~Sending good vibes",
    "See you in the next one",
    "Thank you for being part of this",
    "Be kind to yourself this week",
]
CLOSERS_PLAIN = ["More soon", "Until next time", "That is all for today", "Back soon with more", "Stay tuned"]
TIPS = [
    "Start smaller than you think: a five-minute version of {topic} beats a perfect plan you never begin",
    "Pick one measure of progress and track it for two weeks",
    "Learn the fundamentals before buying new gear",
    "Copy a routine that works, then make it yours",
    "Schedule it like a meeting you cannot cancel",
    "Rest is part of the process, not a break from it",
    "Record your attempts; you will spot patterns faster",
    "Find one person to share progress with",
    "Keep a short list of what worked and what did not",
    "Do not compare your first chapter to someone else's twentieth",
    "Repeat the basics until they feel boring; then they are yours",
    "Prepare in batches so the doing feels easy",
    "When stuck, change one thing, not everything",
    "Celebrate small wins; they add up",
    "Ask for feedback early, while changes are still cheap",
    "Set up your space the night before",
    "Use a timer; it turns big tasks into small ones",
    "End each session knowing what you will do next time",
    "Mix {topic} with {topic2} to keep things fresh",
    "Quality first, speed later",
    "Write down why you started and reread it on slow days",
    "Skip the all-or-nothing mindset",
    "Plan a minimum version for bad days",
    "Review your progress every Sunday",
    "Borrow before you buy",
    "Practise in short, focused blocks",
    "Be curious about your mistakes instead of annoyed by them",
    "Keep your tools simple and within reach",
]
THREAD_INTROS = [
    "{n} things {topic} taught me",
    "A short thread on {topic} for beginners",
    "Everything I wish I had known when I started {topic}",
    "How I approach {topic}, step by step",
    "My {topic} playbook in {n} posts",
    "{n} small habits that changed my {topic}",
]
TITLES = [
    "How I got better at {topic} in {span}",
    "{n} {topic} mistakes I stopped making",
    "The {adj} guide to {topic}",
    "{topic}: what nobody tells beginners",
    "I tried a new {topic} routine for {span}",
    "Why {topic} changed my {day_word}s",
    "{topic} made {adj}",
    "My honest {topic} routine",
    "{n} {topic} ideas you can try {time}",
    "Everything I know about {topic} in one video",
    "{topic} for absolute beginners",
    "Fixing my {topic} routine",
    "Is {topic} worth it? My take after {span}",
    "{topic} vs {topic2}: which one wins",
    "What {span} of {topic} taught me",
    "The {topic} routine I keep coming back to",
    "{n} rules for {topic} that work",
    "Doing {topic} the {adj} way",
    "A {adj} {day_word} of {topic}",
    "{topic}, but make it {adj}",
    "Stop overcomplicating {topic}",
    "My {topic} setup, explained",
    "{topic} and {topic2}: a {day_word} in my life",
    "Beginner to confident: {topic} in {n} steps",
    "The truth about {topic} after {span}",
    "{n} questions about {topic}, answered",
    "Where I went wrong with {topic}",
    "Rebuilding my {topic} habit from zero",
    "{topic} on a busy {weekday}",
]
BULLETS = [
    "why {topic} matters more than it seems",
    "the setup I actually use",
    "common mistakes and quick fixes",
    "a simple routine you can copy",
    "how it connects to {topic2}",
    "what I would do differently next time",
    "the one change that made the biggest difference",
    "a beginner version and an advanced version",
]
# A brief names the subject ("a rainy morning market in Porto"). These pools speak about it without
# inventing anything (no visits, results, polls or quotes) and without generic self-help; the brief
# follows a colon or stands alone, so it reads right with or without its own article.
BRIEF_HOOKS = [
    "Today's post: {brief}",
    "On my mind today: {brief}",
    "This one is for you: {brief}",
    "Scene of the {day_word}: {brief}",
    "A small moment worth sharing: {brief}",
    "Sharing a little of this today: {brief}",
    "Quick post, one subject: {brief}",
    "{brief}",
]
BRIEF_DETAILS = [
    "Some moments deserve a slower look",
    "Little details make the whole picture",
    "Sharing it just as it is",
    "It is the kind of thing I like to come back to",
    "Sometimes the simple things say the most",
    "Take a moment with this one",
    "Ordinary things can be the best part of a {day_word}",
    "There is more to see the longer you look",
]
BRIEF_QUESTIONS = [
    "What do you notice first",
    "Would you like more posts like this",
    "What would you add",
    "What does this make you think of",
    "Which detail would you keep",
]
BRIEF_CTAS = ["Save this post for later", "Share it with a friend who would like it", "More like this soon",
              "Follow along for more"]
TOPIC_STOP_WORDS = frozenset("""a an the and or but of in on at to for from with by into over under about after before
this that these those my your our their his her its is are was were be been am i you we they it me us them
very just really so too some any every each all more most much many few little lot lots new today tonight
morning evening afternoon day week weekend kind sort thing things way""".split())
EMOJI_MOODS = {
    "warm": ["💛", "🤗", "🌸", "☺️"],
    "energetic": ["🔥", "⚡", "🚀", "🙌", "🎉"],
    "humour": ["😂", "😅", "🙃"],
    "playful": ["✨", "🎈", "😜", "🌈"],
    "calm": ["🌿", "☕", "🌙"],
    "curious": ["🤔", "👀"],
}
_ASKING = ("What", "Have", "Which", "How")
# reply pools by what the comment is: (first sentence, second sentence)
REPLIES: dict[str, tuple[list[str], list[str]]] = {
    "real": (
        [
            "Fair question! I am a virtual character, and my posts are AI-generated",
            "Honest answer: I am not a human. I am a virtual character, and this account is AI-generated",
            "I am a virtual character, so everything on this account is AI-generated, and I will always say so",
            "Good question. I am an openly virtual character, and AI writes my posts",
        ],
        [
            "I am always happy to talk about {topic}",
            "Happy to keep chatting about {topic} with you",
            "Thanks for asking openly",
        ],
    ),
    "taboo": (
        ["Thanks for the comment. I keep {taboo} out of this space", "I do not cover {taboo} here, sorry"],
        ["Happy to talk about {topic} any time", "Let us keep it about {topic} here"],
    ),
    "negative": (
        [
            "Fair point, and thank you for saying it",
            "I hear you, and I appreciate the honesty",
            "Thanks for the honest feedback",
            "That is a fair criticism",
        ],
        [
            "I will take it into account for the next post",
            "What would have made it better for you",
            "Different things work for different people",
            "I will keep improving this",
        ],
    ),
    "question": (
        ["Great question", "Good question", "Love this question", "Thanks for asking"],
        [
            "I will cover {topic} in more detail soon",
            "I will answer this properly in a future post",
            "I would rather answer that properly than guess, so watch this space",
        ],
    ),
    "positive": (
        [
            "Thank you so much",
            "This made my day",
            "Thank you, that means a lot",
            "So glad it helped",
            "~Aw, thank you",
            "That is so kind of you",
            "You just made my {day_word}",
            "Thank you for reading",
            "I really appreciate that",
        ],
        [
            "More {topic} coming soon",
            "Let me know if you try it",
            "Thanks for being here",
            "Your support keeps this going",
            "Next post is about {topic2}, so stay close",
            "Tell me how it goes if you try it {time}",
            "I will keep the {topic} posts coming",
            "Comments like this are why I keep sharing",
        ],
    ),
    "other": (
        [
            "Thanks for the comment",
            "Appreciate you stopping by",
            "Thanks for joining in",
            "Good to see you here",
            "Thanks for sharing your thoughts",
            "Noted, and thank you",
        ],
        [
            "What would you like to see next",
            "Have you tried {topic} yourself",
            "More {topic} soon",
            "What is your experience with {topic}",
            "I am planning a post on {topic2} next",
            "Stick around for more {topic}",
        ],
    ),
}
_CONTRACTIONS = [
    ("I am", "I'm"),
    ("I will", "I'll"),
    ("I would", "I'd"),
    ("I have been", "I've been"),
    ("I have had", "I've had"),
    ("you are", "you're"),
    ("you will", "you'll"),
    ("it is", "it's"),
    ("that is", "that's"),
    ("there is", "there's"),
    ("here is", "here's"),
    ("what is", "what's"),
    ("let us", "let's"),
    ("do not", "don't"),
    ("does not", "doesn't"),
    ("did not", "didn't"),
    ("cannot", "can't"),
    ("will not", "won't"),
    ("would not", "wouldn't"),
    ("is not", "isn't"),
    ("are not", "aren't"),
    ("we are", "we're"),
    ("who is", "who's"),
    ("could not", "couldn't"),
    ("should not", "shouldn't"),
    ("have not", "haven't"),
    ("where is", "where's"),
]
_CONTRACTION_RES = [
    (re.compile(rf"\b{re.escape(full)}\b(?!\s*[.!?,;:])", re.IGNORECASE), short) for full, short in _CONTRACTIONS
]
_ARTICLE = re.compile(r"\b([Aa]) (?=[aeiouAEIOU])(?!(?:u[sn]i|use|usu|one|once|eu|uk)\w*)")
# "an" before a consonant sound (not before a silent h, nor before an acronym read letter by letter)
_ARTICLE_AN = re.compile(r"\b([Aa])n (?=[b-df-hj-np-tv-zB-DF-HJ-NP-TV-Z][a-z])(?!(?:hour|honest|honou?r|heir)\w*)")
# "a a rainy…", "the a rainy…": a template article in front of a brief that brings its own
_DOUBLE_DETERMINER = re.compile(r"\b(?:[Aa]n?|[Tt]he|[Mm]y|[Yy]our|[Oo]ur) (?=(?:an?|the|my|your|our|this|that) )")
# a template that uses the topic as a bare noun or a modifier ("a {topic}", "{topic} kind of")
_MODIFIER_USE = re.compile(r"(?:\b(?:a|an|the|my|your|our|team)\s+\{topic\}|\{topic\}\s+[a-z]|\{topic\}:)")
_LEADING_ARTICLE = re.compile(r"^(?:the|a|an|my|our|your)\s+", re.IGNORECASE)
_POSITIVE = re.compile(r"\b(love|loved|great|amazing|awesome|thanks?|thank you|beautiful|helpful|nice|cool)\b", re.I)
_NEGATIVE = re.compile(r"\b(hate|bad|worst|boring|terrible|awful|useless|wrong|disagree)\b", re.I)


@dataclass(frozen=True)
class Voice:
    """Trait values after the style has nudged them."""

    warmth: float
    humour: float
    formality: float
    energy: float
    curiosity: float
    confidence: float
    playfulness: float

    @property
    def formal(self) -> bool:
        """No contractions, no casual-only phrases."""
        return self.formality >= 0.6

    @classmethod
    def of(cls, persona: Persona, style: str) -> Voice:
        """The persona's traits adjusted for a writing style."""
        t = persona.traits
        v = cls(t.warmth, t.humour, t.formality, t.energy, t.curiosity, t.confidence, t.playfulness)
        if style == "professional":
            v = replace(v, formality=max(v.formality, 0.7), humour=v.humour * 0.5, playfulness=v.playfulness * 0.4)
        elif style == "promotional":
            v = replace(v, energy=min(1.0, v.energy + 0.15), confidence=min(1.0, v.confidence + 0.2))
        elif style == "storytelling":
            v = replace(v, warmth=min(1.0, v.warmth + 0.1))
        elif style == "question":
            v = replace(v, curiosity=max(v.curiosity, 0.85))
        return v


def contract(text: str) -> str:
    """Turn full forms into contractions (I am → I'm), keeping a form that ends a clause ("what it is.")."""
    for pattern, short in _CONTRACTION_RES:

        def _sub(m: re.Match[str], short: str = short) -> str:
            return _cap(short) if m.group(0)[0].isupper() else short

        text = pattern.sub(_sub, text)
    return text


def fix_articles(text: str) -> str:
    """Article agreement: one article only (a a rainy → a rainy), "an" before a vowel sound, "a" before a consonant."""
    while (m := _DOUBLE_DETERMINER.search(text)) is not None:
        rest = text[m.end():]
        text = text[: m.start()] + (_cap(rest) if m.group(0)[0].isupper() else rest)
    text = _ARTICLE.sub(lambda m: m.group(1) + "n ", text)
    return _ARTICLE_AN.sub(lambda m: m.group(1) + " ", text)


def topic_tags(phrase: str, limit: int = 3) -> list[str]:
    """Hashtag words from a brief: names first (Porto), then the other content words (market, rainy)."""
    words = re.findall(r"[^\W\d_][\w'-]*", phrase or "")
    content = [w.strip("'-") for w in words if w.casefold() not in TOPIC_STOP_WORDS and len(w) >= 3]
    names = [w for w in content if w[:1].isupper()]
    rest = [w.lower() for w in content if not w[:1].isupper()]
    out: list[str] = []
    for w in [*names, *rest]:
        if w.casefold() not in {o.casefold() for o in out}:
            out.append(w)
    return out[:limit]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _lower_first(text: str) -> str:
    if len(text) > 1 and text[1].isupper():  # an acronym or "I"
        return text
    return text[:1].lower() + text[1:] if not text.startswith("I ") else text


class _Composer:
    """One text in the making: the random choices, the persona's words and the voice."""

    def __init__(self, persona: Persona, request: WritingRequest, rng: random.Random, character_name: str) -> None:
        self.p = persona
        self.req = request
        self.rng = rng
        self.name = character_name
        self.voice = Voice.of(persona, request.style)
        self.used: set[str] = set()
        topics = list(persona.topics) or list(persona.interests) or list(FALLBACK_TOPICS)
        brief = " ".join(request.brief.split()).rstrip(".!?")
        # with a brief the text is about the brief: no persona-topic tips, stances or invented anecdotes
        self.brief = brief
        self.brief_tags = topic_tags(brief)
        self.brief_sentence = ""
        if brief and (len(brief.split()) > 8 or request.brief.strip()[-1:] in ".!?"):
            self.brief_sentence = _cap(" ".join(request.brief.split()))
            brief = ""
        self.topic = brief or rng.choice(topics)
        # a phrase ("a rainy morning market in Porto") cannot stand where a template wants a bare noun
        self.topic_is_phrase = len(self.topic.split()) > 2 or bool(_LEADING_ARTICLE.match(self.topic))
        others = [t for t in [*topics, *persona.interests] if t.casefold() != self.topic.casefold()]
        self.topic2 = rng.choice(others) if others else rng.choice(FALLBACK_TOPICS)
        self.interests = list(persona.interests) or [self.topic2]

    # choices -----------------------------------------------------------------------------------------
    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def pick(self, pool: Sequence[str]) -> str:
        if self.topic_is_phrase:
            fitting = [s for s in pool if not _MODIFIER_USE.search(s)]
            pool = fitting or pool
        options = [s for s in pool if not (self.voice.formal and s.startswith("~")) and s not in self.used]
        if not options:
            options = [s for s in pool if not (self.voice.formal and s.startswith("~"))] or list(pool)
        choice = self.rng.choice(options)
        self.used.add(choice)
        return choice.lstrip("~")

    def fill(self, template: str) -> str:
        values = {
            "topic": self.topic,
            "topic2": self.topic2,
            "interest": self.rng.choice(self.interests),
            "time": self.rng.choice(TIMES),
            "span": self.rng.choice(SPANS),
            "day_word": self.rng.choice(DAY_WORDS),
            "adj": self.rng.choice(ADJS),
            "address": self.rng.choice(ADDRESS_FORMAL if self.voice.formal else ADDRESS_WARM),
            "weekday": self.rng.choice(WEEKDAYS),
            "n": self.rng.choice(NUMBERS),
            "name": self.name or "me",
            "brief": self.brief,
        }
        return _cap(template.format(**values))

    def end(self, sentence: str, *, question: bool = False) -> str:
        sentence = sentence.rstrip()
        if sentence[-1:] in ".!?…":
            return sentence
        if question:
            return sentence + "?"
        p_exclaim = 0.03 + 0.7 * self.voice.energy**1.5
        return sentence + ("!" if self.chance(p_exclaim) else ".")

    def say(self, pool: Sequence[str], *, question: bool = False) -> str:
        return self.end(self.fill(self.pick(pool)), question=question)

    # building blocks ---------------------------------------------------------------------------------
    def opener(self) -> str | None:
        v = self.voice
        weights = {
            "warm": v.warmth**2,
            "energetic": v.energy**2,
            "formal": v.formality**2 if v.formal else 0.0,
            "calm": (1 - v.energy) ** 2 * 0.6,
            "playful": 0.0 if v.formal else v.playfulness**2 * 0.8,
            "curious": v.curiosity**2 * 0.5,
        }
        if not self.chance(0.35 + 0.5 * max(v.warmth, v.energy)):
            return None
        moods = list(weights)
        mood = self.rng.choices(moods, weights=[weights[m] + 0.01 for m in moods])[0]
        text = self.fill(self.pick(OPENERS[mood]))
        return self.end(text)

    def hook(self) -> str | None:
        if self.brief_sentence:
            return None  # the brief's own sentence says what the post is about
        if self.brief:
            return self.say(BRIEF_HOOKS)
        style = self.req.style
        if style == "promotional" and self.chance(0.7):
            return self.say(PROMO_HOOKS)
        if style == "storytelling":
            return self.say(STORY_OPENERS)
        if style == "professional" and self.chance(0.6):
            return self.say(PRO_HOOKS)
        if style == "question" and self.chance(0.7):
            return self.say(QUESTIONS, question=True)
        return self.say(HOOKS)

    def detail(self) -> str:
        if self.brief:
            return self.say(BRIEF_DETAILS)
        sentence = self.fill(self.pick(DETAILS))
        v = self.voice
        if not v.formal and self.chance(v.playfulness * 0.35):
            sentence = f"{self.pick(INTERJECTIONS)}: {_lower_first(sentence)}"
        return self.end(sentence)

    def stance(self) -> str | None:
        if self.brief:
            return None  # advice lines would be generic self-help next to a brief about something else
        c = self.voice.confidence
        if c >= 0.6:
            return self.say(CONFIDENT) if self.chance(0.85) else None
        if c <= 0.4:
            return self.say(HEDGES) if self.chance(0.85) else None
        return self.say(self.rng.choice([CONFIDENT, HEDGES])) if self.chance(0.4) else None

    def aside(self) -> str | None:
        if self.brief:
            return None  # the asides are small made-up anecdotes; a brief gets none
        h = self.voice.humour
        return self.say(ASIDES) if h > 0.3 and self.chance(0.1 + 0.8 * h) else None

    def signature(self, p: float = 0.45) -> str | None:
        phrases = self.p.signature_phrases
        if phrases and self.chance(p):
            phrase = self.rng.choice(phrases)
            return phrase if phrase[-1:] in ".!?…" else self.end(phrase)
        return None

    def engage(self, *, short: bool = False) -> list[str]:
        out: list[str] = []
        v = self.voice
        if self.req.style == "promotional" or self.chance(0.15):
            out.append(self.say(BRIEF_CTAS if self.brief else CTAS))
        if self.chance(v.curiosity):
            out.append(self.say(BRIEF_QUESTIONS if self.brief else QUESTIONS, question=True))
            if not short and v.curiosity > 0.7 and self.chance(0.4):
                out.append(self.say(BRIEF_QUESTIONS if self.brief else QUESTIONS, question=True))
        return out

    def closer(self) -> str | None:
        if self.chance(self.voice.warmth * 0.55):
            return self.say(CLOSERS_WARM)
        return self.say(CLOSERS_PLAIN) if self.chance(0.15) else None

    # finishing ---------------------------------------------------------------------------------------
    def emoji_budget(self, *, long: bool) -> int:
        habit = self.p.emoji_habit
        v = self.voice
        lively = 0.6 * v.playfulness + 0.4 * v.humour
        if habit == "none":
            return 0
        if habit == "light":
            limit = 2 if long else 1
            return sum(self.chance(0.1 + 0.75 * lively) for _ in range(limit))
        low, high = (3, 6) if long else (2, 4)
        return low + round((high - low) * (0.85 * lively + 0.15 * self.rng.random()))

    def emoji(self) -> str:
        v = self.voice
        if self.p.emoji_palette and self.chance(0.6):
            return self.rng.choice(self.p.emoji_palette)
        moods = {
            "warm": v.warmth,
            "energetic": v.energy,
            "humour": v.humour,
            "playful": v.playfulness,
            "calm": 1 - v.energy,
            "curious": v.curiosity,
        }
        mood = self.rng.choices(list(moods), weights=[w + 0.05 for w in moods.values()])[0]
        return self.rng.choice(EMOJI_MOODS[mood])

    def sprinkle(self, paragraphs: list[list[str]], *, long: bool) -> None:
        slots = [(i, j) for i, para in enumerate(paragraphs) for j in range(len(para))]
        count = min(self.emoji_budget(long=long), len(slots))
        for i, j in self.rng.sample(slots, count) if count else []:
            paragraphs[i][j] = f"{paragraphs[i][j]} {self.emoji()}"

    def voice_pass(self, text: str) -> str:
        if not self.voice.formal:
            text = contract(text)
        return fix_articles(text)

    def slang(self, sentences: list[str]) -> None:
        if self.voice.formality < 0.3 and sentences and self.chance(0.8 - self.voice.formality):
            idx = self.rng.randrange(len(sentences))
            # no slang on a question or on a sentence that already opens with "Spoiler:" and the like
            if not sentences[idx].rstrip().endswith("?") and ":" not in sentences[idx][:20]:
                sentences[idx] = f"{self.rng.choice(SLANG)}, {_lower_first(sentences[idx])}"

    def tags(self) -> list[str]:
        habit = self.p.hashtag_habit
        pool = [*self.p.topics, *self.p.interests]
        self.rng.shuffle(pool)
        if self.brief_tags:  # words of the brief, never the whole phrase glued into one tag
            pool = [*self.brief_tags, *(t for t in pool if t.casefold() not in {b.casefold() for b in self.brief_tags})]
        elif self.topic not in pool:
            pool.insert(0, _LEADING_ARTICLE.sub("", self.topic))
        n = self.rng.randint(habit.min_count, max(habit.min_count, habit.max_count))
        return pool[:n]


def _join(paragraphs: list[list[str]]) -> str:
    return "\n\n".join(" ".join(s for s in para if s) for para in paragraphs if any(para)).strip()


class OfflineWriter:
    """Writes every kind of text in a persona's voice, with no model (see the module docstring)."""

    def __init__(self, persona: Persona, *, character_name: str = "") -> None:
        self.persona = persona
        self.character_name = character_name
        # two characters given the same seed must not write the same skeleton
        self._fingerprint = zlib.crc32(f"{character_name}|{persona.model_dump_json()}".encode())

    def _rng(self, seed: int | None) -> random.Random:
        if seed is None:
            return random.Random()  # noqa: S311 - variety, not security
        return random.Random(f"{seed}|{self._fingerprint}")  # noqa: S311 - variety, not security

    def write(self, request: WritingRequest, *, seed: int | None = None) -> str:
        """One text for the request; the same seed gives the same text."""
        c = _Composer(self.persona, request, self._rng(seed), self.character_name)
        build = {
            "caption": self._caption,
            "tweet": self._tweet,
            "thread": lambda c: "\n\n".join(self._thread(c)),
            "youtube_title": self._title,
            "youtube_description": self._description,
            "telegram_post": self._telegram,
            "reply": self._reply,
        }[request.kind]
        return build(c)

    def write_unique(
        self, request: WritingRequest, previous: Sequence[str], *, seed: int | None = None, attempts: int = 8
    ) -> tuple[str, DuplicateCheck]:
        """A text that is not a near duplicate of ``previous`` if one of ``attempts`` tries gets there.

        The check of the returned text says whether it still is one (then flag it for a person).
        """
        index = UniquenessIndex(previous)
        base = seed if seed is not None else random.SystemRandom().randrange(2**32)
        best: tuple[str, DuplicateCheck] | None = None
        for attempt in range(max(1, attempts)):
            text = self.write(request, seed=base + attempt * 7919)
            check = index.check(text)
            if not check.duplicate:
                return text, check
            if best is None or check.score < best[1].score:
                best = (text, check)
        assert best is not None
        return best

    def write_thread(self, request: WritingRequest, *, seed: int | None = None) -> list[str]:
        """A thread as its numbered posts."""
        request = replace(request, kind="thread")
        return self._thread(_Composer(self.persona, request, self._rng(seed), self.character_name))

    def _target(self, c: _Composer) -> tuple[str, str | None]:
        platform, kind = DEFAULT_TARGET[c.req.kind]
        if c.req.platform:
            return c.req.platform, c.req.kind
        return platform, kind

    def _finish(self, c: _Composer, paragraphs: list[list[str]], *, long: bool, hashtags: bool = True) -> str:
        flat = [s for para in paragraphs for s in para]
        c.slang(flat)
        it = iter(flat)
        paragraphs = [[next(it) for _ in para] for para in paragraphs]
        c.sprinkle(paragraphs, long=long)
        text = c.voice_pass(_join(paragraphs))
        platform, kind = self._target(c)
        if hashtags:
            return apply_hashtags(text, c.tags(), self.persona, platform, kind)
        return fit_text(text, platform, kind)

    def _caption(self, c: _Composer) -> str:
        first = [s for s in (c.opener(), c.hook()) if s]
        if c.brief_sentence:
            first.append(c.end(c.brief_sentence))
        middle: list[str] = []
        if c.req.style == "storytelling":
            middle += [c.say(STORY_MIDDLES), c.detail(), c.say(STORY_ENDINGS)]
        else:
            middle += [c.detail() for _ in range(c.rng.randint(1, 3))]
        for extra in (c.aside(), c.stance()):
            if extra and c.req.style == "storytelling":
                middle.append(extra)
            elif extra:
                middle.insert(c.rng.randint(0, len(middle)), extra)
        last = [s for s in (c.signature(), *c.engage(), c.closer()) if s]
        return self._finish(c, [first, middle, last], long=True)

    def _tweet(self, c: _Composer) -> str:
        parts = [s for s in [c.hook()] if s]
        if c.brief_sentence:
            parts.append(c.end(c.brief_sentence))
        parts.append(c.detail())
        extras = [s for s in (c.stance(), c.aside(), c.signature()) if s]
        if extras:
            parts.append(c.rng.choice(extras))
        parts += c.engage(short=True)[:1]
        platform, kind = self._target(c)
        rules = rules_for(platform, kind)
        # leave room for the hashtags: drop middle sentences rather than cut one in half
        while len(parts) > 2 and text_length(" ".join(parts), rules) > rules.max_length - 40:
            parts.pop(len(parts) // 2)
        return self._finish(c, [parts], long=False)

    def _thread(self, c: _Composer) -> list[str]:
        n_tips = c.rng.randint(3, 6)
        c_n = str(n_tips)
        intro_t = c.pick(THREAD_INTROS).replace("{n}", c_n)
        intro = c.end(c.fill(intro_t)) + (" 🧵" if c.p.emoji_habit != "none" else "")
        if c.brief_sentence:
            intro = f"{intro} {c.end(c.brief_sentence)}"
        posts = [intro]
        for _ in range(n_tips):
            tip = c.say(TIPS)
            if c.chance(0.35):
                tip = f"{tip} {c.detail()}"
            posts.append(tip)
        outro = [s for s in (c.stance(), c.signature(0.7), *c.engage(short=True)) if s]
        posts.append(" ".join(outro) or c.say(CLOSERS_PLAIN))
        platform, kind = (c.req.platform or "x"), "thread"
        rules = rules_for(platform, kind)
        total = len(posts)
        suffix_room = text_length(f" {total}/{total}", rules)
        out: list[str] = []
        for i, post in enumerate(posts, start=1):
            text = c.voice_pass(post)
            if i == 1:
                text = apply_hashtags(text, c.tags()[:1], self.persona, platform, kind)
            limit_rules = replace(rules, max_length=rules.max_length - suffix_room)
            if text_length(text, limit_rules) > limit_rules.max_length:
                text = fit_within(text, limit_rules, limit_rules.max_length)
            out.append(f"{text} {i}/{total}")
        return out

    def _title(self, c: _Composer) -> str:
        # a brief is the subject itself; a template title around it would invent a story ("How I got better at…")
        title = _cap(c.brief) if c.brief else c.fill(c.pick(TITLES))
        if c.voice.formal:
            title = " ".join(w if w.isupper() or len(w) <= 3 else _cap(w) for w in title.split(" "))
            title = _cap(title)
        if c.voice.energy > 0.75 and not title.endswith("?") and c.chance(0.5):
            title += "!"
        if c.p.emoji_habit == "heavy" and c.chance(0.6):
            title = f"{title} {c.emoji()}"
        return fit_text(c.voice_pass(title), "youtube", "title")

    def _description(self, c: _Composer) -> str:
        intro = [s for s in (c.hook(), c.detail(), c.detail() if c.chance(0.5) else None, c.stance()) if s]
        if c.brief_sentence:
            intro.insert(1, c.end(c.brief_sentence))
        bullets = [f"- {_cap(c.fill(c.pick(BULLETS)))}" for _ in range(c.rng.randint(3, 5))]
        talk = [s for s in (*c.engage(), c.signature()) if s] or [c.say(CLOSERS_PLAIN)]
        if c.req.style != "promotional" and c.chance(0.5):
            talk.append(c.end("Subscribe for more on " + c.topic))
        c.slang(intro)
        paragraphs = [intro, talk]
        c.sprinkle(paragraphs, long=True)
        chapters = "In this video:\n" + "\n".join(bullets)
        body = "\n\n".join([" ".join(intro), chapters, " ".join(talk), f"{DISCLOSURE_LINE}."])
        body = c.voice_pass(body)
        platform, kind = self._target(c)
        return apply_hashtags(body, c.tags() + [c.topic2], self.persona, platform, kind)

    def _telegram(self, c: _Composer) -> str:
        title = c.fill(c.pick(TITLES))
        if c.p.emoji_habit == "heavy":
            title = f"{c.emoji()} {title}"
        first = [s for s in (c.hook(), c.detail(), c.detail()) if s]
        if c.brief_sentence:
            first.insert(1, c.end(c.brief_sentence))
        second = [s for s in (c.stance(), c.aside(), c.signature()) if s]
        last = [s for s in (*c.engage(), c.closer()) if s] or [c.say(CLOSERS_PLAIN)]
        text = self._finish(c, [first, second, last], long=True)
        return f"{c.voice_pass(title)}\n\n{text}"

    def _reply(self, c: _Composer) -> str:
        comment = c.req.comment or c.req.brief or ""
        v = c.voice
        taboo = next((t for t in self.persona.taboo_topics if t.casefold() in comment.casefold()), None)
        asked_in = question_language(comment)
        if asked_in is not None:
            mood = "real"
        elif taboo:
            mood = "taboo"
        elif _NEGATIVE.search(comment):
            mood = "negative"
        elif "?" in comment:
            mood = "question"
        elif _POSITIVE.search(comment):
            mood = "positive"
        else:
            mood = "other"
        first, second = REPLIES[mood]
        parts = [c.pick(first), c.pick(second)]
        sentences = [c.end(c.fill(p.replace("{taboo}", taboo or "")), question=p.startswith(_ASKING)) for p in parts]
        if v.warmth > 0.6 and c.chance(0.4):
            sentences.append(c.say(CLOSERS_WARM))
        text = c.voice_pass(" ".join(sentences))
        if asked_in is not None and asked_in != "en":
            # the templates are English; the honest answer comes in the language the question was asked in
            text = disclosure_sentence(asked_in)
        text = enforce_disclosure(text, comment=comment, languages=self.persona.languages)
        if c.p.emoji_habit != "none" and c.chance(0.3 + 0.5 * v.playfulness):
            text = f"{text} {c.emoji()}"
        platform = c.req.platform or DEFAULT_TARGET["reply"][0]
        return fit_text(text, platform, None)


def write_offline(
    persona: Persona,
    kind: Kind = "caption",
    *,
    style: Style = "casual",
    brief: str = "",
    platform: str | None = None,
    comment: str | None = None,
    seed: int | None = None,
    character_name: str = "",
) -> str:
    """One text in the persona's voice from the offline grammar."""
    request = WritingRequest(kind=kind, style=style, brief=brief, platform=platform, comment=comment)
    return OfflineWriter(persona, character_name=character_name).write(request, seed=seed)
