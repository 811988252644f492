"""Words customers use for the same thing, for routing by similarity.

A policy says "multiple leaders"; a customer writes "two heads". Stems and character
pieces cannot see that these mean the same; this small, general support-desk thesaurus
can. Each group is a set of words and phrases that stand for one concept; the similarity
model adds the concept as a feature wherever one of them occurs (in a ticket and in the
policy's words alike), so "solicitor" meets "lawyer" and "vanished" meets "missing".

The groups describe how customers write to any support desk, not any one policy; a policy
adds its own under ``routing.similarity.synonyms``. Single words match by stem; phrases of
several words match as whole words in sequence.
"""

from __future__ import annotations

# fmt: off
SUPPORT_SYNONYMS: dict[str, tuple[str, ...]] = {
    "refund": (
        "refund", "reimburse", "reimbursement", "repay", "money back", "my money",
        "the money", "money returned", "payment returned", "returned to my card",
    ),
    "bill": ("bill", "invoice", "statement", "receipt", "billing"),
    "charge": ("charge", "charged", "billed", "debited", "took money", "taken from my card"),
    "declined": ("declined", "rejected", "refused", "bounced", "could not be taken"),
    "plan": ("plan", "subscription", "package", "membership", "tier", "renewal"),
    "cancel": ("cancel", "cancellation", "terminate", "close my", "shut down my", "end my"),
    "fee": ("fee", "commission", "cut", "percentage", "percent", "keep from"),
    "lawyer": (
        "lawyer", "attorney", "solicitor", "counsel", "barrister", "law firm",
        "legal representative", "legal department", "legal team",
    ),
    "lawsuit": (
        "sue", "lawsuit", "litigation", "file a claim", "legal action", "small claims",
        "in court", "to court", "damages",
    ),
    "media": (
        "journalist", "reporter", "press", "newspaper", "magazine", "publication",
        "podcast", "television", "tv", "radio", "blogger", "media", "article", "interview",
        "news", "viral", "trending", "influencer", "followers", "creator",
    ),
    "outage": (
        "outage", "offline", "unreachable", "unavailable", "inaccessible", "down",
        "dead", "will not open", "won't open", "cannot reach", "can't reach",
        "nothing works", "nothing loads", "not load",
    ),
    "slow": (
        "slow", "sluggish", "lag", "laggy", "takes ages", "take ages", "forever",
        "never finishes", "minute to", "seconds to", "timeout", "times out", "timed out",
    ),
    "crash": (
        "crash", "shuts down", "shuts itself", "closes", "quits", "freezes", "freeze",
        "hangs", "stops responding", "spins",
    ),
    "error": ("error", "fault", "exception", "failure", "fails", "failed", "failing"),
    "compromise": (
        "hacked", "compromised", "takeover", "someone logged", "logged into my account",
        "unknown device", "got in", "not any of us", "i did not change", "without my",
        "unauthorized", "unauthorised", "without permission",
    ),
    "harassment": (
        "harass", "harassment", "harassing", "insult", "insults", "insulting", "threaten",
        "threatening", "frightening", "creepy", "stalk", "stalking", "bully", "bullying",
        "abuse", "abusive", "ganging up", "intimidate", "hurt me",
    ),
    "fraud": (
        "fraud", "fraudulent", "scam", "scammer", "phishing", "pretending to be",
        "impersonate", "impersonating", "stolen payment", "stolen card", "tricking",
    ),
    "copyright": (
        "copyright", "copyrighted", "copied", "reposted", "infringement", "plagiarism",
        "as their own", "as his own", "as her own", "taken down", "takedown",
        "without my consent", "without permission", "registered illustrations",
    ),
    "privacy": (
        "gdpr", "ccpa", "privacy", "personal data", "personal information", "erase",
        "erased", "delete everything", "right to be forgotten", "data rules",
        "data protection", "information you hold", "information you keep", "california",
        "data you hold", "permanently removed",
    ),
    "legal_demand": (
        "subpoena", "warrant", "police", "law enforcement", "court order", "court has ordered",
        "government authority", "formal request", "protective order", "restraining order",
    ),
    "lost": (
        "lost", "missing", "vanished", "disappeared", "gone", "no longer there",
        "deleted",
    ),
    "corrupt": ("corrupted", "corrupt", "damaged", "garbled", "grey noise"),
    "wish": (
        "would be nice", "would love", "please add", "could you add", "consider adding",
        "would be great", "suggestion", "wish", "feature idea", "please consider",
        "think about adding",
    ),
    "howto": (
        "how do i", "how can i", "where do i", "where can i", "is there a way",
        "smartest way", "best way", "recommended process", "recommended way",
    ),
    "newcomer": (
        "new here", "just joined", "just signed up", "first time", "beginner",
        "just created an account", "where to start", "my first",
    ),
    "partner": (
        "partner", "partnership", "collaborate", "collaboration", "work together",
        "reseller", "affiliate", "referral", "offer your service",
    ),
    "sales": ("enterprise", "seats", "volume", "discount", "custom contract", "bulk licence"),
    "leader": ("leader", "owner", "head", "heads", "admin", "in charge", "runs", "running"),
    "member": ("member", "members", "people", "person", "volunteers", "relatives"),
    "duplicate": ("duplicate", "duplicated", "twice", "double", "doubled", "two times"),
    "capacity": ("capacity", "limit", "cap", "room for", "more people", "more members", "raised"),
    "dispute": (
        "dispute", "disagree", "disagreement", "conflict", "argue", "fighting",
        "cannot agree", "can't agree", "not acceptable",
    ),
    "supervisor": (
        "supervisor", "manager", "someone above", "more authority", "in charge of",
        "senior", "escalate",
    ),
    "restore": (
        "restore", "restored", "recover", "reactivate", "bring it back", "bring back",
        "undo", "switched on again", "reopen", "by mistake", "by accident",
    ),
    "withdraw": (
        "withdraw", "withdrawal", "payout", "cash out", "cash-out", "to my bank",
        "to the bank", "money transfer", "balance",
    ),
    "login": (
        "login", "log in", "sign in", "sign-in", "password", "credentials",
        "verification code", "2fa", "two-step",
    ),
    "vulnerability": (
        "vulnerability", "exploit", "xss", "injection", "security hole", "security flaw",
        "script", "private albums", "private projects", "other users' private",
        "other people's private", "another family's",
    ),
    "upload": ("upload", "uploader", "uploading", "import", "importing"),
    "deploy": ("deploy", "deployment", "release", "installer", "install", "build", "new version"),
    "api": (
        "api", "endpoint", "webhook", "callbacks", "rest interface", "integration", "server calls",
    ),
    "invite": ("invite", "invite code", "join code", "invitation"),
    "multiple": (
        "multiple", "several", "two", "three", "both", "more than one", "at the same time",
        "at once",
    ),
    "empty": ("empty", "zero", "nobody", "no one", "no members", "no associated", "orphaned"),
    "broken": (
        "does nothing", "do nothing", "blank page", "blank screen", "refuses", "not working",
        "stopped working", "no longer works", "will not", "won't", "doesn't work",
    ),
    "divorce": ("divorce", "custody", "separation", "ex-partner", "former partner", "my ex"),
    "executive": ("ceo", "chief executive", "founder", "executive", "head of the company"),
    "child": ("child", "children", "kid", "kids", "minor", "wellbeing", "child safety"),
    "automation": ("bot", "bots", "automated", "script", "scripts", "machine speed"),
    "commercial": ("commercial", "business", "company", "for profit", "selling", "resell"),
    "escrow": ("escrow", "deposit", "milestone", "paid upfront", "funds held"),
    "breach": (
        "breach", "leak", "leaked", "leaking", "exposed", "public paste", "downloadable by anyone",
    ),
}
# fmt: on
